"""The per-grain constants of the generalised Allen–Cahn model, in one bundle for every kernel.

Each grain q carries its mobility L_q, gradient coefficient κ_q, weight w_q of the Landau
polynomial and tilt g_q of the bulk interpolation h(φ_q) (see :mod:`softgrain.phasefield.update`
for the equations). The paper's formulation (Eq. S13–S15) is w_q = w (the Landau weight) for
every grain and g_q = 0: :meth:`GrainParameters.paper`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _per_grain(name: str, values) -> np.ndarray:
    array = np.array(values, dtype=np.float64)       # a private copy, made read-only below
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D per-grain array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array[~np.isfinite(array)][0]}")
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class GrainParameters:
    """L_q, κ_q, w_q and g_q of every grain q (read-only float64 arrays of equal length).

    Parameters
    ----------
    mobility : array_like
        L_q > 0 (Eq. S14), in 1/(model energy · time).
    kappa : array_like
        κ_q > 0 (Eq. S15), gradient coefficient in model energy × (Laplacian length unit)².
    weight : array_like
        w_q > 0, the weight of grain q's Landau terms (its pair terms carry (w_q + w_p)/2).
    tilt : array_like
        g_q, the bulk free-energy offset of grain q's interior, entering as g_q·h(φ_q).
    """

    mobility: np.ndarray
    kappa: np.ndarray
    weight: np.ndarray
    tilt: np.ndarray

    def __post_init__(self) -> None:
        arrays = {name: _per_grain(name, getattr(self, name))
                  for name in ("mobility", "kappa", "weight", "tilt")}
        lengths = {name: len(a) for name, a in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"per-grain arrays differ in length: {lengths}")
        for name in ("mobility", "kappa", "weight"):
            if arrays[name].size and arrays[name].min() <= 0:
                raise ValueError(f"{name} must be positive, got {arrays[name].min()}")
        for name, array in arrays.items():
            object.__setattr__(self, name, array)

    @classmethod
    def paper(cls, mobility, kappa, weight: float = 1.0) -> "GrainParameters":
        """The paper's formulation: every grain weighted by the Landau weight ``weight``, no tilt."""
        mobility = np.asarray(mobility, dtype=np.float64)
        return cls(mobility, kappa, np.full(mobility.shape, float(weight)), np.zeros(mobility.shape))

    def __len__(self) -> int:
        return len(self.mobility)

    def same_as(self, other: "GrainParameters") -> bool:
        """True if every per-grain value is bit-identical."""
        return all(np.array_equal(getattr(self, name), getattr(other, name))
                   for name in ("mobility", "kappa", "weight", "tilt"))
