"""The batched JAX backend against the dense NumPy reference, and its bookkeeping.

Requirement (issue 12): float64 JAX equals the dense reference to 1e-10 after 1,000 steps with a
deposition front crossing rows, for both front types, for the paper's model and for the
generalised one (unequal w_q, g_q); a batch equals its runs done one by one; compaction and the
row bucketing change nothing beyond 1e-10; labels equal DenseField.labels.
Small grids (20 × 40, ≤ 12 grains) so the module runs in seconds.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("jax", reason="the JAX backend is optional: pip install -e '.[jax]'")

from grain_cases import voronoi  # noqa: E402
from softgrain.errors import SimulationError, UserInputError  # noqa: E402
from softgrain.phasefield.batched_jax import (BatchedField, BatchParameters,  # noqa: E402
                                              BatchTooLargeError, advance_schedule,
                                              bucket_rows, bytes_per_run, plan_batches)
from softgrain.phasefield.deposition import DepositionFront  # noqa: E402
from softgrain.phasefield.energy import Landau  # noqa: E402
from softgrain.phasefield.dense import DenseField, allen_cahn_step_dense  # noqa: E402
from softgrain.phasefield.grains import GrainParameters  # noqa: E402

LANDAU = Landau()  # α = β = 1, γ = 1.5, w = 1
NY, NX, N = 20, 40, 10
STEPS = 1000
# Starts with 6 deposited rows; the front crosses the remaining 14 rows within the 1000 steps, so
# the row buckets 8, 16 and 20 (the domain top) and both bucket edges are exercised.
FRONT = DepositionFront(ny=NY, initial_rows=6, rows_per_step=0.015)
TOLERANCE = 1e-10


def deposited_start(labels: np.ndarray, n: int, rows: int) -> np.ndarray:
    """Dense φ of ``labels`` with rows at and above ``rows`` not yet deposited."""
    phi = DenseField.from_labels(labels, n).phi
    phi[:, rows:] = 0.0
    return phi


def paper_coefficients(seed: int, n: int = N):
    """Mobility and κ per grain, and a Δt with Δt·L·(8κ + 5) ≤ 1.5 (stable)."""
    rng = np.random.default_rng(seed)
    mobility = rng.uniform(1.0, 6.0, n)
    kappa = rng.uniform(0.1, 3.0, n)
    return mobility, kappa, 1.5 / np.max(mobility * (8 * kappa + 5))


def general_coefficients(seed: int, n: int = N):
    """Unequal weights w_q ∈ [0.5, 1.5] and tilts g_q ∈ [−0.2, 0.2] (MODEL.md §7 variant D)."""
    rng = np.random.default_rng(seed)
    mobility, kappa, _ = paper_coefficients(seed, n)
    weight = rng.uniform(0.5, 1.5, n)
    tilt = rng.uniform(-0.2, 0.2, n)
    # Bulk curvature ≤ w(−α + 3β) + γ(2 w_max) + |g| max h'' (h'' ≤ 5.8); generous margin.
    dt = 1.0 / np.max(mobility * (8 * kappa / 0.64 + 3 * weight + 6 * weight.max() + 6 * abs(tilt)))
    return mobility, kappa, weight, tilt, dt


def _rows(steps: int, substeps: int = 1) -> list[int]:
    """Deposited rows of every (sub-)step along FRONT."""
    return list(np.repeat([FRONT.active_rows(step) for step in range(steps)], substeps))


def _dense_reference(phi: np.ndarray, rows_per_step, dt_mobility, kappa, weight, tilt,
                     landau: Landau, spacing: float, open_front: bool) -> np.ndarray:
    """The generalised dense NumPy reference (:func:`allen_cahn_step_dense`), one explicit-Euler
    step of φ (n, ny, nx) for each entry of ``rows_per_step`` (the deposited rows of that step).

    Δt·L_q is passed as the mobility with Δt = 1 (exact), as the batched kernel stores it.
    """
    phi = phi.copy()
    grains = GrainParameters(np.asarray(dt_mobility, dtype=float), np.asarray(kappa, dtype=float),
                             np.asarray(weight, dtype=float), np.asarray(tilt, dtype=float))
    for rows in rows_per_step:
        allen_cahn_step_dense(phi, grains, landau, 1.0, rows, spacing, open_front)
    return phi


def _paper_reference(phi: np.ndarray, rows_per_step, mobility, kappa, dt,
                     open_front: bool) -> DenseField:
    """The current dense reference (DenseField.advance), one step per entry of ``rows_per_step``."""
    field = DenseField(phi.copy())
    for rows in rows_per_step:
        field.advance(1, dt, rows, GrainParameters.paper(mobility, kappa, LANDAU.w), LANDAU,
                      open_front=open_front)
    return field


def _run_jax(phi, params: BatchParameters, steps: int = STEPS, **kw) -> BatchedField:
    field = BatchedField(phi, params, **kw.pop("field_kw", {}))
    advance_schedule(field, FRONT, steps, **kw)
    return field


@pytest.mark.parametrize("open_front", [False, True], ids=["zero-flux-front", "open-front"])
def test_paper_model_equals_dense_reference(open_front):
    mobility, kappa, dt = paper_coefficients(5)
    phi0 = deposited_start(voronoi(NY, NX, N, 3), N, FRONT.initial_rows)
    reference = _paper_reference(phi0, _rows(STEPS), mobility, kappa, dt, open_front)
    params = BatchParameters.paper(dt, mobility[None], kappa[None], LANDAU, open_front=open_front)
    field = _run_jax(phi0[None], params)
    result = field.to_dense()[0]
    assert FRONT.active_rows(0) < NY == FRONT.active_rows(STEPS - 1)  # the front crossed rows
    assert np.abs(result - reference.phi).max() <= TOLERANCE
    assert np.array_equal(field.labels(NY)[0], reference.labels(NY))
    # The generalised reference helper reduces to the paper's dense reference.
    generalised = _dense_reference(phi0, _rows(STEPS), dt * mobility, kappa, np.ones(N),
                                   np.zeros(N), LANDAU, 1.0, open_front)
    assert np.abs(generalised - reference.phi).max() <= TOLERANCE


@pytest.mark.parametrize("open_front", [False, True], ids=["zero-flux-front", "open-front"])
def test_generalised_model_equals_dense_reference(open_front):
    mobility, kappa, weight, tilt, dt = general_coefficients(7)
    spacing = 0.8  # h ≠ 1 exercises the division by h²
    phi0 = deposited_start(voronoi(NY, NX, N, 4), N, FRONT.initial_rows)
    reference = _dense_reference(phi0, _rows(STEPS), dt * mobility, kappa, weight, tilt, LANDAU,
                                 spacing, open_front)
    params = BatchParameters(dt_mobility=dt * mobility[None], kappa=kappa[None], weight=weight[None],
                             tilt=tilt[None], alpha=LANDAU.alpha, beta=LANDAU.beta,
                             gamma=LANDAU.gamma, spacing=spacing, open_front=open_front)
    result = _run_jax(phi0[None], params).to_dense()[0]
    assert np.isfinite(reference).all()
    assert np.abs(reference).max() > 0.5  # grains still there: the comparison is not of zeros
    assert np.abs(result - reference).max() <= TOLERANCE


TAIL = 1e-22  # a negligible but non-zero order parameter, like the tail of a vanished grain


def _batch_case(batch: int = 4, n: int = 12, general: bool = True):
    """``batch`` runs with different nuclei and coefficients; each run uses 8 of the ``n`` grain
    ids (different ones per run) and a ninth, ``tail_ids[run]``, is φ = TAIL in all deposited
    cells. Returns (phi, params, tail_ids)."""
    phis, tail_ids = [], []
    for run in range(batch):
        base = voronoi(NY, NX, 8, 10 + run)
        ids = np.random.default_rng(run).choice(n, size=9, replace=False)
        phi = deposited_start(ids[:8][base], n, FRONT.initial_rows)
        phi[ids[8], :FRONT.initial_rows] = TAIL
        phis.append(phi)
        tail_ids.append(int(ids[8]))
    phi = np.stack(phis)
    coefficients = [general_coefficients(20 + run, n) for run in range(batch)]
    dt = min(c[4] for c in coefficients)
    mobility, kappa, weight, tilt = (np.stack([c[i] for c in coefficients]) for i in range(4))
    if not general:
        weight, tilt = np.ones_like(weight), np.zeros_like(tilt)
    params = BatchParameters(dt_mobility=dt * mobility, kappa=kappa, weight=weight, tilt=tilt,
                             alpha=LANDAU.alpha, beta=LANDAU.beta, gamma=LANDAU.gamma,
                             open_front=True)
    return phi, params, tail_ids


def test_batch_equals_single_runs():
    phi, params, _ = _batch_case(batch=3)
    together = _run_jax(phi, params, steps=600).to_dense()
    for run in range(phi.shape[0]):
        one = params.select_runs(slice(run, run + 1))
        alone = _run_jax(phi[run:run + 1], one, steps=600).to_dense()[0]
        assert np.abs(together[run] - alone).max() <= 1e-14


def test_compaction_changes_nothing_and_drops_grains():
    phi, params, tail_ids = _batch_case()
    plain = _run_jax(phi, params)
    compacted = _run_jax(phi, params, compact_every=100)
    # Each run has 9 of 12 grain ids, all 12 are used by the batch; compaction packs run by run.
    assert compacted.n_slots < plain.n_slots == 12
    compacted.compact(slot_bucket=1)   # as few slots as the run with most survivors needs
    maxima = plain.grain_maxima()
    dropped_tails = [tail not in compacted.grain_ids[run] for run, tail in enumerate(tail_ids)]
    assert sum(dropped_tails) >= 2   # non-zero tails were dropped, not only exact zeros
    assert np.abs(compacted.to_dense() - plain.to_dense()).max() <= TOLERANCE
    assert np.array_equal(compacted.labels(NY), plain.labels(NY))
    for run in range(phi.shape[0]):
        dropped = [g for g in range(12) if g not in compacted.grain_ids[run]]
        assert maxima[run, dropped].max(initial=0.0) < TOLERANCE  # only negligible grains went


def test_compaction_packs_each_run_separately():
    phi, params, tail_ids = _batch_case(batch=2)
    phi[0, tail_ids[0]] = phi[1, tail_ids[1]] = 0.0   # exact zeros: the fields must be unchanged
    field = BatchedField(phi, params)
    field.compact(slot_bucket=1)
    present = [set(np.flatnonzero(phi[run].max(axis=(1, 2)) > 0).tolist()) for run in range(2)]
    # A grain id alive in one run only is kept for that run only: fewer slots than the union.
    assert field.n_slots == max(len(p) for p in present) < len(present[0] | present[1])
    for run in range(2):
        assert present[run] <= set(field.grain_ids[run].tolist())
    assert np.array_equal(field.to_dense(), phi)


def test_labels_match_dense_labels_at_snapshots():
    phi, params, _ = _batch_case(general=False)
    field = BatchedField(phi, params)
    snaps = advance_schedule(field, FRONT, 600, snapshot_steps=[150, 600], compact_every=200)
    assert [s.step for s in snaps] == [150, 600]
    for run in range(phi.shape[0]):
        ref = _paper_reference(phi[run], _rows(600), params.dt_mobility[run], params.kappa[run],
                               1.0, True)  # Δt = 1, L = Δt·L
        assert np.array_equal(snaps[-1].labels[run], ref.labels(FRONT.active_rows(600)))
        assert (snaps[-1].labels[run] >= 0).any() and (snaps[0].labels[run][FRONT.active_rows(150):] == -1).all()


def test_undeposited_rows_stay_zero_and_substeps():
    phi, params, _ = _batch_case()
    halved = replace(params, dt_mobility=params.dt_mobility / 2)
    field = BatchedField(phi, halved)
    advance_schedule(field, FRONT, 300, substeps=2)
    rows = FRONT.active_rows(300)
    dense = field.to_dense()
    assert rows < bucket_rows(rows, NY) and (dense[:, :, rows:] == 0).all()
    # Each outer step is two sub-steps of Δt/2 with the outer step's front.
    ref = _dense_reference(phi[0], _rows(300, substeps=2), halved.dt_mobility[0], halved.kappa[0],
                           halved.weight[0], halved.tilt[0], LANDAU, 1.0, True)
    assert np.abs(dense[0] - ref).max() <= TOLERANCE


def test_float32_is_close_to_float64():
    phi, params, _ = _batch_case(batch=2)
    f64 = _run_jax(phi, params, steps=500).to_dense()
    f32 = _run_jax(phi, params, steps=500, field_kw={"dtype": np.float32})
    assert f32.device_phi.dtype == np.float32
    assert np.abs(f32.to_dense() - f64).max() < 1e-4


def test_nonfinite_run_is_named_and_others_survive():
    phi, params, _ = _batch_case(batch=3)
    bad = params.dt_mobility.copy()
    bad[1] *= 40.0  # far beyond the explicit-Euler limit: run 1 blows up
    field = BatchedField(phi, replace(params, dt_mobility=bad))
    with pytest.raises(SimulationError, match=r"run\(s\) \[1\]"):
        field.advance(400, 8)
    assert field.failed.tolist() == [False, True, False]
    field.advance(10, 8, on_nonfinite="record")
    good = np.delete(field.to_dense(), 1, axis=0)
    assert np.isfinite(good).all()


def test_bad_input_is_refused():
    phi, params, _ = _batch_case(batch=2)
    with pytest.raises(UserInputError, match="parameters"):
        BatchedField(phi[:1], params)
    with pytest.raises(UserInputError, match="active_rows"):
        BatchedField(phi, params).advance(1, NY + 1)
    with pytest.raises(UserInputError, match="float64 or float32"):
        BatchedField(phi, params, dtype=np.float16)


def test_plan_batches_splits_or_refuses():
    per_run = bytes_per_run(75, 70, 200, np.float64)
    assert per_run > 4 * 75 * 70 * 200 * 8  # at least the field copies
    assert plan_batches(10, per_run, batch_size=4, available=100 * per_run) == [
        range(0, 4), range(4, 8), range(8, 10)]
    # Room for 3 runs at 80 %: a batch of 8 is split into batches of 3 ...
    batches = plan_batches(8, per_run, batch_size=8, available=4 * per_run)
    assert [len(b) for b in batches] == [3, 3, 2]
    # ... or refused before anything runs.
    with pytest.raises(BatchTooLargeError, match="at most 3"):
        plan_batches(8, per_run, batch_size=8, available=4 * per_run, split=False)
    with pytest.raises(BatchTooLargeError, match="one run needs"):
        plan_batches(1, per_run, available=per_run // 2)


def test_from_labels_matches_dense_field():
    labels = np.stack([voronoi(NY, NX, 6, seed) for seed in (1, 2)])
    labels[1, 12:] = -1  # no grain above row 12 in the second run
    _, params, _ = _batch_case(batch=2)
    field = BatchedField.from_labels(labels, params)
    expected = np.stack([DenseField.from_labels(lab, 12).phi for lab in labels])
    assert np.array_equal(field.to_dense(), expected)
    assert np.array_equal(field.labels(), np.stack([DenseField(p).labels() for p in expected]))
    with pytest.raises(UserInputError, match="grain ids 0..11"):
        BatchedField.from_labels(labels + 12, params)
