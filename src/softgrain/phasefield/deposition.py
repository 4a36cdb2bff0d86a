"""The deposition front: the domain is activated row by row from the substrate up.

The paper activates the domain "in an incremental, layer-wise manner" without giving the rate;
softgrain lets the front move at a constant speed, by default such that it reaches the top of the
domain at ``crossing_time_s`` (400 s, the paper's last snapshot; ``data/phasefield.toml``).
Rows at and above the front hold no metal yet: φ = 0 there. What a grain at the front sees is the
configuration's ``deposition.front_boundary``: by default ``"empty"`` — the undeposited space,
φ = 0, so the grain pays its gradient energy κ_q towards it — or ``"zero-flux"``, a closed
boundary that costs no gradient energy (README, "Deposition front").

When an "empty" front opens (issue 11, fair nucleation): a grain facing φ = 0 relaxes to the
half-kink φ = √(α/β)·tanh(z/ξ_q), ξ_q = √(2κ_q/(α w_q)), of a grain against the empty space (z the
depth below the front), which reaches 96 % of its bulk value only at z = 2ξ_q. A deposit thinner
than that cannot hold the profile: the open front's φ = 0 then pulls down the grain's bulk, and a
nucleus with a large κ (a 2-row layer capped by φ = 0 is linearly unstable for κ ≳ 2.6 in grid
units, MODEL.md §7) disappears by under-resolution, not by an energy balance between
orientations. With ``deposition.open_front_from = "resolved"`` the front therefore stays
zero-flux until the deposit is :func:`resolved_front_rows` rows thick and is open above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def resolved_front_rows(kappa, weight, alpha: float, spacing: float = 1.0) -> int:
    """W = ceil(2·max_q √(2κ_q/(α w_q)) / h): rows that hold the widest grain–surface profile.

    Parameters
    ----------
    kappa, weight : array_like
        κ_q and w_q of the grains present.
    alpha : float
        Landau α.
    spacing : float
        h, the grid spacing in the Laplacian's units (a row is h length units thick).

    Returns
    -------
    int
        The deposit thickness, in rows, from which an open front can be resolved (0 without
        grains). Consistent formulation: κ_q/w_q = κ0 = 1.99, so W = ceil(3.99) = 4 rows; paper:
        ≈ 10–12 rows on the paper grid (κ up to ~20).

    Examples
    --------
    >>> resolved_front_rows([1.989, 2.1], [1.0, 1.0], alpha=1.0)
    5
    """
    kappa = np.asarray(kappa, dtype=float)
    weight = np.asarray(weight, dtype=float)
    if kappa.size == 0:
        return 0
    width = 2.0 * float(np.sqrt(2.0 * kappa / (alpha * weight)).max()) / float(spacing)
    # A width that is an integer up to round-off needs that many rows, not one more.
    return int(math.ceil(width - 1e-9))


@dataclass(frozen=True)
class DepositionFront:
    """Row activation schedule in units of time steps.

    Attributes
    ----------
    ny : int
        Rows of the domain.
    initial_rows : int
        Rows active at step 0 (the nucleation layer).
    rows_per_step : float
        Front speed in rows per time step; 0 for no front (all rows active from the start).
    """

    ny: int
    initial_rows: int
    rows_per_step: float

    @classmethod
    def from_speed(cls, ny: int, initial_rows: int, speed_um_s: float | None, crossing_time_s: float,
                   spacing_um: float, dt_s: float) -> "DepositionFront":
        """Front moving at ``speed_um_s``, or crossing the remaining rows in ``crossing_time_s``."""
        if speed_um_s is None:
            speed_um_s = (ny - initial_rows) * spacing_um / crossing_time_s
        return cls(ny=ny, initial_rows=initial_rows, rows_per_step=speed_um_s * dt_s / spacing_um)

    @classmethod
    def disabled(cls, ny: int) -> "DepositionFront":
        return cls(ny=ny, initial_rows=ny, rows_per_step=0.0)

    def active_rows(self, step: int) -> int:
        """Rows active during the step that starts at ``step``."""
        return self.initial_rows + int(np.searchsorted(self.activation_steps(), step, side="right"))

    def activation_steps(self) -> np.ndarray:
        """Steps at which each further row becomes active (increasing)."""
        if self.rows_per_step <= 0 or self.initial_rows >= self.ny:
            return np.zeros(0, dtype=np.int64)
        # Row k (counted from the initial layer) opens once the front has advanced k rows;
        # the small tolerance keeps exact multiples from slipping a step through round-off.
        k = np.arange(1, self.ny - self.initial_rows + 1)
        return np.ceil(k / self.rows_per_step - 1e-9).astype(np.int64)
