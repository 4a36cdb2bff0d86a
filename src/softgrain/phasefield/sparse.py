"""The compiled sparse Allen–Cahn kernel: locally reduced order parameters.

Only a handful of the n order parameters are non-zero at any grid point (one inside a grain, two
on a grain boundary, three at a triple junction, plus the exponentially decaying tails of nearby
grains). Following the "sparse grid" / locally-reduced-order-parameter idea of MMSP (Kim, Kim &
Suzuki 2006; Vedantam & Patnaik 2006), every cell stores a fixed number K of *slots*, each a pair
(grain index ``int32``, value ``float64``); index −1 marks an empty slot. The update is the same
explicit-Euler step as the dense reference :func:`~softgrain.phasefield.dense.allen_cahn_step_dense`
(paper Eq. S12–S13, generalised to per-grain weights w_q and tilts g_q)::

    φ_q ← φ_q − Δt·L_q·[ φ_q(w_q(−α + β φ_q²) + γ Σ_{p≠q} (w_q + w_p) φ_p²) + g_q h'(φ_q) − κ_q ∇²_h φ_q ]

(:func:`softgrain.phasefield.update.explicit_euler_update` itself, compiled by numba from the same
source), evaluated, for every active cell, for each grain present in the cell *or in one of its four
neighbours* (so that a grain can spread into a cell where it is absent), with absent grains
counting as φ = 0, periodic neighbours in x and zero-flux ghosts (ghost = the cell itself) at
row 0 and at the last active row — or, with ``open_front=True``, the (empty, φ = 0) undeposited
row above the last active row as its neighbour; the top of the domain is always zero-flux. Rows
at and above ``active_rows`` are not updated.

Exactness and pruning
    Slots are kept sorted by grain index, so every sum (Σ_p φ_p², Σ_p w_p φ_p² and the neighbour
    sum) is taken in the same order as in the dense reference. With ``prune_threshold = 0`` only
    exact zeros are dropped (identical to an absent slot) and the result is bit-identical to the
    dense scheme in practice (tests require ≤ 1e-10 after 1000 steps). With the default
    ``prune_threshold = 1e-8`` (MMSP's choice) values |φ| < 1e-8 are dropped after each update; on
    the test case (8 grains, 1000 steps) the largest deviation from the dense scheme was 8.8e-8.

Capacity policy
    A cell never silently loses a value that is above the prune threshold. If an update produces
    more than K retained values in some cell, the step is abandoned (the double buffer still holds
    the state before it) and, with ``on_overflow="grow"`` (default), both buffers are re-allocated
    with more slots — ``max(needed, K + 4)``, at most ``max_capacity`` — and the step is repeated.
    With ``on_overflow="raise"``, or when ``max_capacity`` would be exceeded, a
    :class:`CapacityError` (a :class:`~softgrain.errors.SimulationError`) names the step, cell and
    the number of slots needed, and the field keeps the state before that step. Slots grown for a
    transient are given back (``auto_shrink``) once every cell uses less than half of them. How
    many slots are needed depends on how far tails reach: a tail of grain p inside grain q decays
    over ℓ = sqrt(κ_p / (w(2γ − α))) cells, so |φ_p| ≥ 1e-8 reaches ≈ 18ℓ — 46 cells for κ = 12.5.
    Thin nucleation layers and fine, equiaxed structures with large κ need 20–30 slots at 1e-8;
    the columnar structure of a deposition run needs ≤ 7 (mean ≈ 3).

Work skipping (exact)
    The update of a cell is a deterministic function of its own slots, its four neighbours' slots,
    the geometry and the parameters. If none of these five cells changed (bit for bit) in the
    previous step, the cell's new state equals its old state, and the kernel skips it; the write
    buffer already holds the same values (it holds the state before the previous step, which is
    unchanged for such a cell). A per-cell "changed" flag and a per-row summary implement this;
    whole static rows cost one flag test, a static cell five. Changing any parameter (Δt, L, κ,
    w, g, Landau coefficients, spacing, prune threshold) or editing the field makes the next step
    recompute every active cell; moving the deposition front recomputes the rows whose
    neighbourhood changed. Boundaries and the tails of neighbouring grains keep drifting by a few
    ULP per step for very long times (a flat boundary's translation is only weakly pinned by the
    lattice), so only cells beyond the reach of every tail become static. Measured on full
    400 s preset runs (seed 1, one thread, CPU time, 2-core machine under load): li-solid
    recomputes 38 % of the cell-steps and runs 2.4–2.7× faster with skipping (12.6–14.4 s
    against 33.8–34.7 s); li-liquid, na-solid and k-solid recompute 97–100 % and cost the same
    with and without it (13.9 vs 14.0 s, 13.4 vs 13.9 s, 13.2 vs 15.5 s: within the noise). It
    is kept: a large gain where grains coarsen into static interiors, no measurable cost elsewhere.

Threads and cache blocking
    Rows are distributed over numba threads (interleaved, so that the busy rows near the
    deposition front are shared). Each step reads one buffer and writes the other, so the result
    is bit-identical for any number of threads. :func:`set_num_threads` sets the thread count
    (``threads=`` of :meth:`SparseField.advance` overrides it for one call); with one thread, or
    fewer than 4096 active cells, a serially compiled kernel is used, avoiding the per-step launch
    of a parallel region. On a machine whose cores are busy with other processes the per-step
    synchronisation of the parallel kernel makes it slower than one thread (measured 2× slower
    at load ≈ 3 on 2 cores): run ensembles with one thread per process. Each thread sweeps column
    blocks (about 256 kB for three rows), rows inside, so that rows j ± 1 are still cached when
    row j is updated on wide grids; the block width does not change the result.

The work per cell depends on the number of grains present locally, never on the total number of
grains n (per-grain L_q, κ_q, w_q and g_q are looked up by index).

Structure
    The kernel's inputs travel in four bundles: the storage (:class:`_Slots`: both slot buffers
    and the change flags), the physics (:class:`_Physics`: per-grain Δt·L_q, κ_q, w_q, g_q and the
    Landau coefficients), the sweep (:class:`_Sweep`: rows, front, prune threshold, skipping,
    block width) and the report (:class:`_Report`: per-row errors and counters).
    :func:`_process_row` updates one block of one row; :func:`_sweep_rows` sweeps the rows of
    one step (all of them, or every n-th for one thread), and the serial and the parallel driver
    differ only in how they call it.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NamedTuple

import numba
import numpy as np
from numba import njit, prange
from numba.extending import register_jitable

from softgrain.errors import SimulationError
from softgrain.phasefield import update
from softgrain.phasefield.energy import Landau
from softgrain.phasefield.grains import GrainParameters

__all__ = ["SparseField", "CapacityError", "set_num_threads", "get_num_threads"]

# Below this many active cells one thread is used whatever the thread setting.
_MIN_PARALLEL_CELLS = 4096
# The kernel sweeps column blocks whose three rows (the stencil's reach) take about this much
# memory, so that rows j−1 … j+1 are still in cache when row j is updated, also on wide grids.
_BLOCK_BYTES = 262144


def _block_width(nx: int, slots: int) -> int:
    """Columns per block for cells of ``slots`` slots (12 bytes each)."""
    return int(min(nx, max(8, _BLOCK_BYTES // (3 * slots * 12))))

# Error codes written by the compiled kernel (per row).
_OK = 0
_NONFINITE = 1
_OVERFLOW = 2


class CapacityError(SimulationError):
    """A cell needs more slots than the field may hold (``on_overflow="raise"`` or ``max_capacity``)."""


def set_num_threads(n: int) -> int:
    """Set the number of threads of the compiled kernel; returns the previous number.

    ``n`` is clipped to ``1 … numba.config.NUMBA_NUM_THREADS`` (the pool size, by default the
    number of cores). Affects the calling thread, like :func:`numba.set_num_threads`.
    """
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    return previous


def get_num_threads() -> int:
    """Number of threads the kernel will use (see :func:`set_num_threads`)."""
    return numba.get_num_threads()


# ----------------------------------------------------------------------------------------------
# Compiled kernels
# ----------------------------------------------------------------------------------------------
#
# The physics of a cell is the shared explicit_euler_update; _process_row holds the stencil (a
# merge of the five cells' sorted slot lists), the store and the change flags of one row; one
# row sweep (_sweep_rows) serves the serial and the parallel driver.

_EMPTY_KEY = np.uint32(0xFFFFFFFF)
_U = np.uint64
_ZERO = np.uint64(0)
_ONE = np.uint64(1)

# The shared one-cell physics, compiled from the same Python source that the dense reference runs
# on NumPy arrays. register_jitable lets numba call tilt_derivative from inside it.
register_jitable(inline="always")(update.tilt_derivative)
_explicit_euler_update = njit(inline="always")(update.explicit_euler_update)

# numba keys its on-disk cache on this file only; the cached drivers close over a digest of
# update.py, so an edit of the shared physics recompiles them instead of loading a stale kernel
# (the functions between the drivers and the physics are deliberately not cached on their own).
_PHYSICS_DIGEST = hashlib.sha256(Path(update.__file__).read_bytes()).hexdigest()


class _Slots(NamedTuple):
    """Storage: both buffers of the slot arrays and the change flags, flattened.

    ``index``/``value`` are (2, ny, nx, S) with S = K + 1: the last slot of every cell is a
    permanent empty sentinel, so a cell's slot list always ends with −1. ``changed`` is
    (2, ny, nx), ``row_changed`` (2, ny) its per-row summary.
    """

    index: np.ndarray
    value: np.ndarray
    changed: np.ndarray
    row_changed: np.ndarray
    ny: int
    nx: int
    stride: int


class _Physics(NamedTuple):
    """Per-grain Δt·L_q, κ_q, w_q, g_q and the Landau coefficients; h² of the Laplacian."""

    dt_mobility: np.ndarray
    kappa: np.ndarray
    weight: np.ndarray
    tilt: np.ndarray
    alpha: float
    beta: float
    gamma: float
    spacing_sq: float


class _Sweep(NamedTuple):
    """What one step sweeps: rows 0 … active_rows−1 in column blocks of ``block_width``."""

    active_rows: int
    ghost_row: int          # rows above it read zero flux (the domain top, or a closed front)
    prune: float            # values |φ| below it are dropped
    force: bool             # recompute every cell (no change skipping)
    block_width: int


class _Report(NamedTuple):
    """Per-row error records and work counters written by the kernel."""

    code: np.ndarray        # _OK, _NONFINITE or _OVERFLOW
    column: np.ndarray
    grain: np.ndarray
    needed: np.ndarray      # slots needed (overflow)
    value: np.ndarray       # the non-finite value
    computed: np.ndarray    # cells recomputed (not skipped)


@njit(inline="always")
def _record_nonfinite(report, j, i, g, new):
    report.code[j] = _NONFINITE
    report.column[j] = i
    report.grain[j] = np.int64(g)
    report.value[j] = new


@njit
def _process_row(slots, physics, sweep, report, r, j, i0, i1):
    """Update columns i0 … i1−1 of row ``j``: read buffer ``r``, write buffer 1 − r.

    For every cell that needs it (change tracking below), every grain listed in the cell or in
    one of its four neighbours is updated by the shared physics
    (:func:`~softgrain.phasefield.update.explicit_euler_update`) and stored in the write buffer.
    Slots are sorted by grain index in every cell, so the grains of a cell and of its four
    neighbours are visited by a five-way merge in increasing grain order: the work is linear in
    the number of occupied slots, and the sums over grains are taken in the dense reference's
    order (absent grains count as exact zeros there).

    Change tracking: a cell whose own slots and whose four neighbours' slots did not change in the
    previous step would reproduce its state, which the write buffer already holds (see "Work
    skipping" in the module docstring); the block starting at column 0 resets the row's change
    summary. Errors are recorded per row in ``report``; the columns of a row are processed in
    blocks, in increasing order and by one thread.

    The cell loop is written out here rather than in a per-cell function: numba
    reference-counts every array bound inside a function (atomic operations), which, done per
    cell, cost more than the update itself (measured 1.8× slower).
    """
    w = 1 - r
    ny, nx, stride = slots.ny, slots.nx, slots.stride
    capacity = _U(stride - 1)
    index, value, flag, row_flag = slots.index, slots.value, slots.changed, slots.row_changed
    dt_mobility, kappa, weight, tilt = (physics.dt_mobility, physics.kappa, physics.weight,
                                        physics.tilt)
    alpha, beta, gamma, spacing_sq = physics.alpha, physics.beta, physics.gamma, physics.spacing_sq
    prune, force = sweep.prune, sweep.force
    jd = j - 1 if j > 0 else j                   # zero flux at the substrate: ghost = self
    # Zero flux above ``ghost_row`` (the domain top, or the front when it is a closed boundary);
    # below it the row above may be undeposited: its empty slots read as φ = 0.
    ju = j + 1 if j < sweep.ghost_row else j
    if i0 == 0:
        row_flag[w, j] = 0
    fw = (w * ny + j) * nx          # flag offsets of row j (write) and rows j, j+1, j−1 (read)
    if not force and row_flag[r, jd] == 0 and row_flag[r, j] == 0 and row_flag[r, ju] == 0:
        # Nothing in rows j-1..j+1 changed in the previous step: row j is static, and the write
        # buffer already holds it. Only clear the stale flags of the write buffer.
        for i in range(i0, i1):
            flag[_U(fw + i)] = 0
        return
    fr = (r * ny + j) * nx
    fru = (r * ny + ju) * nx
    frd = (r * ny + jd) * nx
    n_computed = 0
    for i in range(i0, i1):
        il = i - 1 if i > 0 else nx - 1
        ir = i + 1 if i < nx - 1 else 0
        if not force and (flag[_U(fr + i)] | flag[_U(fr + il)] | flag[_U(fr + ir)]
                          | flag[_U(fru + i)] | flag[_U(frd + i)]) == 0:
            flag[_U(fw + i)] = 0
            continue
        n_computed += 1
        # Slot offsets (unsigned, so that numba emits no negative-index wraparound code): self,
        # x−1, x+1, y+1, y−1, and the output cell in the write buffer.
        c0 = _U((fr + i) * stride)
        c1 = _U((fr + il) * stride)
        c2 = _U((fr + ir) * stride)
        c3 = _U((fru + i) * stride)
        c4 = _U((frd + i) * stride)
        cw = _U((fw + i) * stride)
        sum_sq = 0.0
        sum_weighted_sq = 0.0
        p0 = c0
        while index[p0] >= 0:
            v = value[p0]
            sq = v * v
            sum_sq += sq
            sum_weighted_sq += weight[np.uint32(index[p0])] * sq
            p0 += _ONE
        n_self = p0 - c0
        # Fast path: the five cells list the same grains (grain interiors, smooth tails) — the
        # merge reduces to a slot-by-slot sweep.
        uniform = True
        k = _ZERO
        while True:                       # up to and including the terminating −1
            g = index[c0 + k]
            if (index[c1 + k] != g or index[c2 + k] != g or index[c3 + k] != g
                    or index[c4 + k] != g):
                uniform = False
                break
            if g < 0:
                break
            k += _ONE
        out = _ZERO
        changed = False
        if uniform:
            for k in range(n_self):
                u = np.uint32(index[c0 + k])
                phi = value[c0 + k]
                # Neighbour sum in the dense reference's order: (x−1 + x+1) + y+1 + y−1.
                nb = (value[c1 + k] + value[c2 + k]) + value[c3 + k]
                nb += value[c4 + k]
                new = _explicit_euler_update(phi, nb, sum_sq, sum_weighted_sq, dt_mobility[u],
                                             kappa[u], weight[u], tilt[u], alpha, beta, gamma,
                                             spacing_sq)
                if not np.isfinite(new):
                    _record_nonfinite(report, j, i, u, new)
                    return
                if new == 0.0 or abs(new) < prune:
                    continue
                g = np.int32(u)          # out ≤ k < n_self ≤ capacity: always fits
                if index[c0 + out] != g or value[c0 + out] != new:
                    changed = True
                index[cw + out] = g
                value[cw + out] = new
                out += _ONE
        else:
            # Five-way merge, branch-free: an empty slot (−1) read as unsigned is the largest
            # key, so exhausted lists never win the minimum; the sentinel slot ends every list
            # (and keeps every read in bounds).
            p0 = c0
            p1 = c1
            p2 = c2
            p3 = c3
            p4 = c4
            u0 = np.uint32(index[p0])
            u1 = np.uint32(index[p1])
            u2 = np.uint32(index[p2])
            u3 = np.uint32(index[p3])
            u4 = np.uint32(index[p4])
            while True:
                u = min(min(u0, u1), min(min(u2, u3), u4))
                if u == _EMPTY_KEY:
                    break
                m0 = u0 == u
                m1 = u1 == u
                m2 = u2 == u
                m3 = u3 == u
                m4 = u4 == u
                # Load unconditionally (in bounds thanks to the sentinel), then select: absent
                # grains contribute exact zeros, as in the dense reference.
                v0 = value[p0]
                v1 = value[p1]
                v2 = value[p2]
                v3 = value[p3]
                v4 = value[p4]
                phi = v0 if m0 else 0.0
                nb = (v1 if m1 else 0.0) + (v2 if m2 else 0.0)
                nb += v3 if m3 else 0.0
                nb += v4 if m4 else 0.0
                p0 += _U(m0)
                p1 += _U(m1)
                p2 += _U(m2)
                p3 += _U(m3)
                p4 += _U(m4)
                u0 = np.uint32(index[p0])
                u1 = np.uint32(index[p1])
                u2 = np.uint32(index[p2])
                u3 = np.uint32(index[p3])
                u4 = np.uint32(index[p4])
                new = _explicit_euler_update(phi, nb, sum_sq, sum_weighted_sq, dt_mobility[u],
                                             kappa[u], weight[u], tilt[u], alpha, beta, gamma,
                                             spacing_sq)
                if not np.isfinite(new):
                    _record_nonfinite(report, j, i, u, new)
                    return
                if new == 0.0 or abs(new) < prune:
                    continue
                if out < capacity:
                    g = np.int32(u)
                    if index[c0 + out] != g or value[c0 + out] != new:
                        changed = True
                    index[cw + out] = g
                    value[cw + out] = new
                out += _ONE
        if out > capacity:
            report.code[j] = _OVERFLOW
            report.column[j] = i
            report.needed[j] = np.int64(out)
            return
        if out != n_self:
            changed = True
        p0 = cw + out
        while index[p0] >= 0:     # clear what is left of the old list (stops at the sentinel)
            index[p0] = -1
            value[p0] = 0.0
            p0 += _ONE
        if changed:
            flag[_U(fw + i)] = 1
            # Written per changed cell, not once after the loop from a flag: numba 0.68 lowered
            # that later store to nothing (it released `row_flag` before it, also with
            # NUMBA_OPT=0), leaving the row summary 0 and rows wrongly skipped. The tests of
            # exact skipping and sparse = dense catch such a regression.
            row_flag[w, j] = 1
        else:
            flag[_U(fw + i)] = 0
    report.computed[j] += n_computed


@njit(cache=True)
def _first_error(code, active_rows):
    for j in range(active_rows):
        if code[j] != _OK:
            return j
    return -1


@njit
def _sweep_rows(slots, physics, sweep, report, r, first_row, row_step):
    """One step for rows first_row, first_row + row_step, … : column blocks outside, rows inside,
    so that rows j−1 … j+1 of a block are still in cache when row j is updated. Stops at the
    first row that records an error."""
    nx = slots.nx
    for i0 in range(0, nx, sweep.block_width):
        i1 = min(nx, i0 + sweep.block_width)
        for j in range(first_row, sweep.active_rows, row_step):
            _process_row(slots, physics, sweep, report, r, j, i0, i1)
            if report.code[j] != _OK:
                return


def _compile_drivers(physics_digest):
    """The serial and the parallel driver; both return the 0-based failing step or −1."""

    @njit(cache=True)
    def advance_serial(slots, physics, sweep, report, cur, n_steps):
        physics_digest                       # noqa: B018 — part of numba's cache key
        for s in range(n_steps):
            _sweep_rows(slots, physics, sweep, report, (cur + s) & 1, 0, 1)
            if _first_error(report.code, sweep.active_rows) >= 0:
                return s
        return -1

    @njit(cache=True, parallel=True)
    def advance_parallel(slots, physics, sweep, report, cur, n_steps, n_chunks):
        """Rows interleaved over ``n_chunks`` chunks (threads), so that the busy rows near the
        deposition front are shared."""
        physics_digest                       # noqa: B018 — part of numba's cache key
        for s in range(n_steps):
            for t in prange(n_chunks):
                _sweep_rows(slots, physics, sweep, report, (cur + s) & 1, t, n_chunks)
            if _first_error(report.code, sweep.active_rows) >= 0:
                return s
        return -1

    return advance_serial, advance_parallel


_advance_serial, _advance_parallel = _compile_drivers(_PHYSICS_DIGEST)


@njit(cache=True)
def _labels_kernel(idx, val, b, active_rows, min_value, out):
    ny, nx, K = idx.shape[1], idx.shape[2], idx.shape[3] - 1
    for j in range(ny):
        for i in range(nx):
            if j >= active_rows:
                out[j, i] = -1
                continue
            best = -1
            best_v = 0.0   # absent grains count as φ = 0
            for k in range(K):
                g = idx[b, j, i, k]
                if g < 0:
                    break
                v = val[b, j, i, k]
                if best < 0 or v > best_v or (v == best_v and g < best):
                    best = g
                    best_v = v
            out[j, i] = best if (best >= 0 and best_v >= min_value) else -1


@njit(cache=True)
def _normalise(index, value):
    """Put every cell in canonical form: occupied slots first, sorted by grain, no exact zeros.

    Returns (max occupancy, flat index of a cell listing a grain twice or −1).
    """
    ny, nx, K = index.shape
    max_occ = 0
    for j in range(ny):
        for i in range(nx):
            out = 0
            for k in range(K):
                g = index[j, i, k]
                v = value[j, i, k]
                if g < 0 or v == 0.0:
                    continue
                # insertion into the sorted prefix [0, out)
                pos = out
                while pos > 0 and index[j, i, pos - 1] > g:
                    pos -= 1
                if pos > 0 and index[j, i, pos - 1] == g:
                    return max_occ, j * nx + i
                for kk in range(out, pos, -1):
                    index[j, i, kk] = index[j, i, kk - 1]
                    value[j, i, kk] = value[j, i, kk - 1]
                index[j, i, pos] = g
                value[j, i, pos] = v
                out += 1
            for k in range(out, K):
                index[j, i, k] = -1
                value[j, i, k] = 0.0
            if out > max_occ:
                max_occ = out
    return max_occ, -1


# ----------------------------------------------------------------------------------------------
# The field
# ----------------------------------------------------------------------------------------------

class SparseField:
    """Multi-grain order parameters stored as K (grain, value) slots per grid cell.

    Parameters
    ----------
    index : numpy.ndarray
        (ny, nx, K) integer grain indices, −1 for an empty slot.
    value : numpy.ndarray
        (ny, nx, K) order-parameter values of those grains.
    on_overflow : {"grow", "raise"}
        What to do when a cell needs more than K slots (see the module docstring): re-allocate
        with more slots (default) or raise :class:`CapacityError`. Nothing non-negligible is ever
        dropped silently.
    max_capacity : int
        Upper bound of K when growing (default 64).
    base_capacity : int, optional
        The capacity asked for (default: K of ``index``); see ``auto_shrink``.
    auto_shrink : bool
        At the start of :meth:`advance`, if K was grown above ``base_capacity`` and every cell now
        uses less than half of it, shrink K to max(base_capacity, largest occupancy + 2), so that a
        transient (e.g. the thin nucleation layer, where long tails overlap) does not cost memory
        and cache for the rest of the run.

    Attributes
    ----------
    capacity : int
        K, the number of slots per cell.
    index, value : numpy.ndarray
        Read-only (ny, nx, K) views of the current state; occupied slots come first in every
        cell. Use :meth:`edit` to modify the state in place.
    stats : dict
        Counters since construction: ``steps``, ``cell_steps`` (active cells × steps),
        ``computed_cell_steps`` (cells actually recomputed, including the partial step that is
        repeated after a capacity growth), ``capacity_growths``, ``capacity_shrinks``.

    Notes
    -----
    Two copies of the slot arrays are kept (double buffering), each with one sentinel slot per
    cell, so memory is 2 × ny × nx × (K + 1) × 12 bytes plus two bytes per cell of flags
    (300 MB for 2000 × 700 with K = 8, 1.1 GB with K = 32). Growing K briefly needs a compact copy
    of the occupied slots in addition.
    """

    def __init__(self, index: np.ndarray, value: np.ndarray, *, on_overflow: str = "grow",
                 max_capacity: int = 64, base_capacity: int | None = None,
                 auto_shrink: bool = True) -> None:
        index = np.asarray(index)
        value = np.asarray(value)
        if index.ndim != 3 or index.shape != value.shape:
            raise ValueError(f"index and value must both be (ny, nx, K); got {index.shape} and {value.shape}")
        if not np.issubdtype(index.dtype, np.integer):
            raise ValueError("index must hold integers (grain index, −1 for an empty slot)")
        if on_overflow not in ("grow", "raise"):
            raise ValueError(f"on_overflow must be 'grow' or 'raise', got {on_overflow!r}")
        if index.shape[2] < 1:
            raise ValueError("capacity must be at least 1")
        if index.size and index.min() < -1:
            raise ValueError("grain indices must be ≥ 0 (−1 marks an empty slot)")
        self.on_overflow = on_overflow
        self.max_capacity = int(max_capacity)
        idx = np.ascontiguousarray(index, dtype=np.int32).copy()
        val = np.ascontiguousarray(value, dtype=np.float64).copy()
        _, dup = _normalise(idx, val)
        if dup >= 0:
            raise ValueError(f"grain listed twice in cell (y={dup // idx.shape[1]}, x={dup % idx.shape[1]})")
        self.base_capacity = idx.shape[2] if base_capacity is None else int(base_capacity)
        self.auto_shrink = bool(auto_shrink)
        self._allocate(idx, val)
        self.stats = {"steps": 0, "cell_steps": 0, "computed_cell_steps": 0,
                      "capacity_growths": 0, "capacity_shrinks": 0}

    # -- construction -------------------------------------------------------------------------

    def _allocate(self, idx: np.ndarray, val: np.ndarray, capacity: int | None = None) -> None:
        """Set up both buffers from canonical (ny, nx, k) slots, k ≤ capacity (default k)."""
        ny, nx, k = idx.shape
        K = k if capacity is None else int(capacity)
        # One extra slot per cell: a permanent empty sentinel that ends every slot list.
        self._idx = np.full((2, ny, nx, K + 1), -1, dtype=np.int32)
        self._val = np.zeros((2, ny, nx, K + 1), dtype=np.float64)
        self._idx[:, :, :, :k] = idx
        self._val[:, :, :, :k] = val
        self._chg = np.ones((2, ny, nx), dtype=np.uint8)
        self._rowchg = np.ones((2, ny), dtype=np.uint8)
        self._cur = 0
        self._needs_sync = False
        self._last = None          # parameters of the last advance call
        self._max_grain = int(idx.max()) if idx.size else -1

    @classmethod
    def from_labels(cls, labels: np.ndarray, capacity: int = 8, **kwargs) -> "SparseField":
        """φ = 1 for the grain ``labels[y, x]`` (−1: no grain), 0 for all others.

        Parameters
        ----------
        labels : numpy.ndarray
            (ny, nx) integer grain map.
        capacity : int
            Slots per cell K.
        **kwargs
            ``on_overflow``, ``max_capacity`` (see the class).
        """
        labels = np.asarray(labels)
        if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError("labels must be a 2-D integer array (ny, nx)")
        if capacity < 1:
            raise ValueError(f"capacity must be ≥ 1, got {capacity}")
        ny, nx = labels.shape
        index = np.full((ny, nx, capacity), -1, dtype=np.int32)
        value = np.zeros((ny, nx, capacity))
        present = labels >= 0
        index[..., 0] = np.where(present, labels, -1)
        value[..., 0] = np.where(present, 1.0, 0.0)
        return cls(index, value, **kwargs)

    @classmethod
    def from_dense(cls, phi: np.ndarray, capacity: int = 8, threshold: float = 0.0,
                   **kwargs) -> "SparseField":
        """Sparse copy of a dense field ``phi`` (n, ny, nx).

        Values with |φ| ≤ ``threshold`` (and exact zeros) are left out; non-finite values are kept
        (the next :meth:`advance` reports them). Slots are filled in increasing grain order. If a
        cell holds more than ``capacity`` values, K grows to fit (``on_overflow="grow"``) or
        :class:`CapacityError` is raised.
        """
        phi = np.asarray(phi, dtype=np.float64)
        if phi.ndim != 3:
            raise ValueError(f"phi must be (n, ny, nx), got shape {phi.shape}")
        keep = (phi != 0.0) & ~(np.abs(phi) <= threshold)
        need = int(keep.sum(axis=0).max()) if phi.size else 0
        on_overflow = kwargs.get("on_overflow", "grow")
        max_capacity = kwargs.get("max_capacity", 64)
        kwargs.setdefault("base_capacity", capacity)
        if need > capacity:
            if on_overflow == "raise" or need > max_capacity:
                raise CapacityError(f"a cell of the dense field holds {need} grains above the threshold "
                                    f"{threshold}, more than the capacity {capacity}"
                                    + (f" (max_capacity {max_capacity})" if need > max_capacity else ""))
            capacity = need
        n, ny, nx = phi.shape
        index = np.full((ny, nx, capacity), -1, dtype=np.int32)
        value = np.zeros((ny, nx, capacity))
        count = np.zeros((ny, nx), dtype=np.int64)
        yy, xx = np.mgrid[0:ny, 0:nx]
        for g in range(n):
            m = keep[g]
            if not m.any():
                continue
            k = count[m]
            index[yy[m], xx[m], k] = g
            value[yy[m], xx[m], k] = phi[g][m]
            count[m] += 1
        return cls(index, value, **kwargs)

    def copy(self) -> "SparseField":
        """An independent copy of the current state (counters reset)."""
        return SparseField(self.index, self.value, on_overflow=self.on_overflow,
                           max_capacity=self.max_capacity, base_capacity=self.base_capacity,
                           auto_shrink=self.auto_shrink)

    # -- views ----------------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx)."""
        return self._idx.shape[1], self._idx.shape[2]

    @property
    def capacity(self) -> int:
        """Slots per cell K."""
        return self._idx.shape[3] - 1

    @property
    def index(self) -> np.ndarray:
        view = self._idx[self._cur, :, :, :-1]
        view.flags.writeable = False
        return view

    @property
    def value(self) -> np.ndarray:
        view = self._val[self._cur, :, :, :-1]
        view.flags.writeable = False
        return view

    @property
    def nbytes(self) -> int:
        """Memory held by the field (both buffers and the flags)."""
        return self._idx.nbytes + self._val.nbytes + self._chg.nbytes + self._rowchg.nbytes

    @contextmanager
    def edit(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Writable (index, value) of the current state; the field is re-validated afterwards.

        Example: ``with field.edit() as (index, value): value[3, 4, 0] = 0.5``. Grain indices must
        stay unique per cell; slots are compacted on exit and the next step recomputes every cell.
        """
        idx = self._idx[self._cur, :, :, :-1]
        val = self._val[self._cur, :, :, :-1]
        idx.flags.writeable = True
        val.flags.writeable = True
        try:
            yield idx, val
        finally:
            self._invalidate()
            _, dup = _normalise(idx, val)
            self._max_grain = int(idx.max()) if idx.size else -1
            if dup >= 0:
                raise ValueError(f"grain listed twice in cell (y={dup // idx.shape[1]}, "
                                 f"x={dup % idx.shape[1]}) after edit")

    def _invalidate(self) -> None:
        """Forget the change history: the next step recomputes everything (after a buffer sync)."""
        self._needs_sync = True
        self._last = None

    def occupancy(self) -> np.ndarray:
        """(ny, nx) number of occupied slots in every cell."""
        return (self.index >= 0).sum(axis=2)

    def slot_statistics(self, active_rows: int | None = None) -> dict:
        """Occupancy summary over the active rows: capacity, max, mean, histogram, counters."""
        occ = self.occupancy()[: self.shape[0] if active_rows is None else active_rows]
        hist = np.bincount(occ.ravel(), minlength=self.capacity + 1)
        cell_steps = self.stats["cell_steps"]
        return {
            "capacity": self.capacity,
            "max_occupancy": int(occ.max()) if occ.size else 0,
            "mean_occupancy": float(occ.mean()) if occ.size else 0.0,
            "occupancy_histogram": hist.tolist(),
            "computed_fraction": (self.stats["computed_cell_steps"] / cell_steps) if cell_steps else None,
            **self.stats,
        }

    def to_dense(self, n_grains: int) -> np.ndarray:
        """Dense (n_grains, ny, nx) array; raises if a stored grain index is ≥ ``n_grains``."""
        idx, val = self.index, self.value
        if self._max_grain >= n_grains:
            raise ValueError(f"field holds grain {self._max_grain}, but n_grains = {n_grains}")
        ny, nx, K = idx.shape
        phi = np.zeros((n_grains, ny, nx))
        yy, xx = np.mgrid[0:ny, 0:nx]
        for k in range(K):
            m = idx[..., k] >= 0
            if not m.any():
                break
            phi[idx[..., k][m], yy[m], xx[m]] = val[..., k][m]
        return phi

    def max_value(self) -> np.ndarray:
        """(ny, nx) largest φ in every cell; absent grains count as 0, so empty cells give 0."""
        vals = np.where(self.index >= 0, self.value, 0.0)
        return np.maximum(vals.max(axis=2), 0.0)

    def labels(self, active_rows: int | None = None, min_value: float = 0.5) -> np.ndarray:
        """(ny, nx) int32 grain with the largest φ (ties: lower index).

        −1 where that φ is below ``min_value``, where the cell is empty, or in rows
        ≥ ``active_rows`` (all rows count when ``active_rows`` is None).
        """
        ny, nx = self.shape
        rows = ny if active_rows is None else int(active_rows)
        out = np.empty((ny, nx), dtype=np.int32)
        _labels_kernel(self._idx, self._val, self._cur, rows, float(min_value), out)
        return out

    # -- time stepping --------------------------------------------------------------------------

    def resize(self, capacity: int) -> None:
        """Change the number of slots per cell K (the state is unchanged).

        Raises :class:`CapacityError` if some cell holds more than ``capacity`` grains. The next
        step recomputes every active cell.
        """
        capacity = int(capacity)
        K = self.capacity
        if capacity == K:
            return
        if capacity < 1:
            raise ValueError(f"capacity must be ≥ 1, got {capacity}")
        occupied = int(self.occupancy().max()) if self.index.size else 0
        if occupied > capacity:
            raise CapacityError(f"cannot shrink to {capacity} slots: a cell holds {occupied} grains")
        # Copy only the occupied slots, release the old buffers, then allocate the new ones:
        # the peak memory is one set of buffers plus a compact copy, not two sets.
        idx = np.ascontiguousarray(self.index[..., :occupied])
        val = np.ascontiguousarray(self.value[..., :occupied])
        del self._idx, self._val
        self._allocate(idx, val, capacity)

    def _grow(self, needed: int, step: int, cell: tuple[int, int]) -> None:
        K = self.capacity
        where = f"step {step} of this advance call, cell (y={cell[0]}, x={cell[1]})"
        if self.on_overflow == "raise":
            raise CapacityError(f"capacity {K} exceeded at {where}: {needed} grains above the prune "
                                "threshold (on_overflow='raise'); the field holds the state before "
                                "that step")
        new_K = max(needed, K + 4)
        if new_K > self.max_capacity:
            if needed > self.max_capacity:
                raise CapacityError(f"capacity exceeded at {where}: {needed} grains above the prune "
                                    f"threshold, more than max_capacity = {self.max_capacity}; the "
                                    "field holds the state before that step")
            new_K = self.max_capacity
        self.resize(new_K)
        self.stats["capacity_growths"] += 1

    def _maybe_shrink(self) -> None:
        """Give back slots grown for a transient once the occupancy has fallen to under half."""
        K = self.capacity
        if not self.auto_shrink or K <= self.base_capacity:
            return
        occupied = int(self.occupancy().max()) if self.index.size else 0
        target = max(self.base_capacity, occupied + 2)
        if target <= K // 2:
            self.resize(target)
            self.stats["capacity_shrinks"] += 1

    def _prepare(self, active_rows: int, params: tuple) -> None:
        """Make the change flags valid for a call with these parameters and front position."""
        r = self._cur
        if self._needs_sync:
            self._idx[1 - r] = self._idx[r]
            self._val[1 - r] = self._val[r]
            self._needs_sync = False
            self._last = None
        last = self._last
        if last is None or not _same_params(last[1], params):
            self._chg[r] = 1
            self._rowchg[r] = 1
        elif last[0] != active_rows:
            old = last[0]
            lo = max(0, min(old, active_rows) - 1)
            hi = max(old, active_rows)
            if active_rows < old:
                # Rows leaving the domain keep their values; both buffers must agree on them.
                self._idx[1 - r, active_rows:old] = self._idx[r, active_rows:old]
                self._val[1 - r, active_rows:old] = self._val[r, active_rows:old]
            self._chg[r, lo:hi] = 1
            self._rowchg[r, lo:hi] = 1
        self._last = (active_rows, params)

    def advance(self, n_steps: int, dt: float, active_rows: int, grains: GrainParameters,
                landau: Landau, spacing: float = 1.0, prune_threshold: float = 1e-8,
                threads: int | None = None, skip_static: bool = True,
                open_front: bool = False) -> None:
        """Take ``n_steps`` explicit-Euler steps of ``dt`` (paper Eq. S12–S13, generalised), in place.

        Parameters
        ----------
        n_steps : int
            Number of steps.
        dt : float
            Time step (the caller is responsible for stability, see
            :func:`softgrain.phasefield.mapping.stable_time_step`).
        active_rows : int
            Rows 0 … active_rows−1 are deposited and updated.
        grains : GrainParameters
            L_q, κ_q, w_q and g_q of every grain (at least largest grain index + 1 entries).
        landau : Landau
            α, β, γ of the Landau polynomial (its ``w`` is not used: the weights are per grain).
        spacing : float
            Grid spacing h in the Laplacian.
        prune_threshold : float
            Values with |φ| below this are dropped after each update (0 keeps every non-zero
            value and reproduces the dense scheme).
        threads : int, optional
            Threads for this call (default: :func:`get_num_threads`); grids with fewer than
            4096 active cells always run on one thread.
        skip_static : bool
            Skip cells whose neighbourhood did not change in the previous step (exact; default).
            False recomputes every active cell every step — same result, for tests and timing.
        open_front : bool
            False: the last active row is a zero-flux boundary. True: the undeposited row above
            it is empty space (φ = 0 for every grain), so a grain pays its gradient energy κ_q
            towards it; the top of the domain is always zero-flux.

        Raises
        ------
        SimulationError
            A non-finite value appeared; the message names the step (1-based, within this call),
            the grain and the cell. The field keeps the state before that step.
        CapacityError
            A cell needs more slots than allowed (see the capacity policy).
        """
        n_steps = int(n_steps)
        ny, nx = self.shape
        active_rows = int(active_rows)
        if n_steps < 0:
            raise ValueError(f"n_steps must be ≥ 0, got {n_steps}")
        if not 0 <= active_rows <= ny:
            raise ValueError(f"active_rows must be within 0…{ny}, got {active_rows}")
        if not (np.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be positive and finite, got {dt}")
        if not (np.isfinite(spacing) and spacing > 0):
            raise ValueError(f"spacing must be positive and finite, got {spacing}")
        if not (np.isfinite(prune_threshold) and prune_threshold >= 0):
            raise ValueError(f"prune_threshold must be ≥ 0, got {prune_threshold}")
        if not isinstance(grains, GrainParameters):
            raise TypeError(f"grains must be a GrainParameters, got {type(grains).__name__}")
        if len(grains) <= self._max_grain:
            raise ValueError(f"grains has {len(grains)} entries, but the field holds grain "
                             f"{self._max_grain}")
        if n_steps == 0 or active_rows == 0:
            return
        physics = _Physics(float(dt) * grains.mobility, grains.kappa, grains.weight, grains.tilt,
                           float(landau.alpha), float(landau.beta), float(landau.gamma),
                           float(spacing) * float(spacing))
        params = (float(dt), float(spacing), float(prune_threshold),
                  (landau.alpha, landau.beta, landau.gamma), grains, bool(open_front))
        n_threads = numba.get_num_threads() if threads is None else max(1, int(threads))
        n_threads = min(n_threads, numba.config.NUMBA_NUM_THREADS, active_rows)
        if active_rows * nx < _MIN_PARALLEL_CELLS:
            n_threads = 1           # a parallel launch per step costs more than it saves

        self._maybe_shrink()
        done = 0
        while done < n_steps:
            self._prepare(active_rows, params)
            report = _Report(np.zeros(ny, dtype=np.int8), np.zeros(ny, dtype=np.int64),
                             np.zeros(ny, dtype=np.int64), np.zeros(ny, dtype=np.int64),
                             np.zeros(ny, dtype=np.float64), np.zeros(ny, dtype=np.int64))
            slots = _Slots(self._idx.reshape(-1), self._val.reshape(-1), self._chg.reshape(-1),
                           self._rowchg, ny, nx, self.capacity + 1)
            sweep = _Sweep(active_rows, ny - 1 if open_front else active_rows - 1,
                           float(prune_threshold), not skip_static,
                           _block_width(nx, self.capacity + 1))
            if n_threads > 1:
                previous = numba.get_num_threads()
                numba.set_num_threads(n_threads)
                try:
                    failed = _advance_parallel(slots, physics, sweep, report, self._cur,
                                               n_steps - done, n_threads)
                finally:
                    numba.set_num_threads(previous)
            else:
                failed = _advance_serial(slots, physics, sweep, report, self._cur, n_steps - done)
            del slots               # no reference to the buffers may outlive a resize below
            ran = n_steps - done if failed < 0 else failed
            self.stats["steps"] += ran
            self.stats["cell_steps"] += ran * active_rows * nx
            self.stats["computed_cell_steps"] += int(report.computed.sum())
            self._cur = (self._cur + ran) & 1
            if failed < 0:
                return
            # The failing step wrote part of the other buffer: re-synchronise before going on.
            self._needs_sync = True
            self._last = None
            row = _first_error(report.code, active_rows)
            col = int(report.column[row])
            step = done + failed + 1
            if report.code[row] == _NONFINITE:
                grain = int(report.grain[row])
                raise SimulationError(
                    f"non-finite order parameter ({report.value[row]}) at step {step} of this "
                    f"advance call: grain {grain}, cell (y={row}, x={col}); the field holds the "
                    f"state before that step")
            self._grow(int(report.needed.max()), step, (row, col))
            done += failed


def _same_params(a: tuple, b: tuple) -> bool:
    return a[:4] == b[:4] and a[4].same_as(b[4]) and a[5:] == b[5:]
