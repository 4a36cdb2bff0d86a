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

import dataclasses
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from softgrain import analysis
from softgrain.config import SimulationConfig, validate_config
from softgrain.errors import ConfigError, StabilityError, UserInputError
from softgrain.materials.metals import ORIENTATIONS, load_metal
from softgrain.output import checkpoint, plots
from softgrain.output.files import read_netcdf, save_figure, write_json, write_netcdf
from softgrain.output.results import MAPS_FIGURE, RESULT_FILE, SUMMARY_FILE, TEXTURE_FIGURE, run_dataset
from softgrain.phasefield.consistent import consistent_grain_constants, strain_coupling
from softgrain.phasefield.deposition import DepositionFront, resolved_front_rows
from softgrain.phasefield.energy import Landau
from softgrain.phasefield.grains import GrainParameters
from softgrain.phasefield.initial import nucleate, nucleation_from_labels
from softgrain.phasefield.inputs import ModelInputs
from softgrain.phasefield.mapping import (MappingConstants, OrientationParameters,
                                          SubsteppingWarning, map_orientations, stable_time_step,
                                          substeps_for)
from softgrain.phasefield.solver import Simulation
from softgrain.physics.conditions import LatticeStrain, lattice_strain
from softgrain.physics.theory import TheoryParameters, strain_energy

# A strain given beside [conditions] is accepted when it is the derived one (a stored
# configuration of an older softgrain records both); this is the tolerance of "the same".
_SAME_STRAIN = 1e-12


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
    """
    lattice = _lattice(config)
    material = config.material
    if lattice is not None:
        strain = lattice.strain
    else:
        strain = material.strain if material.strain is not None else 0.0
    metal = load_metal(material.metal)
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
                    grain_orientation: np.ndarray) -> FormulationConstants:
    """L_q, κ_q, w_q, g_q of grains of orientation indices ``grain_orientation``.

    ``model.formulation = "paper"``: Eq. S14–S15 as printed, κ_q = κ1·exp(κ2·E_s,q/E0) with E0 the
    mean E_s over the grains present, w_q = landau.w, g_q = 0.

    ``"consistent"`` (:mod:`softgrain.phasefield.consistent`, ``docs/consistent-formulation.md``):
    e_q = E_s,q/E0 with E0 the mean E_s of the metal's three orientations at its strain (a
    material constant, independent of the draw), κ_q = κ0·e_q, w_q = e_q,
    g_q = λ·(F_strain,q − min_o F_strain,o) + (e_q − 1)α²/(4β), with F_strain,o = σ_y·ε_o from the
    theory (Eq. S9–S11, :func:`softgrain.physics.theory.strain_energy`: the code and data-file
    constants of ``softgrain theory``) at the run's temperature, and λ = σ0·ℓ/E0 with ℓ = Δx / h
    (:func:`~softgrain.phasefield.consistent.strain_coupling`) — no new free constant. L_q is
    Eq. S14 in both.

    Raises
    ------
    ConfigError
        If the theory's constants cannot be read for this metal.
    """
    mapping = config.mapping
    constants = MappingConstants(mapping.L1, mapping.L2, mapping.kappa1, mapping.kappa2)
    landau = config.landau
    go = np.asarray(grain_orientation)
    if config.model.formulation == "paper":
        orientation = map_orientations(material.surface_energy_J_m2, material.barrier_eV,
                                       config.run.temperature_C, grain_orientation=go,
                                       constants=constants)
        mobility = np.ascontiguousarray(orientation.mobility[go])
        kappa = np.ascontiguousarray(orientation.kappa[go])
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
    coupling = strain_coupling(reference, mapping.kappa1, mapping.kappa2, length_unit_m,
                               landau.alpha, landau.beta, landau.gamma)
    per_orientation = consistent_grain_constants(
        orientation.surface_energy_J_m2, reference, mapping.kappa1, mapping.kappa2, strain,
        coupling, landau.alpha, landau.beta)
    orientation = dataclasses.replace(orientation, kappa=per_orientation.kappa)
    grains = GrainParameters(orientation.mobility[go], per_orientation.kappa[go],
                             per_orientation.weight[go], per_orientation.tilt[go])
    return FormulationConstants(orientation, grains, coupling, strain)


def build(config: SimulationConfig, *, initial_labels: np.ndarray | None = None,
          grain_orientation: list[str] | None = None) -> ModelInputs:
    """The numbers of a run of ``config``.

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

    Raises
    ------
    ConfigError
        For a material that cannot be set up (:func:`material_inputs`), initial labels that do
        not fit, or an end time shorter than one step.
    StabilityError
        If Δt exceeds the stability limit and ``run.substeps = "refuse"``.
    """
    material = material_inputs(config)
    shape = (config.grid.ny, config.grid.nx)
    if initial_labels is not None:
        nucleation = nucleation_from_labels(initial_labels, grain_orientation, shape)
        front = DepositionFront.disabled(config.grid.ny)
    else:
        allowed = np.array([ORIENTATIONS.index(o) for o in config.nucleation.orientations])
        nucleation = nucleate(shape, config.nucleation.count, config.nucleation.rows,
                              config.nucleation.radius_cells, len(ORIENTATIONS), config.run.seed,
                              allowed_orientations=allowed, layer=config.nucleation.layer,
                              min_spacing_cells=config.nucleation.min_spacing_cells)
        if config.deposition.enabled:
            front = DepositionFront.from_speed(
                config.grid.ny, nucleation.filled_rows, config.deposition.front_speed_um_s,
                config.deposition.crossing_time_s, config.grid.spacing_um, config.run.dt_s)
        else:
            front = DepositionFront.disabled(config.grid.ny)
    landau = Landau(config.landau.alpha, config.landau.beta, config.landau.gamma, config.landau.w)
    formulation = grain_constants(config, material, nucleation.grain_orientation)
    orientation_parameters = formulation.orientation_parameters
    grains = formulation.grains
    mobility, kappa = grains.mobility, grains.kappa
    # Fair nucleation: an open front stays closed until the deposit holds the widest
    # grain–surface profile (softgrain.phasefield.deposition).
    open_from = (resolved_front_rows(kappa, grains.weight, landau.alpha,
                                     config.grid.laplacian_spacing)
                 if config.deposition.open_front_from == "resolved" else 0)
    limit = stable_time_step(mobility, kappa, landau, config.grid.laplacian_spacing,
                             grains.weight, grains.tilt)
    substeps = substeps_for(config.run.dt_s, limit)
    dt = config.run.dt_s
    if substeps > 1:
        message = (f"Δt = {dt} s exceeds the explicit-Euler stability limit {limit:.4g} s "
                   f"(max L_q·κ_q = {(mobility * kappa).max():.3g})")
        if config.run.substeps == "refuse":
            raise StabilityError(f"run.dt_s = {dt}: {message} and run.substeps = 'refuse'; "
                                 f"allowed: run.dt_s ≤ {0.9 * limit:.4g}, or run.substeps = 'auto'")
        warnings.warn(f"{message}: taking {substeps} sub-steps of {dt / substeps:.4g} s per step",
                      SubsteppingWarning, stacklevel=2)
    total_steps = int(round(config.run.end_time_s / dt))
    if total_steps < 1:
        raise ConfigError(f"run.end_time_s = {config.run.end_time_s} is shorter than one time step")
    wanted = [t for t in config.run.snapshot_times_s if t <= config.run.end_time_s + 1e-12]
    snapshot_steps = tuple(sorted({int(round(t / dt)) for t in wanted} | {total_steps}))
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
        kernel=config.numerics.kernel, prune_threshold=config.numerics.prune_threshold,
        capacity=config.numerics.capacity, threads=config.numerics.threads,
        config_json=config.to_json(),
        attrs={"preset": config.name, "metal": config.material.metal,
               "temperature_C": config.run.temperature_C, "seed": config.run.seed,
               "strain": material.strain})


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


def save_run(ds: xr.Dataset, folder: str | Path, figures: bool = True) -> dict[str, Path]:
    """Write a run's result, summary and figures into ``folder``; return the paths written.

    ``result.nc``, ``summary.json`` (:func:`softgrain.analysis.summary`) and, with ``figures``
    and at least one snapshot, ``grain_maps.png`` and ``texture.png``; each file atomically.
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
    RunStopped
        As :func:`softgrain.output.checkpoint.run_to_end`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise checkpoint.CheckpointError(f"{folder}: no such output folder")
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
    "FormulationConstants",
    "MaterialInputs",
    "build",
    "grain_constants",
    "material_inputs",
    "restore",
    "resume",
    "save_run",
    "simulate",
    "simulation",
]
