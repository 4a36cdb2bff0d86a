"""The free-energy functional of the multi-grain Allen–Cahn model (paper Eq. S13) — equations only.

    F = ∫ [ f(φ_1..φ_n) + Σ_q κ_q/2 |∇φ_q|² ] dr

with the generalised multi-grain Landau polynomial (MODEL.md §7, prototype D)

    f = Σ_q w_q (−α/2 φ_q² + β/4 φ_q⁴) + γ Σ_{q<p} (w_q + w_p)/2 · φ_q² φ_p² + Σ_q g_q h(φ_q),
    h(φ) = φ³(6φ² − 15φ + 10),

per-grain weights w_q and tilts g_q (:class:`~softgrain.phasefield.grains.GrainParameters`). The
paper's Eq. S13 is w_q = w, g_q = 0, i.e. w·f0 with the Landau polynomial of Chen & Yang,
Phys. Rev. B 50, 15752 (1994) and Fan & Chen, Acta Mater. 45, 611 (1997) (the paper does not print
f0):

    f0 = Σ_q (−α/2 φ_q² + β/4 φ_q⁴) + γ Σ_q Σ_{p>q} φ_q² φ_p².

∂f/∂φ_q is written once, in :func:`softgrain.phasefield.update.explicit_euler_update`; this module
holds the energy whose gradient it is. h(0) = 0, h(1) = 1 and h'(0) = h'(1) = 0, so g_q shifts the
depth of grain q's well by g_q without moving it (for α = β, where the wells sit at φ = 1).

Discretisation: lengths in units of ``laplacian_spacing`` (h); the gradient energy is the sum over
grid edges of κ_q/2 (φ_i − φ_j)², so that ∂F/∂φ_i is exactly h²(∂f/∂φ − κ ∇²_h φ) with the
5-point Laplacian ∇²_h used by the kernels: the discrete explicit update is then a gradient flow of
this discrete F, and F must not increase for a stable time step (both are tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from softgrain.phasefield.grains import GrainParameters


@dataclass(frozen=True)
class Landau:
    """Coefficients of the multi-grain Landau polynomial and its weight ``w`` (Eq. S13).

    Defaults (α = β = 1, γ = 1.5, w = 1) come from ``data/phasefield.toml`` with their sources.
    ``w`` is the weight of every grain in the paper's formulation
    (:meth:`GrainParameters.paper <softgrain.phasefield.grains.GrainParameters.paper>`); the
    kernels take the per-grain weights from :class:`~softgrain.phasefield.grains.GrainParameters`.
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


#: max over 0 ≤ φ ≤ 1 of |h''(φ)| = |60 φ(1 − φ)(1 − 2φ)|, reached at φ = 1/2 ± 1/(2√3).
MAX_TILT_CURVATURE = 60.0 * np.sqrt(3.0) / 18.0


def tilt_interpolation(phi: np.ndarray) -> np.ndarray:
    """h(φ) = φ³(6φ² − 15φ + 10): 0 at φ = 0, 1 at φ = 1, flat at both (h' = 30φ²(1 − φ)²)."""
    return phi * phi * phi * (phi * (6.0 * phi - 15.0) + 10.0)


def bulk_energy_density(phi: np.ndarray, grains: GrainParameters, landau: Landau) -> np.ndarray:
    """f at every grid point; ``phi`` has the grain index first, shape (n, ...).

    In the paper's case (every w_q = 1, g_q = 0) the arithmetic is that of the paper-only w·f0.
    """
    shape = (-1,) + (1,) * (phi.ndim - 1)
    weight = grains.weight.reshape(shape)
    sq = phi * phi
    weighted_sq = weight * sq
    sum_sq = sq.sum(axis=0)
    sum_weighted_sq = weighted_sq.sum(axis=0)
    single = (weight * (-0.5 * landau.alpha * sq + 0.25 * landau.beta * sq * sq)).sum(axis=0)
    # Σ_{q<p} (w_q + w_p)/2 φ_q²φ_p² = ½ Σ_{q≠p} w_q φ_q² φ_p² = ½ (Σ w φ²·Σ φ² − Σ w φ⁴)
    pairs = 0.5 * (sum_weighted_sq * sum_sq - (weighted_sq * sq).sum(axis=0))
    density = single + landau.gamma * pairs
    if np.any(grains.tilt != 0.0):
        density = density + (grains.tilt.reshape(shape) * tilt_interpolation(phi)).sum(axis=0)
    return density


def total_free_energy(phi: np.ndarray, grains: GrainParameters, landau: Landau,
                      active_rows: int | None = None, spacing: float = 1.0,
                      open_front: bool = False) -> float:
    """Discrete free energy F of a dense field ``phi`` (n, ny, nx) with per-grain κ_q, w_q, g_q.

    Only rows ``< active_rows`` belong to the domain (the deposition front); x is periodic, the
    bottom is zero-flux, and the front is zero-flux or, with ``open_front``, faces empty space
    (φ = 0), which adds the edge energy κ_q/2 φ_q² of the last deposited row — matching the
    kernels' boundary conditions. The kernels' explicit update is φ ← φ − Δt L_q ∂F/∂φ_q / h²
    exactly (up to rounding).
    """
    if len(grains) < phi.shape[0]:
        raise ValueError(f"grains has {len(grains)} entries, the field {phi.shape[0]} grains")
    grains = GrainParameters(*(getattr(grains, name)[:phi.shape[0]]
                               for name in ("mobility", "kappa", "weight", "tilt")))
    ny = phi.shape[1]
    m = ny if active_rows is None else int(active_rows)
    a = phi[:, :m, :]
    h2 = spacing * spacing
    bulk = bulk_energy_density(a, grains, landau).sum() * h2
    kap = grains.kappa[:, None, None]
    dx = a - np.roll(a, -1, axis=2)
    dy = a[:, 1:, :] - a[:, :-1, :]
    gradient = 0.5 * (kap * dx * dx).sum() + 0.5 * (kap * dy * dy).sum()
    if open_front and m < ny:
        top = a[:, -1, :]
        gradient += 0.5 * (kap[:, :, 0] * top * top).sum()
    return float(bulk + gradient)
