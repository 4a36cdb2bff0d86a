"""The batched JAX backend: explicit-Euler Allen–Cahn steps for many independent runs at once.

A batch is ``B`` independent runs on the same grid that share the deposition schedule (the
number of deposited rows as a function of the step) and the sub-step count; each run has its own
initial state and its own per-grain coefficients Δt·L_q, κ_q, w_q and g_q (different seeds and/or
sweep points). All order parameters are stored densely, ``phi`` of shape (B, n, ny, nx), and the
physics of every cell is :func:`softgrain.phasefield.update.explicit_euler_update` — the same
function the dense NumPy reference and the sparse numba kernel call — evaluated by one jitted
XLA program on CPU or GPU.

Boundaries are exactly those of the dense reference
(:func:`softgrain.phasefield.dense.neighbour_sum_dense`): periodic in x, zero flux at the substrate
(row 0); at the last deposited row either zero flux or, with an open front, φ = 0 in the
undeposited row above; the top of the domain is always zero flux. Rows at and above the front
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
and the rest of softgrain never imports this module unless the JAX backend is asked for.
"""

from __future__ import annotations

import math
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
        "pip install \"jax[cuda12]\"") from exc

from softgrain.errors import SimulationError, UserInputError
from softgrain.phasefield.deposition import DepositionFront
from softgrain.phasefield.energy import Landau
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
    (the last deposited row unless the front is open; −1 for none)."""
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

    def body(_, state):
        return _step(state, row_index, active_rows, reflect_row, coefficients, alpha, beta,
                     gamma, spacing_sq)

    block = jax.lax.fori_loop(0, n_steps, body, block)
    finite = jnp.all(jnp.isfinite(block), axis=(1, 2, 3))
    return phi.at[:, :rows].set(block), finite


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

    def advance(self, n_steps: int, active_rows: int, *, on_nonfinite: str = "raise") -> None:
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
        # The open front reads φ = 0 above the last deposited row; the domain top is zero flux.
        reflect = (not self.params.open_front) or active_rows == ny
        reflect_row = active_rows - 1 if reflect else -1
        self._phi, finite = _advance_segment(
            self._phi, n_steps, active_rows, reflect_row, *self._coefficients, *self._landau,
            rows=rows, spacing_sq=self.params.spacing * self.params.spacing)
        start = self.steps_done
        self.steps_done += n_steps
        bad = ~np.asarray(finite) & ~self.failed
        if bad.any():
            self.failed |= bad
            if on_nonfinite == "raise":
                runs = np.flatnonzero(bad).tolist()
                raise SimulationError(
                    f"non-finite order parameter in run(s) {runs} of the batch during steps "
                    f"{start + 1}..{start + n_steps} ({active_rows} rows deposited)")

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


def advance_schedule(field: BatchedField, front: DepositionFront, stop_step: int, *,
                     start_step: int = 0, substeps: int = 1, snapshot_steps: Iterable[int] = (),
                     compact_every: int | None = None,
                     compaction_threshold: float = DEFAULT_COMPACTION_THRESHOLD,
                     on_nonfinite: str = "raise",
                     on_snapshot: Callable[[BatchSnapshot], None] | None = None) -> list[BatchSnapshot]:
    """Advance ``field`` from outer step ``start_step`` to ``stop_step`` along ``front``.

    Mirrors :meth:`softgrain.phasefield.solver.Simulation.advance_to`: segments end at row
    activations, snapshots and compactions; each outer step is ``substeps`` steps of the Δt that
    ``field.params.dt_mobility`` was built with.

    Parameters
    ----------
    compact_every : int, optional
        Compact (:meth:`BatchedField.compact`) every this many outer steps; never by default.
    snapshot_steps : iterable of int
        Outer steps after which the labels are recorded.

    Returns
    -------
    list of BatchSnapshot
        In step order (also passed to ``on_snapshot`` as they are taken).
    """
    if front.ny != field.shape[0]:
        raise UserInputError(f"the deposition front has {front.ny} rows, the field {field.shape[0]}")
    if substeps < 1:
        raise UserInputError(f"substeps must be ≥ 1, got {substeps}")
    if compact_every is not None and compact_every < 1:
        raise UserInputError(f"compact_every must be ≥ 1, got {compact_every}")
    snapshots_wanted = sorted({int(s) for s in snapshot_steps if start_step < s <= stop_step})
    activations = front.activation_steps()
    taken: list[BatchSnapshot] = []
    step = start_step
    while step < stop_step:
        candidates = [stop_step] + [s for s in snapshots_wanted if s > step]
        later = activations[activations > step]
        if later.size:
            candidates.append(int(later[0]))
        if compact_every is not None:
            candidates.append((step // compact_every + 1) * compact_every)
        stop = min(candidates)
        field.advance((stop - step) * substeps, front.active_rows(step), on_nonfinite=on_nonfinite)
        step = stop
        if compact_every is not None and step % compact_every == 0:
            field.compact(compaction_threshold)
        if step in snapshots_wanted:
            rows = front.active_rows(step)
            snap = BatchSnapshot(step=step, active_rows=rows, labels=field.labels(rows),
                                 n_slots=field.n_slots)
            taken.append(snap)
            if on_snapshot is not None:
                on_snapshot(snap)
    return taken


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
