"""The time loop of the phase-field model: stepping, deposition front, snapshots, checkpoint state.

The loop advances the field in segments between events (a snapshot, the activation of a new
row by the deposition front, and the upkeep steps below), so that the compiled kernel runs many
steps per call and the Python loop costs nothing measurable. A caller that must be able to stop
(Ctrl-C, SIGTERM) passes ``should_stop``: segments are then cut into kernel calls of about
:data:`CHUNK_CPU_S` of CPU time, down to single sub-steps, and the run stops cleanly between two
calls — also inside a sub-stepped step, whose progress (``substep``) is part of the checkpoint
state.

Upkeep at fixed outer steps (so that a resumed run does it at the same steps), always between two
whole steps (``substep == 0``)
    *Adaptive sub-steps* (``run.substeps = "adaptive"``, opt-in; the default is a fixed count for
    the whole run): every ``inputs.adaptive_every`` steps the grains whose order parameter is
    below ``prune_threshold`` everywhere are removed (the sparse kernel has already pruned them;
    the dense and JAX fields set them to 0) and the sub-step count is recomputed from the grains
    present (:func:`~softgrain.phasefield.mapping.substeps_for_grains`). In li-solid the (101)
    grains, whose L_q·κ_q sets the limit, are gone within 2 s, and the remaining 398 s run with
    one sub-step instead of three.
    *Compaction* (JAX kernel): every ``inputs.compaction_every`` steps the order parameters of
    vanished grains are dropped from the device arrays.

A :class:`Simulation` runs the numbers of a
:class:`~softgrain.phasefield.inputs.ModelInputs` (made by :func:`softgrain.setup.build`); the
result dataset is written by :mod:`softgrain.output.results`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable

import numba
import numpy as np

from softgrain import provenance
from softgrain.errors import ConfigError, SimulationError
from softgrain.phasefield.dense import DenseField
from softgrain.phasefield.energy import total_free_energy
from softgrain.phasefield.backends import load_batched_jax
from softgrain.phasefield.inputs import ModelInputs
from softgrain.phasefield.mapping import substeps_for_grains
from softgrain.phasefield.sparse import SparseField


CHUNK_CPU_S = 0.25
"""CPU time (s) of one kernel call when the caller may ask the run to stop between calls.

CPU rather than wall time: on a loaded machine the wall time of a call grows with the load, and a
wall-time target shrank the calls to a few sub-steps each, where the per-call set-up doubled
the CPU cost of a run (measured: li-solid 60 s, 1.75 → 3.50 s
CPU with 3 sub-steps per call). The stop latency then grows with the load instead."""


@dataclass
class Snapshot:
    time_s: float
    step: int
    active_rows: int
    labels: np.ndarray
    free_energy: float


@dataclass
class Simulation:
    """A phase-field run of the numbers in ``inputs``.

    Parameters
    ----------
    inputs : ModelInputs
        Everything the run needs (:func:`softgrain.setup.build` makes it from a configuration).
    """

    inputs: ModelInputs
    snapshots: list[Snapshot] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        inputs = self.inputs
        self.nucleation = inputs.nucleation
        self.front = inputs.front
        self.landau = inputs.landau
        self.orientation_parameters = inputs.orientation_parameters
        self.mobility = inputs.mobility
        self.kappa = inputs.kappa
        self.grains = inputs.grains
        self.stability_limit_s = inputs.stability_limit_s
        # The sub-steps per outer step now; with adaptive sub-steps it falls as grains vanish.
        self.substeps = inputs.substeps
        self.total_steps = inputs.total_steps
        self.snapshot_steps = list(inputs.snapshot_steps)
        self.field = self._new_field()
        self.step = 0
        self.substep = 0   # sub-steps of step ``step + 1`` already taken (0 between steps)
        self.kernel_steps = 0      # explicit-Euler (sub-)steps taken
        self.start_step = 0   # where this process took the run up (0, or a checkpoint's step)
        self.start_wall_s = 0.0   # wall time already spent then (earlier sessions)
        self._chunk = 1   # sub-steps per kernel call when stoppable, adapted to CHUNK_CPU_S
        self.wall_time_s = 0.0
        self.started_at = provenance.utc_now()
        self.finished_at: str | None = None
        self.resumed_at: list[str] = []

    @property
    def n_grains(self) -> int:
        return int(len(self.nucleation.grain_orientation))

    def _new_field(self):
        labels = self.nucleation.labels
        if self.inputs.kernel == "dense":
            return DenseField.from_labels(labels, self.n_grains)
        if self.inputs.kernel == "jax":
            return load_batched_jax().SingleRunField.from_labels(labels, self.n_grains,
                                                                  dtype=self.inputs.dtype)
        return SparseField.from_labels(labels, capacity=self.inputs.capacity)

    def _upkeep_intervals(self) -> list[int]:
        inputs = self.inputs
        intervals = [inputs.adaptive_every] if inputs.adaptive_every else []
        if inputs.kernel == "jax" and inputs.compaction_every:
            intervals.append(inputs.compaction_every)
        return intervals

    def _upkeep(self) -> None:
        """Adaptive sub-steps and compaction due at this step (idempotent: a run stopped and
        resumed at this step does the same)."""
        inputs, step = self.inputs, self.step
        if step == 0:
            return
        if inputs.adaptive_every and step % inputs.adaptive_every == 0:
            present = self.field.remove_vanished(inputs.prune_threshold, self.n_grains)
            self.substeps = substeps_for_grains(inputs.dt_s, self.grains, present, self.landau,
                                                inputs.laplacian_spacing)
        if inputs.kernel == "jax" and inputs.compaction_every and step % inputs.compaction_every == 0:
            self.field.compact()

    @property
    def time_s(self) -> float:
        return (self.step + self.substep / self.substeps) * self.inputs.dt_s

    def active_rows(self) -> int:
        return self.front.active_rows(self.step)

    def free_energy(self) -> float:
        """Discrete free energy F of the current state (deposited rows only)."""
        phi = self.field.to_dense(self.n_grains)
        return total_free_energy(phi, self.grains, self.landau, self.active_rows(),
                                 self.inputs.laplacian_spacing, self.open_front)

    @property
    def open_front(self) -> bool:
        """Whether the deposition front faces empty space (φ = 0) now, rather than a zero-flux wall.

        Closed while the deposit is thinner than ``inputs.open_front_from_rows`` (fair nucleation,
        :mod:`softgrain.phasefield.deposition`); the flag changes only at row activations, where a
        segment ends.
        """
        return self.inputs.front_is_open(self.active_rows())

    def _next_event(self) -> int:
        candidates = [s for s in self.snapshot_steps if s > self.step]
        candidates += [(self.step // every + 1) * every for every in self._upkeep_intervals()]
        activations = self.front.activation_steps()
        later = activations[activations > self.step]
        if later.size:
            candidates.append(int(later[0]))
        return min(candidates + [self.total_steps])

    def advance_to(self, target_step: int, progress: Callable[[int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> bool:
        """Advance to ``target_step`` (outer steps of Δt), recording snapshots on the way.

        Parameters
        ----------
        target_step : int
            Outer step to reach (at most the run's last).
        progress : callable, optional
            ``progress(n)`` is told of every ``n`` whole steps taken.
        should_stop : callable, optional
            Asked between kernel calls, which then take about :data:`CHUNK_CPU_S` of CPU time each; when it
            returns True the run stops there, possibly part-way through a sub-stepped step.

        Returns
        -------
        bool
            True if ``target_step`` (or the end) was reached, False if ``should_stop`` stopped it.
        """
        inputs = self.inputs
        started = time.perf_counter()
        if inputs.threads is not None:
            numba.set_num_threads(min(inputs.threads, numba.config.NUMBA_NUM_THREADS))
        try:
            while self.step < min(target_step, self.total_steps):
                if self.substep == 0:
                    # The sub-step count may change only here, between two whole steps.
                    self._upkeep()
                dt_inner = inputs.dt_s / self.substeps
                stop = min(self._next_event(), target_step)
                remaining = (stop - self.step) * self.substeps - self.substep
                n_inner = remaining if should_stop is None else min(remaining, self._chunk)
                call_started = time.process_time()
                try:
                    self.field.advance(n_inner, dt_inner, self.active_rows(), self.grains,
                                       self.landau, inputs.laplacian_spacing,
                                       prune_threshold=inputs.prune_threshold,
                                       open_front=self.open_front)
                except SimulationError as exc:
                    raise SimulationError(
                        f"run stopped in the segment starting at step {self.step} (t = {self.time_s:g} s, "
                        f"{self.substeps} sub-step(s) per step): {exc}") from None
                before = self.step
                self.kernel_steps += n_inner
                self.step, self.substep = divmod(self.step * self.substeps + self.substep + n_inner,
                                                 self.substeps)
                if should_stop is not None:
                    # Aim the next call at CHUNK_CPU_S; grow at most fourfold at a time.
                    elapsed = max(time.process_time() - call_started, 1e-6)
                    self._chunk = max(1, min(4 * n_inner, int(n_inner * CHUNK_CPU_S / elapsed)))
                if progress is not None and self.step > before:
                    progress(self.step - before)
                if (self.substep == 0 and self.step in self.snapshot_steps
                        and not any(s.step == self.step for s in self.snapshots)):
                    self.snapshots.append(Snapshot(
                        time_s=self.time_s, step=self.step, active_rows=self.active_rows(),
                        labels=self.field.labels(self.active_rows()), free_energy=self.free_energy()))
                if should_stop is not None and not self.finished and should_stop():
                    return False
        finally:
            self.wall_time_s += time.perf_counter() - started
            if self.finished and self.finished_at is None:
                self.finished_at = provenance.utc_now()
        return True

    @property
    def finished(self) -> bool:
        """True once the run has reached its end time."""
        return self.step >= self.total_steps

    def state_dict(self) -> dict[str, object]:
        """Everything needed to continue this run bit-identically (see :meth:`from_state`).

        Returns
        -------
        dict
            NumPy arrays and scalars only: the configuration (JSON) the inputs were built from, the
            step and the sub-steps taken of the next one, the nucleation (labels and grain orientations; the seed is in the configuration,
            and the random generator is used only for nucleation), the snapshots so far, the
            accumulated wall
            time and timestamps, and the field state — ``field_phi`` for the dense kernel,
            ``field_index``/``field_value`` plus the overflow policy for the sparse kernel. The
            sparse kernel's change flags are not saved: they only let it skip cells whose update
            would reproduce their current value exactly, so a restored field that recomputes
            every cell once continues bit-identically.
        """
        snaps = self.snapshots
        ny, nx = self.inputs.shape
        state: dict[str, object] = {
            "config_json": self.inputs.config_json,
            "step": self.step,
            "substep": self.substep,
            "total_steps": self.total_steps,
            "substeps": self.inputs.substeps,
            "current_substeps": self.substeps,
            "kernel_steps": self.kernel_steps,
            "custom_initial_labels": self.inputs.custom_initial_labels,
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
        elif self.inputs.kernel == "jax":
            state.update(field_kind="jax", **self.field.state_arrays())
        else:
            state.update(field_kind="sparse", field_index=np.asarray(self.field.index),
                         field_value=np.asarray(self.field.value),
                         field_on_overflow=self.field.on_overflow,
                         field_max_capacity=self.field.max_capacity,
                         field_stats_json=json.dumps(self.field.stats))
        return state

    @classmethod
    def from_state(cls, inputs: ModelInputs, state: dict[str, object]) -> "Simulation":
        """Rebuild a run from :meth:`state_dict` so that it continues bit-identically.

        Parameters
        ----------
        inputs : ModelInputs
            Rebuilt from the state's configuration (``state["config_json"]``, and for a run
            started from given labels ``nucleation_labels`` with their orientations).
        state : dict
            :meth:`state_dict` of the run, as read from a checkpoint.

        Raises
        ------
        ConfigError
            If the state does not fit the inputs (e.g. nucleation or sub-stepping differ,
            because the code changed between saving and resuming).
        """
        labels = np.asarray(state["nucleation_labels"])
        orientation = np.asarray(state["nucleation_grain_orientation"])
        sim = cls(inputs)
        if not (np.array_equal(sim.nucleation.labels, labels)
                and np.array_equal(sim.nucleation.grain_orientation, orientation)):
            raise ConfigError("checkpoint: the nucleation recomputed from run.seed differs from the "
                              "saved one (was softgrain changed since the checkpoint was written?)")
        if inputs.substeps != int(state["substeps"]) or sim.total_steps != int(state["total_steps"]):
            raise ConfigError(f"checkpoint: sub-steps/total steps {state['substeps']}/{state['total_steps']} "
                              f"saved, {inputs.substeps}/{sim.total_steps} recomputed")
        kind = str(state["field_kind"])
        if kind != inputs.kernel:
            raise ConfigError(f"checkpoint: field kind {kind!r} does not match numerics.kernel "
                              f"{inputs.kernel!r}")
        if kind == "dense":
            sim.field = DenseField(np.array(state["field_phi"], dtype=np.float64))
        elif kind == "jax":
            sim.field = load_batched_jax().SingleRunField.from_state_arrays(state, dtype=inputs.dtype)
        else:
            sim.field = SparseField(np.asarray(state["field_index"]), np.asarray(state["field_value"]),
                                    on_overflow=str(state["field_on_overflow"]),
                                    max_capacity=int(state["field_max_capacity"]))
            sim.field.stats = json.loads(str(state["field_stats_json"]))
        sim.step = int(state["step"])
        # Checkpoints written before adaptive sub-steps existed ran a fixed count.
        sim.substeps = int(state.get("current_substeps", state["substeps"]))
        # Checkpoints written before runs could stop inside a step have no "substep".
        sim.substep = int(state.get("substep", 0))
        if not 0 <= sim.substep < sim.substeps:
            raise ConfigError(f"checkpoint: sub-step {sim.substep} of a step of {sim.substeps}")
        sim.kernel_steps = int(state.get("kernel_steps", sim.step * sim.substeps + sim.substep))
        sim.start_step = sim.step
        sim.snapshots = [
            Snapshot(time_s=float(t), step=int(s), active_rows=int(a), labels=np.array(lab),
                     free_energy=float(f))
            for t, s, a, lab, f in zip(state["snapshot_time_s"], state["snapshot_step"],
                                       state["snapshot_active_rows"], state["snapshot_labels"],
                                       state["snapshot_free_energy"])]
        sim.wall_time_s = sim.start_wall_s = float(state["wall_time_s"])
        sim.started_at = str(state["started_at"])
        sim.resumed_at = json.loads(str(state["resumed_at_json"])) + [provenance.utc_now()]
        return sim

    def run(self, progress: Callable[[int], None] | None = None) -> None:
        """Run to the end time; ``progress(n)`` is told of every ``n`` steps taken.

        The kernel runs in calls of ~:data:`CHUNK_CPU_S` of CPU time, so that Ctrl-C (KeyboardInterrupt)
        reaches Python within a fraction of a second even inside a long sub-stepped step.
        """
        self.advance_to(self.total_steps, progress, should_stop=lambda: False)


__all__ = ["Simulation", "Snapshot"]
