"""The time loop of the phase-field model: set-up, stepping, deposition front, snapshots.

The loop advances the field in segments between events (a snapshot or the activation of a new
row by the deposition front), so that the compiled kernel runs many steps per call and the Python
loop costs nothing measurable.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import xarray as xr

from softgrain import provenance
from softgrain.config import SimulationConfig, validate_config
from softgrain.errors import ConfigError, SimulationError, StabilityError
from softgrain.materials import ORIENTATIONS
from softgrain.parameters import (MappingConstants, OrientationParameters, map_orientations,
                                  stable_time_step, substeps_for)
from softgrain.phasefield.deposition import DepositionFront
from softgrain.phasefield.energy import Landau, total_free_energy
from softgrain.phasefield.grains import GrainParameters
from softgrain.phasefield.initial import Nucleation, nucleate
from softgrain.phasefield.kernels import DenseField


class SubsteppingWarning(UserWarning):
    """Δt exceeded the explicit-Euler limit and was split into sub-steps."""


@dataclass
class Snapshot:
    time_s: float
    step: int
    active_rows: int
    labels: np.ndarray
    free_energy: float


@dataclass
class Simulation:
    """A configured phase-field run.

    Parameters
    ----------
    config : SimulationConfig
        The resolved configuration.
    initial_labels : numpy.ndarray, optional
        (ny, nx) grain labels to start from instead of nucleation; the deposition front is then
        switched off (all rows active). Labels must be 0..n−1 (−1 for empty cells).
    grain_orientation : sequence of str, optional
        Orientation of each grain of ``initial_labels`` ("001", "101", "111"); required with it.
    """

    config: SimulationConfig
    initial_labels: np.ndarray | None = None
    grain_orientation: list[str] | None = None
    snapshots: list[Snapshot] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        cfg = self.config
        shape = (cfg.grid.ny, cfg.grid.nx)
        if self.initial_labels is not None:
            self.nucleation = _nucleation_from_labels(self.initial_labels, self.grain_orientation, shape)
            self.front = DepositionFront.disabled(cfg.grid.ny)
        else:
            allowed = np.array([ORIENTATIONS.index(o) for o in cfg.nucleation.orientations])
            self.nucleation = nucleate(shape, cfg.nucleation.count, cfg.nucleation.rows,
                                       cfg.nucleation.radius_cells, len(ORIENTATIONS), cfg.run.seed,
                                       allowed_orientations=allowed)
            if cfg.deposition.enabled:
                self.front = DepositionFront.from_speed(
                    cfg.grid.ny, self.nucleation.filled_rows, cfg.deposition.front_speed_um_s,
                    cfg.deposition.crossing_time_s, cfg.grid.spacing_um, cfg.run.dt_s)
            else:
                self.front = DepositionFront.disabled(cfg.grid.ny)
        self.landau = Landau(cfg.landau.alpha, cfg.landau.beta, cfg.landau.gamma, cfg.landau.w)
        self.orientation_parameters: OrientationParameters = map_orientations(
            cfg.material.surface_energies(), cfg.material.barriers(), cfg.run.temperature_C,
            grain_orientation=self.nucleation.grain_orientation,
            constants=MappingConstants(cfg.mapping.L1, cfg.mapping.L2, cfg.mapping.kappa1,
                                       cfg.mapping.kappa2))
        go = self.nucleation.grain_orientation
        self.mobility = np.ascontiguousarray(self.orientation_parameters.mobility[go])
        self.kappa = np.ascontiguousarray(self.orientation_parameters.kappa[go])
        self.grains = GrainParameters.paper(self.mobility, self.kappa, self.landau.w)
        self.stability_limit_s = stable_time_step(self.mobility, self.kappa, self.landau,
                                                  cfg.grid.laplacian_spacing,
                                                  self.grains.weight, self.grains.tilt)
        self.substeps = substeps_for(cfg.run.dt_s, self.stability_limit_s)
        if self.substeps > 1:
            message = (f"Δt = {cfg.run.dt_s} s exceeds the explicit-Euler stability limit "
                       f"{self.stability_limit_s:.4g} s (max L_q·κ_q = {(self.mobility * self.kappa).max():.3g})")
            if cfg.run.substeps == "refuse":
                raise StabilityError(f"run.dt_s = {cfg.run.dt_s}: {message} and run.substeps = 'refuse'; "
                                     f"allowed: run.dt_s ≤ {0.9 * self.stability_limit_s:.4g}, "
                                     "or run.substeps = 'auto'")
            warnings.warn(f"{message}: taking {self.substeps} sub-steps of "
                          f"{cfg.run.dt_s / self.substeps:.4g} s per step", SubsteppingWarning,
                          stacklevel=3)
        self.field = self._new_field()
        self.step = 0
        self.total_steps = int(round(cfg.run.end_time_s / cfg.run.dt_s))
        if self.total_steps < 1:
            raise ConfigError(f"run.end_time_s = {cfg.run.end_time_s} is shorter than one time step")
        wanted = [t for t in cfg.run.snapshot_times_s if t <= cfg.run.end_time_s + 1e-12]
        self.snapshot_steps = sorted({int(round(t / cfg.run.dt_s)) for t in wanted} | {self.total_steps})
        self.wall_time_s = 0.0
        self.started_at = provenance.utc_now()
        self.finished_at: str | None = None
        self.resumed_at: list[str] = []

    @property
    def n_grains(self) -> int:
        return int(len(self.nucleation.grain_orientation))

    def _new_field(self):
        labels = self.nucleation.labels
        if self.config.numerics.kernel == "dense":
            return DenseField.from_labels(labels, self.n_grains)
        from softgrain.phasefield.sparse import SparseField

        return SparseField.from_labels(labels, capacity=self.config.numerics.capacity)

    @property
    def time_s(self) -> float:
        return self.step * self.config.run.dt_s

    def active_rows(self) -> int:
        return self.front.active_rows(self.step)

    def free_energy(self) -> float:
        """Discrete free energy F of the current state (deposited rows only)."""
        phi = self.field.to_dense(self.n_grains)
        return total_free_energy(phi, self.grains, self.landau, self.active_rows(),
                                 self.config.grid.laplacian_spacing, self.open_front)

    @property
    def open_front(self) -> bool:
        """Whether the deposition front faces empty space (φ = 0) rather than a zero-flux wall."""
        return self.config.deposition.front_boundary == "empty"

    def _next_event(self) -> int:
        candidates = [s for s in self.snapshot_steps if s > self.step]
        activations = self.front.activation_steps()
        later = activations[activations > self.step]
        if later.size:
            candidates.append(int(later[0]))
        return min(candidates + [self.total_steps])

    def advance_to(self, target_step: int, progress: Callable[[int], None] | None = None) -> None:
        """Advance to ``target_step`` (outer steps of Δt), recording snapshots on the way."""
        cfg = self.config
        dt_inner = cfg.run.dt_s / self.substeps
        started = time.perf_counter()
        if cfg.numerics.threads is not None:
            import numba

            numba.set_num_threads(min(cfg.numerics.threads, numba.config.NUMBA_NUM_THREADS))
        while self.step < min(target_step, self.total_steps):
            stop = min(self._next_event(), target_step)
            n = stop - self.step
            try:
                self.field.advance(n * self.substeps, dt_inner, self.active_rows(), self.grains,
                                   self.landau, cfg.grid.laplacian_spacing,
                                   prune_threshold=cfg.numerics.prune_threshold,
                                   open_front=self.open_front)
            except SimulationError as exc:
                raise SimulationError(
                    f"run stopped in the segment starting at step {self.step} (t = {self.time_s:g} s, "
                    f"{self.substeps} sub-step(s) per step): {exc}") from None
            self.step = stop
            if progress is not None:
                progress(n)
            if self.step in self.snapshot_steps and not any(s.step == self.step for s in self.snapshots):
                self.snapshots.append(Snapshot(
                    time_s=self.time_s, step=self.step, active_rows=self.active_rows(),
                    labels=self.field.labels(self.active_rows()), free_energy=self.free_energy()))
        self.wall_time_s += time.perf_counter() - started
        if self.finished and self.finished_at is None:
            self.finished_at = provenance.utc_now()

    @property
    def finished(self) -> bool:
        """True once the run has reached ``run.end_time_s``."""
        return self.step >= self.total_steps

    def state_dict(self) -> dict[str, object]:
        """Everything needed to continue this run bit-identically (see :meth:`from_state`).

        Returns
        -------
        dict
            NumPy arrays and scalars only: the configuration (JSON), the step, the nucleation
            (labels and grain orientations; the seed is in the configuration, and the random
            generator is used only for nucleation), the snapshots so far, the accumulated wall
            time and timestamps, and the field state — ``field_phi`` for the dense kernel,
            ``field_index``/``field_value`` plus the overflow policy for the sparse kernel. The
            sparse kernel's change flags are not saved: they only let it skip cells whose update
            would reproduce their current value exactly, so a restored field that recomputes
            every cell once continues bit-identically.
        """
        snaps = self.snapshots
        ny, nx = self.config.grid.ny, self.config.grid.nx
        state: dict[str, object] = {
            "config_json": self.config.to_json(),
            "step": self.step,
            "total_steps": self.total_steps,
            "substeps": self.substeps,
            "custom_initial_labels": self.initial_labels is not None,
            "nucleation_labels": self.nucleation.labels,
            "nucleation_grain_orientation": self.nucleation.grain_orientation,
            "nucleation_filled_rows": self.nucleation.filled_rows,
            "snapshot_time_s": np.array([s.time_s for s in snaps], dtype=np.float64),
            "snapshot_step": np.array([s.step for s in snaps], dtype=np.int64),
            "snapshot_active_rows": np.array([s.active_rows for s in snaps], dtype=np.int64),
            "snapshot_free_energy": np.array([s.free_energy for s in snaps], dtype=np.float64),
            "snapshot_labels": (np.stack([s.labels for s in snaps]) if snaps
                                else np.zeros((0, ny, nx), dtype=np.int32)),
            "wall_time_s": self.wall_time_s,
            "started_at": self.started_at,
            "resumed_at_json": json.dumps(self.resumed_at),
        }
        if isinstance(self.field, DenseField):
            state.update(field_kind="dense", field_phi=self.field.phi)
        else:
            state.update(field_kind="sparse", field_index=np.asarray(self.field.index),
                         field_value=np.asarray(self.field.value),
                         field_on_overflow=self.field.on_overflow,
                         field_max_capacity=self.field.max_capacity,
                         field_stats_json=json.dumps(self.field.stats))
        return state

    @classmethod
    def from_state(cls, state: dict[str, object]) -> "Simulation":
        """Rebuild a run from :meth:`state_dict` so that it continues bit-identically.

        Raises
        ------
        ConfigError
            If the state does not fit the code that reads it (e.g. nucleation or sub-stepping
            differ, because the code changed between saving and resuming).
        """
        config = validate_config(json.loads(str(state["config_json"])), source="checkpoint")
        custom = bool(state["custom_initial_labels"])
        labels = np.asarray(state["nucleation_labels"])
        orientation = np.asarray(state["nucleation_grain_orientation"])
        sim = cls(config, initial_labels=labels if custom else None,
                  grain_orientation=[ORIENTATIONS[i] for i in orientation] if custom else None)
        if not (np.array_equal(sim.nucleation.labels, labels)
                and np.array_equal(sim.nucleation.grain_orientation, orientation)):
            raise ConfigError("checkpoint: the nucleation recomputed from run.seed differs from the "
                              "saved one (was softgrain changed since the checkpoint was written?)")
        if sim.substeps != int(state["substeps"]) or sim.total_steps != int(state["total_steps"]):
            raise ConfigError(f"checkpoint: sub-steps/total steps {state['substeps']}/{state['total_steps']} "
                              f"saved, {sim.substeps}/{sim.total_steps} recomputed")
        kind = str(state["field_kind"])
        if kind != config.numerics.kernel:
            raise ConfigError(f"checkpoint: field kind {kind!r} does not match numerics.kernel "
                              f"{config.numerics.kernel!r}")
        if kind == "dense":
            sim.field = DenseField(np.array(state["field_phi"], dtype=np.float64))
        else:
            from softgrain.phasefield.sparse import SparseField

            sim.field = SparseField(np.asarray(state["field_index"]), np.asarray(state["field_value"]),
                                    on_overflow=str(state["field_on_overflow"]),
                                    max_capacity=int(state["field_max_capacity"]))
            sim.field.stats = json.loads(str(state["field_stats_json"]))
        sim.step = int(state["step"])
        sim.snapshots = [
            Snapshot(time_s=float(t), step=int(s), active_rows=int(a), labels=np.array(lab),
                     free_energy=float(f))
            for t, s, a, lab, f in zip(state["snapshot_time_s"], state["snapshot_step"],
                                       state["snapshot_active_rows"], state["snapshot_labels"],
                                       state["snapshot_free_energy"])]
        sim.wall_time_s = float(state["wall_time_s"])
        sim.started_at = str(state["started_at"])
        sim.resumed_at = json.loads(str(state["resumed_at_json"])) + [provenance.utc_now()]
        return sim

    def run(self, progress: bool = False) -> xr.Dataset:
        """Run to ``run.end_time_s`` and return the result dataset."""
        if progress:
            from tqdm.auto import tqdm

            with tqdm(total=self.total_steps, initial=self.step, unit="step",
                      desc=self.config.name, leave=False) as bar:
                self.advance_to(self.total_steps, bar.update)
        else:
            self.advance_to(self.total_steps)
        return self.dataset()

    def dataset(self) -> xr.Dataset:
        """The snapshots so far as an :class:`xarray.Dataset` (see README "Outputs")."""
        return build_dataset(self)


def _nucleation_from_labels(labels: np.ndarray, orientation: list[str] | None,
                            shape: tuple[int, int]) -> Nucleation:
    labels = np.asarray(labels)
    if labels.shape != shape:
        raise ConfigError(f"initial labels have shape {labels.shape}, the grid is {shape} (ny, nx)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ConfigError("initial labels must be integers (grain index, −1 for no grain)")
    n = int(labels.max()) + 1
    if labels.min() < -1 or n < 1:
        raise ConfigError("initial labels must be −1 or grain indices 0..n−1")
    if orientation is None or len(orientation) != n:
        raise ConfigError(f"give one orientation per grain: {n} grains in the labels")
    bad = [o for o in orientation if o not in ORIENTATIONS]
    if bad:
        raise ConfigError(f"unknown orientation(s) {bad}; known: {', '.join(ORIENTATIONS)}")
    index = np.array([ORIENTATIONS.index(o) for o in orientation], dtype=np.int32)
    return Nucleation(labels=labels.astype(np.int32), grain_orientation=index, filled_rows=shape[0])


def build_dataset(sim: Simulation) -> xr.Dataset:
    cfg = sim.config
    params = sim.orientation_parameters
    go = sim.nucleation.grain_orientation
    ny, nx = cfg.grid.ny, cfg.grid.nx
    snaps = sim.snapshots
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
            "grain_orientation": (("grain_id",), np.array([ORIENTATIONS[i] for i in go]),
                                  {"long_name": "orientation of each grain"}),
            "grain_mobility": (("grain_id",), sim.mobility, {"long_name": "L_q (Eq. S14)"}),
            "grain_kappa": (("grain_id",), sim.kappa, {"long_name": "κ_q (Eq. S15)"}),
            "grain_surface_energy": (("grain_id",), params.surface_energy_J_m2[go],
                                     {"units": "J/m^2", "long_name": "surface energy E_s of each grain"}),
            "grain_barrier": (("grain_id",), params.barrier_eV[go],
                              {"units": "eV", "long_name": "surface self-diffusion barrier E_a of each grain"}),
            "initial_grain": (("y", "x"), sim.nucleation.labels.astype(np.int32),
                              {"long_name": "grain map at t = 0 (nuclei)"}),
        },
        coords={
            "time": ("time", np.array([s.time_s for s in snaps]), {"units": "s"}),
            "y": ("y", np.arange(ny) * cfg.grid.spacing_um, {"units": "µm", "long_name": "height above substrate"}),
            "x": ("x", np.arange(nx) * cfg.grid.spacing_um, {"units": "µm"}),
            "grain_id": ("grain_id", np.arange(sim.n_grains)),
            "orientation": ("orientation", list(ORIENTATIONS)),
        },
        attrs={
            "title": f"softgrain phase-field run: {cfg.name}",
            "config_json": cfg.to_json(),
            "preset": cfg.name,
            "metal": cfg.material.metal,
            "temperature_C": cfg.run.temperature_C,
            "seed": cfg.run.seed,
            "reference_surface_energy_J_m2": params.reference_energy_J_m2,
            "stability_limit_s": sim.stability_limit_s,
            "substeps": sim.substeps,
            "front_rows_per_step": sim.front.rows_per_step,
            "wall_time_s": sim.wall_time_s,
            "started_at": sim.started_at,
            "finished_at": sim.finished_at or "",
            "resumed_at": ", ".join(sim.resumed_at),
            "status": "complete" if sim.finished else "incomplete",
            "last_step": sim.step,
            "last_time_s": sim.time_s,
            **provenance.environment(),
        },
    )
    ds["orientation_surface_energy"] = (("orientation",), params.surface_energy_J_m2,
                                        {"units": "J/m^2"})
    ds["orientation_barrier"] = (("orientation",), params.barrier_eV, {"units": "eV"})
    ds["orientation_mobility"] = (("orientation",), params.mobility)
    ds["orientation_kappa"] = (("orientation",), params.kappa)
    return ds


def run(config: SimulationConfig, *, initial_labels: np.ndarray | None = None,
        grain_orientation: list[str] | None = None, progress: bool = False) -> xr.Dataset:
    """Run a phase-field simulation and return its result as an :class:`xarray.Dataset`.

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
        per-orientation inputs, and the full configuration in ``attrs["config_json"]``.
    """
    return Simulation(config, initial_labels, grain_orientation).run(progress=progress)
