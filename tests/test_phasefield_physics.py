"""Physics of the phase-field engine against analytic limits (run on both kernels).

- a circular grain shrinks at the Allen–Cahn sharp-interface rate dA/dt = −2π L κ;
- a flat boundary between two identical grains does not move;
- without deposition the discrete free energy never increases;
- mirror symmetry of the initial state is kept.
"""

from __future__ import annotations

import numpy as np
import pytest

from softgrain.config import load_config
from softgrain.phasefield.initial import disc_in_matrix, flat_boundary
from softgrain.phasefield.energy import total_free_energy
from softgrain.phasefield.solver import Simulation
from softgrain.setup import simulation

KERNELS = ["dense", "sparse"]


def small_config(kernel: str, ny: int, nx: int, dt: float, end: float, **extra):
    changes = {
        "numerics.kernel": kernel,
        "numerics.prune_threshold": 0.0,
        "grid.ny": ny,
        "grid.nx": nx,
        "nucleation.count": 4,
        "run.dt_s": dt,
        "run.end_time_s": end,
        "run.snapshot_times_s": [end],
    }
    changes.update(extra)
    return load_config("li-liquid", changes)


def grain_area(sim: Simulation, grain: int) -> float:
    return float(sim.field.to_dense(sim.n_grains)[grain].sum())


@pytest.mark.parametrize("kernel", KERNELS)
def test_circular_grain_shrinks_at_curvature_rate(kernel):
    """Sharp-interface Allen–Cahn: v = L κ / R ⇒ dA/dt = −2π L κ, independent of R."""
    ny = nx = 72
    cfg = small_config(kernel, ny, nx, dt=0.02, end=20.0)
    labels = disc_in_matrix((ny, nx), radius=20.0)
    # Both grains (001): identical L and κ, so E0 = E_s(001) and κ = κ1·exp(κ2).
    sim = simulation(cfg, initial_labels=labels, grain_orientation=["001", "001"])
    L, kappa = sim.mobility[1], sim.kappa[1]
    sim.advance_to(int(round(4.0 / cfg.run.dt_s)))  # let the profile relax from the sharp start
    t0, a0 = sim.time_s, grain_area(sim, 1)
    sim.advance_to(int(round(14.0 / cfg.run.dt_s)))
    t1, a1 = sim.time_s, grain_area(sim, 1)
    rate = (a1 - a0) / (t1 - t0)
    expected = -2 * np.pi * L * kappa
    assert a1 > 0.2 * a0, "the grain must still exist for the rate to be meaningful"
    assert rate == pytest.approx(expected, rel=0.10)


@pytest.mark.parametrize("kernel", KERNELS)
def test_flat_boundary_between_identical_grains_does_not_move(kernel):
    ny, nx = 8, 64
    cfg = small_config(kernel, ny, nx, dt=0.02, end=40.0)
    sim = simulation(cfg, initial_labels=flat_boundary((ny, nx)), grain_orientation=["101", "101"])
    sim.advance_to(50)
    before = grain_area(sim, 1)
    sim.advance_to(2000)
    after = grain_area(sim, 1)
    assert after == pytest.approx(before, abs=1e-8)
    # and the boundary stays where it was put (half the domain each)
    assert after == pytest.approx(ny * nx / 2, rel=1e-3)


@pytest.mark.parametrize("kernel", KERNELS)
def test_free_energy_never_increases_without_deposition(kernel):
    ny, nx = 24, 48
    cfg = small_config(kernel, ny, nx, dt=0.005, end=10.0, **{
        "nucleation.count": 12, "nucleation.rows": 3, "nucleation.radius_cells": 3.0,
        "deposition.enabled": False, "material.strain": -0.03})
    sim = simulation(cfg)
    assert len(set(sim.kappa.round(6))) > 1, "the test needs grains with different κ"
    energies = [sim.free_energy()]
    for stop in range(20, 2001, 20):
        sim.advance_to(stop)
        energies.append(sim.free_energy())
    diffs = np.diff(energies)
    assert np.all(diffs <= 1e-9 * np.abs(energies[:-1]).max()), diffs.max()
    assert energies[-1] < energies[0]


@pytest.mark.parametrize("kernel", KERNELS)
def test_mirror_symmetric_state_stays_symmetric(kernel):
    ny, nx = 30, 60
    labels = np.full((ny, nx), -1, dtype=np.int32)
    labels[:, :20] = 0
    labels[:, 40:] = 0
    labels[:, 20:40] = 1
    labels[10:20, 25:35] = 2
    cfg = small_config(kernel, ny, nx, dt=0.005, end=5.0)
    sim = simulation(cfg, initial_labels=labels, grain_orientation=["001", "101", "111"])
    sim.advance_to(400)
    phi = sim.field.to_dense(3)
    # the reflection x → nx − 1 − x maps the initial state onto itself
    mirrored = phi[:, :, ::-1]
    assert np.max(np.abs(phi - mirrored)) < 1e-12


@pytest.mark.parametrize("front", ["empty", "zero-flux"])
def test_sparse_and_dense_agree_through_the_deposition_front(front):
    """Both kernels give the same field, row activations and front boundary included."""
    changes = {"grid.ny": 16, "grid.nx": 40, "nucleation.count": 12, "run.end_time_s": 12.0,
               "run.snapshot_times_s": [12.0], "deposition.crossing_time_s": 60.0,
               "deposition.front_boundary": front, "numerics.prune_threshold": 0.0}
    fields = []
    for kernel in KERNELS:
        sim = simulation(load_config("li-solid", dict(changes, **{"numerics.kernel": kernel})))
        sim.run()
        assert sim.active_rows() > sim.nucleation.filled_rows, "the front must have moved"
        fields.append(sim.field.to_dense(sim.n_grains))
    assert np.max(np.abs(fields[0] - fields[1])) <= 1e-10


def test_open_front_costs_gradient_energy_of_the_top_row():
    """With the front open, F includes κ/2 φ² across the edge to the empty row (and not closed)."""
    cfg = small_config("dense", 10, 12, dt=0.01, end=1.0, **{"deposition.front_boundary": "empty"})
    labels = np.full((10, 12), -1, dtype=np.int32)
    labels[:4] = 0
    sim = simulation(cfg, initial_labels=labels, grain_orientation=["001"])
    phi = sim.field.to_dense(1)
    closed = total_free_energy(phi, sim.grains, sim.landau, 4, open_front=False)
    opened = total_free_energy(phi, sim.grains, sim.landau, 4, open_front=True)
    assert opened - closed == pytest.approx(0.5 * sim.kappa[0] * 12)
