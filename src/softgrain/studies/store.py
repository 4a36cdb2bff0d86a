"""The results store of a sweep: one Zarr v3 folder, written task by task, resumable.

One Zarr v3 store (a folder), readable with plain xarray (``xarray.open_zarr(path)``, no
softgrain needed). Dimensions: one per axis (coordinate = the axis values, attribute
``config_key``), ``seed`` (coordinate = the nucleation seeds), ``orientation`` ("001", "101",
"111"), and ``y``/``x`` for the optional maps. Variables:

- ``fraction`` (…, seed, orientation): area fraction of each orientation in the final snapshot;
- ``surface_fraction`` (…, seed, orientation): fraction in the top fully deposited row;
- ``grain_count``, ``surface_grain_count`` (…, seed): grains present in the final snapshot and
  at its top surface (−1 = not computed);
- ``surface_grain_width_um`` (…, seed): mean width of the surface grains (µm);
- ``status`` (…, seed): 0 pending, 1 ok, 2 failed; ``error`` (…, seed): the failure message;
- ``wall_time_s``, ``cpu_time_s``, ``finished_at_unix_s`` (…, seed): wall and CPU time and
  completion time of each task;
- ``final_orientation`` (…, seed, y, x), only with ``keep_maps``: orientation index per cell
  (−1 = none); ``final_grain`` (…, seed, y, x), also only with ``keep_maps``: grain index per cell
  (−1 = none; stores made before it existed lack it).

The store is created complete (every value pending) before the first task runs, in a temporary
folder that is renamed into place. Each task owns one chunk of every variable; the client writes
a task's results as soon as it finishes (Zarr writes every chunk to a temporary file and renames
it), the ``status`` chunk last. A killed sweep therefore keeps every finished task and leaves a
readable store; running the same command again skips the tasks whose status is ``ok`` and runs
the pending and failed ones. The store's ``sweep_spec_hash`` attribute (SHA-256 of the resolved
base configuration, the axes, the expanded per-point settings, the seeds and the outputs) must
match, so results of different sweep definitions are never mixed.

Variables, dimensions and units are those of :func:`softgrain.output.results.sweep_dataset`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import xarray as xr

from softgrain import __version__
from softgrain.errors import ParameterError
from softgrain.output.results import STATUS_MEANINGS, sweep_dataset
from softgrain.studies.sweep import SweepPlan, plain_value


def template_dataset(plan: SweepPlan) -> xr.Dataset:
    """The full results dataset of ``plan`` with every task pending."""
    axes = [(axis.name, [plain_value(v) for v in axis.values],
             {"config_key": axis.key, "units": axis.units, "long_name": axis.description or axis.key})
            for axis in plan.axes]
    grid = plan.base.grid
    return sweep_dataset(axes, plan.seeds,
                         maps_grid=(grid.ny, grid.nx, grid.spacing_um) if plan.keep_maps else None,
                         attrs={
                             "title": f"softgrain sweep: {plan.name}",
                             "description": plan.description,
                             "sweep_name": plan.name,
                             "sweep_spec_hash": plan.spec_hash(),
                             "sweep_spec_json": json.dumps(plan.spec(), sort_keys=True),
                             "base_config_json": plan.base.to_json(),
                             "axes": json.dumps([{"name": a.name, "key": a.key} for a in plan.axes]),
                             "status_meanings": STATUS_MEANINGS,
                             "softgrain_version": __version__,
                             "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                         })


def _encoding(ds: xr.Dataset, n_index_dims: int) -> dict[str, dict[str, Any]]:
    # One chunk per task: a task's results land in their own chunk files, so writing them never
    # rewrites (or risks) another task's data.
    encoding = {}
    for name, var in ds.data_vars.items():
        chunks = (1,) * n_index_dims + tuple(var.shape[n_index_dims:])
        encoding[name] = {"chunks": chunks}
        if var.dtype.kind in "iO":
            # No _FillValue: xarray would otherwise turn integers into floats with NaN on reading.
            encoding[name]["_FillValue"] = None
    return encoding


def create_store(plan: SweepPlan, path: str | os.PathLike) -> Path:
    """Create the results store of ``plan`` at ``path`` (every task pending), atomically.

    The store is written into a temporary folder beside ``path`` and renamed into place, so a
    crash during creation never leaves a half-made store.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        store = tmp / "store.zarr"
        ds = template_dataset(plan)
        with warnings.catch_warnings():
            # Consolidated metadata is a zarr-python extension of the v3 format; the metadata
            # never changes after creation, and consolidating it lets plain
            # ``xarray.open_zarr(path)`` open the store without a fallback warning.
            warnings.filterwarnings("ignore", message="Consolidated metadata")
            ds.to_zarr(store, mode="w", zarr_format=3, consolidated=True,
                       encoding=_encoding(ds, len(plan.shape)))
        os.rename(store, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def open_results(path: str | os.PathLike) -> xr.Dataset:
    """Load a sweep store into memory (plain xarray: ``xr.open_zarr(path).load()``)."""
    with xr.open_zarr(path) as ds:
        return ds.load()


def check_store(plan: SweepPlan, path: Path) -> np.ndarray:
    """Status array of an existing store of ``plan``; refuse a store of another sweep."""
    try:
        with xr.open_zarr(path) as ds:
            found = ds.attrs.get("sweep_spec_hash")
            status = ds["status"].values if "status" in ds else None
    except Exception as exc:  # any reader failure means: this is not a store we can resume
        raise ParameterError("store", f"{path}: exists but is not a readable sweep store ({exc})") from None
    if found is None or status is None:
        raise ParameterError("store", f"{path}: exists but is not a softgrain sweep store")
    expected = plan.spec_hash()
    if found != expected:
        raise ParameterError(
            "store", f"{path}: store was made by a different sweep definition (spec hash "
            f"{found[:12]}…, this sweep {expected[:12]}…); choose another {{store}} or delete it",
            related=["store"])
    if status.shape != plan.shape:
        raise ParameterError("store", f"{path}: store shape {status.shape} differs from the sweep's {plan.shape}")
    return status


class ZarrSink:
    """Writes task results into their chunks of an existing store, status last."""

    def __init__(self, path: Path):
        # zarr-python takes about a second to import; only commands that write a store need it.
        import zarr

        self.group = zarr.open_group(str(path), mode="r+", zarr_format=3)
        self.arrays = {name: self.group[name] for name in self.group.array_keys()}

    def record(self, index: tuple[int, ...], result: Mapping[str, Any], status: int, error: str) -> None:
        for name, value in result.items():
            if name in self.arrays:
                self.arrays[name][index] = value
        self.arrays["error"][index] = error
        self.arrays["status"][index] = status


class MemorySink:
    """Fills an in-memory copy of the store's dataset (ensembles without a store)."""

    def __init__(self, ds: xr.Dataset):
        self.ds = ds

    def record(self, index: tuple[int, ...], result: Mapping[str, Any], status: int, error: str) -> None:
        for name, value in result.items():
            if name in self.ds:
                self.ds[name].values[index] = value
        self.ds["error"].values[index] = error
        self.ds["status"].values[index] = status


__all__ = ["MemorySink", "ZarrSink", "check_store", "create_store", "open_results", "template_dataset"]
