"""The dense NumPy reference of the Allen–Cahn update (paper Eq. S12–S13, generalised).

One explicit-Euler step of

    ∂φ_q/∂t = −L_q δF/δφ_q,   δF/δφ_q = ∂f/∂φ_q − κ_q ∇²φ_q

for every grain q at every active grid point, with second-order central differences:
periodic in x, zero flux at the substrate (row 0) and at the top of the domain. Rows at and above
``active_rows`` are not yet deposited: they hold φ = 0 and are not updated. The deposition front is
either open (``open_front=True``: the empty row above reads as φ = 0, so every grain pays its
gradient energy κ_q towards the undeposited space) or a zero-flux boundary.

The physics of the update is :func:`softgrain.phasefield.update.explicit_euler_update`, called here
on whole arrays (grains × rows × columns); this module only supplies the stencil (the neighbour
sum) and the sums over grains, in the same order as the compiled sparse kernel.

This straightforward implementation carries all n order parameters everywhere. It is the
reference that the compiled sparse kernel (:mod:`softgrain.phasefield.sparse`) must reproduce and
that the benchmark compares against; it is not meant to be fast.
"""

from __future__ import annotations

import numpy as np

from softgrain.errors import SimulationError
from softgrain.phasefield.energy import Landau
from softgrain.phasefield.grains import GrainParameters
from softgrain.phasefield.update import explicit_euler_update


def neighbour_sum_dense(a: np.ndarray, empty_above: bool = False) -> np.ndarray:
    """Sum of the four neighbours of every cell of ``a`` (n, m, nx), summed as
    ((x−1 + x+1) + y+1) + y−1: periodic in x, zero flux at the bottom; at the top zero flux, or
    φ = 0 beyond the last row when ``empty_above``."""
    top = np.zeros_like(a[:, -1:, :]) if empty_above else a[:, -1:, :]
    up = np.concatenate([a[:, 1:, :], top], axis=1)
    down = np.concatenate([a[:, :1, :], a[:, :-1, :]], axis=1)
    side = np.roll(a, 1, axis=2) + np.roll(a, -1, axis=2)
    return side + up + down


def allen_cahn_step_dense(phi: np.ndarray, grains: GrainParameters, landau: Landau, dt: float,
                          active_rows: int, spacing: float = 1.0, open_front: bool = False) -> None:
    """Advance the dense field ``phi`` (n, ny, nx) by one explicit-Euler step, in place.

    ``grains`` holds at least n entries; grain q of ``phi`` uses entry q.
    """
    n = phi.shape[0]
    a = phi[:, :active_rows, :]
    empty_above = open_front and active_rows < phi.shape[1]
    neighbours = neighbour_sum_dense(a, empty_above)

    def per_grain(values: np.ndarray) -> np.ndarray:
        return values[:n, None, None]

    weight = per_grain(grains.weight)
    sq = a * a
    spacing_sq = float(spacing) * float(spacing)
    a[...] = explicit_euler_update(
        a, neighbours, sq.sum(axis=0), (weight * sq).sum(axis=0),
        per_grain(float(dt) * grains.mobility), per_grain(grains.kappa), weight,
        per_grain(grains.tilt), landau.alpha, landau.beta, landau.gamma, spacing_sq)


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

    def advance(self, n_steps: int, dt: float, active_rows: int, grains: GrainParameters,
                landau: Landau, spacing: float = 1.0, open_front: bool = False,
                **_: object) -> None:
        """``n_steps`` steps of :func:`allen_cahn_step_dense` (the sparse kernel's options ignored)."""
        if not isinstance(grains, GrainParameters):
            raise TypeError(f"grains must be a GrainParameters, got {type(grains).__name__}")
        if len(grains) < self.phi.shape[0]:
            raise ValueError(f"grains has {len(grains)} entries, but the field holds "
                             f"{self.phi.shape[0]} grains")
        for step in range(n_steps):
            allen_cahn_step_dense(self.phi, grains, landau, dt, active_rows, spacing, open_front)
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
