"""Simulation configuration: a strict schema, presets and TOML files.

A configuration is a TOML file (or a preset shipped in ``softgrain/presets``) that may start from
another one with ``base = "li-liquid"`` and override any key::

    base = "li-liquid"
    [material]
    surface_energy_J_m2 = { "001" = 0.46, "101" = 0.50, "111" = 0.53 }
    diffusion_barrier_eV = { "001" = 0.14, "101" = 0.02, "111" = 0.20 }
    [run]
    temperature_C = 25
    end_time_s = 400
    seed = 1

Unknown keys, wrong types and out-of-range values are rejected with a :class:`ConfigError` that
names the file and the key. Defaults of the numerical set-up come from ``data/phasefield.toml``
(paper values with sources), so that no physical number is repeated here.
"""

from __future__ import annotations

import difflib
import json
import tomllib
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from softgrain.materials.substrates import substrate_bulk_modulus
from softgrain.physics.conditions import lattice_strain
from softgrain.errors import ConfigError, UserInputError
from softgrain.materials.constants import load_phasefield_constants
from softgrain.materials.metals import ORIENTATIONS, available_metals, load_metal

Orientation = Literal["001", "101", "111"]


def _default(section: str, key: str):
    """Default value of a numerical set-up constant, read from ``data/phasefield.toml``."""
    return lambda: load_phasefield_constants()[section][key].value


class _Strict(BaseModel):
    # inf/nan are refused: they pass "> 0" checks but make no sense as a size, time or constant.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class KeyedValueError(ValueError):
    """A check across several keys failed; ``key`` names the dotted key to report.

    Pydantic gives model-level validators no location, so they raise this to name the key
    (relative to the model being validated) in :func:`validate_config`'s message.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class MaterialConfig(_Strict):
    """The metal and its orientation-resolved inputs."""

    metal: str = Field("Li", description="Li, Na or K (data in softgrain/data/<metal>.toml)")
    strain: float = Field(0.0, ge=-0.2, le=0.2, description=(
        "biaxial lattice strain of the film (−0.03 = 3 % compression); surface energies are "
        "interpolated in strain from the materials data"))
    surface_energy_J_m2: dict[Orientation, float] = Field(default_factory=dict, description=(
        "per-orientation overrides of the surface energy (J/m²); others follow the data at `strain`"))
    diffusion_barrier_eV: dict[Orientation, float] = Field(default_factory=dict, description=(
        "per-orientation overrides of the surface self-diffusion barrier (eV)"))

    @field_validator("metal")
    @classmethod
    def _known_metal(cls, value: str) -> str:
        known = {m.lower(): m for m in available_metals()}
        if value.lower() not in known:
            raise ValueError(f"unknown metal {value!r}; known: {', '.join(available_metals())}")
        return known[value.lower()]

    @field_validator("surface_energy_J_m2")
    @classmethod
    def _positive_energies(cls, value: dict[str, float]) -> dict[str, float]:
        for orientation, energy in value.items():
            if not 0 < energy < 5:
                raise ValueError(f"surface energy of ({orientation}) must lie in (0, 5) J/m², got {energy}")
        return value

    @field_validator("diffusion_barrier_eV")
    @classmethod
    def _sane_barriers(cls, value: dict[str, float]) -> dict[str, float]:
        for orientation, barrier in value.items():
            if not 0 <= barrier <= 3:
                raise ValueError(f"diffusion barrier of ({orientation}) must lie in [0, 3] eV, got {barrier}")
        return value

    def surface_energies(self) -> dict[str, float]:
        """Surface energy (J/m²) per orientation: data at ``strain``, then the overrides."""
        metal = load_metal(self.metal)
        energies = {o: self.surface_energy_J_m2[o] if o in self.surface_energy_J_m2
                    else metal.surface_energy(o, self.strain) for o in ORIENTATIONS}
        return energies

    def barriers(self) -> dict[str, float]:
        """Diffusion barrier (eV) per orientation: data, then the overrides."""
        metal = load_metal(self.metal)
        return {o: self.diffusion_barrier_eV.get(o, metal.barrier(o)) for o in ORIENTATIONS}


class RunConfig(_Strict):
    temperature_C: float = Field(25.0, ge=-150.0, le=300.0, description="temperature (°C)")
    end_time_s: float = Field(default_factory=_default("deposition", "end_time_s"), gt=0,
                              description="simulated time (s)")
    dt_s: float = Field(default_factory=_default("grid", "dt_s"), gt=0, le=10.0,
                        description="explicit time step (s); paper: 0.01 s")
    seed: int = Field(1, ge=0, lt=2**63, description="seed of the nucleation random generator")
    snapshot_times_s: list[float] = Field(default_factory=lambda: [10.0, 400.0], description=(
        "times (s) at which the grain map is stored; times beyond end_time_s are dropped, "
        "end_time_s is always stored"))
    substeps: Literal["auto", "refuse"] = Field("auto", description=(
        "if dt_s exceeds the explicit-Euler limit: sub-step automatically ('auto') or refuse"))

    @field_validator("snapshot_times_s")
    @classmethod
    def _snapshot_times(cls, value: list[float]) -> list[float]:
        if any(t < 0 for t in value):
            raise ValueError("snapshot times must be non-negative")
        return sorted(set(float(t) for t in value))


class GridConfig(_Strict):
    nx: int = Field(default_factory=lambda: int(_default("grid", "nx")()), ge=4, le=100_000,
                    description="columns (periodic direction)")
    ny: int = Field(default_factory=lambda: int(_default("grid", "ny")()), ge=4, le=100_000,
                    description="rows (growth direction; row 0 is the substrate)")
    spacing_um: float = Field(default_factory=_default("grid", "spacing_um"), gt=0,
                              description="physical grid spacing Δx (µm), for lengths in outputs")
    laplacian_spacing: float = Field(default_factory=_default("grid", "laplacian_spacing"), gt=0,
                                     description="grid spacing in the Laplacian's units (1 = grid units)")


class NucleationConfig(_Strict):
    count: int = Field(default_factory=lambda: int(_default("nucleation", "count")()), ge=1,
                       description="number of nuclei (grains)")
    rows: int = Field(1, ge=1, description="nuclei are placed at distinct random cells of the bottom `rows` rows")
    radius_cells: float = Field(default_factory=_default("nucleation", "radius_cells"), gt=0, le=50,
                                description="nucleus radius in grid cells")
    orientations: list[Orientation] = Field(default_factory=lambda: list(ORIENTATIONS),
                                            min_length=1, description="orientations drawn at random")


class DepositionConfig(_Strict):
    enabled: bool = Field(True, description="activate the domain row by row (deposition front)")
    crossing_time_s: float = Field(default_factory=_default("deposition", "end_time_s"), gt=0,
                                   description="time for the front to cross the domain (s)")
    front_speed_um_s: float | None = Field(None, gt=0, description=(
        "front speed (µm/s); overrides crossing_time_s when given"))
    front_boundary: Literal["empty", "zero-flux"] = Field("empty", description=(
        "what a grain at the deposition front faces: 'empty' — the undeposited space, φ = 0, so "
        "the grain pays its gradient (surface) energy κ_q there, the paper's 'black space' that "
        "grains grow into; 'zero-flux' — a closed boundary that costs no gradient energy. The "
        "paper does not say; 'empty' is what lets the surface energy act on growth (README, "
        "'Deposition front')"))


class LandauConfig(_Strict):
    alpha: float = Field(default_factory=_default("landau", "alpha"), gt=0)
    beta: float = Field(default_factory=_default("landau", "beta"), gt=0)
    gamma: float = Field(default_factory=_default("landau", "gamma"), gt=0)
    w: float = Field(default_factory=_default("landau", "w"), gt=0)

    @model_validator(mode="after")
    def _stable_grains(self) -> "LandauConfig":
        if self.gamma <= self.alpha / 2:
            raise KeyedValueError("gamma", f"= {self.gamma!r} makes grains unstable; allowed: "
                                  f"landau.gamma > landau.alpha/2 = {self.alpha / 2}")
        return self


class MappingConfig(_Strict):
    L1: float = Field(default_factory=_default("mapping", "L1"), gt=0)
    L2: float = Field(default_factory=_default("mapping", "L2"), ge=0)
    kappa1: float = Field(default_factory=_default("mapping", "kappa1"), gt=0)
    kappa2: float = Field(default_factory=_default("mapping", "kappa2"), ge=0)


class NumericsConfig(_Strict):
    kernel: Literal["sparse", "dense"] = Field("sparse", description=(
        "'sparse': compiled locally-reduced order parameters; 'dense': NumPy reference (slow)"))
    prune_threshold: float = Field(1e-8, ge=0, lt=0.01, description=(
        "order-parameter values below this are dropped by the sparse kernel (MMSP uses 1e-8)"))
    capacity: int = Field(8, ge=2, le=64, description="order-parameter slots per cell (sparse)")
    threads: int | None = Field(None, ge=1, le=1024, description="kernel threads (default: all cores)")


class ConditionsConfig(_Strict):
    """Physical cell conditions; when given, they set ``material.strain`` (:mod:`softgrain.conditions`)."""

    stack_pressure_MPa: float = Field(ge=0, le=1000, description=(
        "stack pressure (MPa); no strain below the metal's yield strength, full strain from 5 MPa"))
    substrate: str | float = Field(description=(
        "substrate under the deposit: a material name (Cu, Ag, Au, … from bulk_moduli.toml, or an "
        "interlayer material such as 'Li0.7Si0.3', see `softgrain interlayer`) or its bulk modulus in GPa"))

    @field_validator("substrate")
    @classmethod
    def _known_substrate(cls, value: str | float) -> str | float:
        try:
            substrate_bulk_modulus(value)
        except UserInputError as exc:
            raise ValueError(str(exc)) from None
        return value


class SimulationConfig(_Strict):
    """Everything a phase-field run needs; see the README for each key."""

    name: str = Field("custom", description="preset or file the configuration came from")
    description: str = ""
    material: MaterialConfig = Field(default_factory=MaterialConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    grid: GridConfig = Field(default_factory=GridConfig)
    nucleation: NucleationConfig = Field(default_factory=NucleationConfig)
    deposition: DepositionConfig = Field(default_factory=DepositionConfig)
    landau: LandauConfig = Field(default_factory=LandauConfig)
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    numerics: NumericsConfig = Field(default_factory=NumericsConfig)
    conditions: ConditionsConfig | None = Field(None, description=(
        "optional stack pressure and substrate; their lattice strain sets material.strain, which "
        "must then not be given as well"))

    @model_validator(mode="before")
    @classmethod
    def _strain_from_conditions(cls, data: Any) -> Any:
        """Derive ``material.strain`` from ``[conditions]``; refuse a conflicting explicit strain.

        A strain equal to the derived one is accepted, so that a stored configuration (which
        records the derived strain beside its conditions) validates again unchanged.
        """
        if not isinstance(data, Mapping) or data.get("conditions") is None:
            return data
        material = data.get("material", {})
        if not isinstance(material, Mapping):
            return data  # the field validation reports the wrong type with its key
        try:
            conditions = ConditionsConfig.model_validate(data["conditions"])
            metal = material.get("metal", MaterialConfig.model_fields["metal"].default)
            strained = lattice_strain(conditions.stack_pressure_MPa, conditions.substrate, metal)
        except (ValidationError, UserInputError):
            return data  # invalid conditions or metal: reported by the field validation with its key
        explicit = material.get("strain")
        if explicit is not None and (isinstance(explicit, bool) or not isinstance(explicit, (int, float))
                                     or abs(explicit - strained.strain) > 1e-12):
            raise KeyedValueError(
                "material.strain", f"= {explicit!r} conflicts with [conditions] (stack_pressure_MPa = "
                f"{conditions.stack_pressure_MPa:g}, substrate = {conditions.substrate!r} → strain "
                f"{strained.strain:+.4g}); give either material.strain or [conditions], not both")
        return {**data, "material": {**material, "strain": strained.strain}}

    @model_validator(mode="after")
    def _consistent(self) -> "SimulationConfig":
        bottom_cells = self.grid.nx * self.nucleation.rows
        if self.nucleation.count > bottom_cells:
            raise KeyedValueError(
                "nucleation.count", f"= {self.nucleation.count} exceeds the {bottom_cells} cells of the "
                f"bottom {self.nucleation.rows} row(s) (grid.nx = {self.grid.nx}); "
                f"allowed: 1 ≤ nucleation.count ≤ {bottom_cells}")
        if self.nucleation.rows + self.nucleation.radius_cells >= self.grid.ny:
            raise KeyedValueError(
                "nucleation.rows", f"= {self.nucleation.rows}: nucleation.rows + nucleation.radius_cells "
                f"= {self.nucleation.rows + self.nucleation.radius_cells:g} reaches grid.ny = {self.grid.ny}; "
                f"allowed: nucleation.rows + nucleation.radius_cells < {self.grid.ny}")
        return self

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    def updated(self, changes: Mapping[str, Any]) -> "SimulationConfig":
        """A validated copy with dotted-key changes, e.g. ``{"run.seed": 3}``."""
        data = self.model_dump(mode="python")
        if self.conditions is not None and "material.strain" not in changes:
            # The strain was derived from [conditions]: derive it again from the changed ones.
            data["material"].pop("strain")
        for dotted, value in changes.items():
            _set_dotted(data, dotted, value)
        return validate_config(data, source=f"{self.name} (overrides)")


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"unknown configuration key {dotted!r}")
        node = node[part]
    node[parts[-1]] = value


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def preset_names() -> list[str]:
    """Names of the shipped presets (``softgrain run NAME``)."""
    folder = resources.files("softgrain") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _preset_path(name: str) -> Path:
    return Path(str(resources.files("softgrain") / "presets" / f"{name}.toml"))


def _read(source: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: malformed TOML: {exc}") from None


def _resolve(source: str | Path, seen: tuple[str, ...] = ()) -> tuple[dict[str, Any], str]:
    """Raw, merged data of a preset name or TOML path, following ``base`` chains."""
    text_source = str(source)
    if text_source in preset_names():
        path, name = _preset_path(text_source), text_source
    else:
        path = Path(source)
        name = path.stem
        if path.suffix != ".toml" and not path.exists():
            raise ConfigError(
                f"unknown preset {text_source!r}; presets: {', '.join(preset_names())} "
                "(or give a path to a .toml file)")
        if not path.is_file():
            raise ConfigError(f"{path}: no such configuration file")
    if str(path) in seen:
        raise ConfigError(f"{path}: circular 'base' chain: {' → '.join(seen)}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    data = _read(str(path), text)
    base = data.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: key 'base' must be a preset name or path, got {base!r}")
        base_source = base if base in preset_names() else path.parent / base
        try:
            base_data, _ = _resolve(base_source, seen + (str(path),))
        except ConfigError as exc:
            raise ConfigError(f"{path}: base = {base!r}: {exc}") from None
        data = _deep_merge(base_data, data)
    data.setdefault("name", name)
    return data, str(path)


def validate_config(data: Mapping[str, Any], source: str = "<config>") -> SimulationConfig:
    """Validate raw configuration data, raising :class:`ConfigError` naming the key.

    The message is one line: ``<source>: <key> = <value>: <problem>; allowed: <range>``, e.g.
    ``li-solid.toml: grid.nx = -1: out of range; allowed: an integer, 4 ≤ grid.nx ≤ 100000``.
    Unknown keys list the known keys of their section (closest match first).
    """
    try:
        return SimulationConfig.model_validate(dict(data))
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {_describe_error(errors[0])}{more}") from None


_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe_error(error: Mapping[str, Any]) -> str:
    """One pydantic error as ``<key> = <value>: <problem>; allowed: <range>``."""
    loc = [part for part in error["loc"] if part != "[key]"]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, KeyedValueError):
        key = ".".join(str(p) for p in loc + [cause.key])
        return f"{key} {cause}"
    key = _dotted(loc) or "(top level)"
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{key}: unknown key; {hint}known keys here: {', '.join(known)}"
    message = str(error["msg"])
    if error["loc"] and error["loc"][-1] == "[key]":
        expected = (error.get("ctx") or {}).get("expected")
        return (f"{key}: {_short_repr(loc[-1])} is not a valid key here"
                + (f"; allowed keys: {expected}" if expected else f" ({message})"))
    if kind == "value_error":
        # The schema's own validators already say what is allowed.
        return f"{key} = {_short_repr(value)}: {message.removeprefix('Value error, ')}"
    allowed = _allowed(loc)
    if kind in _RANGE_ERRORS:
        message = "out of range"
    elif kind == "literal_error":
        message = "not a permitted value"
        allowed = allowed or f"{error['ctx']['expected']}"
    else:
        message = message[0].lower() + message[1:] if message else kind
    suffix = f"; allowed: {allowed}" if allowed else ""
    return f"{key} = {_short_repr(value)}: {message}{suffix}"


def _dotted(loc: list[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _field_at(loc: list[Any]):
    """The pydantic field at ``loc`` (None if the location is not a schema field)."""
    model, field = SimulationConfig, None
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        field = model.model_fields[part]
        model = _model_in(field.annotation)
    return field


def _model_in(annotation: Any):
    """The BaseModel class inside ``X`` or ``X | None``, else the annotation itself."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return annotation


def _known_keys(loc: list[Any]) -> list[str]:
    model = _model_in(_field_at(loc).annotation) if loc else SimulationConfig
    if loc and _field_at(loc) is None:
        return []
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    extra = ["base"] if not loc else []
    return sorted(list(model.model_fields) + extra)


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _allowed(loc: list[Any]) -> str:
    """Type and range of the field at ``loc``, e.g. ``an integer, 4 ≤ grid.nx ≤ 100000``."""
    field = _field_at(loc)
    if field is None:
        return ""
    key = _dotted(loc)
    annotation = field.annotation
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is Literal:
        kind = "one of " + ", ".join(repr(a) for a in args)
    elif annotation in _TYPE_NAMES:
        kind = _TYPE_NAMES[annotation]
    elif origin in (typing.Union, types.UnionType) and len(args) == 1 and args[0] in _TYPE_NAMES:
        kind = f"{_TYPE_NAMES[args[0]]} (or leave it out)"
    elif origin is list:
        kind = "a list"
    elif origin is dict:
        kind = "a table"
    elif isinstance(_model_in(annotation), type) and issubclass(_model_in(annotation), BaseModel):
        kind = f"a [{key}] table"
    else:
        kind = ""
    low = high = ""
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            low = f"{bound.ge} ≤ "
        elif isinstance(bound, annotated_types.Gt):
            low = f"{bound.gt} < "
        elif isinstance(bound, annotated_types.Le):
            high = f" ≤ {bound.le}"
        elif isinstance(bound, annotated_types.Lt):
            high = f" < {bound.lt}"
    span = f"{low}{key}{high}" if (low or high) else ""
    return ", ".join(part for part in (kind, span) if part)


def load_config(source: str | Path, overrides: Mapping[str, Any] | None = None) -> SimulationConfig:
    """Load a preset name or TOML file, resolve ``base``, apply dotted-key overrides, validate.

    Examples
    --------
    >>> cfg = load_config("li-solid", {"run.seed": 3})
    >>> cfg.material.metal, cfg.run.seed
    ('Li', 3)
    """
    data, path = _resolve(source)
    for dotted, value in (overrides or {}).items():
        _set_dotted(_ensure_parent(data, dotted), dotted, value)
    config = validate_config(data, source=path)
    # Fail early on strains outside the data (clear message instead of a failure mid-run).
    try:
        config.material.surface_energies()
    except UserInputError as exc:
        metal = load_metal(config.material.metal)
        low, high = metal.strain_range
        if low - 1e-12 <= config.material.strain <= high + 1e-12:
            raise ConfigError(f"{path}: {exc}") from None
        raise ConfigError(
            f"{path}: material.strain = {config.material.strain:+.4g}: no surface-energy data for "
            f"{metal.symbol} at this strain ({Path(metal.source_file).name}); allowed: "
            f"{low:+.3f} ≤ material.strain ≤ {high:+.3f}, or give all three "
            "material.surface_energy_J_m2") from None
    return config


def _ensure_parent(data: dict[str, Any], dotted: str) -> dict[str, Any]:
    node = data
    parts = dotted.split(".")
    for depth, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {'.'.join(parts[:depth + 1])} is a value, not a "
                              "section; it has no key " + repr(parts[depth + 1]))
    return data
