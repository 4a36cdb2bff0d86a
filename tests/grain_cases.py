"""Shared helpers for the tests of the generalised (per-grain w_q, g_q) update: grain sets for the
paper and a consistent-like formulation, small grain maps, both kernels behind one call, and the
relaxed flat boundary between two grains."""

from __future__ import annotations

import numpy as np

from softgrain.phasefield.energy import Landau, total_free_energy
from softgrain.phasefield.grains import GrainParameters
from softgrain.phasefield.dense import DenseField
from softgrain.phasefield.sparse import SparseField
from softgrain.phasefield.mapping import stable_time_step

LANDAU = Landau()            # α = β = 1, γ = 1.5 (data/phasefield.toml)
KERNELS = ["dense", "sparse"]
CASES = ["paper", "consistent"]


def grain_set(case: str, n: int, seed: int = 0, kappa0: float = 2.0,
              driving: float = 0.01) -> GrainParameters:
    """``n`` grains with different mobilities.

    paper: w_q = 1, g_q = 0, κ_q spread over a factor 3.
    consistent: e_q in [0.9, 1.1], κ_q = κ0·e_q, w_q = e_q and g_q = (e_q − 1)/4 (equal wells,
    MODEL.md §7 prototype D) plus a bulk driving force in [0, ``driving``).
    """
    rng = np.random.default_rng(seed)
    mobility = rng.uniform(1.0, 4.0, n)
    if case == "paper":
        return GrainParameters.paper(mobility, kappa0 * rng.uniform(0.5, 1.5, n))
    relative = rng.uniform(0.9, 1.1, n)
    tilt = (relative - 1.0) / 4.0 + driving * rng.uniform(0.0, 1.0, n)
    return GrainParameters(mobility, kappa0 * relative, relative, tilt)


def stable_dt(grains: GrainParameters, fraction: float = 0.9, spacing: float = 1.0) -> float:
    return fraction * stable_time_step(grains.mobility, grains.kappa, LANDAU, spacing,
                                       grains.weight, grains.tilt)


def voronoi(ny: int, nx: int, n: int, seed: int) -> np.ndarray:
    """Nearest-seed grain map, periodic in x."""
    rng = np.random.default_rng(seed)
    cy, cx = rng.uniform(0, ny, n), rng.uniform(0, nx, n)
    yy, xx = np.mgrid[0:ny, 0:nx]
    dx = np.abs(xx[None] - cx[:, None, None])
    dx = np.minimum(dx, nx - dx)
    return ((yy[None] - cy[:, None, None]) ** 2 + dx**2).argmin(axis=0).astype(np.int32)


def new_field(kernel: str, labels: np.ndarray, n: int):
    if kernel == "dense":
        return DenseField.from_labels(labels, n)
    return SparseField.from_labels(labels, capacity=4)


def flat_profile(grains: GrainParameters, ny: int = 64, relax_time: float = 150.0,
                 kernel: str = "dense"):
    """A flat boundary between grain 0 (rows < ny/2) and grain 1, relaxed for ``relax_time``.

    One column (periodic x, so no x-gradient), zero flux at both ends. Returns the field, the
    time step and the number of steps taken.
    """
    labels = np.zeros((ny, 1), dtype=np.int32)
    labels[ny // 2:] = 1
    field = new_field(kernel, labels, 2)
    dt = stable_dt(grains)
    steps = int(round(relax_time / dt))
    field.advance(steps, dt, ny, grains, LANDAU, prune_threshold=0.0)
    return field, dt, steps


def gradient_integrals(phi: np.ndarray) -> np.ndarray:
    """I_q = Σ_j (φ_q,j+1 − φ_q,j)² along y (the discrete ∫(∂φ_q/∂y)² dy), per grain, column 0."""
    return (np.diff(phi[:, :, 0], axis=1) ** 2).sum(axis=1)


def boundary_energy(phi: np.ndarray, grains: GrainParameters, well: float) -> float:
    """F of the one-column field minus that of uniform wells of depth ``well`` (= σ, per length)."""
    ny = phi.shape[1]
    return total_free_energy(phi, grains, LANDAU) - ny * well
