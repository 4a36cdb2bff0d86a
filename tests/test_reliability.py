"""Issue 15, "silently wrong or unstoppable": each problem as a user meets it on the command line.

1. a sweep axis over ``run.seed`` (or any key another axis or the sweep also sets) is honoured
   or refused, never silently overridden;
2. a run whose automatic sub-steps or projected run time exceed a stated bound is refused before
   it starts, and a signal stops a sub-stepped run promptly;
3. overflowing mapped constants are a one-line error naming the keys;
4. a grid too large for the memory is refused with the estimate;
5. an output folder that cannot be written is refused before anything is computed;
6. two commands on one run folder: the second is refused and told who holds it.

Commands that could hang, or that need signals or a second process, run in a child process with
a time bound (``process_helpers``); the others run in-process through the console entry point.
"""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from cli_helpers import invoke_main
from process_helpers import Child, assert_one_line_error, run_softgrain
from study_cases import config_tables
from softgrain import setup
from softgrain.config import load_config
from softgrain.errors import ConfigError

# A run of a second or two: dense NumPy kernel (nothing to compile), 24 × 12 cells, 6 grains.
TINY = ["--set", 'numerics.kernel="dense"', "--set", "grid.nx=24", "--set", "grid.ny=12",
        "--set", "nucleation.count=6"]
TINY_SWEEP_CONFIG = "\n" + config_tables({"run.end_time_s": 1.0, "run.snapshot_times_s": [1.0], "grid.nx": 24,
                                             "grid.ny": 12, "nucleation.count": 6, "numerics.kernel": "dense"})


# --- 1. sweep axes that collide ------------------------------------------------------------

def test_sweep_axis_over_run_seed_is_honoured_or_refused(tmp_path):
    """Issue: every point got the same seed (that of ``seeds``) and so the same result."""
    sweep = tmp_path / "seed-axis.toml"
    sweep.write_text('base = "li-liquid"\nseeds = 1\n' + TINY_SWEEP_CONFIG
                     + '[outputs]\nkeep_maps = true\n[[axes]]\nkey = "run.seed"\nvalues = [1, 2]\n')
    store = tmp_path / "seed-axis.zarr"
    result = run_softgrain("sweep", sweep, "--out", store, "--workers", "1", "--quiet", timeout=300)
    assert result is not None, "the sweep did not finish in 300 s"
    code, out, err = result
    if code == 2:   # refused: say which keys collide, before creating the store
        assert_one_line_error(code, out, err, "run.seed", "seeds")
        assert not store.exists()
        return
    assert code == 0, err
    with xr.open_zarr(store) as ds:
        maps = ds["final_orientation"].load()
    axis = maps.dims[0]
    assert not np.array_equal(maps.isel({axis: 0}).values, maps.isel({axis: 1}).values), \
        "the two run.seed points ran with the same nucleation seed"


def test_sweep_axes_that_set_the_same_key_are_refused(tmp_path, monkeypatch, capsys):
    """The anisotropy axis sets all three surface energies; a second axis over E_s(101) would be
    overwritten (or overwrite it) silently, and the store's coordinates would lie."""
    sweep = tmp_path / "two-axes.toml"
    sweep.write_text('base = "li-liquid"\nseeds = 1\n' + TINY_SWEEP_CONFIG
                     + '[[axes]]\nkey = "material.surface_energy_anisotropy_J_m2"\nvalues = [0.01, 0.05]\n'
                     + '[[axes]]\nkey = "material.surface_energy_J_m2.101"\nvalues = [0.5, 0.6]\n')
    store = tmp_path / "two-axes.zarr"
    result = run_softgrain("sweep", sweep, "--out", store, "--workers", "1", "--quiet", timeout=300)
    assert result is not None, "the sweep did not finish in 300 s"
    assert_one_line_error(*result, "material.surface_energy_anisotropy_J_m2",
                          "material.surface_energy_J_m2.101")
    assert not store.exists()


def test_phase_map_refuses_an_override_of_its_own_axis(tmp_path):
    """``--set material.diffusion_barrier_eV.101=…`` would be replaced at every point of the map."""
    out = tmp_path / "map"
    result = run_softgrain(
        "phase-map", "--resolution", "2", "--seeds", "1", "--workers", "1", "--quiet", "--out", out,
        "--set", "material.diffusion_barrier_eV.101=0.05", "--set", "run.end_time_s=1.0",
        "--set", "run.snapshot_times_s=[1.0]", *TINY, timeout=300)
    assert result is not None, "phase-map did not finish in 300 s"
    assert_one_line_error(*result, "material.diffusion_barrier_eV.101")
    assert not out.exists()


# --- 2. sub-steps and run time are bounded; signals stop a sub-stepped run ------------------

@pytest.mark.parametrize("energy", [4.99, 1.5])
def test_too_many_sub_steps_are_refused_before_running(tmp_path, energy):
    """E_s(111) inside the allowed (0, 5) J/m² but κ(111) huge: ~1e12 (4.99) or ~1e6 (1.5)
    sub-steps per step. Issue: hung for 14 minutes, deaf to SIGINT and SIGTERM."""
    out = tmp_path / "out"
    result = run_softgrain("run", "li-solid", "--out", out, "--quiet",
                           "--set", f'material.surface_energy_J_m2={{"111" = {energy}}}', timeout=90)
    assert result is not None, "still running after 90 s: sub-stepping is not bounded"
    line = assert_one_line_error(*result, "(111)", "κ", "L", "numerics.")
    assert "sub-step" in line
    assert not out.exists()


def test_a_projected_run_time_beyond_the_bound_is_refused(tmp_path):
    """10⁶ cells for 4·10⁷ steps: centuries of computing, refused with the projection."""
    out = tmp_path / "out"
    result = run_softgrain("run", "li-solid", "--out", out, "--quiet", "--set", "grid.nx=1000",
                           "--set", "grid.ny=1000", "--end-time", "400000", timeout=90)
    assert result is not None, "still running after 90 s: the projected run time is not checked"
    line = assert_one_line_error(*result, "numerics.")
    assert "projected" in line
    assert not out.exists()


def test_the_projection_of_a_jax_run_counts_every_order_parameter():
    """The JAX backend is dense: its projection is the dense kernel's, whatever numerics.kernel."""
    changes = {"run.end_time_s": 8000.0}   # paper grid: ≈ 30 h dense, ≈ 0.2 h sparse
    dense = load_config("li-solid", {**changes, "numerics.kernel": "dense"})
    jax_run = load_config("li-solid", {**changes, "numerics.backend": "jax"})
    sparse = load_config("li-solid", changes)
    assert setup.projected_run_hours(jax_run, 75, 3) == setup.projected_run_hours(dense, 75, 3)
    assert setup.projected_run_hours(jax_run, 75, 3) > 100 * setup.projected_run_hours(sparse, 75, 3)
    with pytest.raises(ConfigError, match="jax kernel"):
        setup.build(jax_run)


# One handler serves both signals; the SIGTERM variant repeats the path and is marked slow.
@pytest.mark.parametrize("stop_signal", [signal.SIGINT,
                                         pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_a_signal_stops_a_sub_stepped_run_promptly(tmp_path, stop_signal):
    """Δt = 2.5 s is ~500 sub-steps of the dense kernel on the full li-solid grid, ~30 s per step:
    a stop request must not wait for the step to end."""
    folder = tmp_path / "run"
    with Child("run", "li-solid", "--out", folder, "--quiet", "--set", 'numerics.kernel="dense"',
               "--set", "deposition.enabled=false", "--set", "run.dt_s=2.5", "--end-time", "50") as child:
        assert child.wait_for("sub-step", timeout=120), child.stderr[-3000:]
        time.sleep(3)   # well inside the time loop
        sent = time.monotonic()
        child.send(stop_signal)
        result = child.finish(timeout=180)
        waited = time.monotonic() - sent
    assert result is not None, "did not stop within 180 s"
    code, _, err = result
    assert code == 130, err[-3000:]
    assert waited < 15, f"took {waited:.0f} s to stop after {signal.Signals(stop_signal).name}"
    assert "softgrain resume" in err and "Traceback" not in err


# --- 3. overflowing mapped constants ---------------------------------------------------------

@pytest.mark.parametrize("key, value", [
    ("mapping.kappa2", "1000.0"),   # κ = κ1·exp(1000·E_s/E0) overflows
    ("mapping.kappa1", "1e300"),    # κ1·exp(…) overflows
    ("mapping.L1", "1e308"),        # L finite, the stability rate L·(w f0'' + 8κ/h²) overflows
    ("landau.w", "1e308"),          # the local term of the same rate overflows
])
def test_overflowing_mapped_constants_are_a_one_line_error(tmp_path, monkeypatch, capsys, key, value):
    """Issue: ZeroDivisionError traceback in the sub-step count."""
    out = tmp_path / "out"
    result = invoke_main(monkeypatch, capsys, "run", "li-solid", "--out", str(out), "--quiet",
                         *TINY, "--end-time", "1", "--set", f"{key}={value}")
    assert_one_line_error(*result, key)
    assert not out.exists()


# --- 4. memory ------------------------------------------------------------------------------

def test_a_grid_too_large_for_memory_is_refused_with_the_estimate(tmp_path):
    """10¹⁰ cells (allowed by the schema). Issue: numpy allocation traceback."""
    out = tmp_path / "out"
    result = run_softgrain("run", "li-solid", "--out", out, "--quiet", "--set", "grid.nx=100000",
                           "--set", "grid.ny=100000", timeout=120)
    assert result is not None, "still running after 120 s"
    line = assert_one_line_error(*result, "GiB", "available")
    assert "grid.nx" in line and "grid.ny" in line
    assert not out.exists()


# --- 5. output folders -----------------------------------------------------------------------

def test_out_below_a_file_is_refused(tmp_path, monkeypatch, capsys):
    (tmp_path / "afile").write_text("not a folder")
    out = tmp_path / "afile" / "sub"
    result = invoke_main(monkeypatch, capsys, "run", "li-solid", "--out", str(out), "--quiet",
                         *TINY, "--end-time", "1")
    assert_one_line_error(*result, "--out", str(out))


def _uncreatable() -> Path:
    """A path whose folder cannot be created, even by root (procfs takes no new entries)."""
    if not Path("/proc/self").is_dir():
        pytest.skip("needs /proc")
    return Path("/proc/softgrain-test-out")


def test_run_out_where_no_folder_can_be_made_is_refused(tmp_path, monkeypatch, capsys):
    result = invoke_main(monkeypatch, capsys, "run", "li-solid", "--out", str(_uncreatable()),
                         "--quiet", *TINY, "--end-time", "1")
    assert_one_line_error(*result, "--out")


def test_sweep_out_where_no_store_can_be_made_is_refused(tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "s.toml"
    sweep.write_text('base = "li-liquid"\nseeds = 1\n' + TINY_SWEEP_CONFIG)
    result = invoke_main(monkeypatch, capsys, "sweep", str(sweep), "--out",
                         str(_uncreatable().with_suffix(".zarr")), "--workers", "1", "--quiet")
    assert_one_line_error(*result, "--out")


def test_phase_map_out_where_no_folder_can_be_made_is_refused(tmp_path, monkeypatch, capsys):
    result = invoke_main(monkeypatch, capsys, "phase-map", "--resolution", "2", "--seeds", "1",
                         "--workers", "1", "--quiet", "--out", str(_uncreatable()))
    assert_one_line_error(*result, "--out")


def _unwritable_folder(tmp_path: Path) -> Path:
    """An existing folder in which no file can be created (chmod for users; a read-only
    pseudo-filesystem for root, who ignores permissions)."""
    candidates = [tmp_path / "locked"]
    candidates[0].mkdir()
    candidates[0].chmod(0o555)
    candidates += [Path("/sys"), Path("/proc")]
    for folder in candidates:
        try:
            handle, name = tempfile.mkstemp(dir=folder)
        except OSError:
            return folder
        os.close(handle)
        os.unlink(name)
    pytest.skip("no folder refuses new files here")


def test_an_existing_unwritable_folder_is_refused_before_computing(tmp_path, monkeypatch, capsys):
    """Issue: the whole simulation ran before writing failed."""
    folder = _unwritable_folder(tmp_path)
    result = invoke_main(monkeypatch, capsys, "run", "li-solid", "--out", str(folder), "--overwrite",
                         "--quiet", *TINY, "--end-time", "2")
    assert_one_line_error(*result, "--out", str(folder))


# --- 6. one command per run folder -------------------------------------------------------------

def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


def test_two_resumes_of_one_folder_do_not_both_compute(tmp_path):
    """Issue: both computed and both wrote. The second must say who holds the folder."""
    folder = tmp_path / "run"
    # ~0.2 s per step (full li-solid grid, dense kernel, no front): a checkpoint every 5 steps.
    with Child("run", "li-solid", "--out", folder, "--quiet", "--set", 'numerics.kernel="dense"',
               "--set", "deposition.enabled=false", "--checkpoint-every", "0.05") as first:
        deadline = time.monotonic() + 180
        while not _files(folder, "checkpoint-*") and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.2)
        assert _files(folder, "checkpoint-*"), first.stderr[-3000:]
        first.send(signal.SIGINT)
        result = first.finish(timeout=120)
    assert result is not None and result[0] == 130, result

    resumes = [Child("resume", folder, "--quiet"), Child("resume", folder, "--quiet")]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and all(c.poll() is None for c in resumes):
            time.sleep(0.2)
        stopped = [c for c in resumes if c.poll() is not None]
        assert stopped, "both resumes were still computing after 90 s"
        refused = stopped[0]
        holder = resumes[1 - resumes.index(refused)]
        line = assert_one_line_error(*refused.finish(timeout=10), str(folder))
        assert f"pid {holder.pid}" in line and socket.gethostname() in line, line
        assert holder.poll() is None, holder.stderr[-3000:]   # the holder goes on computing
        holder.send(signal.SIGINT)
        code, _, err = holder.finish(timeout=120)
        assert code == 130, err[-3000:]
    finally:
        for child in resumes:
            child.kill()
