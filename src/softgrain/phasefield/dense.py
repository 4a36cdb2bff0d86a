"""The dense NumPy reference of the Allen–Cahn update (paper Eq. S12–S13).

One explicit-Euler step of

    ∂φ_q/∂t = −L_q δF/δφ_q,   δF/δφ_q = w ∂f0/∂φ_q − κ_q ∇²φ_q

for every grain q at every active grid point, with second-order central differences:
periodic in x, zero flux at the substrate (row 0) and at the top of the domain. Rows at and above
``active_rows`` are not yet deposited: they hold φ = 0 and are not updated. The deposition front is
either open (``open_front=True``: the empty row above reads as φ = 0, so every grain pays its
gradient energy κ_q towards the undeposited space) or a zero-flux boundary.

This straightforward implementation carries all n order parameters everywhere. It is the
reference that the compiled sparse kernel (:mod:`softgrain.phasefield.sparse`) must reproduce and
that the benchmark compares against; it is not meant to be fast.
"""

from __future__ import annotations

import numpy as np

from softgrain.errors import SimulationError
from softgrain.phasefield.energy import Landau, bulk_driving_force


def laplacian_dense(a: np.ndarray, spacing: float = 1.0, empty_above: bool = False) -> np.ndarray:
    """5-point Laplacian of ``a`` (n, m, nx): periodic in x, zero flux at the bottom; at the top
    zero flux, or φ = 0 beyond the last row when ``empty_above``."""
    top = np.zeros_like(a[:, -1:, :]) if empty_above else a[:, -1:, :]
    up = np.concatenate([a[:, 1:, :], top], axis=1)
    down = np.concatenate([a[:, :1, :], a[:, :-1, :]], axis=1)
    side = np.roll(a, 1, axis=2) + np.roll(a, -1, axis=2)
    return (side + up + down - 4.0 * a) / (spacing * spacing)


def variational_derivative_dense(a: np.ndarray, kappa: np.ndarray, landau: Landau,
                                 spacing: float = 1.0, empty_above: bool = False) -> np.ndarray:
    """δF/δφ_q = w ∂f0/∂φ_q − κ_q ∇²φ_q on the active block ``a`` (n, m, nx)."""
    kap = np.asarray(kappa, dtype=float)[:, None, None]
    return bulk_driving_force(a, landau) - kap * laplacian_dense(a, spacing, empty_above)


def allen_cahn_step_dense(phi: np.ndarray, mobility: np.ndarray, kappa: np.ndarray,
                          landau: Landau, dt: float, active_rows: int,
                          spacing: float = 1.0, open_front: bool = False) -> None:
    """Advance the dense field ``phi`` (n, ny, nx) by one explicit-Euler step, in place."""
    a = phi[:, :active_rows, :]
    empty_above = open_front and active_rows < phi.shape[1]
    rate = variational_derivative_dense(a, kappa, landau, spacing, empty_above)
    a -= dt * np.asarray(mobility, dtype=float)[:, None, None] * rate


class DenseField:
    """All order parameters at every grid point, advanced with :func:`allen_cahn_step_dense`.

    Mirrors the interface of :class:`softgrain.phasefield.sparse.SparseField` so the solver can
    run either; use it as the reference, not for production runs.
    """

    def __init__(self, phi: np.ndarray) -> None:
        self.phi = np.ascontiguousarray(phi, dtype=np.float64)

    @classmethod
    def from_labels(cls, labels: np.ndarray, n_grains: int | None = None) -> "DenseField":
        n = int(labels.max()) + 1 if n_grains is None else n_grains
        phi = np.zeros((n,) + labels.shape)
        for grain in range(n):
            phi[grain][labels == grain] = 1.0
        return cls(phi)

    def to_dense(self, n_grains: int | None = None) -> np.ndarray:
        return self.phi.copy()

    def copy(self) -> "DenseField":
        return DenseField(self.phi.copy())

    def advance(self, n_steps: int, dt: float, active_rows: int, mobility: np.ndarray,
                kappa: np.ndarray, landau: Landau, spacing: float = 1.0,
                open_front: bool = False, **_: object) -> None:
        for step in range(n_steps):
            allen_cahn_step_dense(self.phi, mobility, kappa, landau, dt, active_rows, spacing,
                                  open_front)
            bad = ~np.isfinite(self.phi[:, :active_rows])
            if bad.any():
                grain, y, x = (int(v[0]) for v in np.nonzero(bad))
                raise SimulationError(
                    f"non-finite order parameter at step {step + 1} of this segment: grain {grain}, "
                    f"cell (y={y}, x={x})")

    def max_value(self) -> np.ndarray:
        return self.phi.max(axis=0)

    def labels(self, active_rows: int | None = None, min_value: float = 0.5) -> np.ndarray:
        grain = self.phi.argmax(axis=0).astype(np.int32)
        grain[self.phi.max(axis=0) < min_value] = -1
        if active_rows is not None:
            grain[active_rows:] = -1
        return grain
