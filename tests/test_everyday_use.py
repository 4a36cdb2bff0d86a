"""Issue 15, "everyday use": help, version, messages that name what the user typed, one
melting-point rule, requested times, progress and reports, clean stops of a sweep, the preset list.

Everything goes through the console entry point (in-process) or ``python -m softgrain`` (a child
process, where a signal is sent).
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import softgrain
from cli_helpers import invoke_main
from process_helpers import Child, assert_one_line_error

TINY = ["--set", 'numerics.kernel="dense"', "--set", "grid.nx=24", "--set", "grid.ny=12",
        "--set", "nucleation.count=6"]
README = Path(__file__).resolve().parents[1] / "README.md"


def error_line(code: int, out: str, err: str, *named: str) -> str:
    """Exit 2 and exactly one ``softgrain: error:`` line (warnings before it are allowed)."""
    assert code == 2, err[-3000:]
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("softgrain: error: ")]
    assert len(errors) == 1, err[-3000:]
    for text in named:
        assert text in errors[0], (text, errors[0])
    return errors[0]


@pytest.fixture
def interrupted(tmp_path, monkeypatch, capsys) -> Path:
    """A run folder as an interrupted run leaves it: checkpoints at steps 200 and 300 of 400 and
    no complete result."""
    folder = tmp_path / "interrupted"
    code, _, err = invoke_main(monkeypatch, capsys, "run", "li-liquid", "--out", str(folder), "--quiet",
                               *TINY, "--end-time", "4", "--checkpoint-every", "1", "--keep-checkpoints")
    assert code == 0, err
    assert len(list(folder.glob("checkpoint-*"))) == 2
    (folder / "result.nc").unlink()
    return folder


# --- help and version --------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["theory", "run", "resume", "sweep", "phase-map", "interlayer",
                                     "compare-experiments", "animate", "export", "bench"])
def test_help_shows_flags_without_a_value_placeholder(monkeypatch, capsys, command):
    """Issue: ``--json <bool>`` although ``--json true`` fails."""
    code, out, err = invoke_main(monkeypatch, capsys, command, "--help")
    assert code == 0, err
    assert "--help" in out
    assert "<bool>" not in out


def test_version(monkeypatch, capsys):
    code, out, err = invoke_main(monkeypatch, capsys, "--version")
    assert code == 0, err
    assert softgrain.__version__ in out


# --- messages name what the user typed ------------------------------------------------------------

@pytest.mark.parametrize("flag, value", [("--end-time", "-5"), ("--seed", "-1")])
def test_a_bad_flag_value_names_the_flag(tmp_path, monkeypatch, capsys, flag, value):
    """Issue: ``--end-time -5`` blamed ``presets/li-solid.toml: run.end_time_s``."""
    out = tmp_path / "out"
    line = assert_one_line_error(*invoke_main(monkeypatch, capsys, "run", "li-solid", "--out", str(out),
                                              flag, value, "--quiet"), flag, value)
    assert "li-solid.toml" not in line
    assert not out.exists()


def test_run_into_an_interrupted_run_suggests_resume(interrupted, monkeypatch, capsys):
    """Issue: "pass --overwrite", which discards the checkpoints."""
    line = assert_one_line_error(*invoke_main(monkeypatch, capsys, "run", "li-liquid", "--out",
                                              str(interrupted), "--quiet", *TINY, "--end-time", "4"))
    assert f"softgrain resume {interrupted}" in line
    assert len(list(interrupted.glob("checkpoint-*"))) == 2


def test_resume_with_only_corrupt_checkpoints_says_how_to_start_over(interrupted, monkeypatch, capsys):
    for path in interrupted.glob("checkpoint-*"):
        path.write_bytes(path.read_bytes()[:-10])
    line = error_line(*invoke_main(monkeypatch, capsys, "resume", str(interrupted), "--quiet"))
    assert "softgrain run" in line and "--overwrite" in line


def test_a_directory_given_as_configuration_is_called_a_directory(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "configs"
    folder.mkdir()
    assert_one_line_error(*invoke_main(monkeypatch, capsys, "run", str(folder), "--out",
                                       str(tmp_path / "out"), "--quiet"), str(folder), "is a directory")


# --- one melting-point rule -----------------------------------------------------------------------

def _temperatures(line: str) -> set[str]:
    return set(re.findall(r"(-?\d+(?:\.\d+)?) °C", line))


@pytest.mark.parametrize("metal, preset, molten, solid", [
    ("Li", "li-solid", 300.0, 175.0),   # Li melts at 180.5 °C
    ("K", "k-solid", 250.0, 60.0),      # K at 63.4 °C
    ("Na", "na-solid", 120.0, 95.0),    # Na at 97.8 °C
])
def test_run_and_theory_share_one_melting_point_rule(tmp_path, monkeypatch, capsys, metal, preset,
                                                      molten, solid):
    """Issue: ``run`` accepted K at 250 °C and Li at 300 °C; ``theory`` and ``interlayer`` refused."""
    out = tmp_path / "out"
    run_line = assert_one_line_error(*invoke_main(
        monkeypatch, capsys, "run", preset, "--out", str(out), "--quiet", *TINY, "--end-time", "0.05",
        "--set", f"run.temperature_C={molten}"), "run.temperature_C", "melting point")
    theory_line = assert_one_line_error(*invoke_main(
        monkeypatch, capsys, "theory", "--metal", metal, "--temperature", str(molten)), "melting point")
    melting = _temperatures(theory_line) - {f"{molten:g}", f"{molten}"}
    assert melting and melting <= _temperatures(run_line), (theory_line, run_line)
    assert not out.exists()
    # Just below the melting point both accept.
    code, _, err = invoke_main(monkeypatch, capsys, "theory", "--metal", metal, "--temperature", str(solid))
    assert code == 0, err
    code, _, err = invoke_main(monkeypatch, capsys, "run", preset, "--out", str(out), "--quiet", *TINY,
                               "--end-time", "0.05", "--set", f"run.temperature_C={solid}")
    assert code == 0, err


def test_interlayer_refuses_a_molten_metal_too(monkeypatch, capsys):
    assert_one_line_error(*invoke_main(monkeypatch, capsys, "interlayer", "--temperature", "300"),
                          "melting point")


# --- requested times ----------------------------------------------------------------------------

def test_requested_times_are_landed_on_or_the_difference_is_said(tmp_path, monkeypatch, capsys):
    """Issue: Δt = 3 s, end 40 s stopped at 39 s and the 10 s snapshot became 9 s, silently."""
    out = tmp_path / "out"
    code, _, err = invoke_main(monkeypatch, capsys, "run", "li-liquid", "--out", str(out), "--quiet",
                               *TINY, "--set", "run.dt_s=3.0", "--end-time", "40",
                               "--set", "run.snapshot_times_s=[10.0, 40.0]")
    assert code == 0, err
    with xr.open_dataset(out / "result.nc") as ds:
        times = ds["time"].values.astype(float)
    if np.allclose(times, [10.0, 40.0], rtol=0, atol=1e-9):
        return
    said = " ".join(line for line in err.splitlines() if "run.dt_s" in line)
    assert said, f"stored at {times} s, requested 10 and 40 s, and nothing said: {err}"
    for requested, stored in zip([10.0, 40.0], times):
        if abs(requested - stored) > 1e-9:
            assert f"{requested:g} s" in said and f"{stored:g} s" in said, said


# --- progress and reports -------------------------------------------------------------------------

def test_progress_and_report_name_the_configuration_file(tmp_path, monkeypatch, capsys):
    """Issue: ``run my.toml`` showed the name of its base preset."""
    config = tmp_path / "myrun.toml"
    config.write_text('base = "li-liquid"\n')
    code, _, err = invoke_main(monkeypatch, capsys, "run", str(config), "--out", str(tmp_path / "out"),
                               *TINY, "--end-time", "0.5")
    assert code == 0, err
    assert "myrun" in err
    assert "li-liquid:" not in err


def test_resume_reports_the_steps_it_computed(interrupted, monkeypatch, capsys):
    """Resumed from the checkpoint at step 300 of 400: 100 steps computed, not 400."""
    code, _, err = invoke_main(monkeypatch, capsys, "resume", str(interrupted), "--quiet")
    assert code == 0, err
    assert re.search(r"\b100 steps\b", err), err
    assert "400 steps" not in err


@pytest.mark.slow
def test_bench_shows_progress_and_whether_each_target_is_met(monkeypatch, capsys):
    """Issue: ``bench --quick`` printed nothing for 29 s and no verdict against the targets."""
    code, out, err = invoke_main(monkeypatch, capsys, "bench", "--quick", "--no-reference-run")
    assert code == 0, err
    assert len([line for line in err.splitlines() if line.strip()]) >= 3   # progress while measuring
    for key in ("speedup_vs_dense", "grain_scaling_750_over_75", "cell_step_ratio_large",
                "peak_rss_large_MB"):
        (row,) = [line for line in out.splitlines() if key in line]
        assert re.search(r"\b(met|missed)\b", row), row


# --- sweeps stop cleanly on SIGTERM -----------------------------------------------------------------

def test_sweep_stops_cleanly_on_sigterm(tmp_path):
    """Issue: exit 143 and a leaked-semaphore warning; SIGINT already stopped cleanly."""
    sweep = tmp_path / "s.toml"
    sweep.write_text('base = "li-liquid"\nseeds = 6\n[config.run]\nend_time_s = 400.0\n'
                     '[config.grid]\nnx = 24\nny = 12\n[config.nucleation]\ncount = 6\n'
                     '[config.numerics]\nkernel = "dense"\n')
    store = tmp_path / "s.zarr"
    with Child("sweep", sweep, "--out", store, "--workers", "1") as child:
        assert child.wait_for("→", timeout=120), child.stderr[-3000:]
        time.sleep(6)   # the local cluster is up and tasks are running
        child.send(signal.SIGTERM)
        result = child.finish(timeout=120)
    assert result is not None, "the sweep did not stop within 120 s of SIGTERM"
    code, _, err = result
    assert code == 130, err[-3000:]
    assert "leaked" not in err and "Traceback" not in err, err[-3000:]
    assert "run the same command to resume" in " ".join(err.split())   # rich wraps long lines


# --- the preset list ------------------------------------------------------------------------------

def test_every_preset_offered_is_documented(tmp_path, monkeypatch, capsys):
    """Issue: the list showed ``phase-map``, which the README did not list."""
    line = assert_one_line_error(*invoke_main(monkeypatch, capsys, "run", "no-such-preset", "--out",
                                              str(tmp_path / "out")), "no-such-preset")
    offered = re.search(r"presets: ([a-z0-9, -]+)", line).group(1).strip().split(", ")
    listed = " ".join(text for text in README.read_text().splitlines() if "presets:" in text)
    missing = [name for name in offered if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", listed)]
    assert not missing, f"offered but not in the README's preset list: {missing}"
