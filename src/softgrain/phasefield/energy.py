"""The free-energy functional of the multi-grain Allen–Cahn model (paper Eq. S13) — equations only.

    F = ∫ [ w·f0(φ_1..φ_n) + Σ_q κ_q/2 |∇φ_q|² ] dr

with the multi-grain Landau polynomial of Chen & Yang, Phys. Rev. B 50, 15752 (1994) and
Fan & Chen, Acta Mater. 45, 611 (1997) (the paper does not print f0):

    f0 = Σ_q (−α/2 φ_q² + β/4 φ_q⁴) + γ Σ_q Σ_{p>q} φ_q² φ_p²

Its derivative with respect to φ_q, the "bulk" part of the variational derivative, is

    ∂f0/∂φ_q = −α φ_q + β φ_q³ + 2γ φ_q Σ_{p≠q} φ_p².

Discretisation: lengths in units of ``laplacian_spacing`` (h); the gradient energy is the sum over
grid edges of κ_q/2 (φ_i − φ_j)², so that ∂F/∂φ_i is exactly h²(w ∂f0/∂φ − κ ∇²_h φ) with the
5-point Laplacian ∇²_h used by the kernels: the discrete explicit update is then a gradient flow of
this discrete F, and F must not increase for a stable time step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Landau:
    """Coefficients of the multi-grain Landau polynomial and its weight ``w`` (Eq. S13).

    Defaults (α = β = 1, γ = 1.5, w = 1) come from ``data/phasefield.toml`` with their sources.
    """

    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 1.5
    w: float = 1.0

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma", "w"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"Landau coefficient {name} must be positive, got {value}")
        if self.gamma <= self.alpha / 2:
            # Below α/2 a mixed state φ_p = φ_q is stabler than a single grain: no grain boundaries.
            raise ValueError(
                f"Landau gamma must exceed alpha/2 = {self.alpha / 2} for stable grains, got {self.gamma}"
            )

    @property
    def max_curvature(self) -> float:
        """Upper bound of ∂²f0/∂φ_q² over a grain boundary (0 ≤ φ ≤ 1, one other grain at 1).

        −α + 3β φ_q² + 2γ Σ φ_p² ≤ −α + 3β + 2γ; used by the explicit-Euler stability limit.
        """
        return -self.alpha + 3.0 * self.beta + 2.0 * self.gamma


def bulk_energy_density(phi: np.ndarray, landau: Landau) -> np.ndarray:
    """w·f0 at every grid point; ``phi`` has the grain index first, shape (n, ...)."""
    sq = phi * phi
    sum_sq = sq.sum(axis=0)
    single = (-0.5 * landau.alpha * sq + 0.25 * landau.beta * sq * sq).sum(axis=0)
    # Σ_{q<p} φ_q²φ_p² = ((Σ φ²)² − Σ φ⁴) / 2
    pairs = 0.5 * (sum_sq * sum_sq - (sq * sq).sum(axis=0))
    return landau.w * (single + landau.gamma * pairs)


def bulk_driving_force(phi: np.ndarray, landau: Landau) -> np.ndarray:
    """w·∂f0/∂φ_q for every grain q and grid point; shape of ``phi``."""
    sq = phi * phi
    others = sq.sum(axis=0) - sq
    return landau.w * phi * (-landau.alpha + landau.beta * sq + 2.0 * landau.gamma * others)


def total_free_energy(phi: np.ndarray, kappa: np.ndarray, landau: Landau,
                      active_rows: int | None = None, spacing: float = 1.0,
                      open_front: bool = False) -> float:
    """Discrete free energy F of a dense field ``phi`` (n, ny, nx).

    Only rows ``< active_rows`` belong to the domain (the deposition front); x is periodic, the
    bottom is zero-flux, and the front is zero-flux or, with ``open_front``, faces empty space
    (φ = 0), which adds the edge energy κ_q/2 φ_q² of the last deposited row — matching the
    kernels' boundary conditions.
    """
    ny = phi.shape[1]
    m = ny if active_rows is None else int(active_rows)
    a = phi[:, :m, :]
    h2 = spacing * spacing
    bulk = bulk_energy_density(a, landau).sum() * h2
    kap = np.asarray(kappa, dtype=float)[:, None, None]
    dx = a - np.roll(a, -1, axis=2)
    dy = a[:, 1:, :] - a[:, :-1, :]
    gradient = 0.5 * (kap * dx * dx).sum() + 0.5 * (kap * dy * dy).sum()
    if open_front and m < ny:
        top = a[:, -1, :]
        gradient += 0.5 * (kap[:, :, 0] * top * top).sum()
    return float(bulk + gradient)
