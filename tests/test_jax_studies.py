"""The JAX backend in the studies and the command line (issue 12, items 1 and 3).

Requirements: an ensemble through ``--backend jax --batch 4`` equals the numba/dense results
(labels identical, fractions equal) — runs with different sub-step counts and grain counts in one
batch included; a sweep with the JAX backend writes the same store as the numba one; batches are
split to fit the device memory, or refused before anything runs; ``softgrain run --backend jax``
writes the same outputs as the dense kernel and resumes bit-identically; without jax,
``--backend jax`` is a one-line exit-2 error saying how to install it. Tiny grids (40 × 16, 10 s)
on in-process Dask workers, so that the module runs in seconds.
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

from cli_helpers import invoke_main
from softgrain.config import load_config
from softgrain.errors import BackendUnavailableError
from softgrain.output.results import TASK_OK
from softgrain.phasefield.backends import load_batched_jax
from softgrain.phasefield.solver import Simulation
from softgrain.setup import build, simulate, simulate_batch
from softgrain.studies import runner
from study_cases import TINY, config_tables

jax = pytest.importorskip("jax", reason="the JAX backend is optional: pip install -e '.[jax]'")

SWEEP_TOML = """
name = "tiny-jax"
base = "li-solid"
seeds = 2
""" + config_tables(TINY) + """[[axes]]
name = "anisotropy"
key = "material.surface_energy_anisotropy_J_m2"
values = [0.003, 0.128]
[outputs]
keep_maps = true
"""


@pytest.fixture(scope="module")
def cluster():
    """A real scheduler with two in-process workers (jax is imported once per process)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=":0") as local:
        yield local


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def test_ensemble_batch_of_four_equals_dense(cluster):
    config = load_config("li-liquid", TINY)
    numba = runner.run_ensemble(config, 6, scheduler=cluster.scheduler_address, keep_maps=True)
    batched = runner.run_ensemble(config, 6, scheduler=cluster.scheduler_address, keep_maps=True,
                                  backend="jax", batch=4)         # batches of 4 and 2
    assert (batched["status"] == TASK_OK).all()
    assert np.array_equal(batched["final_orientation"].values, numba["final_orientation"].values)
    for name in ("fraction", "surface_fraction", "grain_count", "surface_grain_count",
                 "surface_grain_width_um"):
        assert np.array_equal(batched[name].values, numba[name].values, equal_nan=True), name
    assert 0 < batched["fraction"].sel(orientation="101").mean() < 1   # a mixed, non-trivial case


def test_runs_with_different_substeps_and_grain_counts_share_a_batch():
    """li-solid, li-liquid and a run with 7 grains in one batch — different sub-step counts,
    grain counts and open-front thicknesses: each is the dense run of its own configuration,
    fixed and adaptive sub-steps alike."""
    crossing = {**TINY, "deposition.crossing_time_s": 10.0}   # the front crosses all 16 rows
    configs = [load_config("li-solid", {**crossing, "run.seed": 1}),
               load_config("li-liquid", {**crossing, "run.seed": 2}),
               load_config("li-liquid", {**crossing, "run.seed": 5, "nucleation.count": 7})]
    inputs = [_quiet(build, c) for c in configs]
    assert len({i.substeps for i in inputs}) > 1
    # Each front opens once its deposit is W rows thick, W from its own grains' κ.
    assert len({i.open_front_from_rows for i in inputs if i.open_front_from_rows < 16}) > 1
    load_batched_jax()
    for mode in ("auto", "adaptive"):
        changed = [c.updated({"run.substeps": mode, "numerics.adaptive_every_steps": 50})
                   for c in configs]
        batched = _quiet(simulate_batch, changed)
        for config, ds in zip(changed, batched):
            reference = _quiet(simulate, config)
            assert np.array_equal(ds["grain"].values, reference["grain"].values)
            assert ds.attrs["kernel_steps"] == reference.attrs["kernel_steps"]
            assert np.isnan(ds["free_energy"].values).all()   # not computed in batches


def test_sweep_store_equals_numba_store(cluster, tmp_path):
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(SWEEP_TOML)
    numba, _ = runner.run_sweep(sweep_file, tmp_path / "numba.zarr", scheduler=cluster.scheduler_address)
    batched, report = runner.run_sweep(sweep_file, tmp_path / "jax.zarr",
                                       scheduler=cluster.scheduler_address, backend="jax", batch=3)
    assert report.succeeded == 4 and report.failed == 0
    stored = xr.open_zarr(tmp_path / "jax.zarr").load()
    for name in ("fraction", "surface_fraction", "grain_count", "surface_grain_count",
                 "surface_grain_width_um", "status", "error", "final_orientation"):
        assert np.array_equal(stored[name].values, numba[name].values, equal_nan=True), name
    assert json.loads(stored.attrs["base_config_json"])["numerics"]["backend"] == "jax"
    # Resuming with another batch size is the same sweep: nothing left to run.
    _, again = runner.run_sweep(sweep_file, tmp_path / "jax.zarr",
                                scheduler=cluster.scheduler_address, backend="jax", batch=2)
    assert again.skipped == 4 and again.succeeded == 0


def test_batches_are_split_to_fit_memory():
    batched = load_batched_jax()
    configs = [load_config("li-liquid", {**TINY, "run.seed": seed}) for seed in range(1, 6)]
    inputs = [_quiet(build, c) for c in configs]
    per_run = batched.bytes_per_run(10, 16, 40)
    whole = batched.run_batches(inputs)
    calls = []
    original = batched.run_batch

    def counting(runs, **kw):
        calls.append(len(runs))
        return original(runs, **kw)

    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(batched, "run_batch", counting)
        # Room for 2 runs at 80 %: a batch of 5 asked for becomes 2 + 2 + 1 ...
        split = batched.run_batches(inputs, batch_size=5, available=int(2.6 * per_run))
    finally:
        mp.undo()
    assert calls == [2, 2, 1]
    for a, b in zip(whole, split):
        assert all(np.array_equal(x.labels, y.labels) for x, y in zip(a.snapshots, b.snapshots))
    # ... or is refused before anything runs.
    with pytest.raises(batched.BatchTooLargeError, match="at most 2"):
        batched.run_batches(inputs, batch_size=5, available=int(2.6 * per_run), split=False)


def test_study_that_cannot_fit_is_refused_before_anything_runs(cluster, monkeypatch, tmp_path):
    batched = load_batched_jax()
    monkeypatch.setattr(batched, "available_memory", lambda device=None: 1000)
    config = load_config("li-liquid", TINY)
    store = tmp_path / "store.zarr"
    with pytest.raises(batched.BatchTooLargeError, match="one run needs"):
        runner.run_ensemble(config, 2, scheduler=cluster.scheduler_address, backend="jax",
                            store=store)
    assert (xr.open_zarr(store)["status"] == 0).all()     # created, nothing run


def test_run_command_with_jax_writes_the_dense_outputs(monkeypatch, capsys, tmp_path):
    args = ["li-solid", "--set", "grid.nx=40", "--set", "grid.ny=16", "--set",
            "nucleation.count=10", "--end-time", "10", "--quiet"]
    code, _, err = invoke_main(monkeypatch, capsys, "run", *args, "--backend", "jax",
                               "--out", str(tmp_path / "jax"))
    assert code == 0, err
    code, _, err = invoke_main(monkeypatch, capsys, "run", *args, "--set", 'numerics.kernel="dense"',
                               "--out", str(tmp_path / "dense"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "jax").iterdir()) == sorted(
        p.name for p in (tmp_path / "dense").iterdir())
    jax_ds = xr.open_dataset(tmp_path / "jax" / "result.nc")
    dense_ds = xr.open_dataset(tmp_path / "dense" / "result.nc")
    assert np.array_equal(jax_ds["grain"].values, dense_ds["grain"].values)
    assert np.allclose(jax_ds["free_energy"].values, dense_ds["free_energy"].values, atol=1e-10)
    assert jax_ds.attrs["kernel"] == "jax"
    summaries = [(tmp_path / k / "summary.json").read_text() for k in ("jax", "dense")]
    assert summaries[0] == summaries[1] and "fractions" in summaries[0]


@pytest.mark.parametrize("substeps", ["auto", "adaptive"])
def test_jax_run_resumes_bit_identically(substeps):
    # A front open from the start: grains vanish within the 10 s, so compaction and adaptive
    # sub-steps act (with the default front, closed on 16 rows until W rows, none vanishes).
    config = load_config("li-solid", {**TINY, "numerics.backend": "jax", "run.substeps": substeps,
                                      "numerics.adaptive_every_steps": 50,
                                      "numerics.compaction_every_steps": 40,
                                      "deposition.open_front_from": "start",
                                      "run.snapshot_times_s": [3.0, 10.0]})
    whole = Simulation(_quiet(build, config))
    whole.run()
    part = Simulation(_quiet(build, config))
    part.advance_to(437)
    state = {k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in part.state_dict().items()}
    resumed = Simulation.from_state(_quiet(build, config), state)
    resumed.run()
    assert np.array_equal(resumed.field.to_dense(), whole.field.to_dense())
    assert [s.step for s in resumed.snapshots] == [s.step for s in whole.snapshots]
    assert resumed.kernel_steps == whole.kernel_steps
    assert whole.field.n_slots < whole.n_grains          # compaction ran


def _without_jax(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)       # `import jax` now raises ImportError


def test_missing_jax_is_a_one_line_error(monkeypatch, capsys, tmp_path):
    _without_jax(monkeypatch)
    with pytest.raises(BackendUnavailableError, match=r'pip install -e "\.\[jax\]"'):
        load_batched_jax()
    out = tmp_path / "run"
    code, stdout, err = invoke_main(monkeypatch, capsys, "run", "li-solid", "--backend", "jax",
                                    "--out", str(out))
    assert code == 2 and not out.exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "needs jax" in lines[0]
    assert 'pip install -e ".[jax]"' in lines[0] and "jax[cuda12]" in lines[0]
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(SWEEP_TOML)
    store = tmp_path / "store.zarr"
    code, _, err = invoke_main(monkeypatch, capsys, "sweep", str(sweep_file), "--out", str(store),
                               "--backend", "jax", "--quiet")
    assert code == 2 and not store.exists()
    assert 'pip install -e ".[jax]"' in err.strip().splitlines()[-1]


def test_bad_backend_options_are_refused(monkeypatch, capsys, tmp_path):
    code, _, err = invoke_main(monkeypatch, capsys, "run", "li-solid", "--backend", "cuda",
                               "--out", str(tmp_path / "x"))
    assert code == 2 and "numerics.backend" in err and "'jax'" in err
    code, _, err = invoke_main(monkeypatch, capsys, "run", "li-solid", "--set",
                               'numerics.dtype="float32"', "--out", str(tmp_path / "y"))
    assert code == 2 and "numerics.dtype" in err and "backend" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
