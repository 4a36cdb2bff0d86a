"""From a configuration to numbers, and from numbers to a finished run.

:func:`build` is the one place where a validated configuration becomes the numbers of a run
(:class:`~softgrain.phasefield.inputs.ModelInputs`): the lattice strain that ``[conditions]``
imply (:mod:`softgrain.physics.conditions`), the surface energies E_s at that strain and the
barriers E_a (materials data, then the configuration's overrides), the per-grain constants
L_q, κ_q, w_q, g_q of the chosen formulation (``model.formulation``: the paper's Eq. S14–S15, or
the consistent mapping of :mod:`softgrain.phasefield.consistent` with the theory's strain energy),
the Landau coefficients, the nuclei, the deposition front and when it opens, and the sub-steps
that keep explicit Euler stable. The engine never sees the configuration, as MOOSE's ``GBEvolution``
material maps σ, Q and T to L and κ so that its kernels never see units.

Around it, the ways to run:

- :func:`simulate` — a configuration → the result dataset, in memory (the Python API);
- :func:`simulate_batch` — many configurations → their result datasets, run as batches on one
  JAX device (``numerics.backend = "jax"``; the studies' Dask tasks);
- :func:`save_run` — write a result, its summary and figures into a run folder;
- :func:`resume` — continue an interrupted run from its newest good checkpoint.

Examples
--------
>>> from softgrain.config import load_config
>>> inputs = build(load_config("li-solid"))
>>> material_inputs(load_config("li-solid")).strain     # Cu at 5 MPa: the full −3 %
-0.03
>>> inputs.n_grains, inputs.substeps                     # 75 nuclei; Δt split in 3 for stability
(75, 3)
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import psutil
import xarray as xr
from tqdm.auto import tqdm

from softgrain import analysis, provenance
from softgrain.config import SimulationConfig, validate_config
from softgrain.errors import ConfigError, SimulationError, StabilityError, UserInputError
from softgrain.materials.metals import ORIENTATIONS, load_metal
from softgrain.output import checkpoint, orientation_plots, plots
from softgrain.output.files import folder_lock, read_netcdf, save_figure, write_json, write_netcdf
from softgrain.output.results import (GROWTH_TEXTURE_FIGURE, IPF_MAP_FIGURE, MAPS_FIGURE, RESULT_FILE,
                                      SUMMARY_FILE, TEXTURE_FIGURE, build_dataset,
                                      orientation_distribution, run_dataset)
from softgrain.phasefield.backends import load_batched_jax
from softgrain.phasefield.consistent import consistent_grain_constants, strain_coupling
from softgrain.phasefield.deposition import DepositionFront, resolved_front_rows
from softgrain.phasefield.energy import Landau
from softgrain.phasefield.grains import GrainParameters
from softgrain.phasefield.initial import nucleate, nucleation_from_labels
from softgrain.phasefield.inputs import ModelInputs
from softgrain.phasefield.mapping import (MappingConstants, OrientationParameters, SubsteppingWarning,
                                          gradient_coefficient, map_orientations,
                                          mobility as mapped_mobility, stability_rates,
                                          substeps_for)
from softgrain.phasefield.solver import Simulation, Snapshot
from softgrain.physics import orientations
from softgrain.physics.conditions import LatticeStrain, lattice_strain
from softgrain.physics.theory import TheoryParameters, strain_energy

# A strain given beside [conditions] is accepted when it is the derived one (a stored
# configuration of an older softgrain records both); this is the tolerance of "the same".
_SAME_STRAIN = 1e-12

ORIENTATION_STREAM = 13
"""Second key of the random stream of the crystal orientations, ``default_rng([run.seed, 13])``.

A stream of its own, apart from nucleation's ``default_rng(run.seed)``: drawing rotations leaves
the nuclei's positions and labels exactly as they were before orientations existed (the
three-label mode is bit-identical), and a random- or fibre-mode run has the same nucleus
positions as the labelled run of the same seed.
"""


@dataclass(frozen=True)
class MaterialInputs:
    """The material of a configuration as numbers.

    Attributes
    ----------
    metal : str
        Chemical symbol.
    strain : float
        Biaxial lattice strain of the film: from ``[conditions]``, else ``material.strain``, else 0.
    lattice : LatticeStrain or None
        How ``[conditions]`` set the strain (None without them).
    surface_energy_J_m2, barrier_eV : dict
        Orientation → E_s (J/m²) at ``strain`` and E_a (eV): the data, then the overrides.
    """

    metal: str
    strain: float
    lattice: LatticeStrain | None
    surface_energy_J_m2: dict[str, float]
    barrier_eV: dict[str, float]


def _lattice(config: SimulationConfig) -> LatticeStrain | None:
    conditions = config.conditions
    if conditions is None:
        return None
    try:
        derived = lattice_strain(conditions.stack_pressure_MPa, conditions.substrate, config.material.metal)
    except UserInputError as exc:
        raise ConfigError(f"conditions.substrate = {conditions.substrate!r}: {exc}") from None
    if conditions.strain_relaxation != "none":
        try:
            derived = lattice_strain(conditions.stack_pressure_MPa, conditions.substrate,
                                     config.material.metal, relaxation=conditions.strain_relaxation,
                                     temperature_C=config.run.temperature_C)
        except UserInputError as exc:
            raise ConfigError(f"conditions.strain_relaxation = {conditions.strain_relaxation!r}: "
                              f"{exc}") from None
    explicit = config.material.strain
    if explicit is not None and abs(explicit - derived.strain) > _SAME_STRAIN:
        raise ConfigError(
            f"material.strain = {explicit!r} conflicts with [conditions] (stack_pressure_MPa = "
            f"{conditions.stack_pressure_MPa:g}, substrate = {conditions.substrate!r} → strain "
            f"{derived.strain:+.4g}); give either material.strain or [conditions], not both")
    return derived


def material_inputs(config: SimulationConfig) -> MaterialInputs:
    """Strain, surface energies and barriers of ``config``'s material.

    Raises
    ------
    ConfigError
        For an unknown substrate, a ``material.strain`` that contradicts ``[conditions]``, or a
        strain outside the surface-energy data (naming the allowed range).
    MoltenMetalError
        If ``run.temperature_C`` is not below the metal's melting point.
    """
    lattice = _lattice(config)
    material = config.material
    if lattice is not None:
        strain = lattice.strain
    else:
        strain = material.strain if material.strain is not None else 0.0
    metal = load_metal(material.metal)
    # One melting-point rule for every command (theory, interlayer, run): the deposit is solid.
    metal.require_solid(config.run.temperature_C, "run.temperature_C")
    try:
        energies = {o: material.surface_energy_J_m2[o] if o in material.surface_energy_J_m2
                    else metal.surface_energy(o, strain) for o in ORIENTATIONS}
    except UserInputError as exc:
        low, high = metal.strain_range
        if low - 1e-12 <= strain <= high + 1e-12:
            raise ConfigError(str(exc)) from None
        raise ConfigError(
            f"material.strain = {strain:+.4g}: no surface-energy data for {metal.symbol} at this "
            f"strain ({Path(metal.source_file).name}); allowed: {low:+.3f} ≤ material.strain ≤ "
            f"{high:+.3f}, or give all three material.surface_energy_J_m2") from None
    barriers = {o: material.diffusion_barrier_eV.get(o, metal.barrier(o)) for o in ORIENTATIONS}
    return MaterialInputs(metal.symbol, strain, lattice, energies, barriers)


@dataclass(frozen=True)
class GrainCrystals:
    """The crystal orientation of every grain and the anisotropic inputs it implies.

    Attributes
    ----------
    distribution : str
        "labels", "random" or "fibre" (``nucleation.orientation_distribution``).
    quaternion : numpy.ndarray
        (n, 4) unit quaternions, orix convention (sample → crystal), m-3m symmetry.
    growth_direction : numpy.ndarray
        (n, 3) crystal direction along the growth axis (sample z: up the grid's rows), reduced
        to the standard triangle.
    nearest_pole : numpy.ndarray
        (n,) int32 index into ``ORIENTATIONS`` of the pole nearest to the growth direction: the
        label itself in labels mode.
    surface_energy_J_m2, barrier_eV : numpy.ndarray
        (n,) E_s and E_a of each grain: the pole values in labels mode, else interpolated over
        the standard triangle (:func:`softgrain.physics.orientations.interpolate_pole_values`).
    """

    distribution: str
    quaternion: np.ndarray
    growth_direction: np.ndarray
    nearest_pole: np.ndarray
    surface_energy_J_m2: np.ndarray
    barrier_eV: np.ndarray


def grain_crystals(config: SimulationConfig, material: MaterialInputs,
                   grain_orientation: np.ndarray | None) -> GrainCrystals:
    """Draw the crystal orientation of every grain and its E_s and E_a.

    Parameters
    ----------
    config : SimulationConfig
        Gives ``nucleation.orientation_distribution`` (and the fibre), ``run.seed`` and the
        number of nuclei.
    material : MaterialInputs
        The pole values of E_s and E_a (:func:`material_inputs`).
    grain_orientation : numpy.ndarray or None
        Labels mode: each grain's label (index into ``ORIENTATIONS``); its rotation about the
        growth axis is drawn uniformly. Random/fibre modes: None (``nucleation.count`` grains).

    Notes
    -----
    All draws come from ``default_rng([run.seed, ORIENTATION_STREAM])``; the same seed gives
    the same orientations.
    """
    rng = np.random.default_rng([config.run.seed, ORIENTATION_STREAM])
    nucleation = config.nucleation
    if grain_orientation is not None:
        labels = [ORIENTATIONS[int(k)] for k in grain_orientation]
        rotations = orientations.label_orientations(labels, rng)
        pole = np.asarray(grain_orientation, dtype=np.int32)
        # The pole values themselves (no interpolation), so that labelled grains get exactly the
        # numbers of the paper's three-orientation model.
        energy = np.array([material.surface_energy_J_m2[o] for o in labels], dtype=float)
        barrier = np.array([material.barrier_eV[o] for o in labels], dtype=float)
        return GrainCrystals("labels", orientations.quaternions(rotations),
                             orientations.growth_directions(rotations), pole, energy, barrier)
    if nucleation.orientation_distribution == "random":
        rotations = orientations.random_orientations(nucleation.count, rng)
    elif nucleation.orientation_distribution == "fibre":
        axis = (orientations.POLE_DIRECTIONS[nucleation.fibre_axis]
                if isinstance(nucleation.fibre_axis, str) else nucleation.fibre_axis)
        rotations = orientations.fibre_orientations(nucleation.count, axis, nucleation.fibre_spread_deg, rng)
    else:
        raise ConfigError("nucleation.orientation_distribution = 'labels' needs the grains' labels")
    directions = orientations.growth_directions(rotations)
    pole, _ = orientations.nearest_pole(directions)
    return GrainCrystals(
        nucleation.orientation_distribution, orientations.quaternions(rotations), directions,
        pole.astype(np.int32),
        orientations.interpolate_pole_values(directions, material.surface_energy_J_m2),
        orientations.interpolate_pole_values(directions, material.barrier_eV))


@dataclass(frozen=True)
class FormulationConstants:
    """The per-orientation and per-grain constants of one formulation (see :func:`grain_constants`).

    Attributes
    ----------
    orientation_parameters : OrientationParameters
        E_s, E_a, L and κ of each orientation, E0 and T.
    grains : GrainParameters
        L_q, κ_q, w_q, g_q of every grain.
    strain_coupling_m3_J : float
        λ (consistent; 0 for the paper formulation, which has no strain term).
    orientation_strain_energy_J_m3 : numpy.ndarray or None
        F_strain,o = σ_y ε_o of each orientation (theory Eq. S9–S11; consistent only).
    """

    orientation_parameters: OrientationParameters
    grains: GrainParameters
    strain_coupling_m3_J: float
    orientation_strain_energy_J_m3: np.ndarray | None


def grain_constants(config: SimulationConfig, material: MaterialInputs,
                    crystals: GrainCrystals) -> FormulationConstants:
    """L_q, κ_q, w_q, g_q of every grain, from its E_s and E_a (``crystals``).

    ``model.formulation = "paper"``: Eq. S14–S15 as printed, κ_q = κ1·exp(κ2·E_s,q/E0) with E0 the
    mean E_s over the grains present, w_q = landau.w, g_q = 0.

    ``"consistent"`` (:mod:`softgrain.phasefield.consistent`, ``docs/consistent-formulation.md``):
    e_q = E_s,q/E0 with E0 the mean E_s of the metal's three orientations at its strain (a
    material constant, independent of the draw), κ_q = κ0·e_q, w_q = e_q,
    g_q = λ·(F_strain,q − min_o F_strain,o) + (e_q − 1)α²/(4β), with F_strain = σ_y·ε from the
    theory (Eq. S9–S11, :func:`softgrain.physics.theory.strain_energy`: the code and data-file
    constants of ``softgrain theory``) at the run's temperature, the minimum taken over the
    metal's three orientations, and λ = σ0·ℓ/E0 with ℓ = Δx / h
    (:func:`~softgrain.phasefield.consistent.strain_coupling`) — no new free constant. L_q is
    Eq. S14 in both.

    In labels mode the per-grain values are the per-orientation ones indexed by each grain's
    label; with random or fibre orientations every grain has its own E_s and E_a.

    Raises
    ------
    ConfigError
        If the theory's constants cannot be read for this metal.
    """
    mapping = config.mapping
    constants = MappingConstants(mapping.L1, mapping.L2, mapping.kappa1, mapping.kappa2)
    landau = config.landau
    labelled = crystals.distribution == "labels"
    go = crystals.nearest_pole
    if config.model.formulation == "paper":
        if labelled:
            orientation = map_orientations(material.surface_energy_J_m2, material.barrier_eV,
                                           config.run.temperature_C, grain_orientation=go,
                                           constants=constants)
            _check_mapped_constants(config, orientation, go)
            mobility = np.ascontiguousarray(orientation.mobility[go])
            kappa = np.ascontiguousarray(orientation.kappa[go])
        else:
            # E0 is the mean E_s of the grains present (paper, below Eq. S15), as in labels mode.
            reference = float(crystals.surface_energy_J_m2.mean())
            poles = map_orientations(material.surface_energy_J_m2, material.barrier_eV,
                                     config.run.temperature_C, constants=constants)
            orientation = replace(
                poles, reference_energy_J_m2=reference,
                kappa=gradient_coefficient(poles.surface_energy_J_m2, reference, constants))
            # Interpolated E_s and E_a lie between the pole values: checking the poles covers every grain.
            _check_mapped_constants(config, orientation, np.arange(len(ORIENTATIONS)))
            mobility = np.ascontiguousarray(
                mapped_mobility(crystals.barrier_eV, poles.temperature_K, constants))
            kappa = np.ascontiguousarray(
                gradient_coefficient(crystals.surface_energy_J_m2, reference, constants))
        return FormulationConstants(orientation, GrainParameters.paper(mobility, kappa, landau.w),
                                    0.0, None)
    # E0: the mean over the three orientations (no grain_orientation), whatever the draw.
    orientation = map_orientations(material.surface_energy_J_m2, material.barrier_eV,
                                   config.run.temperature_C, constants=constants)
    try:
        theory = TheoryParameters.from_data(material.metal)
    except UserInputError as exc:
        raise ConfigError(f"model.formulation = 'consistent': the theory's strain energy of "
                          f"{material.metal} cannot be set up: {exc}") from None
    strain = np.asarray(strain_energy(orientation.barrier_eV, orientation.temperature_K, theory),
                        dtype=float)
    reference = orientation.reference_energy_J_m2
    length_unit_m = config.grid.spacing_um * 1e-6 / config.grid.laplacian_spacing
    try:
        coupling = strain_coupling(reference, mapping.kappa1, mapping.kappa2, length_unit_m,
                                   landau.alpha, landau.beta, landau.gamma)
        per_orientation = consistent_grain_constants(
            orientation.surface_energy_J_m2, reference, mapping.kappa1, mapping.kappa2, strain,
            coupling, landau.alpha, landau.beta)
    except OverflowError:
        raise ConfigError(
            f"mapping.kappa1 = {mapping.kappa1:g}, mapping.kappa2 = {mapping.kappa2:g}: "
            "κ0 = κ1·exp(κ2) of the consistent formulation overflows; allowed: mapping.kappa1 and "
            "mapping.kappa2 for which κ0 is finite (κ2 < 709)") from None
    orientation = replace(orientation, kappa=per_orientation.kappa)
    _check_mapped_constants(config, orientation, np.arange(len(ORIENTATIONS)))
    if labelled:
        grains = GrainParameters(orientation.mobility[go], per_orientation.kappa[go],
                                 per_orientation.weight[go], per_orientation.tilt[go])
    else:
        grain_strain = np.asarray(strain_energy(crystals.barrier_eV, orientation.temperature_K,
                                                theory), dtype=float)
        per_grain = consistent_grain_constants(
            crystals.surface_energy_J_m2, reference, mapping.kappa1, mapping.kappa2, grain_strain,
            coupling, landau.alpha, landau.beta, strain_reference_J_m3=float(strain.min()))
        grains = GrainParameters(
            mapped_mobility(crystals.barrier_eV, orientation.temperature_K, constants),
            per_grain.kappa, per_grain.weight, per_grain.tilt)
    return FormulationConstants(orientation, grains, coupling, strain)


# Kernel speed behind the projected run time (numerics.max_projected_hours), measured by
# `softgrain bench` on the project's 2-core machine (README, "Performance"): the sparse kernel
# took 24.2 s for the li-solid reference run's 852 M active cell-updates (28 ns each); the dense
# NumPy kernel 56.8 ms per step of 200 × 70 cells × 75 grains (54 ns per cell and grain). The
# projection counts every row as active, so it is an upper bound on that machine. The JAX backend
# computes every order parameter densely too; on that machine's CPU it took 24–34 ms per such
# step in float64 (docs/results-throughput.md), below the dense NumPy figure, which therefore
# bounds it (a GPU is far faster).
SPARSE_SECONDS_PER_CELL_UPDATE = 28e-9
DENSE_SECONDS_PER_CELL_GRAIN_UPDATE = 54e-9

# Bytes a run holds per cell (sparse: per slot of numerics.capacity) — the kernels' arrays:
# sparse: two (index int32 + value float64) buffers of capacity + 1 slots, change flags, and the
# arrays it is built from; dense: φ and about seven NumPy temporaries of one step. Both build a
# dense φ (n_grains × cells) and ~4 temporaries for the free energy at every snapshot.
_SPARSE_BYTES_PER_SLOT = 2 * (4 + 8) + (4 + 8)
_DENSE_COPIES_PER_STEP = 8
_FREE_ENERGY_COPIES = 5
_BYTES_PER_CELL = 4 * 3 + 8     # labels (nuclei, current, snapshot) and the nucleation distances


@dataclass(frozen=True)
class MemoryEstimate:
    """Memory a run will need (bytes) against what the machine has available."""

    needed_bytes: float
    available_bytes: float

    @property
    def fits(self) -> bool:
        return self.needed_bytes <= self.available_bytes


def estimate_memory(config: SimulationConfig, n_grains: int | None = None) -> MemoryEstimate:
    """The memory a run of ``config`` needs at its peak, before anything is allocated.

    Parameters
    ----------
    config : SimulationConfig
    n_grains : int, optional
        Number of grains (default: ``nucleation.count``).
    """
    cells = float(config.grid.nx) * float(config.grid.ny)
    grains = float(n_grains if n_grains is not None else config.nucleation.count)
    snapshots = len(config.run.snapshot_times_s) + 1
    if config.numerics.kernel == "dense":
        field = _DENSE_COPIES_PER_STEP * grains * cells * 8
    else:
        field = (config.numerics.capacity + 1) * cells * _SPARSE_BYTES_PER_SLOT + 2 * cells
    free_energy = _FREE_ENERGY_COPIES * grains * cells * 8
    needed = field + free_energy + cells * (_BYTES_PER_CELL + 4 * snapshots)
    return MemoryEstimate(needed, float(psutil.virtual_memory().available))


def _check_memory(config: SimulationConfig, n_grains: int) -> None:
    estimate = estimate_memory(config, n_grains)
    if not estimate.fits:
        gib = 2.0 ** 30
        kernel = config.numerics.kernel
        detail = (f"numerics.capacity = {config.numerics.capacity} slots per cell" if kernel == "sparse"
                  else "φ of every grain in every cell")
        raise ConfigError(
            f"grid.nx × grid.ny = {config.grid.nx} × {config.grid.ny} cells with {n_grains} grains "
            f"({kernel} kernel, {detail}) need ≈ {estimate.needed_bytes / gib:.3g} GiB, more than the "
            f"{estimate.available_bytes / gib:.3g} GiB of memory available; allowed: a smaller grid"
            + (" or fewer nucleation.count" if kernel == "dense" else ""))


def _check_mapped_constants(config: SimulationConfig, parameters: OrientationParameters,
                            present: np.ndarray) -> None:
    """Refuse L_q or κ_q that overflow, are not finite, or underflow to 0 (naming the keys)."""
    mapping = config.mapping
    for k in np.unique(present):
        orientation = ORIENTATIONS[k]
        kappa, mobility = parameters.kappa[k], parameters.mobility[k]
        if not (np.isfinite(kappa) and kappa > 0):
            raise ConfigError(
                f"mapping.kappa1 = {mapping.kappa1:g}, mapping.kappa2 = {mapping.kappa2:g}: "
                f"κ = κ1·exp(κ2·E_s/E0) of ({orientation}) is {kappa:g} (E_s = "
                f"{parameters.surface_energy_J_m2[k]:g} J/m², E0 = "
                f"{parameters.reference_energy_J_m2:.4g} J/m²); allowed: mapping.kappa1 and "
                "mapping.kappa2 for which κ is finite and positive (κ2·E_s/E0 < 709)")
        if not (np.isfinite(mobility) and mobility > 0):
            raise ConfigError(
                f"mapping.L1 = {mapping.L1:g}, mapping.L2 = {mapping.L2:g}: L = "
                f"L1·exp(−L2·E_a/(k_B T)) of ({orientation}) is {mobility:g} (E_a = "
                f"{parameters.barrier_eV[k]:g} eV, T = {parameters.temperature_K:.2f} K); allowed: "
                "mapping.L1 and mapping.L2 for which L is finite and positive")


def _check_rates(config: SimulationConfig, rates: np.ndarray, orientation_of_grain: np.ndarray,
                 grains: GrainParameters) -> None:
    """Refuse a stability rate L_q(c_q + 8κ_q/h²) that overflows (naming every key in it)."""
    bad = ~np.isfinite(rates)
    if bad.any():
        q = int(np.flatnonzero(bad)[0])
        landau, mapping = config.landau, config.mapping
        raise ConfigError(
            f"the explicit-Euler rate L·(w·f0'' + 8κ/h²) of grain {q} ({ORIENTATIONS[orientation_of_grain[q]]}) "
            f"overflows (L = {grains.mobility[q]:.3g}, κ = {grains.kappa[q]:.3g}) with mapping.L1 = "
            f"{mapping.L1:g}, mapping.kappa1 = {mapping.kappa1:g}, landau.alpha = {landau.alpha:g}, "
            f"landau.beta = {landau.beta:g}, landau.gamma = {landau.gamma:g}, landau.w = {landau.w:g}, "
            f"grid.laplacian_spacing = {config.grid.laplacian_spacing:g}; allowed: values whose "
            "product stays below 1e308")


def _check_substeps(config: SimulationConfig, rates: np.ndarray, orientation_of_grain: np.ndarray,
                    grains: GrainParameters, needed: float) -> None:
    """Refuse more automatic sub-steps per step than ``numerics.max_substeps``."""
    cap = config.numerics.max_substeps
    if needed <= cap:
        return
    q = int(np.argmax(rates))
    limit = 2.0 / rates[q]
    raise ConfigError(
        f"grain ({ORIENTATIONS[orientation_of_grain[q]]}) with κ = {grains.kappa[q]:.3g} and "
        f"L = {grains.mobility[q]:.3g} is stable only for Δt < {limit:.3g} s: run.dt_s = "
        f"{config.run.dt_s:g} s would need {needed:.3g} sub-steps per step, more than "
        f"numerics.max_substeps = {cap}; allowed: run.dt_s ≤ {0.9 * limit * cap:.3g} s, a lower surface "
        "energy or mapping.kappa2 for that grain, or a larger numerics.max_substeps")


def _projected_kernel(config: SimulationConfig) -> str:
    return "jax" if config.numerics.backend == "jax" else config.numerics.kernel


def projected_run_hours(config: SimulationConfig, n_grains: int, substeps: float) -> float:
    """Upper bound of a run's compute time (hours) at the kernel speed measured by ``bench``.

    With adaptive sub-steps ``substeps`` is the count at the start, which can only fall.
    """
    cells = float(config.grid.nx) * float(config.grid.ny)
    with np.errstate(over="ignore"):
        steps = config.run.end_time_s / config.run.dt_s
        if _projected_kernel(config) in ("dense", "jax"):
            seconds = cells * n_grains * steps * substeps * DENSE_SECONDS_PER_CELL_GRAIN_UPDATE
        else:
            seconds = cells * steps * substeps * SPARSE_SECONDS_PER_CELL_UPDATE
    return seconds / 3600.0


def _check_projected_time(config: SimulationConfig, n_grains: int, substeps: float) -> None:
    hours = projected_run_hours(config, n_grains, substeps)
    bound = config.numerics.max_projected_hours
    if not hours <= bound:
        steps = config.run.end_time_s / config.run.dt_s
        raise ConfigError(
            f"projected compute time ≈ {hours:.3g} h ({config.grid.nx} × {config.grid.ny} cells, "
            f"{steps:.3g} steps of run.dt_s = {config.run.dt_s:g} s to run.end_time_s = "
            f"{config.run.end_time_s:g} s, {substeps:.3g} sub-step(s) each, {_projected_kernel(config)} "
            f"kernel) exceeds numerics.max_projected_hours = {bound:g}; allowed: a shorter run, a "
            "smaller grid, or a larger numerics.max_projected_hours")


class TimeGridWarning(UserWarning):
    """A requested time is not a whole number of steps of ``run.dt_s``; the nearest step is used."""


def _step_of(time_s: float, dt: float) -> tuple[int, bool]:
    """Nearest whole step of ``time_s`` and whether it lands on it (to rounding)."""
    step = int(round(time_s / dt))
    return step, abs(step * dt - time_s) <= 1e-9 * max(abs(time_s), dt)


def build(config: SimulationConfig, *, initial_labels: np.ndarray | None = None,
          grain_orientation: list[str] | None = None) -> ModelInputs:
    """The numbers of a run of ``config``, after checking that the run can be done.

    Parameters
    ----------
    config : SimulationConfig
        A validated configuration (:func:`softgrain.config.load_config`).
    initial_labels : numpy.ndarray, optional
        (ny, nx) grain labels to start from instead of nucleation; the deposition front is then
        switched off (all rows active). Labels must be 0..n−1 (−1 for empty cells).
    grain_orientation : list of str, optional
        Orientation of each grain of ``initial_labels`` ("001", "101", "111"); required with it.

    Warns
    -----
    SubsteppingWarning
        If Δt exceeds the explicit-Euler stability limit and is split into sub-steps.
    TimeGridWarning
        If ``run.end_time_s`` or a snapshot time is not a whole number of steps.

    Raises
    ------
    ConfigError
        Before anything large is allocated or computed: a material that cannot be set up
        (:func:`material_inputs`), a run that needs more memory than is available
        (:func:`estimate_memory`), mapped constants L_q or κ_q that overflow or vanish, more
        sub-steps per step than ``numerics.max_substeps``, a projected compute time above
        ``numerics.max_projected_hours``, initial labels that do not fit, or an end time shorter
        than one step.
    StabilityError
        If Δt exceeds the stability limit and ``run.substeps = "refuse"``.
    MoltenMetalError
        If ``run.temperature_C`` is not below the metal's melting point.
    """
    material = material_inputs(config)
    shape = (config.grid.ny, config.grid.nx)
    dt = config.run.dt_s
    if initial_labels is not None:
        labels = np.asarray(initial_labels)
        _check_memory(config, int(labels.max()) + 1 if labels.size else 1)
        nucleation = nucleation_from_labels(labels, grain_orientation, shape)
        crystals = grain_crystals(config, material, nucleation.grain_orientation)
        front = DepositionFront.disabled(config.grid.ny)
    else:
        _check_memory(config, config.nucleation.count)
        allowed = np.array([ORIENTATIONS.index(o) for o in config.nucleation.orientations])
        nucleation = nucleate(shape, config.nucleation.count, config.nucleation.rows,
                              config.nucleation.radius_cells, len(ORIENTATIONS), config.run.seed,
                              allowed_orientations=allowed, layer=config.nucleation.layer,
                              min_spacing_cells=config.nucleation.min_spacing_cells)
        if config.nucleation.orientation_distribution == "labels":
            crystals = grain_crystals(config, material, nucleation.grain_orientation)
        else:
            # The positions are nucleation's; the labels it drew give way to the orientations
            # (each grain's orientation index becomes its nearest pole, for the per-orientation
            # tables and maps).
            crystals = grain_crystals(config, material, None)
            nucleation = replace(nucleation, grain_orientation=crystals.nearest_pole)
        if config.deposition.enabled:
            front = DepositionFront.from_speed(
                config.grid.ny, nucleation.filled_rows, config.deposition.front_speed_um_s,
                config.deposition.crossing_time_s, config.grid.spacing_um, dt)
        else:
            front = DepositionFront.disabled(config.grid.ny)
    landau = Landau(config.landau.alpha, config.landau.beta, config.landau.gamma, config.landau.w)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        formulation = grain_constants(config, material, crystals)
    orientation_parameters = formulation.orientation_parameters
    grains = formulation.grains
    mobility, kappa = grains.mobility, grains.kappa
    go = nucleation.grain_orientation
    # Fair nucleation: an open front stays closed until the deposit holds the widest
    # grain–surface profile (softgrain.phasefield.deposition).
    open_from = (resolved_front_rows(kappa, grains.weight, landau.alpha,
                                     config.grid.laplacian_spacing)
                 if config.deposition.open_front_from == "resolved" else 0)
    rates = stability_rates(mobility, kappa, landau, config.grid.laplacian_spacing,
                            grains.weight, grains.tilt)
    _check_rates(config, rates, go, grains)
    limit = float(2.0 / rates.max())
    needed = dt / (0.9 * limit)   # float: may be astronomically large before the cap refuses it
    if needed > 1 and config.run.substeps == "refuse":
        raise StabilityError(
            f"run.dt_s = {dt}: Δt = {dt} s exceeds the explicit-Euler stability limit {limit:.4g} s "
            f"(max L_q·κ_q = {(mobility * kappa).max():.3g}) and run.substeps = 'refuse'; "
            f"allowed: run.dt_s ≤ {0.9 * limit:.4g}, or run.substeps = 'auto' or 'adaptive'")
    _check_substeps(config, rates, go, grains, needed)
    substeps = substeps_for(dt, limit)
    _check_projected_time(config, len(go), substeps)
    if substeps > 1:
        then = (f", recomputed every {config.numerics.adaptive_every_steps} steps from the grains "
                "present" if config.run.substeps == "adaptive" else "")
        warnings.warn(f"Δt = {dt} s exceeds the explicit-Euler stability limit {limit:.4g} s "
                      f"(max L_q·κ_q = {(mobility * kappa).max():.3g}): taking {substeps} sub-steps "
                      f"of {dt / substeps:.4g} s per step{then}", SubsteppingWarning, stacklevel=2)
    total_steps, exact = _step_of(config.run.end_time_s, dt)
    if total_steps < 1:
        raise ConfigError(f"run.end_time_s = {config.run.end_time_s} is shorter than one time step")
    if not exact:
        warnings.warn(f"run.end_time_s = {config.run.end_time_s:g} s is not a whole number of steps of "
                      f"run.dt_s = {dt:g} s: the run ends at {total_steps * dt:g} s", TimeGridWarning,
                      stacklevel=2)
    wanted = [t for t in config.run.snapshot_times_s if t <= config.run.end_time_s + 1e-12]
    steps = []
    for t in wanted:
        step, exact = _step_of(t, dt)
        steps.append(step)
        if not exact and step != total_steps:
            warnings.warn(f"run.snapshot_times_s: {t:g} s is not a whole number of steps of run.dt_s = "
                          f"{dt:g} s: that snapshot is stored at {step * dt:g} s", TimeGridWarning,
                          stacklevel=2)
    snapshot_steps = tuple(sorted(set(steps) | {total_steps}))
    return ModelInputs(
        name=config.name, shape=shape, spacing_um=config.grid.spacing_um,
        laplacian_spacing=config.grid.laplacian_spacing, dt_s=dt, substeps=substeps,
        stability_limit_s=limit, total_steps=total_steps, snapshot_steps=snapshot_steps,
        landau=landau, orientation_parameters=orientation_parameters, nucleation=nucleation,
        custom_initial_labels=initial_labels is not None, front=front,
        open_front=config.deposition.front_boundary == "empty", grains=grains,
        open_front_from_rows=open_from, formulation=config.model.formulation,
        strain_coupling_m3_J=formulation.strain_coupling_m3_J,
        orientation_strain_energy_J_m3=formulation.orientation_strain_energy_J_m3,
        kernel="jax" if config.numerics.backend == "jax" else config.numerics.kernel,
        prune_threshold=config.numerics.prune_threshold,
        adaptive_every=(config.numerics.adaptive_every_steps
                        if config.run.substeps == "adaptive" else None),
        dtype=config.numerics.dtype, compaction_every=config.numerics.compaction_every_steps,
        capacity=config.numerics.capacity, threads=config.numerics.threads,
        config_json=config.to_json(),
        attrs={"preset": config.name, "metal": config.material.metal,
               "temperature_C": config.run.temperature_C, "seed": config.run.seed,
               "strain": material.strain, "orientation_distribution": crystals.distribution,
               "class_tolerance_deg": config.analysis.tolerance_deg},
        grain_quaternion=crystals.quaternion,
        grain_surface_energy_J_m2=crystals.surface_energy_J_m2, grain_barrier_eV=crystals.barrier_eV)


def simulation(config: SimulationConfig, *, initial_labels: np.ndarray | None = None,
               grain_orientation: list[str] | None = None) -> Simulation:
    """A new :class:`~softgrain.phasefield.solver.Simulation` of ``config`` (see :func:`build`)."""
    return Simulation(build(config, initial_labels=initial_labels, grain_orientation=grain_orientation))


def simulate(config: SimulationConfig, *, initial_labels: np.ndarray | None = None,
             grain_orientation: list[str] | None = None, progress: bool = False) -> xr.Dataset:
    """Run a phase-field simulation of ``config`` and return its result.

    Parameters
    ----------
    config : SimulationConfig
        E.g. ``softgrain.config.load_config("li-solid")``.
    initial_labels : numpy.ndarray, optional
        (ny, nx) grain labels to start from (deposition front switched off), for scripted or
        analytic initial states.
    grain_orientation : list of str, optional
        Orientation per grain of ``initial_labels``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    xarray.Dataset
        ``grain`` (time, y, x) maps at the snapshot times, per-grain orientation, L_q and κ_q,
        per-orientation inputs, and the full configuration in ``attrs["config_json"]``
        (:func:`softgrain.output.results.run_dataset`).
    """
    sim = simulation(config, initial_labels=initial_labels, grain_orientation=grain_orientation)
    if progress:
        with tqdm(total=sim.total_steps, unit="step", desc=config.name, leave=False) as bar:
            sim.run(bar.update)
    else:
        sim.run()
    return run_dataset(sim)


def simulate_batch(configs: Sequence[SimulationConfig], *, batch_size: int | None = None,
                   split: bool = True) -> list[xr.Dataset | SimulationError]:
    """Run ``configs`` as batches on one JAX device and return each run's result.

    The configurations are set up one by one (:func:`build`), grouped into batches of runs that
    share grid, time step, end, snapshots, front and Landau α β γ
    (:func:`softgrain.phasefield.batched_jax.batch_key`), split to fit the device memory, and run
    by :func:`softgrain.phasefield.batched_jax.run_batch` — each run with its own nuclei,
    per-grain constants and sub-step count, so each result is the run of its configuration.

    Parameters
    ----------
    configs : sequence of SimulationConfig
        The runs (any ``numerics.backend``: they run on JAX, in ``numerics.dtype``).
    batch_size : int, optional
        Largest batch (default: as many as fit the device memory).
    split : bool
        A ``batch_size`` that does not fit: use the largest that does, or refuse with
        :class:`~softgrain.phasefield.batched_jax.BatchTooLargeError` before anything runs.

    Returns
    -------
    list
        Per configuration, in order: the result dataset (as :func:`simulate`, except that the
        free energy is not computed: NaN, and ``wall_time_s`` is the batch's time divided by its
        runs), or a :class:`~softgrain.errors.SimulationError` for a run whose field turned
        non-finite (the other runs of its batch are unaffected).

    Raises
    ------
    BackendUnavailableError
        Without jax (one line, with the install command).
    """
    batched = load_batched_jax()
    inputs = [build(config) for config in configs]
    started = provenance.utc_now()
    results = batched.run_batches(inputs, batch_size=batch_size, split=split)
    finished = provenance.utc_now()
    out: list[xr.Dataset | SimulationError] = []
    for run, result in zip(inputs, results):
        if result.failed:
            out.append(SimulationError(f"{run.name} (seed {run.attrs.get('seed')}): {result.error}"))
            continue
        snapshots = [Snapshot(time_s=s.step * run.dt_s, step=s.step, active_rows=s.active_rows,
                              labels=s.labels, free_energy=float("nan")) for s in result.snapshots]
        out.append(build_dataset(run, snapshots, step=run.total_steps, substeps=result.substeps,
                                 kernel_steps=result.kernel_steps,
                                 wall_time_s=result.wall_time_s, started_at=started,
                                 finished_at=finished))
    return out


def save_run(ds: xr.Dataset, folder: str | Path, figures: bool = True) -> dict[str, Path]:
    """Write a run's result, summary and figures into ``folder``; return the paths written.

    ``result.nc``, ``summary.json`` (:func:`softgrain.analysis.summary`) and, with ``figures``
    and at least one snapshot, ``grain_maps.png`` and ``texture.png``; for random or fibre
    orientations also ``ipf_map.png`` and ``growth_texture.png`` of the last snapshot; each file
    atomically.
    """
    folder = Path(folder)
    written = {
        "result": write_netcdf(ds, folder / RESULT_FILE),
        "summary": write_json(folder / SUMMARY_FILE, analysis.summary(ds)),
    }
    if figures and ds.sizes.get("time", 0):
        written["maps"] = save_figure(plots.plot_grain_maps(ds), folder / MAPS_FIGURE)
        written["texture"] = save_figure(plots.plot_texture_evolution(analysis.texture(ds)),
                                         folder / TEXTURE_FIGURE)
        if orientation_distribution(ds) != "labels" and "grain_quaternion" in ds:
            written["ipf_map"] = save_figure(orientation_plots.plot_run_ipf_map(ds), folder / IPF_MAP_FIGURE)
            written["growth_texture"] = save_figure(orientation_plots.plot_run_growth_texture(ds),
                                                    folder / GROWTH_TEXTURE_FIGURE)
    return written


def restore(state: dict[str, object]) -> Simulation:
    """The run saved in a checkpoint ``state``, rebuilt from its configuration to continue it.

    Raises
    ------
    ConfigError
        If the state does not fit this version of softgrain (nucleation or sub-steps differ).
    """
    config = validate_config(json.loads(str(state["config_json"])), source="checkpoint")
    custom = bool(state["custom_initial_labels"])
    labels = np.asarray(state["nucleation_labels"])
    orientation = np.asarray(state["nucleation_grain_orientation"])
    inputs = build(config, initial_labels=labels if custom else None,
                   grain_orientation=[ORIENTATIONS[i] for i in orientation] if custom else None)
    return Simulation.from_state(inputs, state)


def resume(folder: str | Path, progress: bool = False,
           write_outputs: Callable | None = None) -> tuple[Simulation, xr.Dataset]:
    """Continue the run whose checkpoints are in ``folder`` and finish it.

    Parameters
    ----------
    folder : path
        Output folder of the interrupted run.
    progress : bool
        Show a progress bar.
    write_outputs : callable, optional
        ``write_outputs(dataset, folder)``; default :func:`save_run`.

    Returns
    -------
    (simulation, dataset)

    Raises
    ------
    CheckpointError
        If ``folder`` holds no usable checkpoint (the message says why, and whether the run had
        already finished).
    FolderInUseError
        If another process works in ``folder`` (it holds the folder's lock).
    RunStopped
        As :func:`softgrain.output.checkpoint.run_to_end`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise checkpoint.CheckpointError(f"{folder}: no such output folder")
    with folder_lock(folder):
        try:
            state, runner, path = checkpoint.load_latest(folder)
        except checkpoint.CheckpointError:
            if not checkpoint.list_checkpoints(folder) and _finished_result(folder):
                raise checkpoint.CheckpointError(f"{folder}: the run is already complete (result.nc); "
                                                 "nothing to resume") from None
            raise
        checkpoint.remove_stale_writes(folder)
        try:
            sim = restore(state)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, UserInputError):
                raise
            raise checkpoint.CheckpointError(f"{path}: checkpoint does not fit this softgrain version "
                                             f"({type(exc).__name__}: {exc})") from None
        dataset = checkpoint.run_to_end(sim, folder, runner.get("checkpoint_every_s"), progress=progress,
                                        write_outputs=write_outputs or save_run,
                                        keep_checkpoints=bool(runner.get("keep_checkpoints", False)))
    return sim, dataset


def _finished_result(folder: Path) -> bool:
    result = folder / RESULT_FILE
    if not result.is_file():
        return False
    try:
        return read_netcdf(result).attrs.get("status") == "complete"
    except (OSError, ValueError):
        return False


__all__ = [
    "DENSE_SECONDS_PER_CELL_GRAIN_UPDATE",
    "FormulationConstants",
    "GrainCrystals",
    "MaterialInputs",
    "MemoryEstimate",
    "ORIENTATION_STREAM",
    "SPARSE_SECONDS_PER_CELL_UPDATE",
    "TimeGridWarning",
    "build",
    "estimate_memory",
    "grain_constants",
    "grain_crystals",
    "material_inputs",
    "projected_run_hours",
    "restore",
    "resume",
    "save_run",
    "simulate",
    "simulate_batch",
    "simulation",
]
