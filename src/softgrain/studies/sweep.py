"""Parameter sweeps of the phase-field model: the sweep file, its axes and the resolved plan.

A sweep runs one phase-field simulation per (point, seed): a *point* is one combination of the
values of the sweep's axes (any configuration key in dotted form, e.g.
``material.diffusion_barrier_eV.101``, or a derived key such as
``material.surface_energy_anisotropy_J_m2``, see :data:`DERIVED_KEYS`), a *seed* is the
nucleation seed (``run.seed``). Every (point, seed) is one Dask task
(:mod:`softgrain.studies.runner`); the results go to a Zarr store (:mod:`softgrain.studies.store`)
whose variables are defined by :func:`softgrain.output.results.sweep_dataset`.

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
    key = "conditions.stack_pressure_MPa"   # with base li-solid (Cu): strain 0 … −0.03
    values = [0.5, 2.75, 5.0]

    [outputs]
    keep_maps = false              # true: also store the final orientation map of every task

The results store and its resume rules: :mod:`softgrain.studies.store`; running on a cluster:
:mod:`softgrain.studies.runner`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
from pydantic import (Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError,
                      field_validator, model_validator)

from softgrain.config import (SimulationConfig, StrictModel, load_config, merge_tables,
                              read_toml_file, validate_config)
from softgrain.errors import ConfigError, UserInputError
from softgrain.materials.metals import load_metal
from softgrain.output.results import SWEEP_RESERVED_NAMES
from softgrain.physics.anisotropy import AnisotropyPath
from softgrain.setup import material_inputs

DEFAULT_RETRIES = 2
"""Dask retries of a failing task before it is recorded as failed."""


# --------------------------------------------------------------------------------------------
# The sweep file
# --------------------------------------------------------------------------------------------

class RangeSpec(StrictModel):
    """Evenly spaced values from ``start`` to ``stop`` inclusive (``numpy.linspace``)."""

    start: float
    stop: float
    num: int = Field(ge=1, le=10_000)

    def values(self) -> list[float]:
        return [float(v) for v in np.linspace(self.start, self.stop, self.num)]


AxisValue = StrictFloat | StrictInt | StrictBool | StrictStr


class AxisSpec(StrictModel):
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
    if name in SWEEP_RESERVED_NAMES:
        raise ValueError(f"axis name {name!r} is used by the store; choose another")
    return name


class OutputsSpec(StrictModel):
    keep_maps: bool = Field(False, description="store the final orientation map of every task")


class SweepSpec(StrictModel):
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
    data = read_toml_file(file, "sweep file")
    spec = parse_sweep(data, str(file))
    base_source: str | Path = spec.base
    candidate = file.parent / spec.base
    if candidate.is_file():
        base_source = candidate
    base = load_config(base_source)
    if spec.config:
        base = validate_config(merge_tables(base.model_dump(mode="python"), spec.config),
                               source=f"{file}: config")
    try:
        return SweepPlan.build(base, spec.axes, spec.seeds, keep_maps=spec.outputs.keep_maps,
                               retries=spec.retries, name=spec.name, description=spec.description)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None


# --------------------------------------------------------------------------------------------
# The resolved plan
# --------------------------------------------------------------------------------------------

def anisotropy_overrides(config: SimulationConfig, anisotropy: float) -> dict[str, Any]:
    """Configuration changes that put ``config``'s metal at surface-energy anisotropy A.

    The derived sweep key ``material.surface_energy_anisotropy_J_m2``: the three surface energies
    on the anisotropy path of :class:`softgrain.physics.anisotropy.AnisotropyPath`.

    Parameters
    ----------
    config : SimulationConfig
        Base configuration (its ``material.metal`` selects the data).
    anisotropy : float
        A = E_s(101) − E_s(001) in J/m².

    Returns
    -------
    dict
        ``{"material.surface_energy_J_m2.001": …, ".101": …, ".111": …}``.
    """
    if isinstance(anisotropy, bool) or not isinstance(anisotropy, (int, float, np.floating)):
        raise UserInputError(f"surface_energy_anisotropy must be a number, got {anisotropy!r}")
    energies = AnisotropyPath.for_metal(load_metal(config.material.metal)).surface_energies(float(anisotropy))
    return {f"material.surface_energy_J_m2.{o}": round(e, 12) for o, e in energies.items()}


Derive = Callable[[SimulationConfig, Any], dict[str, Any]]
"""``(base configuration, axis value) → {dotted configuration key: value}``: an axis that sets
several configuration keys at once."""

ANISOTROPY_KEY = "material.surface_energy_anisotropy_J_m2"

DERIVED_KEYS: dict[str, Derive] = {
    # A = E_s(101) − E_s(001) along the strain path of the metal's surface-energy data; sets the
    # three per-orientation surface energies.
    ANISOTROPY_KEY: anisotropy_overrides,
}
"""Axis keys of sweep files that are not configuration keys, and the function deriving each."""


@dataclass(frozen=True)
class Axis:
    """A resolved axis: store dimension, configuration key, values, metadata.

    ``derive`` turns a value into configuration changes for a key that is not a configuration key
    (e.g. the anisotropy of the phase map); without it the value is set at ``key``.
    """

    name: str
    key: str
    values: tuple[Any, ...]
    units: str = ""
    description: str = ""
    derive: Derive | None = None

    def changes(self, base: SimulationConfig, value: Any) -> dict[str, Any]:
        """The configuration changes that put ``base`` at ``value`` of this axis."""
        if self.derive is not None:
            return self.derive(base, value)
        return {self.key: plain_value(value)}


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
                                               a.units, a.description, DERIVED_KEYS.get(a.key))
            for a in axes)
        seed_list = _seed_list(base, seeds)
        _refuse_colliding_axes(base, resolved)
        configs, overrides = [], []
        for combination in itertools.product(*(a.values for a in resolved)):
            changes: dict[str, Any] = {}
            for axis, value in zip(resolved, combination):
                changes.update(axis.changes(base, value))
            try:
                config = base.updated(changes)
                material_inputs(config)  # a bad substrate or strain fails here, not mid-sweep
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

    def with_numerics(self, **changes: Any) -> "SweepPlan":
        """The same sweep computed another way: ``numerics`` keys (``backend``, ``batch``,
        ``dtype`` …; None values are ignored) changed in the base and at every point."""
        keys = {f"numerics.{name}": value for name, value in changes.items() if value is not None}
        if not keys:
            return self
        return replace(self, base=self.base.updated(keys),
                       point_configs=tuple(config.updated(keys) for config in self.point_configs))

    def spec(self) -> dict[str, Any]:
        """The canonical definition whose hash identifies the sweep's store.

        ``numerics.batch`` is left out: how many runs share a device changes no result, so a
        store can be resumed with another batch size (on another GPU).
        """
        base = json.loads(self.base.to_json())
        base.get("numerics", {}).pop("batch", None)
        return {
            "base_config": base,
            "axes": [{"name": a.name, "key": a.key, "values": [plain_value(v) for v in a.values]}
                     for a in self.axes],
            "point_overrides": [{k: plain_value(v) for k, v in sorted(o.items())}
                                for o in self.point_overrides],
            "seeds": list(self.seeds),
            "keep_maps": self.keep_maps,
        }

    def spec_hash(self) -> str:
        text = json.dumps(self.spec(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def keys_overlap(first: str, second: str) -> bool:
    """Whether two dotted keys set the same value (equal, or one a table holding the other)."""
    return first == second or first.startswith(second + ".") or second.startswith(first + ".")


def axis_keys(axis: Axis, base: SimulationConfig) -> set[str]:
    """The configuration keys an axis sets (a derived axis may set several)."""
    if axis.derive is None:
        return {axis.key}
    try:
        return set(axis.derive(base, axis.values[0]))
    except UserInputError:
        return {axis.key}   # a bad value: reported with its point by SweepPlan.build


def _refuse_colliding_axes(base: SimulationConfig, axes: Sequence[Axis]) -> None:
    """Refuse axes that set a key another axis, or the seeds, also set: one would silently win.

    ``run.seed`` belongs to the seed dimension (``seeds``); two axes over one key (directly, or
    through a derived axis such as the anisotropy, which sets all three surface energies) would
    leave the store's coordinates describing runs that never happened.
    """
    keys = [axis_keys(axis, base) for axis in axes]
    for axis, own in zip(axes, keys):
        if any(keys_overlap(key, "run.seed") for key in own):
            raise ConfigError(
                f"axes: axis {axis.key!r} sets run.seed, which seeds sets for every task (the store's "
                f"seed dimension); give the seeds as seeds = {list(axis.values)!r} instead of an axis")
    for (i, first), (j, second) in itertools.combinations(enumerate(axes), 2):
        shared = sorted(a for a in keys[i] for b in keys[j] if keys_overlap(a, b))
        if shared:
            raise ConfigError(
                f"axes: axis {first.key!r} and axis {second.key!r} both set {shared[0]}; one would "
                "silently override the other at every point — keep one of them")


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


def plain_value(value: Any) -> Any:
    """NumPy scalars → Python scalars (for JSON and pydantic's strict types)."""
    return value.item() if isinstance(value, np.generic) else value


__all__ = [
    "ANISOTROPY_KEY",
    "Axis",
    "AxisSpec",
    "DEFAULT_RETRIES",
    "DERIVED_KEYS",
    "OutputsSpec",
    "RangeSpec",
    "SweepPlan",
    "SweepSpec",
    "anisotropy_overrides",
    "axis_keys",
    "keys_overlap",
    "load_sweep",
    "parse_sweep",
    "plain_value",
]
