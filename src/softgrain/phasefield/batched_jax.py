"""The batched JAX backend: explicit-Euler Allen–Cahn steps for many independent runs at once.

A batch is ``B`` independent runs on the same grid that share the deposition schedule (the
number of deposited rows as a function of the step); each run has its own initial state, its own
per-grain coefficients Δt·L_q, κ_q, w_q and g_q (different seeds and/or sweep points) and its own
sub-step count: an outer step is ``max_b n_b`` inner steps, and run b takes only the first
``n_b`` of them, with Δt·L_q = (Δt/n_b)·L_q (a per-run mask, so every run is the run it would be
alone). :func:`run_batch` runs the :class:`~softgrain.phasefield.inputs.ModelInputs` of several
runs as one batch; :class:`SingleRunField` is a batch of one with the interface of the other
kernels' fields, for :class:`~softgrain.phasefield.solver.Simulation`. All order parameters are stored densely, ``phi`` of shape (B, n, ny, nx), and the
physics of every cell is :func:`softgrain.phasefield.update.explicit_euler_update` — the same
function the dense NumPy reference and the sparse numba kernel call — evaluated by one jitted
XLA program on CPU or GPU.

Boundaries are exactly those of the dense reference
(:func:`softgrain.phasefield.dense.neighbour_sum_dense`): periodic in x, zero flux at the substrate
(row 0); at the last deposited row either zero flux or, with an open front, φ = 0 in the
undeposited row above (per run: a front may open only once the run's deposit is thick enough);
the top of the domain is always zero flux. Rows at and above the front
hold φ = 0 and are not updated.

Speed
    *Deposited rows only.* The time loop advances in segments between events (row activations,
    snapshots, compactions); inside a segment the active-row count is constant and a
    ``jax.lax.fori_loop`` runs all its steps in one call. Only the bottom ``bucket`` rows are
    computed, where ``bucket`` is the active-row count rounded up to a multiple of
    :data:`ROW_BUCKET` (so a run over 70 rows compiles ≤ 9 programs, not 70). The rows between
    the front and the bucket's top are masked to 0 after every step and the open front reads them
    as φ = 0, so the result is the same as computing exactly the deposited rows.

    *Compaction.* :meth:`BatchedField.compact` drops, run by run, the order parameters of grains
    whose |φ| is below a threshold everywhere, re-packing each run's surviving grains (in their
    original order) into the first slots; the batch keeps ``max over runs`` of the surviving
    counts. ``grain_ids`` maps each run's slots back to the original grain ids. A dropped grain
    changes the others only through φ_q² < threshold² in Σ_p φ_p², but its own field is lost, and
    where the grains present are weak — the freshly deposited rows behind a moving front, where
    φ = 0 is unstable (α > 0) — a tail below the threshold can grow again: on the 20 × 40 test
    case with a fast front a 2.7e-13 tail grew 1,700-fold in 900 steps. Hence the default
    threshold is 1e-20, ten decades below the 1e-10 agreement required with the dense reference.
    On paper runs it only delays the drop by a few seconds of model time: a vanished grain's
    maximum falls from 1e-8 past 1e-30 within seconds (li-solid, seeds 1–2, first 40 s: every
    grain was either ≥ 1e-8 or < 1e-30, none grew back; seeds 1–4: 32 slots reached at step
    1,300 instead of 700 with 1e-10), i.e. for < 2 % of a 40,000-step run.

Precision
    float64 by default. Importing this module switches on JAX's 64-bit mode for the process
    (``jax_enable_x64``), without which JAX silently computes in float32; float32 runs are then
    requested per field with ``dtype=np.float32``.

jax is an optional dependency (``pip install -e ".[jax]"``): this module imports it at the top,
and the rest of softgrain loads this module only when the JAX backend is asked for
(:func:`softgrain.phasefield.backends.load_batched_jax`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable, Iterable, Sequence

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # pragma: no cover - exercised only where jax is missing
    raise ImportError(
        "the JAX backend needs jax: pip install -e \".[jax]\" (CPU), or on a CUDA machine "
        "pip install \"jax[cuda12]\" or \"jax[cuda13]\"") from exc

from softgrain.errors import SimulationError, UserInputError
from softgrain.phasefield.deposition import DepositionFront
from softgrain.phasefield.energy import Landau
from softgrain.phasefield.grains import GrainParameters
from softgrain.phasefield.inputs import ModelInputs
from softgrain.phasefield.mapping import substeps_for_grains
from softgrain.phasefield.update import explicit_euler_update

# Without this JAX computes in float32 whatever dtype is asked for; float32 stays available.
jax.config.update("jax_enable_x64", True)

#: Active-row counts are rounded up to a multiple of this to bound the number of compiled programs.
ROW_BUCKET = 8
#: Slot counts after compaction are rounded up to a multiple of this (fewer recompilations).
SLOT_BUCKET = 4
#: Grains whose |φ| is below this everywhere in a run are dropped by compaction (why so small:
#: see the module docstring, "Compaction").
DEFAULT_COMPACTION_THRESHOLD = 1e-20

_DTYPES = {"float64": np.float64, "float32": np.float32}
#: On the device the field is stored (B, ny, nx, n): grains last. XLA:CPU shifts along the last
#: axis (the periodic x neighbours in the (B, n, ny, nx) order) ~10× slower than along others in
#: float64; with grains last both stencil shifts are on outer axes (float64 step 2.2× faster on
#: this CPU, see benchmarks/jax_batched.py). The API speaks (B, n, ny, nx) like DenseField.
GRAIN_AXIS = 3


class BatchTooLargeError(UserInputError):
    """A batch (or a single run) does not fit the memory available on the device."""


def _as_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.name not in _DTYPES:
        raise UserInputError(f"dtype must be float64 or float32, got {dt.name}")
    return dt


@dataclass(frozen=True)
class BatchParameters:
    """The coefficients of a batch: per-run, per-grain arrays and shared Landau constants.

    Attributes
    ----------
    dt_mobility, kappa, weight, tilt : numpy.ndarray
        (B, n): Δt·L_q (Δt of one (sub-)step), κ_q, w_q and g_q of every grain of every run.
    alpha, beta, gamma : float
        Landau coefficients, shared by the batch.
    spacing : float
        Grid spacing h of the Laplacian (``grid.laplacian_spacing``).
    open_front : bool
        The deposition front faces empty space (φ = 0) instead of a zero-flux wall.
    """

    dt_mobility: np.ndarray
    kappa: np.ndarray
    weight: np.ndarray
    tilt: np.ndarray
    alpha: float
    beta: float
    gamma: float
    spacing: float = 1.0
    open_front: bool = False

    def __post_init__(self) -> None:
        arrays = {}
        for name in ("dt_mobility", "kappa", "weight", "tilt"):
            value = np.array(getattr(self, name), dtype=np.float64)
            if value.ndim != 2:
                raise UserInputError(f"BatchParameters.{name} must be (runs, grains), got shape {value.shape}")
            if not np.isfinite(value).all():
                raise UserInputError(f"BatchParameters.{name} has non-finite entries")
            arrays[name] = value
        shapes = {a.shape for a in arrays.values()}
        if len(shapes) != 1:
            raise UserInputError(f"BatchParameters arrays differ in shape: "
                                 f"{ {k: v.shape for k, v in arrays.items()} }")
        for name, value in arrays.items():
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        for name in ("alpha", "beta", "gamma", "spacing"):
            value = float(getattr(self, name))
            if not np.isfinite(value):
                raise UserInputError(f"BatchParameters.{name} must be finite, got {value}")
            object.__setattr__(self, name, value)
        if self.spacing <= 0:
            raise UserInputError(f"BatchParameters.spacing must be positive, got {self.spacing}")
        object.__setattr__(self, "open_front", bool(self.open_front))

    @classmethod
    def paper(cls, dt: float, mobility: np.ndarray, kappa: np.ndarray, landau: Landau,
              spacing: float = 1.0, open_front: bool = False) -> "BatchParameters":
        """The paper's model (Eq. S13: every w_q = Landau w, g_q = 0); ``mobility``, ``kappa`` (B, n)."""
        mob = np.atleast_2d(np.asarray(mobility, dtype=np.float64))
        kap = np.atleast_2d(np.asarray(kappa, dtype=np.float64))
        return cls(dt_mobility=dt * mob, kappa=kap, weight=np.full(mob.shape, landau.w),
                   tilt=np.zeros(mob.shape), alpha=landau.alpha, beta=landau.beta,
                   gamma=landau.gamma, spacing=spacing, open_front=open_front)

    @property
    def shape(self) -> tuple[int, int]:
        """(runs, grains)."""
        return self.dt_mobility.shape

    def take(self, slots: np.ndarray) -> "BatchParameters":
        """The coefficients of the grains ``slots`` (B, k) of each run (used by compaction)."""
        return replace(self, **{name: np.take_along_axis(getattr(self, name), slots, axis=1)
                                for name in ("dt_mobility", "kappa", "weight", "tilt")})

    def select_runs(self, runs) -> "BatchParameters":
        """The coefficients of the runs ``runs`` (an index array or slice)."""
        return replace(self, **{name: getattr(self, name)[runs]
                                for name in ("dt_mobility", "kappa", "weight", "tilt")})


# ----------------------------------------------------------------------------- the jitted kernel

def _neighbour_sum(phi, row_index, reflect_row):
    """Σ of the four neighbours of every cell of the block (B, rows, nx, n), with the boundaries
    of :func:`~softgrain.phasefield.dense.neighbour_sum_dense`: periodic in x, zero flux at row 0,
    φ = 0 above the block's top row, and zero flux (ghost = the row itself) at ``reflect_row``
    (B, 1, 1, 1), per run: the last deposited row unless that run's front is open (−1 then)."""
    zero_row = jnp.zeros_like(phi[:, :1])
    up = jnp.concatenate([phi[:, 1:], zero_row], axis=1)
    up = jnp.where(row_index == reflect_row, phi, up)
    down = jnp.concatenate([phi[:, :1], phi[:, :-1]], axis=1)
    side = jnp.roll(phi, 1, axis=2) + jnp.roll(phi, -1, axis=2)
    # Summed in the order of neighbour_sum_dense (side + up + down) so that the paper case is
    # bit-identical to it where XLA keeps that order.
    return side + up + down


def _step(phi, row_index, active_rows, reflect_row, coefficients, alpha, beta, gamma, spacing_sq):
    dt_mobility, kappa, weight, tilt = coefficients
    sq = phi * phi
    sum_sq = jnp.sum(sq, axis=GRAIN_AXIS, keepdims=True)
    sum_weighted_sq = jnp.sum(weight * sq, axis=GRAIN_AXIS, keepdims=True)
    new = explicit_euler_update(phi, _neighbour_sum(phi, row_index, reflect_row), sum_sq,
                                sum_weighted_sq, dt_mobility, kappa, weight, tilt, alpha, beta,
                                gamma, spacing_sq)
    # Undeposited rows inside the bucket stay exactly 0.
    return jnp.where(row_index < active_rows, new, jnp.zeros_like(new))


@partial(jax.jit, static_argnames=("rows", "spacing_sq"), donate_argnums=(0,))
def _advance_segment(phi, n_steps, active_rows, reflect_row, dt_mobility, kappa, weight, tilt,
                     alpha, beta, gamma, *, rows, spacing_sq):
    """``n_steps`` steps on the bottom ``rows`` rows of ``phi`` (B, ny, nx, n); returns the new
    field and, per run, whether every value of the block is finite."""
    block = phi[:, :rows]
    row_index = jnp.arange(rows)[:, None, None]
    coefficients = tuple(c[:, None, None, :] for c in (dt_mobility, kappa, weight, tilt))
    reflect_row = reflect_row[:, None, None, None]

    def body(_, state):
        return _step(state, row_index, active_rows, reflect_row, coefficients, alpha, beta,
                     gamma, spacing_sq)

    block = jax.lax.fori_loop(0, n_steps, body, block)
    finite = jnp.all(jnp.isfinite(block), axis=(1, 2, 3))
    return phi.at[:, :rows].set(block), finite


@partial(jax.jit, static_argnames=("rows", "spacing_sq"), donate_argnums=(0,))
def _advance_segment_masked(phi, n_outer, max_substeps, run_substeps, active_rows, reflect_row,
                            dt_mobility, kappa, weight, tilt, alpha, beta, gamma, *, rows,
                            spacing_sq):
    """``n_outer`` outer steps of ``max_substeps`` inner steps each, run b updated only in the
    first ``run_substeps[b]`` of them (its own sub-step count); as :func:`_advance_segment`."""
    block = phi[:, :rows]
    row_index = jnp.arange(rows)[:, None, None]
    coefficients = tuple(c[:, None, None, :] for c in (dt_mobility, kappa, weight, tilt))
    own = run_substeps[:, None, None, None]
    reflect_row = reflect_row[:, None, None, None]

    def inner(k, state):
        new = _step(state, row_index, active_rows, reflect_row, coefficients, alpha, beta, gamma,
                    spacing_sq)
        return jnp.where(k < own, new, state)

    def outer(_, state):
        return jax.lax.fori_loop(0, max_substeps, inner, state)

    block = jax.lax.fori_loop(0, n_outer, outer, block)
    finite = jnp.all(jnp.isfinite(block), axis=(1, 2, 3))
    return phi.at[:, :rows].set(block), finite


@partial(jax.jit, donate_argnums=(0,))
def _zero_slots(phi, keep):
    """φ with the slots where ``keep`` (B, n) is False set to 0."""
    return jnp.where(keep[:, None, None, :], phi, jnp.zeros_like(phi))


@jax.jit
def _grain_maxima(phi):
    """max |φ_q| over all cells, per run and slot: (B, n)."""
    return jnp.max(jnp.abs(phi), axis=(1, 2))


@jax.jit
def _compact_take(phi, slots):
    return jnp.take_along_axis(phi, slots[:, None, None, :], axis=GRAIN_AXIS)


@jax.jit
def _labels(phi, grain_ids, active_rows, min_value):
    best = jnp.argmax(phi, axis=GRAIN_AXIS)                             # (B, ny, nx) slot
    grain = jnp.take_along_axis(grain_ids, best.reshape(best.shape[0], -1), axis=1)
    grain = grain.reshape(best.shape).astype(jnp.int32)
    row_index = jnp.arange(phi.shape[1])[:, None]
    empty = (jnp.max(phi, axis=GRAIN_AXIS) < min_value) | (row_index >= active_rows)
    return jnp.where(empty, jnp.int32(-1), grain)


# ----------------------------------------------------------------------------- the field

def bucket_rows(active_rows: int, ny: int, bucket: int = ROW_BUCKET) -> int:
    """Rows computed for ``active_rows`` deposited rows: rounded up to ``bucket``, at most ``ny``."""
    return min(ny, bucket * math.ceil(active_rows / bucket))


class BatchedField:
    """The order parameters of a batch of runs on one JAX device, advanced by one jitted program.

    Parameters
    ----------
    phi : array_like
        (B, n, ny, nx) initial order parameters (grain ids 0..n−1 in axis 1).
    params : BatchParameters
        (B, n) coefficients; Δt·L_q for the (sub-)step that :meth:`advance` takes.
    dtype : float64 (default) or float32
        Precision of the field and of the update.
    device : jax.Device, optional
        Where the field lives (default: JAX's default device).
    """

    def __init__(self, phi, params: BatchParameters, *, dtype=np.float64, device=None) -> None:
        phi = np.asarray(phi)
        if phi.ndim != 4:
            raise UserInputError(f"phi must be (runs, grains, ny, nx), got shape {phi.shape}")
        self._start(phi.transpose(0, 2, 3, 1), params, dtype, device)

    @classmethod
    def from_labels(cls, labels, params: BatchParameters, *, dtype=np.float64, device=None) -> "BatchedField":
        """φ_q = 1 where ``labels`` (B, ny, nx) == q, else 0 (as :meth:`DenseField.from_labels`)."""
        labels = np.asarray(labels)
        if labels.ndim != 3:
            raise UserInputError(f"labels must be (runs, ny, nx), got shape {labels.shape}")
        n = params.shape[1]
        if labels.max() >= n or labels.min() < -1:
            raise UserInputError(f"labels must be −1 or grain ids 0..{n - 1} (the parameters have "
                                 f"{n} grains), got {labels.min()}..{labels.max()}")
        field = cls.__new__(cls)
        # Built grains-last directly: no (B, n, ny, nx) host copy for large batches.
        field._start(labels[..., None] == np.arange(n), params, dtype, device)
        return field

    def _start(self, grains_last: np.ndarray, params: BatchParameters, dtype, device) -> None:
        batch, ny, nx, n = grains_last.shape
        if params.shape != (batch, n):
            raise UserInputError(f"parameters are (runs, grains) = {params.shape}, phi has "
                                 f"{(batch, n)}")
        if ny < 2 or nx < 3:
            raise UserInputError(f"grid too small for the 5-point stencil: {(ny, nx)} (ny, nx)")
        self.dtype = _as_dtype(dtype)
        self.device = device if device is not None else jax.devices()[0]
        self.n_grains = n
        self.shape = (ny, nx)
        self._phi = jax.device_put(np.ascontiguousarray(grains_last, dtype=self.dtype), self.device)
        self.grain_ids = np.tile(np.arange(n, dtype=np.int32), (batch, 1))
        self._set_params(params)
        self.failed = np.zeros(batch, dtype=bool)
        self.steps_done = 0
        #: explicit-Euler steps each run has taken (runs with fewer sub-steps take fewer)
        self.run_steps = np.zeros(batch, dtype=np.int64)
        #: per run, the steps taken before the segment in which its field turned non-finite (−1)
        self.failed_after = np.full(batch, -1, dtype=np.int64)

    @classmethod
    def from_slots(cls, grains_last, grain_ids, params: BatchParameters, n_grains: int, *,
                   dtype=np.float64, device=None) -> "BatchedField":
        """A field stored as slots (:attr:`device_phi` and :attr:`grain_ids` of another field,
        e.g. from a checkpoint); ``params`` are over the ``n_grains`` original grain ids."""
        grains_last = np.asarray(grains_last)
        grain_ids = np.asarray(grain_ids, dtype=np.int32)
        if grains_last.ndim != 4 or grain_ids.shape != (grains_last.shape[0], grains_last.shape[3]):
            raise UserInputError(f"slots {grains_last.shape} and grain ids {grain_ids.shape} do not "
                                 "fit: expected (B, ny, nx, k) and (B, k)")
        if params.shape != (grains_last.shape[0], n_grains):
            raise UserInputError(f"parameters are (runs, grains) = {params.shape}, expected "
                                 f"{(grains_last.shape[0], n_grains)}")
        field = cls.__new__(cls)
        field._start(grains_last, params.take(grain_ids), dtype, device)
        field.grain_ids = grain_ids.copy()
        field.n_grains = int(n_grains)
        return field

    def set_parameters(self, params: BatchParameters) -> None:
        """New coefficients, (B, n_grains) over the original grain ids (compaction-proof)."""
        if params.shape != (self.batch_size, self.n_grains):
            raise UserInputError(f"parameters are (runs, grains) = {params.shape}, the field has "
                                 f"{(self.batch_size, self.n_grains)}")
        self._set_params(params.take(self.grain_ids))

    def _set_params(self, params: BatchParameters) -> None:
        self.params = params
        put = partial(jax.device_put, device=self.device)
        self._coefficients = tuple(put(getattr(params, name).astype(self.dtype))
                                   for name in ("dt_mobility", "kappa", "weight", "tilt"))
        self._landau = tuple(put(np.asarray(getattr(params, name), dtype=self.dtype))
                             for name in ("alpha", "beta", "gamma"))

    @property
    def batch_size(self) -> int:
        return int(self._phi.shape[0])

    @property
    def n_slots(self) -> int:
        """Order parameters carried per run (n before compaction)."""
        return int(self._phi.shape[GRAIN_AXIS])

    @property
    def device_phi(self):
        """The field on the device, (B, ny, nx, n_slots) — grains last; slots per ``grain_ids``."""
        return self._phi

    def _reflect_rows(self, active_rows: int, open_runs) -> np.ndarray:
        """(B,) row with a zero-flux ghost per run: the last deposited row, or −1 where the run's
        front is open (it reads φ = 0 above); the domain top is always zero flux."""
        ny = self.shape[0]
        if open_runs is None:
            open_runs = self.params.open_front
        open_runs = np.broadcast_to(np.asarray(open_runs, dtype=bool), (self.batch_size,))
        reflect = ~open_runs | (active_rows == ny)
        return jax.device_put(np.where(reflect, active_rows - 1, -1).astype(np.int32), self.device)

    def advance(self, n_steps: int, active_rows: int, *, on_nonfinite: str = "raise",
                open_runs=None) -> None:
        """Take ``n_steps`` explicit-Euler steps with ``active_rows`` rows deposited.

        Parameters
        ----------
        n_steps : int
            Steps of the Δt that ``params.dt_mobility`` was built with.
        active_rows : int
            Deposited rows (1..ny) during these steps.
        on_nonfinite : "raise" or "record"
            When a run's field turns non-finite: raise :class:`SimulationError` naming the runs,
            or only mark them in ``failed`` (the other runs are independent and stay valid).
        open_runs : bool or (B,) array of bool, optional
            Whose deposition front faces empty space in these steps (default
            ``params.open_front`` for all; a front closed until the deposit is thick enough,
            ``ModelInputs.front_is_open``, differs between runs).
        """
        ny = self.shape[0]
        active_rows = int(active_rows)
        if not 1 <= active_rows <= ny:
            raise UserInputError(f"active_rows must be in 1..{ny}, got {active_rows}")
        if n_steps < 0:
            raise UserInputError(f"n_steps must be ≥ 0, got {n_steps}")
        if on_nonfinite not in ("raise", "record"):
            raise UserInputError(f"on_nonfinite must be 'raise' or 'record', got {on_nonfinite!r}")
        if n_steps == 0:
            return
        rows = bucket_rows(active_rows, ny)
        self._phi, finite = _advance_segment(
            self._phi, n_steps, active_rows, self._reflect_rows(active_rows, open_runs),
            *self._coefficients, *self._landau,
            rows=rows, spacing_sq=self.params.spacing * self.params.spacing)
        start = self.steps_done
        self.steps_done += n_steps
        self.run_steps += n_steps
        self._check_finite(finite, start, active_rows, on_nonfinite, self.run_steps - n_steps)

    def advance_outer(self, n_outer: int, active_rows: int, substeps, *,
                      on_nonfinite: str = "raise", open_runs=None) -> None:
        """``n_outer`` outer steps; run b takes ``substeps[b]`` inner steps of each (its
        ``params.dt_mobility`` built with Δt/substeps[b]), the others of the outer step leave it
        unchanged. Equal counts take the unmasked path of :meth:`advance`; ``open_runs`` as
        there."""
        counts = np.broadcast_to(np.asarray(substeps, dtype=np.int32), (self.batch_size,))
        if counts.min() < 1:
            raise UserInputError(f"substeps must be ≥ 1, got {counts.min()}")
        if counts.min() == counts.max():
            self.advance(n_outer * int(counts[0]), active_rows, on_nonfinite=on_nonfinite,
                         open_runs=open_runs)
            return
        ny = self.shape[0]
        active_rows = int(active_rows)
        if not 1 <= active_rows <= ny:
            raise UserInputError(f"active_rows must be in 1..{ny}, got {active_rows}")
        if on_nonfinite not in ("raise", "record"):
            raise UserInputError(f"on_nonfinite must be 'raise' or 'record', got {on_nonfinite!r}")
        if n_outer <= 0:
            return
        self._phi, finite = _advance_segment_masked(
            self._phi, int(n_outer), int(counts.max()), jax.device_put(counts, self.device),
            active_rows, self._reflect_rows(active_rows, open_runs), *self._coefficients,
            *self._landau,
            rows=bucket_rows(active_rows, ny), spacing_sq=self.params.spacing * self.params.spacing)
        start = self.steps_done
        self.steps_done += int(n_outer * counts.max())
        self.run_steps += n_outer * counts
        self._check_finite(finite, start, active_rows, on_nonfinite, self.run_steps - n_outer * counts)

    def _check_finite(self, finite, start: int, active_rows: int, on_nonfinite: str,
                      run_steps_before: np.ndarray) -> None:
        bad = ~np.asarray(finite) & ~self.failed
        if bad.any():
            self.failed |= bad
            self.failed_after[bad] = run_steps_before[bad]
            if on_nonfinite == "raise":
                runs = np.flatnonzero(bad).tolist()
                raise SimulationError(
                    f"non-finite order parameter in run(s) {runs} of the batch during steps "
                    f"{start + 1}..{self.steps_done} ({active_rows} rows deposited)")

    def remove_vanished(self, threshold: float) -> np.ndarray:
        """Set to 0 the grains whose |φ| is below ``threshold`` everywhere, run by run, and return
        (B, n_grains) the mask of the grains left (adaptive sub-steps; a grain at 0 everywhere
        stays 0 and no longer bounds the stable step)."""
        maxima = np.asarray(_grain_maxima(self._phi))
        keep = maxima >= threshold
        if not keep.all():
            self._phi = _zero_slots(self._phi, jax.device_put(keep, self.device))
        present = np.zeros((self.batch_size, self.n_grains), dtype=bool)
        np.put_along_axis(present, self.grain_ids, keep, axis=1)
        return present

    def grain_maxima(self) -> np.ndarray:
        """max |φ| over all cells, per run and original grain id: (B, n_grains)."""
        out = np.zeros((self.batch_size, self.n_grains))
        np.put_along_axis(out, self.grain_ids, np.asarray(_grain_maxima(self._phi), dtype=np.float64),
                          axis=1)
        return out

    def compact(self, threshold: float = DEFAULT_COMPACTION_THRESHOLD, slot_bucket: int = SLOT_BUCKET) -> int:
        """Drop the order parameters of grains with |φ| < ``threshold`` everywhere, run by run.

        Each run keeps its surviving grains in their original order in the first slots; the
        batch keeps as many slots as the run with most survivors needs, rounded up to
        ``slot_bucket`` (slots beyond a run's survivors hold its negligible grains, unchanged).
        Nothing happens unless the slot count shrinks. Returns the slot count afterwards.
        """
        if not (np.isfinite(threshold) and threshold >= 0):
            raise UserInputError(f"compaction threshold must be ≥ 0, got {threshold}")
        maxima = np.asarray(_grain_maxima(self._phi))
        # A failed run's maxima are NaN: none counts as alive, so it does not hold compaction
        # back (its field is meaningless anyway).
        alive = maxima >= threshold
        needed = max(1, int(alive.sum(axis=1).max()))
        keep = min(self.n_slots, slot_bucket * math.ceil(needed / slot_bucket))
        if keep >= self.n_slots:
            return self.n_slots
        # Stable: survivors first, each group in slot (= original id) order, so argmax ties
        # still resolve to the lowest grain id as in DenseField.labels.
        order = np.argsort(~alive, axis=1, kind="stable")[:, :keep]
        self._phi = _compact_take(self._phi, jax.device_put(order.astype(np.int32), self.device))
        self.grain_ids = np.take_along_axis(self.grain_ids, order, axis=1)
        self._set_params(self.params.take(order))
        return keep

    def labels(self, active_rows: int | None = None, min_value: float = 0.5) -> np.ndarray:
        """(B, ny, nx) int32: the original id of the grain with the largest φ; −1 where that is
        below ``min_value`` or at/above ``active_rows`` (as :meth:`DenseField.labels`)."""
        rows = self.shape[0] if active_rows is None else int(active_rows)
        ids = jax.device_put(self.grain_ids, self.device)
        return np.asarray(_labels(self._phi, ids, rows, min_value))

    def to_dense(self, n_grains: int | None = None) -> np.ndarray:
        """(B, n_grains, ny, nx) float64 on the host, in original grain ids (dropped grains = 0)."""
        n = self.n_grains if n_grains is None else n_grains
        out = np.zeros((self.batch_size, n) + self.shape)
        phi = np.asarray(self._phi, dtype=np.float64).transpose(0, 3, 1, 2)
        np.put_along_axis(out, self.grain_ids[:, :, None, None], phi, axis=1)
        return out

    def nbytes(self) -> int:
        """Bytes of the field on the device."""
        return int(self._phi.size * self._phi.dtype.itemsize)


# ----------------------------------------------------------------------------- the time loop

@dataclass
class BatchSnapshot:
    """Labels of every run of the batch at one outer step."""

    step: int
    active_rows: int
    labels: np.ndarray   # (B, ny, nx) int32
    n_slots: int         # order parameters carried per run at that moment
    substeps: np.ndarray | None = None   # (B,) sub-steps per outer step at that moment


def advance_schedule(field: BatchedField, front: DepositionFront, stop_step: int, *,
                     start_step: int = 0, substeps=1, snapshot_steps: Iterable[int] = (),
                     compact_every: int | None = None,
                     compaction_threshold: float = DEFAULT_COMPACTION_THRESHOLD,
                     on_nonfinite: str = "raise",
                     on_snapshot: Callable[[BatchSnapshot], None] | None = None,
                     upkeep_every: int | None = None,
                     upkeep: Callable[[int], np.ndarray | None] | None = None,
                     open_from_rows=0) -> list[BatchSnapshot]:
    """Advance ``field`` from outer step ``start_step`` to ``stop_step`` along ``front``.

    Mirrors :meth:`softgrain.phasefield.solver.Simulation.advance_to`: segments end at row
    activations, snapshots and the upkeep steps; each outer step is ``substeps`` steps of the Δt
    that ``field.params.dt_mobility`` was built with. At the start of a segment whose step is a
    positive multiple of ``upkeep_every`` (``compact_every``), ``upkeep(step)`` is called (the
    field is compacted) — as the solver does, so that a run split into several calls does the
    same.

    Parameters
    ----------
    substeps : int or array_like
        Inner steps per outer step, one count for the batch or (B,) per run
        (:meth:`BatchedField.advance_outer`).
    compact_every : int, optional
        Compact (:meth:`BatchedField.compact`) every this many outer steps; never by default.
    snapshot_steps : iterable of int
        Outer steps after which the labels are recorded.
    upkeep_every, upkeep :
        ``upkeep(step)`` every ``upkeep_every`` outer steps (adaptive sub-steps: it may change
        the field's parameters and return the new (B,) sub-step counts, or None for no change).
    open_from_rows : int or (B,) array
        An open front (``params.open_front``) stays zero-flux while fewer rows are deposited
        (per run; ``ModelInputs.open_front_from_rows``). Rows change only at activations, where
        segments end.

    Returns
    -------
    list of BatchSnapshot
        In step order (also passed to ``on_snapshot`` as they are taken).
    """
    if front.ny != field.shape[0]:
        raise UserInputError(f"the deposition front has {front.ny} rows, the field {field.shape[0]}")
    counts = np.broadcast_to(np.asarray(substeps, dtype=np.int64), (field.batch_size,)).copy()
    if counts.min() < 1:
        raise UserInputError(f"substeps must be ≥ 1, got {counts.min()}")
    for name, every in (("compact_every", compact_every), ("upkeep_every", upkeep_every)):
        if every is not None and every < 1:
            raise UserInputError(f"{name} must be ≥ 1, got {every}")
    intervals = [e for e in (compact_every, upkeep_every if upkeep else None) if e is not None]
    opens_from = np.broadcast_to(np.asarray(open_from_rows, dtype=np.int64), counts.shape)
    snapshots_wanted = sorted({int(s) for s in snapshot_steps if start_step < s <= stop_step})
    activations = front.activation_steps()
    taken: list[BatchSnapshot] = []
    step = start_step
    while step < stop_step:
        if step > 0 and upkeep is not None and upkeep_every and step % upkeep_every == 0:
            changed = upkeep(step)
            if changed is not None:
                counts = np.broadcast_to(np.asarray(changed, dtype=np.int64), counts.shape).copy()
        if step > 0 and compact_every is not None and step % compact_every == 0:
            field.compact(compaction_threshold)
        candidates = [stop_step] + [s for s in snapshots_wanted if s > step]
        later = activations[activations > step]
        if later.size:
            candidates.append(int(later[0]))
        candidates += [(step // every + 1) * every for every in intervals]
        stop = min(candidates)
        rows = front.active_rows(step)
        field.advance_outer(stop - step, rows, counts, on_nonfinite=on_nonfinite,
                            open_runs=field.params.open_front & (rows >= opens_from))
        step = stop
        if step in snapshots_wanted:
            rows = front.active_rows(step)
            snap = BatchSnapshot(step=step, active_rows=rows, labels=field.labels(rows),
                                 n_slots=field.n_slots, substeps=counts.copy())
            taken.append(snap)
            if on_snapshot is not None:
                on_snapshot(snap)
    return taken


# ----------------------------------------------------------------------------- runs of ModelInputs

def batch_parameters(grains: Sequence[GrainParameters], n_grains: int, dt_inner: np.ndarray,
                landau: Landau, spacing: float, open_front: bool) -> BatchParameters:
    """(B, n_grains) coefficients of runs with these grains and sub-step lengths ``dt_inner``
    (B,); a run with fewer grains is padded with
    copies of its first grain's constants (its padded grains are φ = 0 everywhere and stay so:
    every term of the update is proportional to φ_q or its neighbours' φ_q)."""
    def stacked(name: str) -> np.ndarray:
        rows = []
        for g in grains:
            values = getattr(g, name)
            rows.append(np.concatenate([values, np.full(n_grains - len(values), values[0])]))
        return np.stack(rows)
    return BatchParameters(dt_mobility=np.asarray(dt_inner)[:, None] * stacked("mobility"),
                           kappa=stacked("kappa"), weight=stacked("weight"), tilt=stacked("tilt"),
                           alpha=landau.alpha, beta=landau.beta, gamma=landau.gamma,
                           spacing=spacing, open_front=open_front)


def batch_key(inputs: ModelInputs) -> tuple:
    """What runs must share to be one batch: grid, time step and end, snapshots, front, Landau
    α β γ, precision and upkeep. (Grain counts, per-grain constants, nuclei, sub-step counts and
    the deposit thickness from which an open front opens may differ.)"""
    landau = inputs.landau
    return (inputs.shape, inputs.laplacian_spacing, inputs.dt_s, inputs.total_steps,
            tuple(inputs.snapshot_steps), inputs.front, inputs.open_front,
            (landau.alpha, landau.beta, landau.gamma), inputs.dtype, inputs.compaction_every,
            inputs.adaptive_every, inputs.prune_threshold if inputs.adaptive_every else None)


@dataclass
class BatchRunResult:
    """What one run of a batch produced.

    Attributes
    ----------
    snapshots : list of BatchSnapshot
        (step, active rows, labels (ny, nx)) at each snapshot step; ``n_slots`` of the batch.
    failed : bool
        The run's field turned non-finite (its snapshots stop before that).
    error : str
        Why it failed ("" if not).
    substeps : int
        Sub-steps per outer step at the end.
    kernel_steps : int
        Explicit-Euler steps the run took.
    wall_time_s : float
        The batch's wall time divided by its runs (set by :func:`run_batches`).
    """

    snapshots: list[BatchSnapshot]
    failed: bool = False
    error: str = ""
    substeps: int = 1
    kernel_steps: int = 0
    wall_time_s: float = 0.0


def run_batch(runs: Sequence[ModelInputs], *, device=None) -> list[BatchRunResult]:
    """Run ``runs`` (same :func:`batch_key`) as one batch on ``device``, from step 0 to the end.

    Each run gets its own nuclei, per-grain constants and sub-step count (a per-run mask, see the
    module docstring); with adaptive sub-steps (``inputs.adaptive_every``) each run's vanished
    grains are set to 0 and its count is recomputed from its grains present, as
    :class:`~softgrain.phasefield.solver.Simulation` does. A run whose field turns non-finite is
    marked failed with the steps where it happened; the others go on.
    """
    runs = list(runs)
    if not runs:
        return []
    keys = {batch_key(r) for r in runs}
    if len(keys) != 1:
        raise UserInputError("runs of one batch must share grid, time step, end time, snapshots, "
                             "deposition front, Landau α β γ, precision and upkeep")
    first = runs[0]
    n_grains = max(r.n_grains for r in runs)
    dt = first.dt_s
    counts = np.array([r.substeps for r in runs], dtype=np.int64)
    grains = [r.grains for r in runs]

    def parameters(sub: np.ndarray) -> BatchParameters:
        return batch_parameters(grains, n_grains, dt / sub, first.landau, first.laplacian_spacing,
                           first.open_front)

    labels = np.stack([r.nucleation.labels for r in runs])
    field = BatchedField.from_labels(labels, parameters(counts), dtype=first.dtype, device=device)
    state = {"counts": counts}

    def upkeep(step: int):
        present = field.remove_vanished(first.prune_threshold)
        new = np.array([substeps_for_grains(dt, r.grains, present[b, :r.n_grains], r.landau,
                                            r.laplacian_spacing) for b, r in enumerate(runs)])
        new = np.where(field.failed, state["counts"], new)
        if np.array_equal(new, state["counts"]):
            return None
        field.set_parameters(parameters(new))
        state["counts"] = new
        return new

    failed_by = np.full(len(runs), -1, dtype=np.int64)   # outer step where a failure was seen

    def note_failures(snap: BatchSnapshot) -> None:
        failed_by[field.failed & (failed_by < 0)] = snap.step

    snapshots = advance_schedule(
        field, first.front, first.total_steps, substeps=counts,
        snapshot_steps=first.snapshot_steps, compact_every=first.compaction_every,
        on_nonfinite="record", upkeep_every=first.adaptive_every,
        upkeep=upkeep if first.adaptive_every else None, on_snapshot=note_failures,
        open_from_rows=np.array([r.open_front_from_rows for r in runs]))
    results = []
    for b in range(len(runs)):
        # A failed run keeps the snapshots taken before the failure was seen.
        snaps = [BatchSnapshot(step=s.step, active_rows=s.active_rows, labels=s.labels[b],
                               n_slots=s.n_slots, substeps=None)
                 for s in snapshots if not (field.failed[b] and 0 <= failed_by[b] <= s.step)]
        error = ""
        if field.failed[b]:
            error = (f"non-finite order parameter after {field.failed_after[b]} explicit-Euler "
                     f"steps of this run (JAX kernel, {int(state['counts'][b])} sub-step(s) per "
                     f"step of {dt:g} s)")
        results.append(BatchRunResult(snapshots=snaps, failed=bool(field.failed[b]), error=error,
                                      substeps=int(state["counts"][b]),
                                      kernel_steps=int(field.run_steps[b])))
    return results



class SingleRunField:
    """One run as a batch of one, with the interface of the dense and sparse fields, so that
    :class:`~softgrain.phasefield.solver.Simulation` (checkpoints, snapshots, free energy, the
    outputs of ``softgrain run``) runs it unchanged.

    The coefficients are sent to the device when Δt, the grains or the Landau constants change
    (adaptive sub-steps change Δt), not on every call.
    """

    def __init__(self, field: BatchedField) -> None:
        if field.batch_size != 1:
            raise UserInputError(f"a single run needs a batch of 1, got {field.batch_size}")
        self._field = field
        self._key: tuple | None = None

    @staticmethod
    def _placeholder(n_grains: int) -> BatchParameters:
        ones = np.ones((1, n_grains))
        return BatchParameters(dt_mobility=ones, kappa=ones, weight=ones, tilt=0 * ones,
                               alpha=1.0, beta=1.0, gamma=1.0)

    @classmethod
    def from_labels(cls, labels: np.ndarray, n_grains: int, *, dtype="float64",
                    device=None) -> "SingleRunField":
        """φ_q = 1 where ``labels`` (ny, nx) == q (coefficients are set by the first advance)."""
        return cls(BatchedField.from_labels(np.asarray(labels)[None], cls._placeholder(n_grains),
                                            dtype=dtype, device=device))

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The exact device state (slots, their grain ids, dtype preserved) for a checkpoint."""
        return {"field_slots": np.asarray(self._field.device_phi)[0],
                "field_grain_ids": self._field.grain_ids[0].copy(),
                "field_n_grains": np.int64(self._field.n_grains)}

    @classmethod
    def from_state_arrays(cls, state, *, dtype="float64", device=None) -> "SingleRunField":
        """Rebuild from :meth:`state_arrays`; continues bit-identically."""
        n = int(state["field_n_grains"])
        return cls(BatchedField.from_slots(np.asarray(state["field_slots"])[None],
                                           np.asarray(state["field_grain_ids"])[None],
                                           cls._placeholder(n), n, dtype=dtype, device=device))

    @property
    def shape(self) -> tuple[int, int]:
        return self._field.shape

    @property
    def n_slots(self) -> int:
        return self._field.n_slots

    def advance(self, n_steps: int, dt: float, active_rows: int, grains: GrainParameters,
                landau: Landau, spacing: float = 1.0, open_front: bool = False, **_: object) -> None:
        """``n_steps`` steps of ``dt`` (the sparse kernel's options are ignored).

        Raises
        ------
        SimulationError
            If the field turned non-finite during these steps (the field then holds the
            non-finite state: unlike the CPU kernels, the device state is not rolled back).
        """
        key = (float(dt), float(spacing), bool(open_front), landau.alpha, landau.beta,
               landau.gamma, id(grains))
        if key != self._key:
            self._field.set_parameters(batch_parameters([grains], self._field.n_grains,
                                                   np.array([float(dt)]), landau, spacing,
                                                   open_front))
            self._key = key
            self._grains = grains            # keeps id(grains) meaningful
        before = int(self._field.run_steps[0])
        try:
            self._field.advance(n_steps, active_rows)
        except SimulationError:
            raise SimulationError(f"non-finite order parameter within steps {1}..{n_steps} of this "
                                  f"segment (JAX kernel; {active_rows} rows deposited, "
                                  f"{before} steps before it)") from None

    def remove_vanished(self, threshold: float, n_grains: int | None = None) -> np.ndarray:
        return self._field.remove_vanished(threshold)[0]

    def compact(self, threshold: float = DEFAULT_COMPACTION_THRESHOLD) -> int:
        return self._field.compact(threshold)

    def labels(self, active_rows: int | None = None, min_value: float = 0.5) -> np.ndarray:
        return self._field.labels(active_rows, min_value)[0]

    def to_dense(self, n_grains: int | None = None) -> np.ndarray:
        return self._field.to_dense(n_grains)[0]

    def max_value(self) -> np.ndarray:
        return self.to_dense().max(axis=0)

# ----------------------------------------------------------------------------- memory and batches

#: Field copies per run on the device during a segment: the donated state (1) and XLA's
#: temporaries (4) — measured with ``Compiled.memory_analysis()`` on CPU (jax 0.10.2, 75 grains,
#: 200 × 70, float64 and float32 alike; benchmarks/jax_batched.py prints the check).
FIELD_COPIES = 5


def bytes_per_run(n_grains: int, ny: int, nx: int, dtype=np.float64, copies: int = FIELD_COPIES) -> int:
    """Estimated device memory of one run: ``copies`` × the (ny, nx, n) field plus the per-run
    coefficients and the int32 labels of a snapshot."""
    itemsize = _as_dtype(dtype).itemsize
    cells = ny * nx
    return int(copies * n_grains * cells * itemsize + 4 * n_grains * itemsize + 2 * cells * 4)


def measured_bytes_per_run(n_grains: int, ny: int, nx: int, dtype=np.float64, batch: int = 2) -> int:
    """Device memory per run of the compiled segment (arguments + temporaries − aliased), from
    XLA's memory analysis of a ``batch``-run program at full height; compiles, does not run."""
    dt = _as_dtype(dtype)
    phi = jax.ShapeDtypeStruct((batch, ny, nx, n_grains), dt)
    coefficient = jax.ShapeDtypeStruct((batch, n_grains), dt)
    scalar = jax.ShapeDtypeStruct((), dt)
    compiled = _advance_segment.lower(phi, 1, ny, ny - 1, coefficient, coefficient, coefficient,
                                      coefficient, scalar, scalar, scalar, rows=ny,
                                      spacing_sq=1.0).compile()
    stats = compiled.memory_analysis()
    if stats is None:
        raise RuntimeError("this JAX backend gives no memory analysis")
    total = (stats.argument_size_in_bytes + stats.output_size_in_bytes
             - stats.alias_size_in_bytes + stats.temp_size_in_bytes)
    return int(math.ceil(total / batch))


def available_memory(device=None) -> int:
    """Bytes free on ``device``: ``bytes_limit − bytes_in_use`` from JAX's memory statistics
    (GPU/TPU), else the host's available memory (psutil) for the CPU backend."""
    device = device if device is not None else jax.devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except (AttributeError, NotImplementedError, RuntimeError):
        stats = None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    import psutil  # a core dependency; only the CPU backend needs it here

    return int(psutil.virtual_memory().available)


def plan_batches(n_runs: int, per_run_bytes: int, *, batch_size: int | None = None,
                 available: int | None = None, safety: float = 0.8,
                 split: bool = True) -> list[range]:
    """Split ``n_runs`` runs into batches that fit the device memory.

    Parameters
    ----------
    n_runs : int
        Runs to do.
    per_run_bytes : int
        From :func:`bytes_per_run`.
    batch_size : int, optional
        Requested batch size (default: as large as fits, at most ``n_runs``).
    available : int, optional
        Free bytes (default :func:`available_memory`); ``safety`` of it may be used.
    split : bool
        If the requested batch does not fit: use the largest batch that does (True) or raise.

    Returns
    -------
    list of range
        Consecutive run indices of each batch.

    Raises
    ------
    BatchTooLargeError
        If not even one run fits, or ``batch_size`` does not fit and ``split`` is False —
        before anything runs.
    """
    if n_runs < 1:
        raise UserInputError(f"n_runs must be ≥ 1, got {n_runs}")
    if batch_size is not None and batch_size < 1:
        raise UserInputError(f"batch size must be ≥ 1, got {batch_size}")
    free = available_memory() if available is None else int(available)
    budget = int(safety * free)
    fits = budget // max(1, int(per_run_bytes))
    if fits < 1:
        raise BatchTooLargeError(
            f"one run needs ≈ {per_run_bytes / 2**20:.1f} MiB but only {budget / 2**20:.1f} MiB "
            f"({safety:.0%} of {free / 2**20:.1f} MiB free) are available on the device")
    wanted = n_runs if batch_size is None else min(batch_size, n_runs)
    if wanted > fits:
        if not split:
            raise BatchTooLargeError(
                f"batch of {wanted} runs needs ≈ {wanted * per_run_bytes / 2**20:.1f} MiB, only "
                f"{budget / 2**20:.1f} MiB available: use a batch of at most {fits}")
        wanted = fits
    return [range(start, min(start + wanted, n_runs)) for start in range(0, n_runs, wanted)]


def available_devices() -> Sequence[str]:
    """Names of JAX's devices (for reports)."""
    return [f"{d.platform}:{getattr(d, 'device_kind', '')}" for d in jax.devices()]


def device_description(device=None) -> dict[str, object]:
    """Name, platform and free memory (bytes) of ``device`` (default: JAX's first device)."""
    device = device if device is not None else jax.devices()[0]
    return {"device": f"{device.platform}:{getattr(device, 'device_kind', '') or device}",
            "platform": device.platform, "available_bytes": available_memory(device),
            "jax": jax.__version__}


def run_batches(runs: Sequence[ModelInputs], *, batch_size: int | None = None, device=None,
                split: bool = True, available: int | None = None) -> list[BatchRunResult]:
    """Run ``runs`` in batches: grouped by :func:`batch_key`, each group split by
    :func:`plan_batches` into batches of at most ``batch_size`` runs that fit the device memory.

    Parameters
    ----------
    batch_size : int, optional
        Largest batch (default: as many as fit).
    split : bool
        A ``batch_size`` that does not fit: use the largest that does (True) or raise
        :class:`BatchTooLargeError` before anything runs.
    available : int, optional
        Free device bytes (default: :func:`available_memory`).

    Returns
    -------
    list of BatchRunResult
        In the order of ``runs``.
    """
    runs = list(runs)
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(runs):
        groups.setdefault(batch_key(r), []).append(i)
    free = available_memory(device) if available is None else int(available)
    plans = []
    for members in groups.values():        # plan every group before running any
        first = runs[members[0]]
        per_run = bytes_per_run(max(runs[i].n_grains for i in members), *first.shape,
                                dtype=first.dtype)
        plans.append((members, plan_batches(len(members), per_run, batch_size=batch_size,
                                            available=free, split=split)))
    results: list[BatchRunResult | None] = [None] * len(runs)
    for members, batches in plans:
        for positions in batches:
            chosen = [members[p] for p in positions]
            started = time.perf_counter()
            done = run_batch([runs[i] for i in chosen], device=device)
            share = (time.perf_counter() - started) / len(chosen)
            for i, result in zip(chosen, done):
                result.wall_time_s = share
                results[i] = result
    return results  # type: ignore[return-value]
