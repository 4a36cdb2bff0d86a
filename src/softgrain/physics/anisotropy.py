"""Surface energies along the strain path, and the theory on the (barrier, anisotropy) plane (Fig. 4).

The texture phase map (:mod:`softgrain.studies.phasemap`) sweeps the (101) diffusion barrier
against the surface-energy anisotropy A = E_s(101) − E_s(001) (J/m²). This module holds the
physics of that plane: how all three surface energies move with A, and where the thermodynamic
theory (Eq. S3, S9–S11) puts the boundary ΔU(001 − 101) = 0.

How the surface energies move with A (the *anisotropy path*)
-----------------------------------------------------------
The metal's data tabulate E_s against biaxial strain; the liquid case sits at strain 0 and the
solid case at the solid-electrolyte strain (−0.03, :data:`softgrain.physics.theory.ELECTROLYTE_STRAIN`).
Between those two states all three surface energies move linearly with a path parameter
t = (A − A₀)/(A₁ − A₀), where A₀ and A₁ are the anisotropies of the unstrained and the strained
data::

    E_s,o(A) = E_s,o(ε = 0) + t · [E_s,o(ε = −0.03) − E_s,o(ε = 0)],  o ∈ {001, 101, 111}

For 0 ≤ t ≤ 1 this is exactly the data's linear interpolation at strain ε = −0.03·t (reported as
the "equivalent strain"); A beyond A₁ (t > 1) continues the same straight line, an extrapolation
of the strained data that the materials module itself refuses — results there are labelled as
such on the figure. (111) moves along with the others (its data change little with strain).
By construction E_s(101) − E_s(001) = A exactly, so the theory's ΔΓ_surface = −A/h.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from softgrain.errors import UserInputError
from softgrain.materials.constants import celsius_to_kelvin
from softgrain.materials.metals import ORIENTATIONS, Metal, load_metal
from softgrain.physics import theory
from softgrain.physics.theory import ELECTROLYTE_STRAIN


def solid_strain() -> float:
    """Biaxial strain of the solid-electrolyte case (single source: softgrain.physics.theory)."""
    return float(ELECTROLYTE_STRAIN["solid"])


@dataclass(frozen=True)
class AnisotropyPath:
    """Surface energies as a function of the anisotropy A = E_s(101) − E_s(001).

    Parameters
    ----------
    metal : Metal
        Supplies the surface-energy data.
    strained : float
        Strain of the "strained" end of the path (default: the solid-electrolyte strain).
    """

    metal: Metal
    strained: float

    @classmethod
    def for_metal(cls, metal: str | Metal = "Li", strained: float | None = None) -> "AnisotropyPath":
        data = load_metal(metal) if isinstance(metal, str) else metal
        path = cls(data, solid_strain() if strained is None else float(strained))
        if abs(path.a_strained - path.a_unstrained) < 1e-12:
            raise UserInputError(
                f"{data.symbol}: E_s(101) − E_s(001) does not change between strain 0 and "
                f"{path.strained:+.3f}; the anisotropy path is undefined")
        return path

    def _energies(self, strain: float) -> dict[str, float]:
        return self.metal.surface_energies(strain)

    @property
    def a_unstrained(self) -> float:
        """A₀ (J/m²): the unstrained (liquid-electrolyte) anisotropy."""
        e = self._energies(0.0)
        return e["101"] - e["001"]

    @property
    def a_strained(self) -> float:
        """A₁ (J/m²): the anisotropy at the strained (solid-electrolyte) end."""
        e = self._energies(self.strained)
        return e["101"] - e["001"]

    def parameter(self, anisotropy: Any) -> Any:
        """Path parameter t (0 = unstrained data, 1 = strained data, > 1 extrapolated)."""
        return (np.asarray(anisotropy, dtype=float) - self.a_unstrained) / (
            self.a_strained - self.a_unstrained)

    def equivalent_strain(self, anisotropy: Any) -> Any:
        """Strain whose (interpolated or extrapolated) data give anisotropy A."""
        return self.parameter(anisotropy) * self.strained

    def anisotropy_at_strain(self, strain: Any) -> Any:
        """A at a strain between 0 and the strained end (inverse of :meth:`equivalent_strain`)."""
        return self.a_unstrained + np.asarray(strain, dtype=float) / self.strained * (
            self.a_strained - self.a_unstrained)

    def surface_energies(self, anisotropy: float) -> dict[str, float]:
        """E_s (J/m²) of every orientation at anisotropy A (linear along the path)."""
        t = float(self.parameter(anisotropy))
        start, end = self._energies(0.0), self._energies(self.strained)
        energies = {o: start[o] + t * (end[o] - start[o]) for o in ORIENTATIONS}
        bad = {o: e for o, e in energies.items() if e <= 0}
        if bad:
            raise UserInputError(
                f"surface_energy_anisotropy = {anisotropy}: the path gives non-positive surface "
                f"energies {bad}; choose A closer to the data ({self.a_unstrained:.3f}–"
                f"{self.a_strained:.3f} J/m²)")
        return energies


def theory_delta_u(metal: str | Metal, barriers_101: Any, anisotropy: Any, temperature_C: float,
                   params: Any = None) -> np.ndarray:
    """ΔU = U(001) − U(101) (J/m³) of the thermodynamic theory on a (barrier, anisotropy) grid.

    Uses the theory's Eq. S3 (ΔΓ = (E_s(001) − E_s(101))/h = −A/h on the anisotropy path)
    and Eq. S9–S11 (ΔF_strain with the swept (101) barrier and the data's (001) barrier).
    ΔU > 0 favours (101), ΔU < 0 favours (001).

    Returns
    -------
    numpy.ndarray
        Shape (len(barriers_101), len(anisotropy)).
    """
    data = load_metal(metal) if isinstance(metal, str) else metal
    p = params if params is not None else theory.TheoryParameters.from_data(data)
    path = AnisotropyPath.for_metal(data)
    T_K = celsius_to_kelvin(temperature_C)
    barriers = np.atleast_1d(np.asarray(barriers_101, dtype=float))
    a = np.atleast_1d(np.asarray(anisotropy, dtype=float))
    energies = [path.surface_energies(value) for value in a]
    dgamma = np.array([theory.surface_energy_difference(e["001"], e["101"], p.thickness_m)
                       for e in energies])
    dstrain = np.asarray(theory.strain_energy_difference(data.barrier("001"), barriers, T_K, p))
    return dstrain[:, None] + dgamma[None, :]


def theory_boundary(metal: str | Metal, barriers_101: Any, temperature_C: float,
                    params: Any = None) -> np.ndarray:
    """Anisotropy A* (J/m²) where the theory's ΔU(001 − 101) = 0, for each (101) barrier.

    ΔU is linear in A on the anisotropy path, so A* is found from two evaluations.
    """
    barriers = np.atleast_1d(np.asarray(barriers_101, dtype=float))
    path = AnisotropyPath.for_metal(metal)
    a_lo, a_hi = path.a_unstrained, path.a_strained
    du = theory_delta_u(metal, barriers, [a_lo, a_hi], temperature_C, params)
    slope = (du[:, 1] - du[:, 0]) / (a_hi - a_lo)
    return a_lo - du[:, 0] / slope


def case_markers(metal: Metal) -> dict[str, dict[str, float]]:
    """Where the paper's liquid- and solid-electrolyte cases sit on the map (data barrier)."""
    path = AnisotropyPath.for_metal(metal)
    return {f"{metal.symbol}, {name} electrolyte": {
        "barrier_101_eV": metal.barrier("101"),
        "surface_energy_anisotropy_J_m2": float(path.anisotropy_at_strain(strain))}
        for name, strain in ELECTROLYTE_STRAIN.items()}


__all__ = ["AnisotropyPath", "case_markers", "solid_strain", "theory_boundary", "theory_delta_u"]
