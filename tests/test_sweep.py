"""The sweep engine: ensembles, the results store, resuming, failures, Dask schedulers, the CLI.

Every simulation here runs the dense NumPy kernel on a tiny grid (40 × 16, 10 nuclei, 10 s), so a
task takes well under a second; what is tested is the machinery, not the physics.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from softgrain.config import load_config
from softgrain.errors import ConfigError, UserInputError
from softgrain import analysis
from softgrain.output.files import FolderInUseError, folder_lock
from softgrain.output.results import TASK_FAILED, TASK_OK, TASK_PENDING
from softgrain.setup import material_inputs, simulate
from softgrain.studies import runner, sweep
from study_cases import TINY, TINY_TOML


def tiny_config(preset: str = "li-liquid"):
    return load_config(preset, TINY)


@pytest.fixture(scope="module")
def threaded_cluster():
    """A real distributed scheduler on 127.0.0.1 with in-process (threaded) workers."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1",
                      dashboard_address=":0") as cluster:
        yield cluster


def test_ensemble_matches_single_runs_and_statistics(threaded_cluster):
    config = tiny_config()
    ds = runner.run_ensemble(config, [3, 4, 5], scheduler=threaded_cluster.scheduler_address)
    assert ds["fraction"].dims == ("seed", "orientation")
    assert list(ds["orientation"].values) == ["001", "101", "111"]
    assert list(ds["seed"].values) == [3, 4, 5]
    assert (ds["status"] == TASK_OK).all()
    np.testing.assert_allclose(ds["fraction"].sum("orientation"), 1.0)
    # Each member is the run of its own seed: compare with a direct run of seed 4.
    direct = analysis.texture(simulate(config.updated({"run.seed": 4})))
    np.testing.assert_array_equal(ds["fraction"].sel(seed=4).values, direct["area_fraction"].values[-1])
    assert int(ds["grain_count"].sel(seed=4)) == int(direct["grain_count"].values[-1])
    stats = analysis.ensemble_statistics(ds)
    for orientation in ("001", "101", "111"):
        samples = ds["fraction"].sel(orientation=orientation).values
        assert stats[orientation]["mean"] == pytest.approx(samples.mean())
        low, high = stats[orientation]["ci95"]
        assert low <= samples.mean() <= high
        assert stats[orientation]["n"] == 3


def test_ensemble_on_default_local_cluster_with_store(tmp_path):
    config = tiny_config()
    store = tmp_path / "ens.zarr"
    ds = runner.run_ensemble(config, 2, workers=2, store=store)
    assert list(ds["seed"].values) == [config.run.seed, config.run.seed + 1]
    assert (ds["status"] == TASK_OK).all()
    # Readable with plain xarray, with the same content.
    with xr.open_zarr(store) as plain:
        np.testing.assert_array_equal(plain["fraction"].values, ds["fraction"].values)
        assert plain.attrs["sweep_spec_hash"] == ds.attrs["sweep_spec_hash"]


def write_sweep(folder: Path, body: str, name: str = "sweep.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body) + TINY_TOML, encoding="utf-8")
    return path


GRID_SWEEP = """
name = "tiny grid sweep"
base = "li-liquid"
seeds = 2
retries = 1

[[axes]]
name = "barrier_101_eV"
key = "material.diffusion_barrier_eV.101"
range = { start = 0.02, stop = 0.14, num = 3 }
units = "eV"

[[axes]]
key = "material.strain"
values = [0.0, -0.03]
"""


def test_sweep_file_is_validated_strictly(tmp_path):
    bad_key = write_sweep(tmp_path, GRID_SWEEP.replace("retries = 1", "retries = 1\nworkerz = 3"))
    with pytest.raises(ConfigError, match=r"workerz: unknown key"):
        sweep.load_sweep(bad_key)
    bad_axis = write_sweep(tmp_path, GRID_SWEEP.replace("units = \"eV\"", "unit = \"eV\""))
    with pytest.raises(ConfigError, match=r"axes\.0\.unit: unknown key"):
        sweep.load_sweep(bad_axis)
    both = write_sweep(tmp_path, GRID_SWEEP.replace("values = [0.0, -0.03]",
                                                    "values = [0.0]\nrange = { start = 0, stop = 1, num = 2 }"))
    with pytest.raises(ConfigError, match="exactly one of 'values' or 'range'"):
        sweep.load_sweep(both)
    # A value the configuration rejects is reported with its axis before anything runs.
    outside = write_sweep(tmp_path, GRID_SWEEP.replace("[0.0, -0.03]", "[0.0, -0.05]"))
    with pytest.raises(ConfigError, match=r"material_strain = -0.05"):
        sweep.load_sweep(outside)
    unknown_config_key = write_sweep(tmp_path, GRID_SWEEP.replace("material.strain", "material.strane"))
    with pytest.raises(ConfigError, match=r"material\.strane"):
        sweep.load_sweep(unknown_config_key)


def test_plan_axes_and_tasks(tmp_path):
    plan = sweep.load_sweep(write_sweep(tmp_path, GRID_SWEEP))
    assert [a.name for a in plan.axes] == ["barrier_101_eV", "material_strain"]
    assert plan.axes[0].values == pytest.approx((0.02, 0.08, 0.14))
    assert plan.shape == (3, 2, 2) and plan.task_count == 12
    tasks = dict(plan.tasks())
    config = tasks[(1, 1, 1)]
    assert material_inputs(config).barrier_eV["101"] == pytest.approx(0.08)
    assert config.material.strain == -0.03
    assert config.run.seed == plan.seeds[1] == plan.base.run.seed + 1
    assert config.grid.nx == 40 and config.numerics.kernel == "dense"
    # The spec hash changes with anything that changes results, not with cosmetic fields.
    renamed = sweep.load_sweep(write_sweep(tmp_path, GRID_SWEEP.replace("tiny grid sweep", "other")))
    assert renamed.spec_hash() == plan.spec_hash()
    more_seeds = sweep.load_sweep(write_sweep(tmp_path, GRID_SWEEP.replace("seeds = 2", "seeds = 3")))
    assert more_seeds.spec_hash() != plan.spec_hash()


def test_sweep_on_running_scheduler_records_failures(tmp_path, threaded_cluster):
    # dt = 5 s is far above the explicit-Euler limit and sub-stepping is refused, so that point
    # fails on the worker (StabilityError); the other point must still run.
    failing = write_sweep(tmp_path, """
        base = "li-liquid"
        seeds = 2
        retries = 1
        [[axes]]
        key = "run.dt_s"
        values = [0.01, 5.0]
        """ + "\n")
    text = failing.read_text().replace("[config.run]", "[config.run]\nsubsteps = \"refuse\"")
    failing.write_text(text)
    store = tmp_path / "failing.zarr"
    ds, report = runner.run_sweep(failing, store, scheduler=threaded_cluster.scheduler_address)
    assert report.succeeded == 2 and report.failed == 2
    ok = ds.sel(run_dt_s=0.01)
    bad = ds.sel(run_dt_s=5.0)
    assert (ok["status"] == TASK_OK).all() and (bad["status"] == TASK_FAILED).all()
    assert all("StabilityError" in str(e) and "run.dt_s" in str(e) for e in bad["error"].values)
    assert np.isnan(bad["fraction"].values).all()
    np.testing.assert_allclose(ok["fraction"].sum("orientation"), 1.0)
    # Re-running retries only the failed tasks (still failing), the finished ones are kept.
    before = ok["finished_at_unix_s"].values.copy()
    ds2, report2 = runner.run_sweep(failing, store, scheduler=threaded_cluster.scheduler_address)
    assert (report2.skipped, report2.failed, report2.succeeded) == (2, 2, 0)
    np.testing.assert_array_equal(ds2.sel(run_dt_s=0.01)["finished_at_unix_s"].values, before)


FLAKY_CALLS: list[str] = []
REAL_EXECUTE_TASK = runner.execute_task


def flaky_task(config_json: str, keep_maps: bool = False):
    """Fails the first attempt of every task, then runs it (to see Dask's retries at work)."""
    FLAKY_CALLS.append(config_json)
    if FLAKY_CALLS.count(config_json) == 1:
        raise OSError("transient failure (test)")
    return REAL_EXECUTE_TASK(config_json, keep_maps)


def test_failed_attempts_are_retried(monkeypatch, threaded_cluster):
    FLAKY_CALLS.clear()
    monkeypatch.setattr(runner, "execute_task", flaky_task)
    ds = runner.run_ensemble(tiny_config(), 2, retries=1, scheduler=threaded_cluster.scheduler_address)
    assert (ds["status"] == TASK_OK).all()
    assert len(FLAKY_CALLS) == 4  # two members, each failed once and succeeded once


def test_refuses_store_of_another_sweep(tmp_path, threaded_cluster):
    store = tmp_path / "ens.zarr"
    runner.run_ensemble(tiny_config(), [1], store=store, scheduler=threaded_cluster.scheduler_address)
    with pytest.raises(UserInputError, match="different sweep definition"):
        runner.run_ensemble(tiny_config(), [2], store=store, scheduler=threaded_cluster.scheduler_address)
    with pytest.raises(UserInputError, match="not a readable sweep store"):
        (tmp_path / "other").mkdir()
        runner.run_ensemble(tiny_config(), [1], store=tmp_path / "other",
                           scheduler=threaded_cluster.scheduler_address)


def test_cli_bad_sweep_file_exits_2(tmp_path):
    bad = write_sweep(tmp_path, GRID_SWEEP.replace("seeds = 2", "seeds = 0"))
    done = subprocess.run([sys.executable, "-m", "softgrain", "sweep", str(bad), "--out",
                           str(tmp_path / "s.zarr")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "seeds" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s.zarr").exists()


def _comparable(ds: xr.Dataset) -> xr.Dataset:
    """The scientific content of a store (without run times and creation time)."""
    return ds.drop_vars(["wall_time_s", "cpu_time_s", "finished_at_unix_s"]).assign_attrs(created_utc="")


def test_killed_sweep_resumes_without_recomputing(tmp_path, threaded_cluster):
    """Kill the `softgrain sweep` client part-way, run it again, compare with an uninterrupted sweep."""
    spec = write_sweep(tmp_path, GRID_SWEEP.replace("num = 3", "num = 4").replace(
        "end_time_s = 10.0", "end_time_s = 20.0"))
    store = tmp_path / "killed.zarr"
    command = [sys.executable, "-m", "softgrain", "sweep", str(spec), "--out", str(store),
               "--scheduler", threaded_cluster.scheduler_address, "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    done_before_kill = 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if (store / "zarr.json").exists():
                with xr.open_zarr(store) as partial:
                    done_before_kill = int((partial["status"] == TASK_OK).sum())
                if done_before_kill >= 3:
                    break
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()

    with xr.open_zarr(store) as killed:  # still a readable store
        killed = killed.load()
    finished = killed["status"].values == TASK_OK
    assert 3 <= finished.sum() < finished.size, "the kill must land part-way through the sweep"
    assert set(np.unique(killed["status"].values)) <= {TASK_PENDING, TASK_OK}

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{int(finished.sum())} already in the store" in resumed.stderr
    with xr.open_zarr(store) as final:
        final = final.load()
    assert (final["status"] == TASK_OK).all()
    # No finished task ran again: its completion time is unchanged.
    np.testing.assert_array_equal(final["finished_at_unix_s"].values[finished],
                                  killed["finished_at_unix_s"].values[finished])
    assert (final["finished_at_unix_s"].values[~finished] >
            np.nanmax(killed["finished_at_unix_s"].values)).all()

    reference, _ = runner.run_sweep(spec, tmp_path / "uninterrupted.zarr",
                                   scheduler=threaded_cluster.scheduler_address)
    xr.testing.assert_identical(_comparable(final), _comparable(reference))


def test_keep_maps_stores_final_orientation_maps(threaded_cluster):
    ds = runner.run_ensemble(tiny_config(), [7, 8], keep_maps=True,
                            scheduler=threaded_cluster.scheduler_address)
    maps = ds["final_orientation"]
    assert maps.dims == ("seed", "y", "x") and maps.shape == (2, 16, 40)
    for seed in (7, 8):
        omap = maps.sel(seed=seed).values
        counts = np.bincount(omap[omap >= 0], minlength=3)
        np.testing.assert_allclose(counts / counts.sum(), ds["fraction"].sel(seed=seed).values)
    # The grain map marks the same cells, and each grain carries one orientation.
    grains = ds["final_grain"]
    assert grains.dims == ("seed", "y", "x") and grains.dtype == np.int32
    for seed in (7, 8):
        gmap, omap = grains.sel(seed=seed).values, maps.sel(seed=seed).values
        np.testing.assert_array_equal(gmap >= 0, omap >= 0)
        for grain in np.unique(gmap[gmap >= 0]):
            assert np.unique(omap[gmap == grain]).size == 1


def test_a_store_in_use_is_refused_and_left_as_it_was(tmp_path, threaded_cluster):
    """A second writer on the same store (another sweep resuming it at the same time) is refused at
    once, naming the holder, and the store is unchanged; once the lock is free, it resumes."""
    config = tiny_config()
    store = tmp_path / "ens.zarr"
    runner.run_ensemble(config, 2, scheduler=threaded_cluster.scheduler_address, store=store)
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    with folder_lock(store):
        with pytest.raises(FolderInUseError, match="in use by"):
            runner.run_ensemble(config, 2, scheduler=threaded_cluster.scheduler_address, store=store)
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before
    resumed = runner.run_ensemble(config, 2, scheduler=threaded_cluster.scheduler_address, store=store)
    assert (resumed["status"] == TASK_OK).all()
