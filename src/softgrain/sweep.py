"""Parameter sweeps and seed ensembles of the phase-field model as Dask tasks; the results store.

A sweep runs one phase-field simulation per (point, seed): a *point* is one combination of the
values of the sweep's axes (any configuration key in dotted form, e.g.
``material.diffusion_barrier_eV.101``, or a derived key such as
``material.surface_energy_anisotropy_J_m2``, see :data:`DERIVED_KEYS`), a *seed* is the
nucleation seed (``run.seed``). Every (point, seed) is one Dask task.

Sweep file (``softgrain sweep SWEEP.toml --out STORE``)::

    name = "li-barrier-strain"
    base = "li-solid"              # preset name, or a config TOML path relative to this file
    seeds = 3                      # 3 seeds: run.seed, run.seed + 1, run.seed + 2 (or a list)
    retries = 2                    # Dask retries of a failing task before it is recorded as failed

    [config.grid]                  # optional changes to the base configuration (deep-merged)
    nx = 100

    [[axes]]
    name = "barrier_101_eV"        # dimension name in the store (default: from the key)
    key = "material.diffusion_barrier_eV.101"
    range = { start = 0.02, stop = 0.14, num = 4 }   # inclusive, like numpy.linspace
    units = "eV"

    [[axes]]
    key = "material.strain"
    values = [0.0, -0.015, -0.03]

    [outputs]
    keep_maps = false              # true: also store the final orientation map of every task

Results store
-------------
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
  (−1 = none).

The store is created complete (every value pending) before the first task runs, in a temporary
folder that is renamed into place. Each task owns one chunk of every variable; the client writes
a task's results as soon as it finishes (Zarr writes every chunk to a temporary file and renames
it), the ``status`` chunk last. A killed sweep therefore keeps every finished task and leaves a
readable store; running the same command again skips the tasks whose status is ``ok`` and runs
the pending and failed ones. The store's ``sweep_spec_hash`` attribute (SHA-256 of the resolved
base configuration, the axes, the expanded per-point settings, the seeds and the outputs) must
match, so results of different sweep definitions are never mixed.

Running on a cluster
--------------------
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
import datetime as _dt
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import tempfile
import time
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import xarray as xr
from pydantic import (BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr,
                      ValidationError, field_validator, model_validator)

import softgrain
from softgrain.config import SimulationConfig, _deep_merge, load_config, validate_config
from softgrain.errors import ConfigError, UserInputError
from softgrain.materials.metals import ORIENTATIONS

TASK_PENDING, TASK_OK, TASK_FAILED = 0, 1, 2
"""Values of the store's ``status`` variable."""

STATUS_MEANINGS = "pending ok failed"

DEFAULT_RETRIES = 2
"""Dask retries of a failing task before it is recorded as failed."""

# Names the store uses for its own dimensions and variables; axes may not take them.
_RESERVED_NAMES = frozenset({
    "seed", "orientation", "y", "x", "fraction", "surface_fraction", "grain_count",
    "surface_grain_count", "surface_grain_width_um", "status", "error", "wall_time_s",
    "cpu_time_s", "finished_at_unix_s", "final_orientation",
})

# Per-task variables: name → (fill value for "not computed", extra dimensions, attributes).
_SCALAR_VARIABLES: dict[str, tuple[Any, dict[str, str]]] = {
    "grain_count": (-1, {"long_name": "grains present in the final snapshot",
                         "description": "-1 = not computed"}),
    "surface_grain_count": (-1, {"long_name": "grains at the top surface of the final snapshot",
                                 "description": "-1 = not computed"}),
    "surface_grain_width_um": (np.nan, {"long_name": "mean width of the surface grains",
                                        "units": "um"}),
    "wall_time_s": (np.nan, {"long_name": "wall time of the simulation", "units": "s"}),
    "cpu_time_s": (np.nan, {"long_name": "CPU time of the simulation process", "units": "s",
                            "description": "less sensitive than wall time to other load on the node"}),
    "finished_at_unix_s": (np.nan, {"long_name": "time the task finished",
                                    "units": "s",
                                    "description": "seconds since 1970-01-01T00:00:00 UTC"}),
}


# --------------------------------------------------------------------------------------------
# The sweep file
# --------------------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RangeSpec(_Strict):
    """Evenly spaced values from ``start`` to ``stop`` inclusive (``numpy.linspace``)."""

    start: float
    stop: float
    num: int = Field(ge=1, le=10_000)

    def values(self) -> list[float]:
        return [float(v) for v in np.linspace(self.start, self.stop, self.num)]


AxisValue = StrictFloat | StrictInt | StrictBool | StrictStr


class AxisSpec(_Strict):
    """One sweep axis: a configuration key and the values it takes."""

    key: str = Field(min_length=1, description="dotted configuration key, or a derived key")
    name: str | None = Field(None, description="dimension name in the store (default: from key)")
    values: list[AxisValue] | None = Field(None, min_length=1)
    range: RangeSpec | None = None
    units: str = ""
    description: str = ""

    @model_validator(mode="after")
    def _one_source_of_values(self) -> "AxisSpec":
        if (self.values is None) == (self.range is None):
            raise ValueError(f"axis {self.key!r}: give exactly one of 'values' or 'range'")
        values = self.axis_values()
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"axis {self.key!r}: repeated values {values}")
        return self

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None:
            _check_dimension_name(value)
        return value

    def axis_values(self) -> list[Any]:
        return self.range.values() if self.range is not None else list(self.values or [])

    def dimension(self) -> str:
        if self.name is not None:
            return self.name
        name = re.sub(r"\W", "_", self.key.replace(".", "_"))
        return _check_dimension_name(name if not name[0].isdigit() else f"axis_{name}")


def _check_dimension_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"axis name {name!r} must be an identifier (letters, digits, _)")
    if name in _RESERVED_NAMES:
        raise ValueError(f"axis name {name!r} is used by the store; choose another")
    return name


class OutputsSpec(_Strict):
    keep_maps: bool = Field(False, description="store the final orientation map of every task")


class SweepSpec(_Strict):
    """A sweep file (see the module documentation for an example)."""

    name: str = "sweep"
    description: str = ""
    base: str = Field(min_length=1, description="preset name or configuration TOML path")
    config: dict[str, Any] = Field(default_factory=dict, description=(
        "changes to the base configuration, as in a configuration file's sections"))
    axes: list[AxisSpec] = Field(default_factory=list)
    seeds: StrictInt | list[StrictInt] = Field(1, description=(
        "number of seeds (run.seed, run.seed + 1, …) or the list of seeds"))
    retries: int = Field(DEFAULT_RETRIES, ge=0, le=20)
    outputs: OutputsSpec = Field(default_factory=OutputsSpec)

    @field_validator("seeds")
    @classmethod
    def _valid_seeds(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, int):
            if value < 1:
                raise ValueError(f"seeds must be at least 1, got {value}")
        else:
            if not value:
                raise ValueError("seeds: empty list")
            if len(set(value)) != len(value) or min(value) < 0:
                raise ValueError(f"seeds must be distinct non-negative integers, got {value}")
        return value

    @model_validator(mode="after")
    def _distinct_axes(self) -> "SweepSpec":
        names = [a.dimension() for a in self.axes]
        keys = [a.key for a in self.axes]
        for label, items in (("name", names), ("key", keys)):
            repeated = sorted({n for n in items if items.count(n) > 1})
            if repeated:
                raise ValueError(f"axes: repeated {label} {repeated[0]!r}")
        return self


def parse_sweep(data: Mapping[str, Any], source: str = "<sweep>") -> SweepSpec:
    """Validate raw sweep-file data, raising :class:`ConfigError` naming the key."""
    try:
        return SweepSpec.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        if "input" in first and first["type"] != "extra_forbidden" and not isinstance(
                first["input"], Mapping):
            message = f"{message} (got {first['input']!r})"
        raise ConfigError(f"{source}: {key}: {message}") from None


def load_sweep(path: str | os.PathLike) -> "SweepPlan":
    """Read, validate and resolve a sweep file into a :class:`SweepPlan`."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read sweep file: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: malformed TOML: {exc}") from None
    spec = parse_sweep(data, str(file))
    base_source: str | Path = spec.base
    candidate = file.parent / spec.base
    if candidate.is_file():
        base_source = candidate
    base = load_config(base_source)
    if spec.config:
        base = validate_config(_deep_merge(base.model_dump(mode="python"), spec.config),
                               source=f"{file}: config")
    return SweepPlan.build(base, spec.axes, spec.seeds, keep_maps=spec.outputs.keep_maps,
                           retries=spec.retries, name=spec.name, description=spec.description)


# --------------------------------------------------------------------------------------------
# The resolved plan
# --------------------------------------------------------------------------------------------

DERIVED_KEYS: dict[str, str] = {
    # A = E_s(101) − E_s(001) along the strain path of the metal's surface-energy data; sets the
    # three per-orientation surface energies (see softgrain.phasemap.anisotropy_overrides).
    "material.surface_energy_anisotropy_J_m2": "softgrain.phasemap:anisotropy_overrides",
}
"""Axis keys that are not configuration keys: each names a function ``(base config, value) →
{dotted configuration key: value}`` that sets several configuration keys at once."""


def _derived_function(key: str) -> Callable[[SimulationConfig, Any], dict[str, Any]]:
    import importlib

    module, _, function = DERIVED_KEYS[key].partition(":")
    return getattr(importlib.import_module(module), function)


@dataclass(frozen=True)
class Axis:
    """A resolved axis: store dimension, configuration key, values, metadata."""

    name: str
    key: str
    values: tuple[Any, ...]
    units: str = ""
    description: str = ""


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep runs: the base configuration, the axes, the seeds and the outputs.

    Build it with :meth:`SweepPlan.build` (validates every point's configuration) or
    :func:`load_sweep`.
    """

    base: SimulationConfig
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    point_configs: tuple[SimulationConfig, ...]
    point_overrides: tuple[dict[str, Any], ...]
    keep_maps: bool = False
    retries: int = DEFAULT_RETRIES
    name: str = "sweep"
    description: str = ""

    @classmethod
    def build(cls, base: SimulationConfig, axes: Sequence[AxisSpec | Axis], seeds: int | Sequence[int],
              *, keep_maps: bool = False, retries: int = DEFAULT_RETRIES, name: str = "sweep",
              description: str = "") -> "SweepPlan":
        """Resolve axes and seeds and validate the configuration of every point.

        Raises
        ------
        ConfigError
            Naming the axis and value whose configuration is invalid.
        """
        resolved = tuple(
            a if isinstance(a, Axis) else Axis(a.dimension(), a.key, tuple(a.axis_values()),
                                               a.units, a.description)
            for a in axes)
        seed_list = _seed_list(base, seeds)
        derived = {a.key: _derived_function(a.key) for a in resolved if a.key in DERIVED_KEYS}
        configs, overrides = [], []
        for combination in itertools.product(*(a.values for a in resolved)):
            changes: dict[str, Any] = {}
            for axis, value in zip(resolved, combination):
                if axis.key in derived:
                    changes.update(derived[axis.key](base, value))
                else:
                    changes[axis.key] = _plain(value)
            try:
                config = base.updated(changes)
                config.material.surface_energies()  # strain outside the data fails here, not mid-sweep
            except UserInputError as exc:
                point = ", ".join(f"{a.name} = {v!r}" for a, v in zip(resolved, combination))
                raise ConfigError(f"sweep point {point}: {exc}") from None
            configs.append(config)
            overrides.append(changes)
        return cls(base, resolved, seed_list, tuple(configs), tuple(overrides), keep_maps,
                   retries, name, description)

    @property
    def shape(self) -> tuple[int, ...]:
        """Sizes of the axis dimensions followed by the seed dimension."""
        return tuple(len(a.values) for a in self.axes) + (len(self.seeds),)

    @property
    def task_count(self) -> int:
        return int(np.prod(self.shape))

    def tasks(self) -> Iterator[tuple[tuple[int, ...], SimulationConfig]]:
        """Every (store index, configuration) pair; the index ends with the seed index."""
        point_shape = self.shape[:-1]
        for flat, config in enumerate(self.point_configs):
            point = tuple(int(i) for i in np.unravel_index(flat, point_shape)) if point_shape else ()
            for seed_index, seed in enumerate(self.seeds):
                yield point + (seed_index,), config.updated({"run.seed": seed})

    def spec(self) -> dict[str, Any]:
        """The canonical definition whose hash identifies the sweep's store."""
        return {
            "base_config": json.loads(self.base.to_json()),
            "axes": [{"name": a.name, "key": a.key, "values": [_plain(v) for v in a.values]}
                     for a in self.axes],
            "point_overrides": [{k: _plain(v) for k, v in sorted(o.items())}
                                for o in self.point_overrides],
            "seeds": list(self.seeds),
            "keep_maps": self.keep_maps,
        }

    def spec_hash(self) -> str:
        text = json.dumps(self.spec(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _seed_list(base: SimulationConfig, seeds: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(seeds, bool):
        raise UserInputError(f"seeds must be a count or a list of integers, got {seeds!r}")
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise UserInputError(f"seeds: need at least one seed, got {seeds}")
        return tuple(base.run.seed + k for k in range(int(seeds)))
    seed_list = tuple(int(s) for s in seeds)
    if not seed_list or len(set(seed_list)) != len(seed_list) or min(seed_list) < 0:
        raise UserInputError(f"seeds must be distinct non-negative integers, got {list(seeds)}")
    return seed_list


def _plain(value: Any) -> Any:
    """NumPy scalars → Python scalars (for JSON and pydantic's strict types)."""
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------------------------------
# One task
# --------------------------------------------------------------------------------------------

def execute_task(config_json: str, keep_maps: bool = False) -> dict[str, Any]:
    """Run one phase-field simulation and reduce it to the sweep's per-task results.

    Runs on a Dask worker. The kernel gets one thread unless the configuration sets
    ``numerics.threads`` (the workers already fill the cores).

    Parameters
    ----------
    config_json : str
        :meth:`SimulationConfig.to_json` of the task's configuration.
    keep_maps : bool
        Also return the final orientation map.

    Returns
    -------
    dict
        ``fraction``, ``surface_fraction`` (3,), ``grain_count``, ``surface_grain_count``,
        ``surface_grain_width_um``, ``wall_time_s``, ``cpu_time_s``, ``finished_at_unix_s`` and, with
        ``keep_maps``, ``final_orientation`` (ny, nx) int8.
    """
    from softgrain import analysis
    from softgrain.phasefield.solver import Simulation

    config = validate_config(json.loads(config_json), source="sweep task")
    if config.numerics.threads is None:
        config = config.updated({"numerics.threads": 1})
    started, cpu_started = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        # Sub-stepping is reported per run by ``softgrain run``; in a sweep it would only flood
        # the worker logs. The result does not depend on it beyond the stability it buys.
        warnings.simplefilter("ignore")
        ds = Simulation(config).run()
    final = ds.isel(time=[-1])
    tex = analysis.texture(final)
    orientation = np.array([ORIENTATIONS.index(o) for o in final["grain_orientation"].values])
    grain_map = final["grain"].values[0]
    surface = analysis.surface_row(grain_map)
    surface_fraction = (analysis.fractions_by_height(grain_map, orientation)[surface]
                        if surface is not None else np.full(len(ORIENTATIONS), np.nan))
    result = {
        "fraction": tex["area_fraction"].values[0].astype(float),
        "surface_fraction": np.asarray(surface_fraction, dtype=float),
        "grain_count": int(tex["grain_count"].values[0]),
        "surface_grain_count": int(tex["surface_grain_count"].values[0]),
        "surface_grain_width_um": float(tex["surface_grain_width_um"].values[0]),
        "wall_time_s": time.perf_counter() - started,
        "cpu_time_s": time.process_time() - cpu_started,
        "finished_at_unix_s": time.time(),
    }
    if keep_maps:
        result["final_orientation"] = analysis.orientation_map(grain_map, orientation).astype(np.int8)
    return result


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------

def template_dataset(plan: SweepPlan) -> xr.Dataset:
    """The full results dataset of ``plan`` with every task pending."""
    dims = tuple(a.name for a in plan.axes) + ("seed",)
    shape = plan.shape
    coords: dict[str, Any] = {}
    for axis in plan.axes:
        values = np.asarray([_plain(v) for v in axis.values])
        if values.dtype.kind == "U":
            values = values.astype(object)  # variable-length strings: the Zarr v3 string type
        coords[axis.name] = (axis.name, values, {
            "config_key": axis.key, "units": axis.units, "long_name": axis.description or axis.key})
    coords["seed"] = ("seed", np.asarray(plan.seeds, dtype=np.int64),
                      {"long_name": "nucleation seed (run.seed)"})
    coords["orientation"] = ("orientation", np.asarray(ORIENTATIONS, dtype=object),
                             {"long_name": "crystal orientation of the grain (bcc)"})
    n_orient = len(ORIENTATIONS)
    data_vars: dict[str, Any] = {
        "fraction": (dims + ("orientation",), np.full(shape + (n_orient,), np.nan), {
            "long_name": "area fraction of each orientation in the final snapshot",
            "units": "1"}),
        "surface_fraction": (dims + ("orientation",), np.full(shape + (n_orient,), np.nan), {
            "long_name": "fraction of each orientation in the top fully deposited row",
            "units": "1"}),
        "status": (dims, np.full(shape, TASK_PENDING, dtype=np.int8), {
            "long_name": "task status", "flag_values": [TASK_PENDING, TASK_OK, TASK_FAILED],
            "flag_meanings": STATUS_MEANINGS}),
        "error": (dims, np.full(shape, "", dtype=object), {
            "long_name": "error message of a failed task (empty otherwise)"}),
    }
    for name, (fill, attrs) in _SCALAR_VARIABLES.items():
        dtype = np.int64 if isinstance(fill, int) else float
        data_vars[name] = (dims, np.full(shape, fill, dtype=dtype), attrs)
    if plan.keep_maps:
        ny, nx = plan.base.grid.ny, plan.base.grid.nx
        data_vars["final_orientation"] = (dims + ("y", "x"), np.full(shape + (ny, nx), -1, np.int8), {
            "long_name": "orientation index of every cell in the final snapshot",
            "description": "index into the orientation coordinate; -1 = no grain"})
        spacing = plan.base.grid.spacing_um
        coords["y"] = ("y", np.arange(ny) * spacing, {"units": "um", "long_name": "height above substrate"})
        coords["x"] = ("x", np.arange(nx) * spacing, {"units": "um"})
    return xr.Dataset(data_vars, coords=coords, attrs={
        "title": f"softgrain sweep: {plan.name}",
        "description": plan.description,
        "sweep_name": plan.name,
        "sweep_spec_hash": plan.spec_hash(),
        "sweep_spec_json": json.dumps(plan.spec(), sort_keys=True),
        "base_config_json": plan.base.to_json(),
        "axes": json.dumps([{"name": a.name, "key": a.key} for a in plan.axes]),
        "status_meanings": STATUS_MEANINGS,
        "softgrain_version": softgrain.__version__,
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


def _check_store(plan: SweepPlan, path: Path) -> np.ndarray:
    """Status array of an existing store of ``plan``; refuse a store of another sweep."""
    try:
        with xr.open_zarr(path) as ds:
            found = ds.attrs.get("sweep_spec_hash")
            status = ds["status"].values if "status" in ds else None
    except Exception as exc:  # any reader failure means: this is not a store we can resume
        raise UserInputError(f"--out {path}: exists but is not a readable sweep store ({exc})") from None
    if found is None or status is None:
        raise UserInputError(f"--out {path}: exists but is not a softgrain sweep store")
    expected = plan.spec_hash()
    if found != expected:
        raise UserInputError(
            f"--out {path}: store was made by a different sweep definition (spec hash "
            f"{found[:12]}…, this sweep {expected[:12]}…); choose another --out or delete it")
    if status.shape != plan.shape:
        raise UserInputError(f"--out {path}: store shape {status.shape} differs from the sweep's {plan.shape}")
    return status


class _ZarrSink:
    """Writes task results into their chunks of an existing store, status last."""

    def __init__(self, path: Path):
        import zarr

        self.group = zarr.open_group(str(path), mode="r+", zarr_format=3)
        self.arrays = {name: self.group[name] for name in self.group.array_keys()}

    def record(self, index: tuple[int, ...], result: Mapping[str, Any], status: int, error: str) -> None:
        for name, value in result.items():
            if name in self.arrays:
                self.arrays[name][index] = value
        self.arrays["error"][index] = error
        self.arrays["status"][index] = status


class _MemorySink:
    """Fills an in-memory copy of the store's dataset (ensembles without a store)."""

    def __init__(self, ds: xr.Dataset):
        self.ds = ds

    def record(self, index: tuple[int, ...], result: Mapping[str, Any], status: int, error: str) -> None:
        for name, value in result.items():
            if name in self.ds:
                self.ds[name].values[index] = value
        self.ds["error"].values[index] = error
        self.ds["status"].values[index] = status


# --------------------------------------------------------------------------------------------
# Dask
# --------------------------------------------------------------------------------------------

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
    from distributed import Client, LocalCluster

    if workers is not None and workers < 1:
        raise UserInputError(f"--workers must be at least 1, got {workers}")
    if scheduler is not None:
        if workers is not None:
            raise UserInputError(
                "--workers applies to the local cluster only; with --scheduler the workers are "
                "started separately (e.g. `dask worker ADDRESS --nthreads 1`)")
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise UserInputError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        try:
            yield client
        finally:
            client.close()
        return
    # One single-threaded process per core: each compiled kernel owns a core, and the GIL-bound
    # NumPy parts of different tasks do not contend.
    with LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
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
        if path.exists():
            status = _check_store(plan, path)
        else:
            create_store(plan, path)
            status = np.full(plan.shape, TASK_PENDING, dtype=np.int8)
        sink: _ZarrSink | _MemorySink = _ZarrSink(path)
    else:
        status = np.full(plan.shape, TASK_PENDING, dtype=np.int8)
        sink = _MemorySink(template_dataset(plan))
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
    from distributed import as_completed
    from tqdm.auto import tqdm

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


# --------------------------------------------------------------------------------------------
# Ensembles of one point
# --------------------------------------------------------------------------------------------

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
        Keep the final orientation map of every member (``final_orientation``).
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
    >>> from softgrain.config import load_config
    >>> ds = run_ensemble(load_config("li-solid"), 8)          # doctest: +SKIP
    >>> ensemble_statistics(ds)["001"]["mean"]                  # doctest: +SKIP
    """
    plan = SweepPlan.build(config, (), seeds, keep_maps=keep_maps, retries=retries,
                           name=f"ensemble {config.name}")
    ds, _ = run_plan(plan, store, workers=workers, scheduler=scheduler, client=client,
                     progress=progress)
    return ds


def ensemble_statistics(ds: xr.Dataset, variable: str = "fraction",
                        confidence: float = 0.95) -> dict[str, dict[str, Any]]:
    """Mean and confidence interval over seeds of each orientation's fraction.

    Only members with status ok enter. Intervals are Student-t
    (:func:`softgrain.analysis.mean_confidence_interval`); NaN with fewer than two members.

    Parameters
    ----------
    ds : xarray.Dataset
        A :func:`run_ensemble` result (dimensions ``seed`` and ``orientation`` only).
    variable : str
        ``"fraction"`` (area, default) or ``"surface_fraction"``.
    confidence : float
        Confidence level of the interval.

    Returns
    -------
    dict
        ``{"001": {"mean": m, "ci95": [low, high], "n": k}, ...}``.
    """
    from softgrain.analysis import mean_confidence_interval

    if variable not in ds:
        raise UserInputError(f"no variable {variable!r} in the dataset; use 'fraction' or 'surface_fraction'")
    values = ds[variable]
    extra = [d for d in values.dims if d not in ("seed", "orientation")]
    if extra:
        raise UserInputError(f"ensemble_statistics needs one point; select along {', '.join(extra)} first")
    if "status" in ds:
        values = values.where(ds["status"] == TASK_OK)
    stats = {}
    for orientation in values["orientation"].values:
        samples = values.sel(orientation=orientation).values
        mean, low, high = mean_confidence_interval(samples, confidence)
        stats[str(orientation)] = {"mean": mean, "ci95": [low, high],
                                   "n": int(np.isfinite(samples).sum())}
    return stats
