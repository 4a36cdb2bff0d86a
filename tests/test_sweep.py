"""The sweep engine: ensembles, the results store, resuming, failures, Dask schedulers, the CLI.

Every simulation here runs the dense NumPy kernel on a tiny grid (40 × 16, 10 nuclei, 10 s), so a
task takes well under a second; what is tested is the machinery, not the physics.
"""

from __future__ import annotations

import json
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
from softgrain.phasefield.solver import run as run_simulation
from softgrain import analysis, sweep

TINY = {"grid.nx": 40, "grid.ny": 16, "nucleation.count": 10, "run.end_time_s": 10.0,
        "run.snapshot_times_s": [10.0], "numerics.kernel": "dense"}

TINY_TOML = """
[config.grid]
nx = 40
ny = 16
[config.nucleation]
count = 10
[config.run]
end_time_s = 10.0
snapshot_times_s = [10.0]
[config.numerics]
kernel = "dense"
"""


def tiny_config(preset: str = "li-liquid"):
    return load_config(preset, TINY)


@pytest.fixture(scope="module")
def threaded_cluster():
    """A real distributed scheduler on 127.0.0.1 with in-process (threaded) workers."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1",
                      dashboard_address=None) as cluster:
        yield cluster


def test_ensemble_matches_single_runs_and_statistics(threaded_cluster):
    config = tiny_config()
    ds = sweep.run_ensemble(config, [3, 4, 5], scheduler=threaded_cluster.scheduler_address)
    assert ds["fraction"].dims == ("seed", "orientation")
    assert list(ds["orientation"].values) == ["001", "101", "111"]
    assert list(ds["seed"].values) == [3, 4, 5]
    assert (ds["status"] == sweep.TASK_OK).all()
    np.testing.assert_allclose(ds["fraction"].sum("orientation"), 1.0)
    # Each member is the run of its own seed: compare with a direct run of seed 4.
    direct = analysis.texture(run_simulation(config.updated({"run.seed": 4})))
    np.testing.assert_array_equal(ds["fraction"].sel(seed=4).values, direct["area_fraction"].values[-1])
    assert int(ds["grain_count"].sel(seed=4)) == int(direct["grain_count"].values[-1])
    stats = sweep.ensemble_statistics(ds)
    for orientation in ("001", "101", "111"):
        samples = ds["fraction"].sel(orientation=orientation).values
        assert stats[orientation]["mean"] == pytest.approx(samples.mean())
        low, high = stats[orientation]["ci95"]
        assert low <= samples.mean() <= high
        assert stats[orientation]["n"] == 3


def test_ensemble_on_default_local_cluster_with_store(tmp_path):
    config = tiny_config()
    store = tmp_path / "ens.zarr"
    ds = sweep.run_ensemble(config, 2, workers=2, store=store)
    assert list(ds["seed"].values) == [config.run.seed, config.run.seed + 1]
    assert (ds["status"] == sweep.TASK_OK).all()
    # Readable with plain xarray, with the same content.
    with xr.open_zarr(store) as plain:
        np.testing.assert_array_equal(plain["fraction"].values, ds["fraction"].values)
        assert plain.attrs["sweep_spec_hash"] == ds.attrs["sweep_spec_hash"]
