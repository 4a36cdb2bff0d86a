"""EBSD comparison (softgrain.studies.experiments): data, theory verdicts, ensemble statistics, CLI contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from softgrain.analysis import ensemble_statistics, mean_confidence_interval
from softgrain.config import load_config
from softgrain.materials.metals import ORIENTATIONS
from softgrain.materials.observations import load_experiments, load_grain_sizes
from softgrain.materials.records import LABELS
from softgrain.output.results import TASK_FAILED, TASK_OK
from softgrain.physics.conditions import lattice_strain
from softgrain.report import markdown_table
from softgrain.setup import material_inputs
from softgrain.studies.experiments import compare_experiments, simulate_ensemble, theory_verdict
from cli_helpers import invoke_main

TINY = {"grid.nx": 40, "grid.ny": 16, "nucleation.count": 10, "run.end_time_s": 10.0,
        "numerics.kernel": "dense"}
PRESETS = ("li-solid", "li-solid-80c", "li-solid-lixsi")


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    return invoke_main(monkeypatch, capsys, "compare-experiments", *args)


def test_ebsd_numbers_are_the_papers():
    by_preset = {e.preset: e for e in load_experiments()}
    assert tuple(by_preset) == PRESETS
    assert by_preset["li-solid"].fraction == {"001": 0.571, "101": 0.190, "111": 0.143}
    assert by_preset["li-solid-80c"].fraction == {"001": 0.154, "101": 0.487, "111": None}
    assert by_preset["li-solid-lixsi"].fraction == {"001": None, "101": 0.50, "111": None}
    for e in by_preset.values():
        assert e.label in LABELS and "paper" in e.source and "Fig." in e.source
    sizes = load_grain_sizes()
    assert (sizes["solid"].min_um, sizes["solid"].max_um) == (30.0, 50.0)
    assert (sizes["liquid"].min_um, sizes["liquid"].max_um) == (5.0, 10.0)


def test_presets_model_the_measured_conditions():
    for e in load_experiments():
        config = load_config(e.preset)
        assert config.run.temperature_C == e.temperature_C
        assert config.material.metal == "Li"
        assert material_inputs(config).strain == lattice_strain(e.stack_pressure_MPa, e.substrate).strain


@pytest.mark.parametrize("preset, favoured", [("li-solid", "001"), ("li-solid-80c", "101"),
                                              ("li-solid-lixsi", "101")])
def test_theory_verdicts_match_the_paper(preset, favoured):
    verdict = theory_verdict(load_config(preset))
    assert verdict["favoured"] == favoured
    assert verdict["delta_u_J_m3"][favoured] == min(verdict["delta_u_J_m3"].values())


# --- ensemble statistics ---------------------------------------------------------------------

def synthetic_ensemble(fractions: np.ndarray, status: np.ndarray | None = None) -> xr.Dataset:
    """A dataset shaped like a run_ensemble result: fraction (seed, orientation), status (seed)."""
    n = fractions.shape[0]
    return xr.Dataset(
        {"fraction": (("seed", "orientation"), fractions),
         "surface_fraction": (("seed", "orientation"), fractions),
         "status": (("seed",), np.ones(n, dtype=np.int8) if status is None else status)},
        coords={"seed": np.arange(n), "orientation": list(ORIENTATIONS)})


def test_ci_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(20240601)
    true_mean = np.array([0.5, 0.3, 0.2])
    repeats, members = 400, 8
    covered = np.zeros(3)
    for _ in range(repeats):
        # Dirichlet draws: fractions in [0, 1] that add up to 1, like simulated textures.
        draws = rng.dirichlet(true_mean * 20.0, size=members)
        stats = ensemble_statistics(synthetic_ensemble(draws))
        for k, o in enumerate(ORIENTATIONS):
            low, high = stats[o]["ci95"]
            covered[k] += low <= true_mean[k] <= high
    coverage = covered / repeats
    # Binomial standard error at p = 0.95, n = 400 is 0.011; allow about 3 of them.
    assert np.all(np.abs(coverage - 0.95) < 0.035), coverage


def test_ci_width_shrinks_like_one_over_root_n():
    rng = np.random.default_rng(7)
    widths = []
    for n in (16, 64, 256):
        _, low, high = mean_confidence_interval(rng.normal(0.4, 0.1, size=n))
        widths.append(high - low)
    assert widths[0] / widths[1] == pytest.approx(2.0, rel=0.35)
    assert widths[1] / widths[2] == pytest.approx(2.0, rel=0.35)


def test_failed_members_are_left_out_of_the_statistics():
    fractions = np.array([[0.6, 0.4, 0.0], [0.4, 0.6, 0.0], [np.nan, np.nan, np.nan]])
    status = np.array([TASK_OK, TASK_OK, TASK_FAILED], dtype=np.int8)
    stats = ensemble_statistics(synthetic_ensemble(fractions, status))
    assert stats["001"]["mean"] == pytest.approx(0.5) and stats["001"]["n"] == 2


def test_simulate_ensemble_on_a_tiny_grid():
    result = simulate_ensemble(load_config("li-solid", TINY), 2, workers=1)
    assert result["members_ok"] == 2 and result["members_failed"] == 0
    means = [result["fraction"][o]["mean"] for o in ORIENTATIONS]
    assert sum(means) == pytest.approx(1.0)
    assert all(0.0 <= m <= 1.0 for m in means)
    width = result["surface_grain_width_um"]["mean"]
    assert 0 < width <= TINY["grid.nx"] * load_config("li-solid").grid.spacing_um


# --- command line ----------------------------------------------------------------------------

def tiny_set_options() -> list[str]:
    options = []
    for key, value in TINY.items():
        options += ["--set", f"{key}={json.dumps(value)}"]
    return options


def test_json_contract_with_a_tiny_grid(monkeypatch, capsys):
    code, out, err = run_main(monkeypatch, capsys, "--seeds", "2", "--workers", "2", "--json",
                              "--no-liquid", "--count-window-um", "2", "--min-grain-cells", "2",
                              *tiny_set_options())
    assert code == 0, err
    doc = json.loads(out)
    rows = {row["preset"]: row for row in doc["conditions"]}
    assert tuple(rows) == PRESETS
    assert {p: rows[p]["theory_favoured"] for p in PRESETS} == {
        "li-solid": "001", "li-solid-80c": "101", "li-solid-lixsi": "101"}
    for row in doc["conditions"]:
        assert set(row["simulated"]) == set(ORIENTATIONS)
        for stats in row["simulated"].values():
            assert 0.0 <= stats["mean"] <= 1.0
            low, high = stats["ci95"]
            assert low <= stats["mean"] <= high
        assert set(row["experiment"]) == set(ORIENTATIONS)
    assert rows["li-solid"]["experiment"] == {"001": 0.571, "101": 0.190, "111": 0.143}
    assert rows["li-solid-80c"]["experiment"]["111"] is None
    assert rows["li-solid-lixsi"]["experiment"] == {"001": None, "101": 0.5, "111": None}
    # EBSD-grade grain statistics (issue 11, item 4): the contract of every condition.
    for row in doc["conditions"]:
        sim = row["simulated_count_fraction"]
        assert set(sim) == set(ORIENTATIONS)
        for stats in sim.values():
            assert set(stats) == {"mean", "ci_low", "ci_high"}
            assert 0.0 <= stats["ci_low"] <= stats["mean"] <= stats["ci_high"] <= 1.0
        assert sum(s["mean"] for s in sim.values()) == pytest.approx(1.0)
        assert set(row["ebsd_count"]) == set(ORIENTATIONS)
        assert all(k is None or isinstance(k, int) for k in row["ebsd_count"].values())
        assert row["agreement_p_value"] is None or 0.0 <= row["agreement_p_value"] <= 1.0
        # The window asked for (2 µm = 4 rows of the 0.5 µm grid) is what was counted.
        assert row["count_window_height_um"] == 2.0 and row["min_grain_cells"] == 2
    assert rows["li-solid"]["ebsd_count"] == {"001": 12, "101": 4, "111": 3}
    assert rows["li-solid-80c"]["ebsd_count"] == {"001": 6, "101": 19, "111": None}
    assert rows["li-solid-lixsi"]["ebsd_count"] == {"001": None, "101": None, "111": None}
    assert rows["li-solid-lixsi"]["agreement_p_value"] is None
    assert isinstance(rows["li-solid"]["agreement_p_value"], float)
    assert rows["li-solid"]["ebsd_count_label"] == "INFERRED"
    assert set(doc["count_methods"]) == {"simulated_count_fraction", "ebsd_count_fraction",
                                         "agreement_p_value"}
    entries = doc["grain_size"]["entries"]
    assert {e["preset"] for e in entries} == set(PRESETS)
    assert all(e["domain_width_um"] == 20.0 for e in entries)
    assert doc["grain_size"]["caveats"]


def test_theory_only_table_without_seeds(monkeypatch, capsys):
    code, out, _ = run_main(monkeypatch, capsys, "--seeds", "0")
    assert code == 0
    assert "57.1 %" in out and "(001)" in out and "(101)" in out


def test_markdown_table_lists_every_condition():
    code_rows = {"conditions": [
        {"description": "25 °C, bare Cu", "strain": -0.03, "theory_favoured": "001",
         "simulated": {o: {"mean": 0.5, "ci95": [0.4, 0.6]} for o in ORIENTATIONS},
         "experiment": {"001": 0.571, "101": 0.19, "111": None}}]}
    table = markdown_table(code_rows)
    assert "| 25 °C, bare Cu | -0.0300 | (001) | 50.0 % [40.0, 60.0] | 57.1 % | (001) |" in table
    assert "| — | (111)" not in table and table.count("\n") == 4


def test_bad_seed_count_exits_2(monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, "--seeds", "-1")
    assert code == 2 and "--seeds" in err


@pytest.mark.parametrize("option, value", [("--count-window-um", "0"), ("--count-window-um", "nan"),
                                           ("--min-grain-cells", "0")])
def test_bad_count_options_exit_2(monkeypatch, capsys, option, value):
    code, _, err = run_main(monkeypatch, capsys, "--seeds", "0", option, value)
    assert code == 2 and option in err and len(err.strip().splitlines()) == 1


def test_bad_override_exits_2(monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, "--seeds", "0", "--set", "grid.nx=-5")
    assert code == 2 and "grid.nx" in err


def test_store_dir_keeps_resumable_ensembles(tmp_path):
    first = compare_experiments(2, workers=1, overrides=TINY, include_liquid=False, store_dir=tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {f"{p}.zarr" for p in PRESETS}
    again = compare_experiments(2, workers=1, overrides=TINY, include_liquid=False, store_dir=tmp_path)
    # The second call finds every member finished and reproduces the first result exactly.
    assert again["conditions"] == first["conditions"]
