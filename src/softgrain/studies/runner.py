"""Running a sweep plan's tasks on Dask, and seed ensembles of one configuration.

Every (point, seed) of a :class:`~softgrain.studies.sweep.SweepPlan` is one Dask task
(:func:`execute_task`: one phase-field run reduced to the texture of its final snapshot); the
client writes each task's results into the store (:mod:`softgrain.studies.store`) as it finishes.

By default the tasks run on a :class:`distributed.LocalCluster` of worker *processes* with one
thread each (``--workers N``, default: all cores), so that each compiled kernel owns a core. To use
more machines, start a Dask scheduler and workers that have softgrain installed, and pass the
scheduler's address::

    # on the head node
    dask scheduler --port 8786
    # on every compute node (one single-threaded worker process per core)
    dask worker tcp://HEAD:8786 --nworkers auto --nthreads 1
    # anywhere that reaches the scheduler
    softgrain sweep sweep.toml --out results.zarr --scheduler tcp://HEAD:8786

On SLURM, ``dask-jobqueue`` starts the workers as batch jobs (``pip install dask-jobqueue``)::

    from dask_jobqueue import SLURMCluster
    cluster = SLURMCluster(cores=32, processes=32, memory="64GB", walltime="04:00:00")
    cluster.scale(jobs=4)
    print(cluster.scheduler_address)   # give this to --scheduler

The client (the ``softgrain sweep`` process) writes the store, so the store path only has to be
reachable from the client, not from the workers. Each task runs its kernel with one thread
unless the configuration sets ``numerics.threads``.

The JAX backend (``numerics.backend = "jax"``, ``--backend jax``)
    A Dask task is a *batch* of (point, seed) runs on one device (:func:`execute_batch`,
    :func:`softgrain.setup.simulate_batch`): runs that share grid, time step, end, snapshots and
    front are grouped, ``numerics.batch`` at a time (default: the pending runs spread over the
    workers, at most :data:`DEFAULT_MAX_BATCH`). Before anything runs, one worker reports its
    device and free memory, and the batch size is cut to what fits (or the run is refused when
    not even one run fits: :class:`~softgrain.phasefield.batched_jax.BatchTooLargeError`); each
    worker splits again against its own memory. The store, resume and failures stay per run: a
    run whose field turns non-finite is recorded as failed and the rest of its batch as ok; a
    batch that raises is retried (``retries``), then each of its runs is recorded as failed with
    the batch's error. Wall and CPU times of a batched run are the batch's divided by its runs.
    The local cluster of the JAX backend has one worker by default (one device); for several
    GPUs start one worker per GPU (README, "Throughput").
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from softgrain import analysis
from softgrain.config import SimulationConfig, validate_config
from softgrain.errors import ParameterError
from softgrain.output.files import check_writable, folder_lock
from softgrain.output.results import TASK_FAILED, TASK_OK, TASK_PENDING
from softgrain.phasefield.backends import load_batched_jax, require_jax
from softgrain.setup import build, simulate, simulate_batch
from softgrain.studies.store import MemorySink, ZarrSink, check_store, create_store, open_results, template_dataset
from softgrain.studies.sweep import DEFAULT_RETRIES, SweepPlan, load_sweep

logger = logging.getLogger(__name__)


def execute_task(config_json: str, keep_maps: bool = False) -> dict[str, Any]:
    """Run one phase-field simulation and reduce it to the sweep's per-task results.

    Runs on a Dask worker. The kernel gets one thread unless the configuration sets
    ``numerics.threads`` (the workers already fill the cores).

    Parameters
    ----------
    config_json : str
        :meth:`~softgrain.config.SimulationConfig.to_json` of the task's configuration.
    keep_maps : bool
        Also return the final orientation map.

    Returns
    -------
    dict
        ``fraction``, ``surface_fraction`` (3,), ``grain_count``, ``surface_grain_count``,
        ``surface_grain_width_um``, ``wall_time_s``, ``cpu_time_s``, ``finished_at_unix_s`` and, with
        ``keep_maps``, ``final_orientation`` (ny, nx) int8 and ``final_grain`` (ny, nx) int32.
    """
    config = validate_config(json.loads(config_json), source="sweep task")
    if config.numerics.threads is None:
        config = config.updated({"numerics.threads": 1})
    started, cpu_started = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        # Sub-stepping is reported per run by ``softgrain run``; in a sweep it would only flood
        # the worker logs. The result does not depend on it beyond the stability it buys.
        warnings.simplefilter("ignore")
        ds = simulate(config)
    result = analysis.final_snapshot_measures(ds, keep_maps)
    result.update(wall_time_s=time.perf_counter() - started,
                  cpu_time_s=time.process_time() - cpu_started, finished_at_unix_s=time.time())
    return result


DEFAULT_MAX_BATCH = 256
"""Largest default batch of the JAX backend (the issue's GPU measurements: per-run time stops
falling near 256 runs of the paper grid)."""


def execute_batch(config_jsons: Sequence[str], keep_maps: bool = False,
                  batch_size: int | None = None) -> list[tuple[int, Any]]:
    """Run several tasks as batches on this worker's JAX device (the JAX backend's Dask task).

    Parameters
    ----------
    config_jsons : sequence of str
        The tasks' configurations (:meth:`~softgrain.config.SimulationConfig.to_json`).
    keep_maps : bool
        Also return the final orientation maps.
    batch_size : int, optional
        Largest batch; the tasks are split further if they do not fit the device memory.

    Returns
    -------
    list of (status, result)
        Per task, in order: ``(TASK_OK, measures)`` as :func:`execute_task` returns them, or
        ``(TASK_FAILED, message)`` for a run whose field turned non-finite.
    """
    configs = [validate_config(json.loads(text), source="sweep task") for text in config_jsons]
    cpu_started = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # sub-stepping notes, as in execute_task
        outcomes = simulate_batch(configs, batch_size=batch_size)
    cpu_share = (time.process_time() - cpu_started) / max(1, len(configs))
    results: list[tuple[int, Any]] = []
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            results.append((TASK_FAILED, " ".join(f"{type(outcome).__name__}: {outcome}".split())))
            continue
        measures = analysis.final_snapshot_measures(outcome, keep_maps)
        measures.update(wall_time_s=float(outcome.attrs["wall_time_s"]), cpu_time_s=cpu_share,
                        finished_at_unix_s=time.time())
        results.append((TASK_OK, measures))
    return results


def jax_batch_plan(n_runs: int, n_grains: int, shape: tuple[int, int], dtype: str,
                   batch_size: int | None, sharing: int = 1) -> dict[str, Any]:
    """On a worker: its JAX device, free memory and the batch size that fits.

    ``sharing`` workers are assumed to share the memory (worker processes of one host on the
    CPU backend). Raises :class:`~softgrain.phasefield.batched_jax.BatchTooLargeError` when not
    even one run fits.
    """
    batched = load_batched_jax()
    info = batched.device_description()
    if info["platform"] == "cpu":
        info["available_bytes"] = int(info["available_bytes"]) // max(1, sharing)
    per_run = batched.bytes_per_run(n_grains, *shape, dtype=dtype)
    plan = batched.plan_batches(n_runs, per_run, batch_size=batch_size,
                                available=info["available_bytes"])
    info.update(bytes_per_run=per_run, batch=len(plan[0]))
    return info


def local_workers(backend: str, workers: int | None, scheduler: str | None) -> int | None:
    """Workers of the local cluster for ``backend``: as asked, else one for the JAX backend (one
    device: one worker; README, "Throughput"), else all cores. Checks that jax is installed
    before any cluster starts (the client itself never imports jax)."""
    if backend == "jax":
        require_jax()
        if workers is None and scheduler is None:
            return 1
    return workers


def default_workers() -> int:
    """Cores available to this process (the default number of local workers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A :class:`distributed.Client` on ``scheduler``, or on a new local cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``). Default: start a
        :class:`~distributed.LocalCluster` of single-threaded worker processes.
    workers : int, optional
        Worker processes of the local cluster (default: all cores). Not allowed with
        ``scheduler`` (its workers are started separately, e.g. with ``dask worker``).
    """
    # distributed takes about a second to import: only commands that start a cluster pay for it.
    from distributed import Client, LocalCluster

    if workers is not None and workers < 1:
        raise ParameterError("workers", f"must be at least 1, got {workers}")
    if scheduler is not None:
        if workers is not None:
            raise ParameterError(
                "workers", "applies to the local cluster only; with {scheduler} the workers are "
                "started separately (e.g. `dask worker ADDRESS --nthreads 1`)", related=["scheduler"])
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ParameterError("scheduler", f"{scheduler}: cannot connect ({exc})") from None
        try:
            yield client
        finally:
            client.close()
        return
    # One single-threaded process per core: each compiled kernel owns a core, and the GIL-bound
    # NumPy parts of different tasks do not contend. Worker logs below CRITICAL are silenced: a
    # task's failure comes back through its future (and into the store's 'error'), and a sweep
    # stopped by Ctrl-C/SIGTERM would otherwise print the heartbeat tracebacks of workers still
    # busy in a task while the scheduler shuts down.
    with LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as client:
        yield client


@dataclass
class SweepReport:
    """What one call of :func:`run_plan` did."""

    total: int
    skipped: int
    succeeded: int
    failed: int
    wall_time_s: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_plan(plan: SweepPlan, store: str | os.PathLike | None = None, *, workers: int | None = None,
             scheduler: str | None = None, client: Any = None, progress: bool = False,
             ) -> tuple[xr.Dataset, SweepReport]:
    """Run every pending task of ``plan`` on Dask; write each result as it finishes.

    Parameters
    ----------
    plan : SweepPlan
    store : path, optional
        Zarr store to create or resume (tasks with status ok are skipped). Without it the
        results are only returned.
    workers, scheduler :
        See :func:`dask_client`.
    client : distributed.Client, optional
        Use this client instead of creating one (``workers``/``scheduler`` are then ignored).
    progress : bool
        Show a progress bar over the tasks.

    Returns
    -------
    (xarray.Dataset, SweepReport)
        All results (including those of earlier, resumed runs) and the counts of this call.
    """
    started = time.perf_counter()
    jax_backend = plan.base.numerics.backend == "jax"
    if client is None:     # checks that jax is there before anything is written
        workers = local_workers(plan.base.numerics.backend, workers, scheduler)
    elif jax_backend:
        require_jax()
    with contextlib.ExitStack() as held:
        if store is not None:
            path = Path(store)
            check_writable(path, "store")   # before anything is computed or started
            if path.exists():
                check_store(plan, path)   # refuse a folder that is not this sweep's before locking it
            else:
                create_store(plan, path)
            # One writer per store: a second sweep resuming the same store at the same time would
            # run the same tasks twice and interleave its writes (refused at once, naming the holder).
            held.enter_context(folder_lock(path))
            status = check_store(plan, path)
            sink: ZarrSink | MemorySink = ZarrSink(path)
        else:
            status = np.full(plan.shape, TASK_PENDING, dtype=np.int8)
            sink = MemorySink(template_dataset(plan))
        pending = [(index, config) for index, config in plan.tasks() if status[index] != TASK_OK]
        report = SweepReport(total=plan.task_count, skipped=plan.task_count - len(pending),
                             succeeded=0, failed=0, wall_time_s=0.0)
        if pending:
            with (contextlib.nullcontext(client) if client is not None
                  else dask_client(scheduler, workers)) as active:
                if jax_backend:
                    _run_batches(active, plan, pending, sink, report, progress)
                else:
                    _run_tasks(active, plan, pending, sink, report, progress)
    report.wall_time_s = time.perf_counter() - started
    result = open_results(store) if store is not None else sink.ds  # type: ignore[union-attr]
    return result, report


def _run_tasks(client: Any, plan: SweepPlan, pending: list, sink, report: SweepReport,
               progress: bool) -> None:
    from distributed import as_completed  # imported late, as in dask_client

    token = plan.spec_hash()[:12]
    futures = {}
    for index, config in pending:
        future = client.submit(execute_task, config.to_json(), plan.keep_maps,
                               key=f"softgrain-task-{token}-{'-'.join(map(str, index))}",
                               retries=plan.retries, pure=False)
        futures[future] = index
    with tqdm(total=report.total, initial=report.skipped, unit="task", desc=plan.name,
              disable=not progress, leave=True) as bar:
        for future in as_completed(futures):
            index = futures.pop(future)
            if future.status == "finished":
                sink.record(index, future.result(), TASK_OK, "")
                report.succeeded += 1
            else:
                exc = future.exception()
                message = " ".join(f"{type(exc).__name__}: {exc}".split())
                sink.record(index, {"finished_at_unix_s": time.time()}, TASK_FAILED, message)
                report.failed += 1
            future.release()
            bar.update(1)
            bar.set_postfix(failed=report.failed, refresh=False)


def _batch_group(config: SimulationConfig) -> str:
    """Configurations with the same key run in one batch: everything the JAX batch shares
    (grid, time step and end, snapshots, front, nucleation layer, Landau α β γ, numerics)."""
    return json.dumps({"grid": config.grid.model_dump(mode="json"),
                       "run": {k: getattr(config.run, k)
                               for k in ("dt_s", "end_time_s", "snapshot_times_s", "substeps")},
                       "deposition": config.deposition.model_dump(mode="json"),
                       "nucleation": {"rows": config.nucleation.rows,
                                      "radius_cells": config.nucleation.radius_cells},
                       "landau": [config.landau.alpha, config.landau.beta, config.landau.gamma],
                       "numerics": config.numerics.model_dump(mode="json")}, sort_keys=True)


def _run_batches(client: Any, plan: SweepPlan, pending: list, sink, report: SweepReport,
                 progress: bool) -> None:
    """The JAX backend: pending tasks grouped into batches, one Dask task per batch."""
    from distributed import as_completed  # imported late, as in dask_client

    numerics = plan.base.numerics
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    requested = numerics.batch or min(DEFAULT_MAX_BATCH, -(-len(pending) // n_workers))
    grid = plan.base.grid
    n_grains = max(config.nucleation.count for _, config in pending)
    # One worker reports its device and memory; a batch that cannot fit is cut (or, when not
    # even one run fits, refused) here, before any run starts.
    info = client.submit(jax_batch_plan, len(pending), n_grains, (grid.ny, grid.nx),
                         numerics.dtype, requested, n_workers, pure=False).result()
    size = int(info["batch"])
    if size < requested:
        logger.warning("a batch of %d runs does not fit %s (%.1f GiB free): batches of %d",
                       requested, info["device"], info["available_bytes"] / 2**30, size)
    # A batch steps at its largest sub-step count (the others are masked), so runs are also
    # grouped by the sub-steps they start with: one set-up per sweep point (its first pending
    # seed) — seeds change them rarely, and a mixed batch is only slower, never wrong.
    substeps: dict[tuple, int] = {}
    groups: dict[tuple, list] = {}
    for index, config in pending:
        point = index[:-1]
        if point not in substeps:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                substeps[point] = build(config).substeps
        groups.setdefault((_batch_group(config), substeps[point]), []).append((index, config))
    token = plan.spec_hash()[:12]
    futures = {}
    for members in groups.values():
        for start in range(0, len(members), size):
            chunk = members[start:start + size]
            indices = [index for index, _ in chunk]
            future = client.submit(
                execute_batch, [config.to_json() for _, config in chunk], plan.keep_maps, size,
                key=f"softgrain-batch-{token}-{'-'.join(map(str, indices[0]))}-{len(chunk)}",
                retries=plan.retries, pure=False)
            futures[future] = indices
    with tqdm(total=report.total, initial=report.skipped, unit="run", desc=plan.name,
              disable=not progress, leave=True) as bar:
        for future in as_completed(futures):
            indices = futures.pop(future)
            if future.status == "finished":
                outcomes = future.result()
            else:
                exc = future.exception()
                message = " ".join(f"{type(exc).__name__}: {exc}".split())
                outcomes = [(TASK_FAILED, message)] * len(indices)
            for index, (status, value) in zip(indices, outcomes):
                if status == TASK_OK:
                    sink.record(index, value, TASK_OK, "")
                    report.succeeded += 1
                else:
                    sink.record(index, {"finished_at_unix_s": time.time()}, TASK_FAILED, value)
                    report.failed += 1
            future.release()
            bar.update(len(indices))
            bar.set_postfix(failed=report.failed, refresh=False)


def run_sweep(sweep_file: str | os.PathLike, store: str | os.PathLike, *, workers: int | None = None,
              scheduler: str | None = None, progress: bool = False, backend: str | None = None,
              batch: int | None = None) -> tuple[xr.Dataset, SweepReport]:
    """Run (or resume) the sweep of ``sweep_file`` into ``store``; see :func:`run_plan`.
    ``backend`` and ``batch`` override the sweep's ``numerics.backend`` and ``numerics.batch``."""
    plan = load_sweep(sweep_file).with_numerics(backend=backend, batch=batch)
    return run_plan(plan, store, workers=workers, scheduler=scheduler, progress=progress)


def run_ensemble(config: SimulationConfig, seeds: int | Sequence[int], *, workers: int | None = None,
                 scheduler: str | None = None, progress: bool = False,
                 store: str | os.PathLike | None = None, keep_maps: bool = False,
                 retries: int = DEFAULT_RETRIES, client: Any = None, backend: str | None = None,
                 batch: int | None = None) -> xr.Dataset:
    """Run one configuration over several nucleation seeds, in parallel on Dask.

    Parameters
    ----------
    config : SimulationConfig
        The point to run; only ``run.seed`` changes between members.
    seeds : int or sequence of int
        A count N (seeds ``config.run.seed`` … ``config.run.seed + N − 1``) or explicit seeds.
    workers : int, optional
        Local worker processes (default: all cores).
    scheduler : str, optional
        Address of an existing Dask scheduler instead of a local cluster.
    progress : bool
        Show a progress bar.
    store : path, optional
        Also write the results to this Zarr store (resumable, like a sweep).
    keep_maps : bool
        Keep the final orientation and grain maps of every member (``final_orientation``,
        ``final_grain``).
    retries : int
        Dask retries of a failing member before it is recorded as failed.
    client : distributed.Client, optional
        Reuse an existing client.
    backend, batch : optional
        Override ``numerics.backend`` ("numba" or "jax") and ``numerics.batch`` (runs per JAX
        batch) of ``config``.

    Returns
    -------
    xarray.Dataset
        ``fraction`` and ``surface_fraction`` (seed, orientation), ``grain_count``,
        ``surface_grain_count``, ``surface_grain_width_um``, ``status``, ``error``,
        ``wall_time_s`` (seed). Failed members have NaN fractions and status 2.

    Examples
    --------
    >>> from softgrain.analysis import ensemble_statistics
    >>> from softgrain.config import load_config
    >>> ds = run_ensemble(load_config("li-solid"), 8)          # doctest: +SKIP
    >>> ensemble_statistics(ds)["001"]["mean"]                  # doctest: +SKIP
    """
    plan = SweepPlan.build(config, (), seeds, keep_maps=keep_maps, retries=retries,
                           name=f"ensemble {config.name}").with_numerics(backend=backend, batch=batch)
    ds, _ = run_plan(plan, store, workers=workers, scheduler=scheduler, client=client,
                     progress=progress)
    return ds


__all__ = ["SweepReport", "dask_client", "default_workers", "execute_task", "run_ensemble", "run_plan",
           "run_sweep"]
