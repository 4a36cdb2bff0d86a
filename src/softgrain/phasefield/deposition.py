"""The deposition front: the domain is activated row by row from the substrate up.

The paper activates the domain "in an incremental, layer-wise manner" without giving the rate;
softgrain lets the front move at a constant speed, by default such that it reaches the top of the
domain at ``crossing_time_s`` (400 s, the paper's last snapshot; ``data/phasefield.toml``).
Rows at and above the front hold no metal yet: φ = 0 there. What a grain at the front sees is the
configuration's ``deposition.front_boundary``: by default ``"empty"`` — the undeposited space,
φ = 0, so the grain pays its gradient energy κ_q towards it — or ``"zero-flux"``, a closed
boundary that costs no gradient energy (README, "Deposition front").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
