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

This module is the schema only: its validators check types, ranges and keys that belong together,
never physics, and it reads no materials data. What the numbers mean for a run — the strain that
``[conditions]`` imply, the surface energies at that strain, L_q and κ_q — is worked out by
:func:`softgrain.setup.build`.
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

from softgrain.errors import ConfigError, ParameterError
from softgrain.materials.constants import load_phasefield_constants
from softgrain.materials.metals import ORIENTATIONS, available_metals

Orientation = Literal["001", "101", "111"]


def _default(section: str, key: str):
    """Default value of a numerical set-up constant, read from ``data/phasefield.toml``."""
    return lambda: load_phasefield_constants()[section][key].value


class StrictModel(BaseModel):
    """Base of softgrain's schemas (configurations and sweep files): unknown keys, type coercion and
    inf/nan are refused, and a validated object is frozen."""

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


class MaterialConfig(StrictModel):
    """The metal and its orientation-resolved inputs."""

    metal: str = Field("Li", description="Li, Na or K (data in softgrain/data/<metal>.toml)")
    strain: float | None = Field(None, ge=-0.2, le=0.2, description=(
        "biaxial lattice strain of the film (−0.03 = 3 % compression); surface energies are "
        "interpolated in strain from the materials data. Leave it out to take the strain from "
        "[conditions] (or 0, unstrained, without them)"))
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


class RunConfig(StrictModel):
    temperature_C: float = Field(25.0, ge=-150.0, le=300.0, description="temperature (°C)")
    end_time_s: float = Field(default_factory=_default("deposition", "end_time_s"), gt=0,
                              description="simulated time (s)")
    dt_s: float = Field(default_factory=_default("grid", "dt_s"), gt=0, le=10.0,
                        description="explicit time step (s); paper: 0.01 s")
    seed: int = Field(1, ge=0, lt=2**63, description="seed of the nucleation random generator")
    snapshot_times_s: list[float] = Field(default_factory=lambda: [10.0, 400.0], description=(
        "times (s) at which the grain map is stored; times beyond end_time_s are dropped, "
        "end_time_s is always stored"))
    substeps: Literal["auto", "refuse", "adaptive"] = Field("auto", description=(
        "if dt_s exceeds the explicit-Euler limit: sub-step with a count fixed for the whole run "
        "('auto'), refuse ('refuse'), or sub-step and recompute the count every "
        "numerics.adaptive_every_steps steps from the grains still present ('adaptive': grains "
        "whose order parameter fell below numerics.prune_threshold everywhere are removed and no "
        "longer limit the step)"))

    @field_validator("snapshot_times_s")
    @classmethod
    def _snapshot_times(cls, value: list[float]) -> list[float]:
        if any(t < 0 for t in value):
            raise ValueError("snapshot times must be non-negative")
        return sorted(set(float(t) for t in value))


class GridConfig(StrictModel):
    nx: int = Field(default_factory=lambda: int(_default("grid", "nx")()), ge=4, le=100_000,
                    description="columns (periodic direction)")
    ny: int = Field(default_factory=lambda: int(_default("grid", "ny")()), ge=4, le=100_000,
                    description="rows (growth direction; row 0 is the substrate)")
    spacing_um: float = Field(default_factory=_default("grid", "spacing_um"), gt=0,
                              description="physical grid spacing Δx (µm), for lengths in outputs")
    laplacian_spacing: float = Field(default_factory=_default("grid", "laplacian_spacing"), gt=0,
                                     description="grid spacing in the Laplacian's units (1 = grid units)")


class NucleationConfig(StrictModel):
    count: int = Field(default_factory=lambda: int(_default("nucleation", "count")()), ge=1,
                       description="number of nuclei (grains)")
    rows: int = Field(1, ge=1, description="nuclei are placed at distinct random cells of the bottom `rows` rows")
    radius_cells: float = Field(default_factory=_default("nucleation", "radius_cells"), gt=0, le=50,
                                description="nucleus radius in grid cells")
    orientations: list[Orientation] = Field(default_factory=lambda: list(ORIENTATIONS), min_length=1, description=(
        "labels mode: the growth-direction labels a nucleus draws from, uniformly (the paper's "
        "(001), (101), (111)); the rotation about the growth axis is uniform"))
    orientation_distribution: Literal["labels", "random", "fibre"] = Field("labels", description=(
        "how a nucleus's crystal orientation (a rotation with Li's cubic m-3m symmetry) is drawn: "
        "'labels' — growth axis along one of `orientations` (the paper's three; default); "
        "'random' — uniform over all rotations (a polycrystalline substrate with no texture); "
        "'fibre' — growth direction scattered by `fibre_spread_deg` about `fibre_axis` (a textured "
        "substrate). With 'random'/'fibre', E_s and E_a of a grain are interpolated over the "
        "standard triangle from the three pole values (ASSUMED barycentric rule, "
        "softgrain.physics.orientations.interpolate_pole_values)"))
    fibre_axis: str | list[float] = Field("101", description=(
        "fibre mode: crystal direction of the fibre, '001', '101' or '111' (paper notation, "
        "(101) ≡ (110)) or [h, k, l]; default ⟨101⟩, the close-packed {110} planes of bcc metals "
        "parallel to the substrate, the usual fibre of bcc films (ASSUMED for Li on Cu)"))
    fibre_spread_deg: float = Field(default_factory=_default("nucleation", "fibre_spread_deg"), ge=0,
                                    le=90, description=(
        "fibre mode: spread σ (degrees) of the growth direction about `fibre_axis` (von Mises–Fisher, "
        "κ = 1/σ²; 0 = a perfect fibre); default 10° (ASSUMED, data/phasefield.toml)"))

    layer: Literal["columns", "discs"] = Field("columns", description=(
        "how the nuclei fill the nucleation layer (the rows their discs touch): 'columns' — after "
        "the discs are placed, every cell of the layer belongs to the nucleus whose centre is "
        "nearest in x (periodic; a Voronoi partition of the substrate), because islands that "
        "nucleate together meet halfway and an unclaimed φ = 0 cell between them is not a "
        "physical state (it lets grains race into it at the artificial speed 2√(Lκα)); "
        "'discs' — only the discs, φ = 0 between them (softgrain ≤ issue 10; README, "
        "'Fair nucleation')"))
    min_spacing_cells: float = Field(0.0, ge=0, description=(
        "smallest distance in x (periodic, cells) between two nucleus centres, enforced by "
        "rejection with the seeded generator; 0 = no constraint (the plain uniform draw)"))

    @field_validator("fibre_axis", mode="before")
    @classmethod
    def _fibre_axis_kind(cls, value: Any) -> Any:
        # Without this a number (`--set nucleation.fibre_axis=101` reads 101 as TOML) would get
        # pydantic's two-part union message instead of one that says what to write.
        numbers = isinstance(value, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if not (isinstance(value, str) or numbers):
            raise ValueError(f"expected a quoted pole name ({', '.join(repr(o) for o in ORIENTATIONS)}) "
                             "or a crystal direction [h, k, l]")
        return value

    @field_validator("fibre_axis")
    @classmethod
    def _fibre_axis(cls, value: str | list[float]) -> str | list[float]:
        if isinstance(value, str):
            if value not in ORIENTATIONS:
                raise ValueError(f"unknown fibre axis; allowed: {', '.join(repr(o) for o in ORIENTATIONS)} "
                                 "or a crystal direction [h, k, l]")
            return value
        if len(value) != 3 or not any(component != 0 for component in value):
            raise ValueError("a crystal direction needs three components, not all zero, e.g. [1, 1, 0]")
        return [float(component) for component in value]

    @model_validator(mode="after")
    def _labels_only_in_labels_mode(self) -> "NucleationConfig":
        if self.orientation_distribution != "labels" and sorted(self.orientations) != sorted(ORIENTATIONS):
            raise KeyedValueError(
                "orientations", f"= {self.orientations!r} restricts the labels, but "
                f"orientation_distribution = {self.orientation_distribution!r} draws no labels; "
                "allowed: leave nucleation.orientations out, or orientation_distribution = 'labels'")
        return self


class AnalysisConfig(StrictModel):
    """How a run's grains are classified like an EBSD map (summary.json, result.nc, figures)."""

    tolerance_deg: float = Field(default_factory=_default("analysis", "tolerance_deg"), gt=0, le=45,
                                 description=(
        "EBSD-like classes: a grain is '001'/'101'/'111' when its growth direction lies within this "
        "angle (degrees) of ⟨001⟩/⟨101⟩/⟨111⟩, else 'other'; default 15° (data/phasefield.toml). "
        "Above 17.6° the caps overlap and the nearest pole wins"))
    window_um: list[float] | None = Field(None, description=(
        "optional height window [bottom, top] (µm above the substrate) in which summary.json also "
        "reports the class fractions (e.g. the top of the deposit, as a plan-view EBSD map sees it)"))

    @field_validator("window_um")
    @classmethod
    def _window(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and not (len(value) == 2 and 0 <= value[0] < value[1]):
            raise ValueError("need [bottom, top] in µm with 0 ≤ bottom < top")
        return value


class DepositionConfig(StrictModel):
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
    open_front_from: Literal["resolved", "start"] = Field("resolved", description=(
        "when an 'empty' front opens: 'resolved' — zero-flux until the deposit is at least "
        "W = ceil(2·max_q √(2κ_q/(α w_q)) / h) rows thick, the full width of the widest "
        "grain–surface tanh profile (a thinner deposit cannot hold that profile: the open "
        "front's φ = 0 would reach into the grain's bulk and kill high-κ nuclei by "
        "under-resolution, not by an energy balance), open above; 'start' — open from the first "
        "step (softgrain ≤ issue 10). No effect with front_boundary = 'zero-flux' (README, "
        "'Fair nucleation')"))


class LandauConfig(StrictModel):
    """The multi-grain Landau polynomial (paper Eq. S13; the paper prints neither f0 nor w).

    f0 = Σ_q (−α/2 φ_q² + β/4 φ_q⁴) + γ Σ_{q<p} φ_q² φ_p², weighted by w in
    F = ∫ [w f0 + Σ_q κ_q/2 |∇φ_q|²]. The free energy is in model units (the mapped L_q and κ_q
    of Eq. S14–S15 are normalised), so these coefficients are dimensionless. Defaults and their
    sources: ``data/phasefield.toml`` ``[landau]``.
    """

    alpha: float = Field(default_factory=_default("landau", "alpha"), gt=0, description=(
        "α: coefficient of −α/2 φ_q² in f0 (Eq. S13), dimensionless; default 1 after Fan & Chen, "
        "Acta Mater. 45, 611 (1997) (LIT)"))
    beta: float = Field(default_factory=_default("landau", "beta"), gt=0, description=(
        "β: coefficient of β/4 φ_q⁴ in f0 (Eq. S13), dimensionless; default 1 after Fan & Chen "
        "1997 (LIT)"))
    gamma: float = Field(default_factory=_default("landau", "gamma"), gt=0, description=(
        "γ: grain–grain interaction γ φ_q² φ_p² in f0 (Eq. S13), dimensionless, > α/2 for stable "
        "grains; default 1.5 after Moelans, Blanpain & Wollants, PRB 78, 024113 (2008) (LIT)"))
    w: float = Field(default_factory=_default("landau", "w"), gt=0, description=(
        "w: weight of the local free energy f0 against the gradient energy (Eq. S13), "
        "dimensionless; default 1 (ASSUMED: the paper gives no w)"))

    @model_validator(mode="after")
    def _stable_grains(self) -> "LandauConfig":
        if self.gamma <= self.alpha / 2:
            raise KeyedValueError("gamma", f"= {self.gamma!r} makes grains unstable; allowed: "
                                  f"landau.gamma > landau.alpha/2 = {self.alpha / 2}")
        return self


class MappingConfig(StrictModel):
    """The DFT → phase-field mapping of the paper (Eq. S14–S15).

    L_q = L1 · exp(−L2 · E_a,q / (k_B T)) and κ_q = κ1 · exp(κ2 · E_s,q / E0), with E_a,q the
    surface self-diffusion barrier, E_s,q the surface energy of grain q and E0 the mean E_s of
    the grains present. L_q and κ_q are in model units: L in 1/s per unit of the (dimensionless)
    free-energy density, κ in free-energy density × Δx² (lengths in grid units). Defaults and
    their sources: ``data/phasefield.toml`` ``[mapping]`` (the paper's values, below Eq. S15).
    """

    L1: float = Field(default_factory=_default("mapping", "L1"), gt=0, description=(
        "L1: mobility prefactor of Eq. S14, model units (1/s); default 7.5 (PAPER, Eq. S14)"))
    L2: float = Field(default_factory=_default("mapping", "L2"), ge=0, description=(
        "L2: scale of the barrier in the exponent of Eq. S14, dimensionless; default 0.27 "
        "(PAPER, Eq. S14)"))
    kappa1: float = Field(default_factory=_default("mapping", "kappa1"), gt=0, description=(
        "κ1: gradient-coefficient prefactor of Eq. S15, model units (free-energy density × Δx²); "
        "default 4.1e-9 (PAPER, Eq. S15)"))
    kappa2: float = Field(default_factory=_default("mapping", "kappa2"), ge=0, description=(
        "κ2: scale of E_s/E0 in the exponent of Eq. S15, dimensionless; default 20 (PAPER, "
        "Eq. S15)"))


class ModelConfig(StrictModel):
    """Which phase-field formulation maps the materials data onto the model (issue 11).

    Both use the same energy and kernel (:mod:`softgrain.phasefield.update`); they differ in the
    per-grain constants κ_q, w_q, g_q built by :func:`softgrain.setup.build`
    (``docs/consistent-formulation.md``).
    """

    formulation: Literal["paper", "consistent"] = Field("paper", description=(
        "'paper' — Eq. S13–S15 as printed: κ_q = κ1·exp(κ2·E_s,q/E0) with E0 the mean E_s of the "
        "grains present, w_q = landau.w, no strain term (reproduces the paper's figures); "
        "'consistent' — boundary energy ∝ E_s at constant width and the theory's strain energy "
        "as a bulk driving force: κ_q = κ0·e_q, w_q = e_q = E_s,q/E0 with E0 the mean E_s of the "
        "metal's three orientations at its strain (a material constant), κ0 = κ1·exp(κ2), "
        "g_q = λ·(F_strain,q − min_p F_strain,p) + (e_q − 1)α²/(4β) with F_strain,q = σ_y·ε_q "
        "(theory Eq. S9–S11) and λ = σ0·Δx/E0, σ0 = √(2κ0α³)/(3β) — no new free constant "
        "(MODEL.md §7 prototype D; docs/consistent-formulation.md). Needs landau.alpha = "
        "landau.beta, landau.gamma = 1.5·landau.beta and landau.w = 1"))


class NumericsConfig(StrictModel):
    """How the model is computed (never what it computes): backend, kernel, precision, batches."""

    backend: Literal["numba", "jax"] = Field("numba", description=(
        "'numba': the CPU kernel chosen by numerics.kernel; 'jax': the batched JAX kernel (CPU or "
        "GPU; the optional extra pip install -e '.[jax]'), whose studies run numerics.batch runs "
        "per Dask task"))
    kernel: Literal["sparse", "dense"] = Field("sparse", description=(
        "kernel of the numba backend — 'sparse': compiled locally-reduced order parameters; "
        "'dense': NumPy reference (slow)"))
    batch: int | None = Field(None, ge=1, le=65536, description=(
        "jax backend, studies: runs per batch (one Dask task, one device); default: the pending "
        "runs spread over the workers, at most 256 and at most what fits the device memory"))
    dtype: Literal["float64", "float32"] = Field("float64", description=(
        "precision of the jax backend; float32 halves memory and time, see README "
        "'Throughput' for what it changes"))
    compaction_every_steps: int | None = Field(100, ge=1, description=(
        "jax backend: drop the order parameters of vanished grains every this many time steps "
        "(leave out for never)"))
    adaptive_every_steps: int = Field(100, ge=1, description=(
        "run.substeps = 'adaptive': recompute the sub-step count every this many time steps"))
    prune_threshold: float = Field(1e-8, ge=0, lt=0.01, description=(
        "order-parameter values below this are dropped by the sparse kernel (MMSP uses 1e-8)"))
    capacity: int = Field(8, ge=2, le=64, description="order-parameter slots per cell (sparse)")
    threads: int | None = Field(None, ge=1, le=1024, description="kernel threads (default: all cores)")
    max_substeps: int = Field(1000, ge=1, description=(
        "most explicit-Euler sub-steps per run.dt_s step that run.substeps = 'auto' may take; a run "
        "needing more (a large L_q·κ_q, e.g. from a high surface energy) is refused before it "
        "starts, naming the grain — lower run.dt_s, or raise this knowingly"))
    max_projected_hours: float = Field(24.0, gt=0, description=(
        "longest projected compute time of a run (hours); a longer one is refused before it "
        "starts. Projection: cells × steps × sub-steps (× grains for the dense kernel) at the "
        "kernel speed measured by `softgrain bench` on a 2-core machine (softgrain.setup)"))

    @model_validator(mode="after")
    def _precision_needs_jax(self) -> "NumericsConfig":
        if self.dtype != "float64" and self.backend != "jax":
            raise KeyedValueError("dtype", f"= {self.dtype!r} needs numerics.backend = 'jax'; "
                                  "allowed with the numba backend: 'float64'")
        return self


class ConditionsConfig(StrictModel):
    """Physical cell conditions; when given, they set the strain (:mod:`softgrain.physics.conditions`).

    The substrate name is checked against the catalogue when the configuration is set up
    (:func:`softgrain.setup.build`), not here: the schema reads no materials data.
    """

    stack_pressure_MPa: float = Field(ge=0, le=1000, description=(
        "stack pressure (MPa); no strain below the metal's yield strength, full strain from 5 MPa"))
    substrate: str | float = Field(description=(
        "substrate under the deposit: a material name (Cu, Ag, Au, … from bulk_moduli.toml, or an "
        "interlayer material such as 'Li0.7Si0.3', see softgrain.materials.substrates) or its bulk "
        "modulus in GPa"))
    strain_relaxation: Literal["none", "yield-strength"] = Field("none", description=(
        "optional, issue 11: 'yield-strength' scales the strain by min(1, σ_y(T)/σ_y(25 °C)), "
        "the lattice strain relaxing as the yield strength falls on heating, with ln σ_y linear "
        "in 1/T through 105 MPa (room temperature) and 35 MPa (90 °C) for micrometre-sized Li "
        "(Xu et al., PNAS 114, 57 (2017), the paper's ref. 26; data/interlayer.toml): 0.384 at "
        "80 °C, −3 % → −1.15 %. A hypothesis, not in the paper; Li only. 'none' (default): the "
        "strain does not depend on temperature"))


class SimulationConfig(StrictModel):
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
    model: ModelConfig = Field(default_factory=ModelConfig)
    numerics: NumericsConfig = Field(default_factory=NumericsConfig)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    conditions: ConditionsConfig | None = Field(None, description=(
        "optional stack pressure and substrate; their lattice strain is the film's strain, so "
        "material.strain is then left out (a value equal to the derived strain is accepted)"))

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
        spacing = self.nucleation.min_spacing_cells
        if self.nucleation.count * spacing > self.grid.nx:
            raise KeyedValueError(
                "nucleation.min_spacing_cells", f"= {spacing:g}: {self.nucleation.count} nuclei "
                f"cannot be {spacing:g} cells apart on grid.nx = {self.grid.nx} columns; allowed: "
                f"nucleation.count × nucleation.min_spacing_cells ≤ grid.nx")
        landau = self.landau
        if self.model.formulation == "consistent" and not (
                landau.alpha == landau.beta and landau.gamma == 1.5 * landau.beta
                and landau.w == 1.0):
            raise KeyedValueError(
                "model.formulation", f"= 'consistent' needs landau.alpha = landau.beta (wells at "
                f"φ = 1), landau.gamma = 1.5·landau.beta (closed-form boundary energy) and "
                f"landau.w = 1 (the weights are w_q = E_s,q/E0); got alpha = {landau.alpha:g}, "
                f"beta = {landau.beta:g}, gamma = {landau.gamma:g}, w = {landau.w:g}")
        return self

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    def updated(self, changes: Mapping[str, Any]) -> "SimulationConfig":
        """A validated copy with dotted-key changes, e.g. ``{"run.seed": 3}``."""
        data = self.model_dump(mode="python")
        if self.conditions is not None and "material.strain" not in changes:
            # With [conditions] the strain is theirs: a recorded copy of it must not outlive them.
            data["material"]["strain"] = None
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


def merge_tables(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` merged in, table by table (how ``base = …`` files combine)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_tables(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def preset_names() -> list[str]:
    """Names of the shipped presets (``softgrain run NAME``)."""
    folder = resources.files("softgrain") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _preset_path(name: str) -> Path:
    return Path(str(resources.files("softgrain") / "presets" / f"{name}.toml"))


def read_toml_file(path: str | Path, what: str = "configuration file") -> dict[str, Any]:
    """Parse a user's TOML file (configuration or sweep); a bad one is a :class:`ConfigError`."""
    file = Path(path)
    try:
        # Bytes, not read_text: universal-newline decoding would turn a bare CR (invalid TOML)
        # into a newline and accept a file that every other TOML reader refuses.
        text = file.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read {what}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: malformed TOML: {exc}") from None


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
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory, not a configuration file; give a .toml "
                              f"file or a preset ({', '.join(preset_names())})")
        if not path.is_file():
            raise ConfigError(f"{path}: no such configuration file")
    if str(path) in seen:
        raise ConfigError(f"{path}: circular 'base' chain: {' → '.join(seen)}")
    data = read_toml_file(path)
    own_name = data.get("name", name)   # a file is named after itself, not after its base
    base = data.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: key 'base' must be a preset name or path, got {base!r}")
        base_source = base if base in preset_names() else path.parent / base
        try:
            base_data, _ = _resolve(base_source, seen + (str(path),))
        except ConfigError as exc:
            raise ConfigError(f"{path}: base = {base!r}: {exc}") from None
        data = merge_tables(base_data, data)
    data["name"] = own_name
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
        problem = _describe_error(errors[0])
        raise ConfigError(f"{source}: {problem}{more}", key=_error_key(errors[0]),
                          problem=problem) from None


def _error_key(error: Mapping[str, Any]) -> str:
    """The dotted key of one pydantic error (as :func:`_describe_error` names it)."""
    loc = [part for part in error["loc"] if part != "[key]"]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, KeyedValueError):
        return ".".join(str(p) for p in loc + [cause.key])
    return _dotted(loc)


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
    >>> cfg.material.metal, cfg.run.seed, cfg.conditions.substrate
    ('Li', 3, 'Cu')
    """
    data, path = _resolve(source)
    for dotted, value in (overrides or {}).items():
        _set_dotted(_ensure_parent(data, dotted), dotted, value)
    return validate_config(data, source=path)


def _ensure_parent(data: dict[str, Any], dotted: str) -> dict[str, Any]:
    node = data
    parts = dotted.split(".")
    for depth, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ParameterError("overrides", f"{dotted}: {'.'.join(parts[:depth + 1])} is a value, "
                                 "not a section; it has no key " + repr(parts[depth + 1]))
    return data
