"""The compiled sparse kernel against the dense NumPy reference, and its bookkeeping.

Small grids only (≤ 24 × 40, ≤ 8 grains): the whole module runs in seconds once numba has
compiled (and cached) the kernels.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from grain_cases import voronoi
from softgrain.errors import SimulationError
from softgrain.phasefield.energy import Landau
from softgrain.phasefield.grains import GrainParameters
from softgrain.phasefield import sparse
from softgrain.phasefield.dense import allen_cahn_step_dense
from softgrain.phasefield.sparse import CapacityError, SparseField, set_num_threads

LANDAU = Landau()  # α = β = 1, γ = 1.5, w = 1
NY, NX, N = 24, 40, 8


def dense_from_labels(labels: np.ndarray, n: int) -> np.ndarray:
    phi = np.zeros((n,) + labels.shape)
    for g in range(n):
        phi[g][labels == g] = 1.0
    return phi


@pytest.fixture(scope="module")
def case():
    """8 grains with different L_q, κ_q; a stable Δt (Δt·L·(8κ + 5) ≤ 1.5)."""
    rng = np.random.default_rng(5)
    mobility = rng.uniform(1.0, 6.0, N)
    kappa = rng.uniform(0.1, 3.0, N)
    dt = 1.5 / np.max(mobility * (8 * kappa + 5))
    labels = voronoi(NY, NX, N, 3)
    return labels, mobility, kappa, dt


def run_dense(phi, mobility, kappa, dt, schedule, open_front=False):
    for n_steps, active in schedule:
        for _ in range(n_steps):
            allen_cahn_step_dense(phi, GrainParameters.paper(mobility, kappa), LANDAU, dt, active, open_front=open_front)
    return phi


def run_sparse(field, mobility, kappa, dt, schedule, **kw):
    for n_steps, active in schedule:
        field.advance(n_steps, dt, active, GrainParameters.paper(mobility, kappa), LANDAU, **kw)
    return field


# Partially deposited (14 of 24 rows), then the front jumps to row 20 half-way.
SCHEDULE = [(500, 14), (500, 20)]


def deposited_start(labels):
    phi = dense_from_labels(labels, N)
    phi[:, 14:] = 0.0
    return phi


@pytest.mark.parametrize("open_front", [False, True])
def test_exact_against_dense_without_pruning(case, open_front):
    labels, mobility, kappa, dt = case
    phi = deposited_start(labels)
    field = SparseField.from_dense(phi, capacity=N)
    run_dense(phi, mobility, kappa, dt, SCHEDULE, open_front)
    run_sparse(field, mobility, kappa, dt, SCHEDULE, prune_threshold=0.0, open_front=open_front)
    # Slots are sorted by grain, so even Σφ² is summed in the dense order: in practice the
    # results are bit-identical; the requirement is 1e-10.
    assert np.abs(field.to_dense(N) - phi).max() <= 1e-10
    assert field.stats["steps"] == 1000


def test_column_blocks_do_not_change_the_result(case, monkeypatch):
    labels, mobility, kappa, dt = case
    phi = deposited_start(labels)
    field = SparseField.from_dense(phi, capacity=N)
    monkeypatch.setattr(sparse, "_BLOCK_BYTES", 1)     # 8-column blocks: 5 per row
    assert sparse._block_width(NX, N + 1) == 8
    run_dense(phi, mobility, kappa, dt, [(300, 14), (300, 20)])
    run_sparse(field, mobility, kappa, dt, [(300, 14), (300, 20)], prune_threshold=0.0)
    assert np.abs(field.to_dense(N) - phi).max() <= 1e-10


def test_default_pruning_stays_close_to_dense(case):
    labels, mobility, kappa, dt = case
    phi = deposited_start(labels)
    field = SparseField.from_dense(phi)               # capacity 8, prune_threshold 1e-8
    run_dense(phi, mobility, kappa, dt, SCHEDULE)
    run_sparse(field, mobility, kappa, dt, SCHEDULE)
    # Measured: 8.8e-8 after these 1000 steps (values < 1e-8 dropped every step).
    assert np.abs(field.to_dense(N) - phi).max() <= 1e-6
    dense_labels = np.where(phi.max(axis=0) >= 0.5, phi.argmax(axis=0), -1)
    dense_labels[20:] = -1
    assert np.array_equal(field.labels(20), dense_labels)


def test_periodic_x_wrap(case):
    _, mobility, kappa, dt = case
    labels = np.zeros((NY, NX), dtype=int)
    labels[:, 0] = 1                                  # a grain on the left edge only
    field = SparseField.from_labels(labels)
    field.advance(1, dt, NY, GrainParameters.paper(mobility, kappa), LANDAU)
    dense = field.to_dense(N)
    assert (dense[1, :, NX - 1] > 0).all()            # grew across the periodic boundary
    assert (dense[1, :, 2] == 0).all()                # one step reaches only the neighbours
    # Equivariance: advancing a rolled state gives the rolled result, bit for bit.
    shifted = SparseField.from_labels(np.roll(labels, 7, axis=1))
    a = SparseField.from_labels(labels)
    a.advance(200, dt, NY, GrainParameters.paper(mobility, kappa), LANDAU)
    shifted.advance(200, dt, NY, GrainParameters.paper(mobility, kappa), LANDAU)
    assert np.array_equal(np.roll(a.to_dense(N), 7, axis=2), shifted.to_dense(N))


def test_zero_flux_in_y_keeps_columns_uniform(case):
    _, mobility, kappa, dt = case
    labels = np.repeat((np.arange(NX) // 10)[None, :], NY, axis=0)   # vertical stripes
    for active in (NY, 9):
        field = SparseField.from_labels(np.where(np.arange(NY)[:, None] < active, labels, -1))
        field.advance(300, dt, active, GrainParameters.paper(mobility, kappa), LANDAU)
        phi = field.to_dense(N)[:, :active]
        # ghost = self at row 0 and at the last active row: no flux, nothing varies along y
        assert np.array_equal(phi, np.broadcast_to(phi[:, :1], phi.shape))


def test_inactive_rows_stay_empty(case):
    labels, mobility, kappa, dt = case
    field = SparseField.from_labels(np.where(np.arange(NY)[:, None] < 10, labels, -1))
    field.advance(400, dt, 10, GrainParameters.paper(mobility, kappa), LANDAU)
    assert (field.occupancy()[10:] == 0).all()
    assert (field.labels(10)[10:] == -1).all()
    assert (field.occupancy()[:10] >= 1).all()


def test_nan_injection_names_step_grain_and_cell(case):
    labels, mobility, kappa, dt = case
    field = SparseField.from_labels(labels)
    field.advance(3, dt, NY, GrainParameters.paper(mobility, kappa), LANDAU)
    g = int(labels[12, 20])
    with field.edit() as (index, value):
        k = int(np.nonzero(index[12, 20] == g)[0][0])
        value[12, 20, k] = np.nan
    with pytest.raises(SimulationError, match=rf"step 1 of this advance call: grain {g}, cell \(y=11, x=20\)"):
        field.advance(5, dt, NY, GrainParameters.paper(mobility, kappa), LANDAU)


def test_blow_up_reports_the_same_step_as_dense(case):
    labels, mobility, kappa, dt = case
    mob = mobility.copy()
    mob[2] *= 40.0                                    # far beyond the explicit-Euler limit
    phi = dense_from_labels(labels, N)
    field = SparseField.from_dense(phi, capacity=N)
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(1, 500):
            before = phi.copy()
            allen_cahn_step_dense(phi, GrainParameters.paper(mob, kappa), LANDAU, dt, NY)
            if not np.isfinite(phi).all():
                break
        else:
            pytest.fail("the dense reference did not blow up")
    bad_grains = set(np.nonzero(~np.isfinite(phi))[0].tolist())
    with pytest.raises(SimulationError, match=rf"step {step} of this advance call") as info:
        field.advance(500, dt, NY, GrainParameters.paper(mob, kappa), LANDAU, prune_threshold=0.0)
    grain = int(str(info.value).split("grain ")[1].split(",")[0])
    assert grain in bad_grains
    # The field keeps the last finite state (the one before the failing step).
    assert np.array_equal(field.to_dense(N), before)


def test_capacity_grows_without_changing_the_result(case):
    labels, mobility, kappa, dt = case
    small = SparseField.from_labels(labels, capacity=2, auto_shrink=False)
    large = SparseField.from_labels(labels, capacity=N)
    small.advance(200, dt, NY, GrainParameters.paper(mobility, kappa), LANDAU)
    large.advance(200, dt, NY, GrainParameters.paper(mobility, kappa), LANDAU)
    assert small.capacity > 2 and small.stats["capacity_growths"] >= 1
    assert np.array_equal(small.to_dense(N), large.to_dense(N))


def test_capacity_raise_policy_keeps_the_state(case):
    labels, mobility, kappa, dt = case
    field = SparseField.from_labels(labels, capacity=1, on_overflow="raise")
    start = field.to_dense(N)
    with pytest.raises(CapacityError, match=r"step 1 of this advance call"):
        field.advance(10, dt, NY, GrainParameters.paper(mobility, kappa), LANDAU)
    assert np.array_equal(field.to_dense(N), start)
    capped = SparseField.from_labels(labels, capacity=1, max_capacity=1)
    with pytest.raises(CapacityError, match="max_capacity"):
        capped.advance(10, dt, NY, GrainParameters.paper(mobility, kappa), LANDAU)
    phi = dense_from_labels(labels, N) * 0.5 + 0.01   # every grain everywhere
    assert SparseField.from_dense(phi, capacity=3).capacity == N
    with pytest.raises(CapacityError):
        SparseField.from_dense(phi, capacity=3, on_overflow="raise")


def test_capacity_shrinks_after_a_transient(case):
    labels, mobility, kappa, dt = case
    field = SparseField.from_labels(labels, capacity=2)
    field.resize(40)
    field.base_capacity = 2
    field.advance(1, dt, NY, GrainParameters.paper(mobility, kappa), LANDAU)
    assert field.capacity < 40 and field.stats["capacity_shrinks"] == 1


def test_labels_and_views(case):
    labels, _, _, _ = case
    field = SparseField.from_labels(labels)
    assert np.array_equal(field.labels(), labels)
    assert (field.labels(active_rows=5)[5:] == -1).all()
    assert np.array_equal(field.labels(active_rows=5)[:5], labels[:5])
    assert np.array_equal(field.max_value(), np.ones((NY, NX)))
    phi = np.zeros((3, 2, 2))
    phi[0] = [[0.3, 0.6], [0.7, 0.2]]
    phi[1] = [[0.2, 0.6], [0.1, 0.0]]
    phi[2] = [[0.1, 0.0], [0.7, 0.0]]
    f = SparseField.from_dense(phi)
    # largest φ wins, ties go to the lower grain index, below min_value → −1
    assert f.labels().tolist() == [[-1, 0], [0, -1]]
    assert f.labels(min_value=0.25).tolist() == [[0, 0], [0, -1]]
    assert np.array_equal(f.to_dense(3), phi)
    assert f.occupancy().tolist() == [[3, 2], [3, 1]]
    with pytest.raises(ValueError):
        f.value[0, 0, 0] = 1.0                        # read-only view: use edit()
    copy = f.copy()
    with copy.edit() as (_, value):
        value[0, 0, 0] = 0.9
    assert f.value[0, 0, 0] == 0.3 and copy.labels()[0, 0] == 0
    with pytest.raises(ValueError, match="twice"):
        with copy.edit() as (index, _):
            index[0, 0, 1] = index[0, 0, 0]


def test_skipping_static_cells_is_exact(case):
    _, mobility, kappa, dt = case
    labels = np.zeros((NY, NX), dtype=int)
    labels[2:6, 3:7] = 1                               # a small grain in a large one
    kap = np.full(N, 0.2)
    runs = []
    for skip in (True, False):
        field = SparseField.from_labels(np.where(np.arange(NY)[:, None] < 16, labels, -1))
        field.advance(800, dt, 16, GrainParameters.paper(mobility, kap), LANDAU, skip_static=skip)
        field.advance(300, dt, 20, GrainParameters.paper(mobility, kap), LANDAU, skip_static=skip)      # front moves
        field.advance(300, dt, 22, GrainParameters.paper(mobility, kap), LANDAU, skip_static=skip, open_front=True)
        field.advance(400, dt / 2, NY, GrainParameters.paper(mobility, kap), LANDAU, skip_static=skip)  # Δt changes
        runs.append(field)
    fast, full = runs
    assert np.array_equal(fast.index, full.index) and np.array_equal(fast.value, full.value)
    assert fast.stats["computed_cell_steps"] < 0.8 * full.stats["computed_cell_steps"]


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
def test_thread_count_does_not_change_the_result(case, monkeypatch):
    labels, mobility, kappa, dt = case
    monkeypatch.setattr(sparse, "_MIN_PARALLEL_CELLS", 0)   # use threads even on this small grid
    parallel = sparse._advance_parallel
    calls = []
    monkeypatch.setattr(sparse, "_advance_parallel", lambda *a: calls.append(a[-1]) or parallel(*a))
    results = []
    for threads in (1, 2):
        previous = set_num_threads(threads)
        try:
            field = SparseField.from_labels(labels)
            field.advance(150, dt, 15, GrainParameters.paper(mobility, kappa), LANDAU)
            field.advance(150, dt, NY, GrainParameters.paper(mobility, kappa), LANDAU)
        finally:
            set_num_threads(previous)
        results.append(field)
    assert calls and set(calls) == {2}                 # the two-thread run went parallel
    assert np.array_equal(results[0].index, results[1].index)
    assert np.array_equal(results[0].value, results[1].value)


def test_bad_arguments(case):
    labels, mobility, kappa, dt = case
    field = SparseField.from_labels(labels)
    with pytest.raises(ValueError, match="grains has 3 entries"):
        field.advance(1, dt, NY, GrainParameters.paper(mobility[:3], kappa[:3]), LANDAU)
    with pytest.raises(ValueError, match="active_rows"):
        field.advance(1, dt, NY + 1, GrainParameters.paper(mobility, kappa), LANDAU)
    with pytest.raises(ValueError, match="dt"):
        field.advance(1, -dt, NY, GrainParameters.paper(mobility, kappa), LANDAU)
    with pytest.raises(ValueError, match="n_grains"):
        field.to_dense(3)
