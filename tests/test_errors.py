"""Bad input on the command line: exit code 2, one line naming the file/key/range, no output.

The console entry point :func:`softgrain.cli.main` is called in-process with ``sys.argv``
patched. Listed cases cover every kind of bad input the brief names; the hypothesis properties
throw random wrong values at random configuration keys and random TOML documents at
``softgrain run`` and require the same clean failure every time — never a traceback, never a
created output folder.
"""

from __future__ import annotations

import math
import tempfile
import tomllib
import typing
from pathlib import Path

import annotated_types
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from softgrain.config import SimulationConfig
from cli_helpers import invoke_main

SMALL_DENSE = ["--set", 'numerics.kernel="dense"', "--set", "grid.nx=24", "--set", "grid.ny=12",
               "--set", "nucleation.count=6", "--end-time", "1", "--quiet"]


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    return invoke_main(monkeypatch, capsys, *args)


def assert_clean_failure(code: int, out: str, err: str, out_dir: Path, *named: str) -> str:
    """Exit 2, nothing on stdout, exactly one ``softgrain: error:`` line, no output folder."""
    assert code == 2, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("softgrain: error: ") and "Traceback" not in err
    for text in named:
        assert text in lines[0], (text, lines[0])
    assert not out_dir.exists()
    return lines[0]


BAD_CONFIG_FILES = {
    "malformed TOML": ("[run\nseed = 1\n", ["malformed TOML", "line 1"]),
    "wrong type in file": ('base = "li-solid"\n[grid]\nnx = "forty"\n', ["grid.nx = 'forty'", "an integer"]),
    "unknown key in file": ('base = "li-solid"\n[grid]\nnxx = 40\n', ["grid.nxx", "did you mean 'nx'"]),
    "unknown base": ('base = "li-sollid"\n', ["li-sollid", "unknown preset"]),
    "bad base type": ("base = 3\n", ["'base'"]),
    "not UTF-8": (b"\xff\xfe[run]\n", ["cannot read"]),
}


@pytest.mark.parametrize("case", list(BAD_CONFIG_FILES))
def test_bad_config_files(tmp_path, monkeypatch, capsys, case):
    text, named = BAD_CONFIG_FILES[case]
    path = tmp_path / "config.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    out_dir = tmp_path / "out"
    result = run_main(monkeypatch, capsys, "run", str(path), "--out", str(out_dir), "--quiet")
    assert_clean_failure(*result, out_dir, str(path), *named)


BAD_OVERRIDES = {
    # case: (--set/--end-time arguments, texts the message must contain)
    "unknown metal": (["--set", 'material.metal="Cu"'], ["material.metal = 'Cu'", "known: Li, Na, K"]),
    "unknown orientation (list)": (["--set", 'nucleation.orientations=["100"]'],
                                   ["nucleation.orientations[0] = '100'", "'001'"]),
    "unknown orientation (key)": (["--set", 'material.surface_energy_J_m2={"110" = 0.5}'],
                                  ["material.surface_energy_J_m2.110", "'001'"]),
    "zero time step": (["--set", "run.dt_s=0"], ["run.dt_s = 0", "0 < run.dt_s ≤ 10"]),
    "negative time step": (["--set", "run.dt_s=-0.01"], ["run.dt_s = -0.01", "0 < run.dt_s"]),
    "zero spacing": (["--set", "grid.spacing_um=0.0"], ["grid.spacing_um = 0.0", "0 < grid.spacing_um"]),
    "negative Laplacian spacing": (["--set", "grid.laplacian_spacing=-1.0"],
                                   ["grid.laplacian_spacing = -1.0", "0 < grid.laplacian_spacing"]),
    "negative size": (["--set", "grid.nx=-40"], ["grid.nx = -40", "4 ≤ grid.nx ≤ 100000"]),
    "zero size": (["--set", "grid.ny=0"], ["grid.ny = 0", "4 ≤ grid.ny ≤ 100000"]),
    "zero nuclei": (["--set", "nucleation.count=0"], ["nucleation.count = 0", "1 ≤ nucleation.count"]),
    "more nuclei than bottom cells": (["--set", "grid.nx=40", "--set", "nucleation.count=41"],
                                      ["nucleation.count = 41", "1 ≤ nucleation.count ≤ 40"]),
    "nucleation layer too thick": (["--set", "grid.ny=12", "--set", "nucleation.rows=11"],
                                   ["nucleation.rows = 11", "< 12"]),
    "unstable time step refused": (["--set", 'run.substeps="refuse"'],
                                   ["li-solid", "run.dt_s = 0.01", "stability limit", "run.dt_s ≤"]),
    "strain beside [conditions]": (["--set", "material.strain=0.1"],
                                   ["material.strain = 0.1", "conflicts with [conditions]"]),
    "unknown substrate": (["--set", 'conditions.substrate="Unobtainium"'],
                          ["conditions.substrate = 'Unobtainium'", "unknown substrate"]),
    "strain beyond the schema": (["--set", "material.strain=0.5"], ["material.strain = 0.5", "≤ 0.2"]),
    "end time shorter than a step": (["--end-time", "0.001"], ["run.end_time_s = 0.001", "one time step"]),
    # A value given by a flag is blamed on the flag, not on the preset file (issue 15).
    "negative end time": (["--end-time", "-5"], ["--end-time -5.0 (run.end_time_s)", "0 < --end-time"]),
    "infinite end time": (["--end-time", "inf"], ["--end-time inf (run.end_time_s)", "finite"]),
    "negative seed": (["--seed", "-1"], ["--seed -1 (run.seed)", "0 ≤ --seed"]),
    "unknown key": (["--set", "grid.size=3"], ["grid.size", "unknown key"]),
    "unknown section": (["--set", "solver.dt=3"], ["solver", "unknown key"]),
    "key below a value": (["--set", "material.metal.x=3"], ["--set material.metal.x", "not a section"]),
    "malformed --set": (["--set", "run.seed"], ["--set 'run.seed'", "KEY=VALUE"]),
    "wrong kernel": (["--set", 'numerics.kernel="fast"'], ["numerics.kernel = 'fast'", "'sparse', 'dense'"]),
    "unstable Landau coefficients": (["--set", "landau.gamma=0.4"], ["landau.gamma = 0.4", "> landau.alpha/2"]),
    "non-number option": (["--end-time", "soon"], ["--end-time", "valid number"]),
    "unknown option": (["--frobnicate"], ["--frobnicate"]),
    "bad checkpoint interval": (["--checkpoint-every", "0"], ["--checkpoint-every", "S > 0"]),
}


@pytest.mark.parametrize("case", list(BAD_OVERRIDES))
def test_bad_overrides_and_options(tmp_path, monkeypatch, capsys, case):
    args, named = BAD_OVERRIDES[case]
    out_dir = tmp_path / "out"
    result = run_main(monkeypatch, capsys, "run", "li-solid", "--out", str(out_dir), "--quiet", *args)
    assert_clean_failure(*result, out_dir, *named)


def test_strain_outside_the_surface_energy_data(tmp_path, monkeypatch, capsys):
    out_dir = tmp_path / "out"
    result = run_main(monkeypatch, capsys, "run", "li-liquid", "--out", str(out_dir), "--quiet",
                      "--set", "material.strain=0.1")
    assert_clean_failure(*result, out_dir, "material.strain = +0.1", "-0.030 ≤ material.strain ≤ +0.030")


@pytest.mark.parametrize("preset", ["li-sollid", "Li", "missing.toml"])
def test_unknown_preset_or_missing_file(tmp_path, monkeypatch, capsys, preset):
    out_dir = tmp_path / "out"
    result = run_main(monkeypatch, capsys, "run", preset, "--out", str(out_dir))
    assert_clean_failure(*result, out_dir, preset)


def test_existing_output_folder_is_refused_before_running(tmp_path, monkeypatch, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "result.nc").write_bytes(b"previous result")
    code, out, err = run_main(monkeypatch, capsys, "run", "li-solid", "--out", str(out_dir), *SMALL_DENSE)
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and "--overwrite" in err
    assert [p.name for p in out_dir.iterdir()] == ["result.nc"]
    assert (out_dir / "result.nc").read_bytes() == b"previous result"
    file_as_out = tmp_path / "file"
    file_as_out.write_text("x")
    code, _, err = run_main(monkeypatch, capsys, "run", "li-solid", "--out", str(file_as_out), *SMALL_DENSE)
    assert code == 2 and "not a folder" in err and file_as_out.read_text() == "x"


# ---------------------------------------------------------------------------------------------
# Property-based: random wrong values for random keys, random TOML documents
# ---------------------------------------------------------------------------------------------

def _leaf_fields(model: type[BaseModel], prefix: str = "") -> dict[str, object]:
    """Dotted key → pydantic FieldInfo of every leaf of the schema."""
    leaves = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            leaves.update(_leaf_fields(annotation, f"{prefix}{name}."))
        else:
            leaves[f"{prefix}{name}"] = info
    return leaves


# Free text, and the optional [conditions] section whose str|float substrate accepts most values:
# no value is wrong for them by type, so they are covered by the listed cases instead.
_SKIPPED = {"name", "description", "conditions"}
LEAVES = {key: info for key, info in _leaf_fields(SimulationConfig).items() if key not in _SKIPPED}

_words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_not_numbers = st.one_of(_words, st.booleans(), st.lists(st.integers(), max_size=3),
                         st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2))


def _out_of_range(info) -> st.SearchStrategy:
    """Numbers that violate the field's bounds (nothing if it has none)."""
    options = []
    for bound in info.metadata:
        if isinstance(bound, annotated_types.Ge):
            options.append(st.floats(max_value=bound.ge, exclude_max=True, allow_nan=False,
                                     allow_infinity=False, min_value=bound.ge - 1e6))
        elif isinstance(bound, annotated_types.Gt):
            options.append(st.floats(max_value=bound.gt, allow_nan=False, allow_infinity=False,
                                     min_value=bound.gt - 1e6))
        elif isinstance(bound, annotated_types.Le):
            options.append(st.floats(min_value=bound.le, exclude_min=True, allow_nan=False,
                                     allow_infinity=False, max_value=bound.le + 1e6))
        elif isinstance(bound, annotated_types.Lt):
            options.append(st.floats(min_value=bound.lt, allow_nan=False, allow_infinity=False,
                                     max_value=bound.lt + 1e6))
    return st.one_of(options) if options else st.nothing()


def wrong_values(info) -> st.SearchStrategy:
    """Values that can never validate for the field ``info`` (by type, range or membership)."""
    annotation = info.annotation
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    scalar = args[0] if origin is not None and origin not in (list, dict, typing.Literal) and len(args) == 1 else annotation
    if set(args) == {str, list[float]}:  # nucleation.fibre_axis: a pole name or [h, k, l]
        return st.one_of(st.integers(), st.booleans(), _words.filter(lambda w: w not in {"001", "101", "111"}),
                         st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=2),
                         st.just([0, 0, 0]))
    if typing.get_origin(scalar) is list:  # an optional list (analysis.window_um): as the list itself
        origin, annotation = list, scalar
    if scalar is int:
        ints_out = _out_of_range(info).map(lambda x: int(math.floor(x)) if x < 0 else int(math.ceil(x)))
        bad_ints = ints_out.filter(lambda n: not _in_bounds(info, n))
        return st.one_of(_not_numbers, st.floats(allow_nan=True).filter(lambda x: x != int(x) if math.isfinite(x) else True),
                         bad_ints)
    if scalar is float:
        return st.one_of(_words, st.booleans(), st.lists(st.floats(), max_size=2),
                         st.sampled_from([math.inf, -math.inf, math.nan]), _out_of_range(info))
    if scalar is bool:
        return st.one_of(st.integers(), st.floats(), _words)
    if scalar is str:  # material.metal: any name but the known ones
        return st.one_of(st.integers(), st.lists(_words, max_size=2),
                         _words.filter(lambda w: w.lower() not in {"li", "na", "k"}))
    if origin is typing.Literal:
        allowed = set(typing.get_args(annotation))
        return st.one_of(st.integers(), st.booleans(), _words.filter(lambda w: w not in allowed))
    if origin is list:
        (item,) = typing.get_args(annotation)
        if item is float:  # snapshot times: a negative or a non-number inside
            return st.one_of(_words, st.lists(st.floats(max_value=-1e-9, allow_nan=False), min_size=1, max_size=3),
                             st.lists(_words, min_size=1, max_size=2))
        allowed = set(typing.get_args(item))  # orientations: empty or an unknown one
        return st.one_of(st.just([]), st.lists(_words.filter(lambda w: w not in allowed), min_size=1, max_size=2),
                         st.integers())
    if origin is dict:  # per-orientation overrides: unknown orientation keys or absurd values
        return st.one_of(
            st.dictionaries(_words.filter(lambda w: w not in {"001", "101", "111"}), st.floats(0.1, 1.0),
                            min_size=1, max_size=2),
            st.dictionaries(st.sampled_from(["001", "101", "111"]),
                            st.one_of(st.floats(min_value=6.0, max_value=1e6), st.floats(max_value=-0.1),
                                      _words), min_size=1, max_size=2),
            st.integers())
    raise AssertionError(f"no wrong-value strategy for {annotation}")


def _in_bounds(info, value: float) -> bool:
    for bound in info.metadata:
        if isinstance(bound, annotated_types.Ge) and not value >= bound.ge:
            return False
        if isinstance(bound, annotated_types.Gt) and not value > bound.gt:
            return False
        if isinstance(bound, annotated_types.Le) and not value <= bound.le:
            return False
        if isinstance(bound, annotated_types.Lt) and not value < bound.lt:
            return False
    return True


def toml_literal(value) -> str:
    """``value`` as a TOML literal (test-data writer: strings, numbers, booleans, lists, tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\U{ord(c):08x}"
                             for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_literal(str(k))} = {toml_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


@st.composite
def wrong_key_value(draw):
    key = draw(st.sampled_from(sorted(LEAVES)))
    value = draw(wrong_values(LEAVES[key]))
    return key, value


PROPERTY_SETTINGS = settings(max_examples=60, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                    HealthCheck.too_slow])


def check_never_runs(monkeypatch, capsys, args: list[str]) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        out_dir = Path(scratch) / "out"
        result = run_main(monkeypatch, capsys, *args[:2], "--out", str(out_dir), "--quiet", *args[2:])
        return assert_clean_failure(*result, out_dir)


@PROPERTY_SETTINGS
@given(wrong_key_value())
def test_random_wrong_value_for_random_key_via_set(monkeypatch, capsys, key_value):
    key, value = key_value
    line = check_never_runs(monkeypatch, capsys, ["run", "li-solid", "--set", f"{key}={toml_literal(value)}"])
    assert key.split(".")[0] in line


@PROPERTY_SETTINGS
@given(wrong_key_value(), st.sampled_from(["li-solid", "li-liquid", "na-solid", "k-solid"]))
def test_random_wrong_value_for_random_key_in_a_file(monkeypatch, capsys, key_value, base):
    key, value = key_value
    section, _, leaf = key.rpartition(".")
    text = f'base = "{base}"\n' + (f"[{section}]\n" if section else "") + f"{leaf} = {toml_literal(value)}\n"
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "bad.toml"
        path.write_text(text, encoding="utf-8")
        line = check_never_runs(monkeypatch, capsys, ["run", str(path)])
    assert str(path) in line and key.split(".")[0] in line


def _is_toml(text: str) -> bool:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    return True


_toml_ish = st.lists(st.sampled_from(["[run]", "[grid", "nx = ", "= 3", '"', "'", "[[a]]", "x = [1,",
                                       "\n", "dt_s = 0.01", "{", "}", "base = ", "#", "\\", "1e", ".",
                                       "[material]", "metal = \"Li\"", "=", "\t"]),
                     min_size=1, max_size=12).map("".join)


@PROPERTY_SETTINGS
@given(st.one_of(st.text(max_size=80), _toml_ish))
@example("\r")          # bare CR: read with newline translation it became an empty, valid file
@example("a = 1\r")     # and ran the default simulation for minutes
def test_random_malformed_toml_documents(monkeypatch, capsys, text):
    assume(not _is_toml(text))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "random.toml"
        path.write_text(text, encoding="utf-8")
        line = check_never_runs(monkeypatch, capsys, ["run", str(path)])
    assert "malformed TOML" in line


_unknown_names = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz_"), min_size=1, max_size=10)
_toml_values = st.recursive(
    st.one_of(st.integers(), st.floats(), st.booleans(), _words),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(_unknown_names, children, max_size=3)),
    max_leaves=6)


@PROPERTY_SETTINGS
@given(st.dictionaries(st.sampled_from([None, *sorted({k.split(".")[0] for k in LEAVES})]),
                       st.dictionaries(_unknown_names, _toml_values, min_size=1, max_size=3),
                       min_size=1, max_size=3))
def test_random_valid_toml_with_unknown_keys(monkeypatch, capsys, sections):
    """Well-formed TOML whose tables contain keys that are not in the schema."""
    known = {key.split(".")[-1] for key in LEAVES} | set(SimulationConfig.model_fields) | {"base"}
    lines = ['base = "li-solid"']
    top = sections.pop(None, {})
    assume(any(k not in known for table in [top, *sections.values()] for k in table))
    lines += [f"{k} = {toml_literal(v)}" for k, v in top.items() if k not in known | {"base"}]
    for section, table in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {toml_literal(v)}" for k, v in table.items() if k not in known]
    text = "\n".join(lines) + "\n"
    assume(_is_toml(text) and len(lines) > 1 + len(sections))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "unknown.toml"
        path.write_text(text, encoding="utf-8")
        line = check_never_runs(monkeypatch, capsys, ["run", str(path)])
    assert "unknown key" in line
