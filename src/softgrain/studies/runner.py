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
from softgrain.output.files import check_writable
from softgrain.output.results import TASK_FAILED, TASK_OK, TASK_PENDING
from softgrain.setup import simulate
from softgrain.studies.store import MemorySink, ZarrSink, check_store, create_store, open_results, template_dataset
from softgrain.studies.sweep import DEFAULT_RETRIES, SweepPlan, load_sweep


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
    if store is not None:
        path = Path(store)
        check_writable(path, "store")   # before anything is computed or started
        if path.exists():
            status = check_store(plan, path)
        else:
            create_store(plan, path)
            status = np.full(plan.shape, TASK_PENDING, dtype=np.int8)
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


def run_sweep(sweep_file: str | os.PathLike, store: str | os.PathLike, *, workers: int | None = None,
              scheduler: str | None = None, progress: bool = False) -> tuple[xr.Dataset, SweepReport]:
    """Run (or resume) the sweep of ``sweep_file`` into ``store``; see :func:`run_plan`."""
    return run_plan(load_sweep(sweep_file), store, workers=workers, scheduler=scheduler,
                    progress=progress)


def run_ensemble(config: SimulationConfig, seeds: int | Sequence[int], *, workers: int | None = None,
                 scheduler: str | None = None, progress: bool = False,
                 store: str | os.PathLike | None = None, keep_maps: bool = False,
                 retries: int = DEFAULT_RETRIES, client: Any = None) -> xr.Dataset:
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
                           name=f"ensemble {config.name}")
    ds, _ = run_plan(plan, store, workers=workers, scheduler=scheduler, client=client,
                     progress=progress)
    return ds


__all__ = ["SweepReport", "dask_client", "default_workers", "execute_task", "run_ensemble", "run_plan",
           "run_sweep"]
