"""The one schema of softgrain's results: ``result.nc`` of a run and the sweep stores, and their accessors.

Names, units and attributes of every variable are written here and nowhere else:

- :func:`run_dataset` — the dataset of a phase-field run (``result.nc``; :func:`build_dataset`
  makes the same from the run's numbers and snapshots, e.g. for the runs of a JAX batch): grain
  maps at the snapshot times, per-grain orientation (label or nearest pole, quaternion, Bunge
  Euler angles, growth direction, EBSD-like class and angle to the nearest pole), L_q, κ_q, E_s
  and E_a, per-orientation inputs, the configuration (``config_json``) and the provenance in the
  attributes;
- :func:`sweep_dataset` — the results of a sweep or seed ensemble, one value per (point, seed)
  (``fraction``, ``status``, …), every task pending;
- the accessors everyone uses: :func:`orientation_index` (orientation of each grain as an index
  into :data:`~softgrain.materials.metals.ORIENTATIONS`), :func:`grain_quaternions` (each grain's
  crystal orientation), :func:`orientation_distribution`, :func:`per_cell` (per-grain values →
  per-cell map), :func:`orientation_map`, and :func:`load_result` (a run folder's result).

Crystal orientations follow orix (and .ang/.ctf files): a unit quaternion (w, x, y, z) or Bunge
Euler angles (φ1, Φ, φ2, ZXZ) rotating the sample frame into the crystal frame, with cubic m-3m
symmetry. The growth axis is sample z, which is the grid's ``y`` (height above the substrate).

A run folder (``softgrain run … --out DIR``) holds :data:`RESULT_FILE`, :data:`SUMMARY_FILE`
(orientation fractions and grain counts at each snapshot), :data:`MAPS_FIGURE` (orientation /
surface-energy / diffusion-barrier maps, paper Fig. 2 columns) and :data:`TEXTURE_FIGURE`
(orientation fractions against height and time), each written atomically; a run with random
or fibre orientations also gets :data:`IPF_MAP_FIGURE` (grain map in the IPF colour key along the
growth direction) and :data:`GROWTH_TEXTURE_FIGURE` (IPF densities and pole figures).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from softgrain import provenance
from softgrain.errors import UserInputError
from softgrain.materials.metals import ORIENTATIONS
from softgrain.output.files import read_netcdf
from softgrain.phasefield.inputs import ModelInputs
from softgrain.phasefield.solver import Simulation, Snapshot
from softgrain.physics import orientations

RESULT_FILE = "result.nc"
SUMMARY_FILE = "summary.json"
MAPS_FIGURE = "grain_maps.png"
TEXTURE_FIGURE = "texture.png"
IPF_MAP_FIGURE = "ipf_map.png"
GROWTH_TEXTURE_FIGURE = "growth_texture.png"

QUATERNION_COMPONENTS = ("w", "x", "y", "z")
EULER_ANGLES = ("phi1", "Phi", "phi2")
CRYSTAL_AXES = ("h", "k", "l")

LENGTH_UNITS = "um"
"""Units of every length coordinate and variable (UDUNITS / CF spelling of µm)."""

TASK_PENDING, TASK_OK, TASK_FAILED = 0, 1, 2
"""Values of a sweep store's ``status`` variable."""

STATUS_MEANINGS = "pending ok failed"

# Per-task scalar variables of a sweep store: name → (fill value for "not computed", attributes).
SWEEP_SCALAR_VARIABLES: dict[str, tuple[Any, dict[str, str]]] = {
    "grain_count": (-1, {"long_name": "grains present in the final snapshot",
                         "description": "-1 = not computed"}),
    "surface_grain_count": (-1, {"long_name": "grains at the top surface of the final snapshot",
                                 "description": "-1 = not computed"}),
    "surface_grain_width_um": (np.nan, {"long_name": "mean width of the surface grains",
                                        "units": LENGTH_UNITS}),
    "wall_time_s": (np.nan, {"long_name": "wall time of the simulation", "units": "s"}),
    "cpu_time_s": (np.nan, {"long_name": "CPU time of the simulation process", "units": "s",
                            "description": "less sensitive than wall time to other load on the node"}),
    "finished_at_unix_s": (np.nan, {"long_name": "time the task finished",
                                    "units": "s",
                                    "description": "seconds since 1970-01-01T00:00:00 UTC"}),
}

SWEEP_RESERVED_NAMES = frozenset({
    "seed", "orientation", "y", "x", "fraction", "surface_fraction", "status", "error",
    "final_orientation", *SWEEP_SCALAR_VARIABLES,
})
"""Names a sweep store uses for its own dimensions and variables; axes may not take them."""


# ---------------------------------------------------------------------------------------------
# Accessors
# ---------------------------------------------------------------------------------------------

def orientation_index(ds: xr.Dataset) -> np.ndarray:
    """Orientation of every grain of a run result as an index into ``ORIENTATIONS`` (int32)."""
    return np.array([ORIENTATIONS.index(str(o)) for o in ds["grain_orientation"].values], dtype=np.int32)


def orientation_distribution(ds: xr.Dataset) -> str:
    """How the run's orientations were drawn: "labels" (also for results older than the
    attribute), "random" or "fibre"."""
    return str(ds.attrs.get("orientation_distribution", "labels"))


def grain_quaternions(ds: xr.Dataset) -> np.ndarray:
    """Each grain's crystal orientation as unit quaternions (n_grains, 4), (w, x, y, z).

    Raises
    ------
    UserInputError
        If the result has none (written before softgrain stored orientations).
    """
    if "grain_quaternion" not in ds:
        raise UserInputError("the result holds no grain orientations (grain_quaternion); "
                             "rerun it with this softgrain")
    return np.asarray(ds["grain_quaternion"].values, dtype=float)


def class_tolerance_deg(ds: xr.Dataset) -> float:
    """The EBSD-like class tolerance (degrees) the run was set up with (default 15°)."""
    return float(ds.attrs.get("class_tolerance_deg", orientations.DEFAULT_TOLERANCE_DEG))


def per_cell(grain_map: np.ndarray, per_grain: np.ndarray, empty: Any) -> np.ndarray:
    """The per-grain values ``per_grain`` at every cell of ``grain_map``; ``empty`` where no grain."""
    grain_map = np.asarray(grain_map)
    per_grain = np.asarray(per_grain)
    out = np.full(grain_map.shape, empty, dtype=np.result_type(per_grain, type(empty)))
    occupied = grain_map >= 0
    out[occupied] = per_grain[grain_map[occupied]]
    return out


def orientation_map(grain_map: np.ndarray, grain_orientation: np.ndarray) -> np.ndarray:
    """Orientation index at every cell (−1 where no grain), int32."""
    return per_cell(grain_map, np.asarray(grain_orientation), np.int32(-1)).astype(np.int32)


def grid_step(coordinate: np.ndarray) -> float:
    """Spacing of an evenly spaced coordinate (1 for a single point)."""
    values = np.asarray(coordinate, dtype=float)
    return float(values[1] - values[0]) if values.size > 1 else 1.0


def load_result(folder: str | Path) -> xr.Dataset:
    """The ``result.nc`` of a run folder, fully loaded.

    Raises
    ------
    UserInputError
        If the folder has no readable result (the message names the path).
    """
    path = Path(folder) / RESULT_FILE
    if not Path(folder).is_dir():
        raise UserInputError(f"{folder}: no such run folder")
    if not path.is_file():
        raise UserInputError(f"{path}: no result file (a run writes one into its output folder)")
    try:
        ds = read_netcdf(path)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path}: cannot read the result: {exc}") from None
    missing = [name for name in ("grain", "grain_orientation") if name not in ds]
    if missing:
        raise UserInputError(f"{path}: not a softgrain result (missing {', '.join(missing)})")
    return ds


# ---------------------------------------------------------------------------------------------
# result.nc
# ---------------------------------------------------------------------------------------------

def run_dataset(sim: Simulation) -> xr.Dataset:
    """The snapshots of ``sim`` so far as the ``result.nc`` dataset (see README "Outputs")."""
    return build_dataset(sim.inputs, sim.snapshots, step=sim.step, substeps=sim.substeps,
                         kernel_steps=sim.kernel_steps, wall_time_s=sim.wall_time_s,
                         started_at=sim.started_at, finished_at=sim.finished_at,
                         resumed_at=sim.resumed_at)


def build_dataset(inputs: ModelInputs, snapshots: Sequence[Snapshot], *, step: int, substeps: int,
                  kernel_steps: int, wall_time_s: float, started_at: str,
                  finished_at: str | None = None, resumed_at: Sequence[str] = ()) -> xr.Dataset:
    """The ``result.nc`` dataset of the run of ``inputs`` that has reached outer step ``step``.

    Parameters
    ----------
    inputs : ModelInputs
        The numbers of the run.
    snapshots : sequence of Snapshot
        Grain maps taken so far (free energy NaN where it was not computed).
    step, substeps, kernel_steps : int
        Outer steps done, sub-steps per step at the end, explicit-Euler steps taken.
    wall_time_s, started_at, finished_at, resumed_at
        Wall time spent stepping and the UTC timestamps of the run.
    """
    params = inputs.orientation_parameters
    go = inputs.nucleation.grain_orientation
    ny, nx = inputs.shape
    spacing = inputs.spacing_um
    snaps = list(snapshots)
    finished = step >= inputs.total_steps
    surface_energy = (params.surface_energy_J_m2[go] if inputs.grain_surface_energy_J_m2 is None
                      else np.asarray(inputs.grain_surface_energy_J_m2, dtype=float))
    barrier = params.barrier_eV[go] if inputs.grain_barrier_eV is None else np.asarray(inputs.grain_barrier_eV, dtype=float)
    grain_maps = (np.stack([s.labels for s in snaps]) if snaps
                  else np.zeros((0, ny, nx), dtype=np.int32))
    ds = xr.Dataset(
        data_vars={
            "grain": (("time", "y", "x"), grain_maps.astype(np.int32), {
                "long_name": "grain index with the largest order parameter",
                "description": "−1 where no grain (max φ < 0.5) or not yet deposited"}),
            "active_rows": (("time",), np.array([s.active_rows for s in snaps], dtype=np.int32),
                            {"long_name": "rows behind the deposition front"}),
            "free_energy": (("time",), np.array([s.free_energy for s in snaps]),
                            {"long_name": "discrete free energy F (model units)"}),
            "step": (("time",), np.array([s.step for s in snaps], dtype=np.int64)),
            "grain_orientation": (("grain_id",), np.array([ORIENTATIONS[i] for i in go]), {
                "long_name": "orientation of each grain",
                "description": "labels mode: the grain's label; random/fibre modes: the pole "
                               "(001, 101, 111) nearest to its growth direction"}),
            "grain_mobility": (("grain_id",), inputs.mobility, {"long_name": "L_q (Eq. S14)"}),
            "grain_kappa": (("grain_id",), inputs.kappa, {
                "long_name": "κ_q (Eq. S15 for the paper formulation, κ0·E_s,q/E0 for the "
                             "consistent one)"}),
            "grain_weight": (("grain_id",), inputs.grains.weight, {
                "long_name": "w_q, weight of grain q's Landau terms",
                "description": "paper: landau.w; consistent: E_s,q/E0"}),
            "grain_tilt": (("grain_id",), inputs.grains.tilt, {
                "long_name": "g_q, bulk free-energy offset of grain q (model units)",
                "description": "paper: 0; consistent: λ·(F_strain,q − min F_strain) + "
                               "(w_q − 1)·α²/(4β)"}),
            "grain_surface_energy": (("grain_id",), surface_energy,
                                     {"units": "J/m^2", "long_name": "surface energy E_s of each grain"}),
            "grain_barrier": (("grain_id",), barrier,
                              {"units": "eV", "long_name": "surface self-diffusion barrier E_a of each grain"}),
            "initial_grain": (("y", "x"), inputs.nucleation.labels.astype(np.int32),
                              {"long_name": "grain map at t = 0 (nuclei)"}),
        },
        coords={
            "time": ("time", np.array([s.time_s for s in snaps]), {"units": "s"}),
            "y": ("y", np.arange(ny) * spacing, {"units": LENGTH_UNITS, "long_name": "height above substrate"}),
            "x": ("x", np.arange(nx) * spacing, {"units": LENGTH_UNITS}),
            "grain_id": ("grain_id", np.arange(inputs.n_grains)),
            "orientation": ("orientation", list(ORIENTATIONS)),
            "quaternion_component": ("quaternion_component", list(QUATERNION_COMPONENTS)),
            "euler_angle": ("euler_angle", list(EULER_ANGLES)),
            "crystal_axis": ("crystal_axis", list(CRYSTAL_AXES)),
        },
        attrs={
            "title": f"softgrain phase-field run: {inputs.name}",
            "config_json": inputs.config_json,
            **inputs.attrs,
            "formulation": inputs.formulation,
            "reference_surface_energy_J_m2": params.reference_energy_J_m2,
            "strain_coupling_m3_J": inputs.strain_coupling_m3_J,
            "open_front_from_rows": inputs.open_front_from_rows,
            "stability_limit_s": inputs.stability_limit_s,
            "substeps": inputs.substeps,
            "substeps_mode": "adaptive" if inputs.adaptive_every else "fixed",
            "substeps_last": substeps,
            "kernel_steps": kernel_steps,
            "kernel": inputs.kernel,
            "dtype": inputs.dtype if inputs.kernel == "jax" else "float64",
            "front_rows_per_step": inputs.front.rows_per_step,
            "wall_time_s": wall_time_s,
            "started_at": started_at,
            "finished_at": finished_at or "",
            "resumed_at": ", ".join(resumed_at),
            "status": "complete" if finished else "incomplete",
            "last_step": step,
            "last_time_s": step * inputs.dt_s,
            **provenance.environment(),
        },
    )
    if inputs.grain_quaternion is not None:
        ds = ds.assign(crystal_orientation_variables(inputs.grain_quaternion, class_tolerance_deg(ds)))
    ds["orientation_surface_energy"] = (("orientation",), params.surface_energy_J_m2,
                                        {"units": "J/m^2"})
    ds["orientation_barrier"] = (("orientation",), params.barrier_eV, {"units": "eV"})
    ds["orientation_mobility"] = (("orientation",), params.mobility)
    ds["orientation_kappa"] = (("orientation",), params.kappa)
    if inputs.orientation_strain_energy_J_m3 is not None:
        ds["orientation_strain_energy"] = (("orientation",), inputs.orientation_strain_energy_J_m3, {
            "units": "J/m^3", "long_name": "F_strain = σ_y·ε of each orientation (theory Eq. S9–S11)"})
    return ds


def crystal_orientation_variables(quaternion: np.ndarray, tolerance_deg: float) -> dict[str, Any]:
    """The per-grain orientation variables of ``result.nc`` from the grains' quaternions.

    ``grain_quaternion`` (grain_id, quaternion_component), ``grain_euler_bunge`` (grain_id,
    euler_angle; degrees), ``grain_growth_direction`` (grain_id, crystal_axis), ``grain_class``
    ("001", "101", "111", "other" within ``tolerance_deg``), ``grain_nearest_pole`` and
    ``grain_pole_misorientation`` (degrees to the nearest pole).
    """
    quaternion = orientations.quaternions(quaternion)
    growth = orientations.growth_directions(quaternion)
    pole, angle = orientations.nearest_pole(growth)
    classes = orientations.class_labels(orientations.classify(growth, tolerance_deg)).astype(str)
    return {
        "grain_quaternion": (("grain_id", "quaternion_component"), quaternion, {
            "long_name": "crystal orientation of each grain as a unit quaternion",
            "units": "1",
            "description": "(w, x, y, z), orix convention: rotates the sample frame into the "
                           "crystal frame; cubic m-3m symmetry; scalar part w >= 0"}),
        "grain_euler_bunge": (("grain_id", "euler_angle"), orientations.bunge_euler_deg(quaternion), {
            "long_name": "crystal orientation of each grain as Bunge Euler angles",
            "units": "degree",
            "description": "(phi1, Phi, phi2), ZXZ, sample frame → crystal frame, as in .ang/.ctf files"}),
        "grain_growth_direction": (("grain_id", "crystal_axis"), growth, {
            "long_name": "crystal direction parallel to the growth axis (sample z = height y)",
            "units": "1",
            "description": "unit vector [h, k, l] reduced to the standard triangle 0 <= k <= h <= l"}),
        "grain_class": (("grain_id",), classes, {
            "long_name": "EBSD-like class of the growth direction",
            "description": f"001/101/111 within {tolerance_deg:g} degrees of <001>/<101>/<111>, else other",
            "tolerance_deg": float(tolerance_deg)}),
        "grain_nearest_pole": (("grain_id",), np.asarray(orientations.POLES)[pole], {
            "long_name": "low-index pole nearest to the growth direction"}),
        "grain_pole_misorientation": (("grain_id",), angle, {
            "long_name": "angle between the growth direction and the nearest pole",
            "units": "degree"}),
    }


# ---------------------------------------------------------------------------------------------
# Sweep stores
# ---------------------------------------------------------------------------------------------

def sweep_dataset(axes: Sequence[tuple[str, Sequence[Any], Mapping[str, str]]], seeds: Sequence[int],
                  *, maps_grid: tuple[int, int, float] | None = None,
                  attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
    """The results of a sweep with every task pending.

    Parameters
    ----------
    axes : sequence of (name, values, attributes)
        One dimension per axis, in order; the seed dimension follows them.
    seeds : sequence of int
        The nucleation seeds.
    maps_grid : (ny, nx, spacing_um), optional
        Also hold the final orientation and grain maps of every task (``final_orientation``,
        ``final_grain``) on this grid.
    attrs : mapping, optional
        Attributes of the dataset (the sweep's name, spec hash, …).

    Returns
    -------
    xarray.Dataset
        Dimensions: the axes, ``seed``, ``orientation`` (and ``y``, ``x`` with maps). Variables:
        ``fraction`` and ``surface_fraction`` (…, seed, orientation), ``status`` (0 pending, 1 ok,
        2 failed), ``error``, and the scalars of :data:`SWEEP_SCALAR_VARIABLES`.
    """
    dims = tuple(name for name, _, _ in axes) + ("seed",)
    shape = tuple(len(values) for _, values, _ in axes) + (len(seeds),)
    coords: dict[str, Any] = {}
    for name, values, axis_attrs in axes:
        array = np.asarray(values)
        if array.dtype.kind == "U":
            array = array.astype(object)  # variable-length strings: the Zarr v3 string type
        coords[name] = (name, array, dict(axis_attrs))
    coords["seed"] = ("seed", np.asarray(seeds, dtype=np.int64),
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
    for name, (fill, variable_attrs) in SWEEP_SCALAR_VARIABLES.items():
        dtype = np.int64 if isinstance(fill, int) else float
        data_vars[name] = (dims, np.full(shape, fill, dtype=dtype), variable_attrs)
    if maps_grid is not None:
        ny, nx, spacing = maps_grid
        data_vars["final_orientation"] = (dims + ("y", "x"), np.full(shape + (ny, nx), -1, np.int8), {
            "long_name": "orientation index of every cell in the final snapshot",
            "description": "index into the orientation coordinate; -1 = no grain"})
        # Grain identity as well: adjacent grains of one orientation are separate grains (EBSD
        # tells them apart by their in-plane rotation), which the orientation map cannot show.
        data_vars["final_grain"] = (dims + ("y", "x"), np.full(shape + (ny, nx), -1, np.int32), {
            "long_name": "grain index of every cell in the final snapshot",
            "description": "nucleus index of the run (its orientation is final_orientation); -1 = no grain"})
        coords["y"] = ("y", np.arange(ny) * spacing, {"units": LENGTH_UNITS,
                                                      "long_name": "height above substrate"})
        coords["x"] = ("x", np.arange(nx) * spacing, {"units": LENGTH_UNITS})
    return xr.Dataset(data_vars, coords=coords, attrs={"status_meanings": STATUS_MEANINGS,
                                                       **(attrs or {})})


__all__ = [
    "CRYSTAL_AXES",
    "EULER_ANGLES",
    "GROWTH_TEXTURE_FIGURE",
    "IPF_MAP_FIGURE",
    "LENGTH_UNITS",
    "QUATERNION_COMPONENTS",
    "MAPS_FIGURE",
    "RESULT_FILE",
    "STATUS_MEANINGS",
    "SUMMARY_FILE",
    "SWEEP_RESERVED_NAMES",
    "SWEEP_SCALAR_VARIABLES",
    "TASK_FAILED",
    "TASK_OK",
    "TASK_PENDING",
    "TEXTURE_FIGURE",
    "build_dataset",
    "class_tolerance_deg",
    "crystal_orientation_variables",
    "grain_quaternions",
    "grid_step",
    "load_result",
    "orientation_distribution",
    "orientation_index",
    "orientation_map",
    "per_cell",
    "run_dataset",
    "sweep_dataset",
]
