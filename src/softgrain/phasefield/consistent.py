"""The "consistent" formulation (issue 11): per-grain κ_q, w_q, g_q from surface and strain energies.

Pure functions (NumPy only), ready for ``model.formulation = "consistent"``; nothing here reads a
configuration. The paper's formulation (Eq. S15) puts the whole surface-energy anisotropy into
κ_q = κ1·exp(κ2·E_s,q/E0), so the boundary energy σ ∝ √κ ∝ exp(10·E_s/E0) amplifies surface-energy
differences tenfold against the theory (Eq. S3), and the theory's strain energy (Eq. S5–S11) has
no counterpart. The consistent formulation (MODEL.md §7, prototype D) instead keeps the interface
width constant, makes the boundary energy proportional to E_s, and adds the strain energy as a
bulk driving force whose scale is fixed by the same unit conversion — no new free constant.

Derivation, from the energy to the discrete update (also in ``docs/consistent-formulation.md``)
-------------------------------------------------------------------------------------------------
1. **Energy.** Per unit area (model units, 2-D)

       F = ∫ [ Σ_q w_q(−α/2 φ_q² + β/4 φ_q⁴) + γ Σ_{q<p} (w_q + w_p)/2 · φ_q²φ_p²
               + Σ_q g_q h(φ_q) + Σ_q κ_q/2 |∇φ_q|² ] dA,      h(φ) = φ³(6φ² − 15φ + 10).

   h(0) = 0, h(1) = 1, h'(0) = h'(1) = 0 and h(φ) + h(1 − φ) = 1.

2. **Wells.** With α = β the wells of the Landau polynomial sit at φ = 1 for any weight, where
   h = 1 and h' = 0: the interior of grain q has f_q = −w_q α/4 + g_q. (For α ≠ β the wells sit
   at √(α/β), where h ≠ 1 and h' ≠ 0, so a tilt would move and reshape them: this module requires
   α = β.) Writing g_q = Δf_q + (w_q − 1)·α²/(4β) gives f_q = −α/4 + Δf_q: every well has the
   paper's depth −α/4, shifted only by the bulk driving force Δf_q.

3. **Boundary energy at constant width.** κ_q = κ0·e_q and w_q = e_q with e_q = E_s,q/E0 and
   κ0 = κ1·exp(κ2) (so the two formulations agree when every E_s equals E0). With α = β and
   γ = 3α/2 the flat boundary between two unit-weight grains follows the straight path
   φ_p = 1 − φ_q exactly (Moelans, Blanpain & Wollants, Phys. Rev. B 78, 024113 (2008)), along
   which the Landau excess is f0 + α/4 = 2α φ²(1 − φ)². By equipartition (κ φ'² = excess, two
   order parameters) its energy and width are

       σ0 = 2 ∫₀¹ √(2κ0 · 2αφ²(1 − φ)²) dφ = √(2 κ0 α)/3,        δ ∝ √(κ0/α).

   Between two grains of equal e both κ and the Landau excess scale by e, so the width stays and
   σ = e·σ0 — up to the depth correction of step 2: (e − 1)α/4·(h(φ_q) + h(φ_p)) is constant
   along the straight path (h(φ) + h(1 − φ) = 1), but its gradient pushes both order parameters
   off it, which lowers σ slightly (measured on the grid: −0.3 % at e = 0.9, −0.4 % at
   e = 1.15). For general α, β at γ = 3β/2 the substitution φ = √(α/β) ψ gives
   σ0 = √(2 κ0 α³)/(3β) (:func:`flat_boundary_energy`). Grid units: κ is in model energy ×
   (Laplacian length unit)², so σ0 is in model energy per length unit, the length unit ℓ being
   Δx / ``grid.laplacian_spacing`` metres.

4. **One unit conversion.** Let the model's energy density unit be ε J/m³. A boundary of
   energy σ (model units) is then σ·ε·ℓ J/m². Mapping σ_q = e_q σ0 onto the physical E_s,q = e_q E0
   fixes ε = E0 / (σ0 ℓ). The theory's strain energy F_strain,q (J/m³) is then
   F_strain,q / ε = (σ0 ℓ / E0) · F_strain,q model units, i.e.

       λ = σ0 · ℓ / E0,          Δf_q = λ · (F_strain,q − min_p F_strain,p).

   Only differences of F_strain matter (subtracting the minimum keeps the lowest well at −α/4).

5. **The ratio of driving forces.** In the theory a film of thickness h prefers orientation 1
   over 2 by ΔU = ΔE_s/h + ΔF_strain (Eq. S1–S3): bulk over boundary forces ΔF_strain·h / ΔE_s.
   In the phase field the boundary energy acts over the same thickness h/ℓ grid lengths, with a
   force Δσ/(h/ℓ) = (σ0/E0)·ΔE_s·ℓ/h, against the bulk force Δf = λ ΔF_strain. Their ratio is
   λ·ΔF_strain·h/(σ0 ℓ ΔE_s/E0) = ΔF_strain·h/ΔE_s exactly when λ = σ0 ℓ/E0 — step 4's value: h
   drops out and no constant is left to choose.

6. **Discrete update.** On the grid the energy is F_h = Σ_cells h_L² f(φ) + Σ_edges κ_q/2 (Δφ_q)²
   (h_L the Laplacian spacing; :func:`softgrain.phasefield.energy.total_free_energy`), so
   ∂F_h/∂φ_{q,i} = h_L² [∂f/∂φ_q − κ_q ∇²_h φ_q] with

       ∂f/∂φ_q = φ_q [w_q(−α + β φ_q²) + γ Σ_{p≠q} (w_q + w_p) φ_p²] + g_q h'(φ_q),

   and the explicit-Euler step φ_q ← φ_q − Δt L_q (∂f/∂φ_q − κ_q ∇²_h φ_q)
   (:func:`softgrain.phasefield.update.explicit_euler_update`, every kernel) is a gradient flow of
   F_h; it is stable below :func:`softgrain.phasefield.mapping.stable_time_step` with the per-grain
   weights and tilts.

Numbers (MODEL.md §7, prototype D, Li solid 25 °C): κ0 = 4.1e-9·e²⁰ = 1.99, σ0 = 0.665,
Δx = 0.5 µm, so λ ≈ 7e-7 m³/J and Δf ≈ 0.006 for ΔF_strain ≈ 1e4 J/m³.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def flat_boundary_energy(kappa: float, alpha: float = 1.0, beta: float = 1.0,
                         gamma: float = 1.5) -> float:
    """σ of a flat boundary between two grains of unit weight, in model units (step 3).

    Closed form for the Fan–Chen polynomial with γ = 3β/2 (straight path φ_p = 1 − φ_q after
    scaling φ = √(α/β)ψ, which turns the polynomial into (α²/β)·[−ψ²/2 + ψ⁴/4 + (γ/β)ψ_q²ψ_p²]
    and κ into κα/β): σ = √(2κα³)/(3β), i.e. √(2κ)/3 for α = β = 1, γ = 3/2.

    Raises
    ------
    ValueError
        For γ ≠ 3β/2 (the path bends; no closed form) or a non-positive coefficient.
    """
    for name, value in (("kappa", kappa), ("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be positive and finite, got {value}")
    if not math.isclose(gamma, 1.5 * beta, rel_tol=1e-12):
        raise ValueError(f"the closed-form boundary energy needs gamma = 3·beta/2 = {1.5 * beta}, "
                         f"got gamma = {gamma}")
    return math.sqrt(2.0 * kappa * alpha**3) / (3.0 * beta)


def strain_coupling(reference_energy_J_m2: float, kappa1: float, kappa2: float,
                    length_unit_m: float, alpha: float = 1.0, beta: float = 1.0,
                    gamma: float = 1.5) -> float:
    """λ = σ0·ℓ/E0 (m³/J): model bulk energy per J/m³ of strain energy (steps 4–5).

    Parameters
    ----------
    reference_energy_J_m2 : float
        E0, the surface energy that maps to the boundary energy σ0 (a material constant: the mean
        over the metal's orientations at its strain).
    kappa1, kappa2 : float
        Eq. S15 constants; κ0 = κ1·exp(κ2).
    length_unit_m : float
        ℓ, metres per Laplacian length unit: grid spacing Δx / ``grid.laplacian_spacing``.
    alpha, beta, gamma : float
        Landau coefficients (γ = 3β/2, see :func:`flat_boundary_energy`).
    """
    if not (math.isfinite(reference_energy_J_m2) and reference_energy_J_m2 > 0):
        raise ValueError(f"E0 must be positive, got {reference_energy_J_m2} J/m²")
    if not (math.isfinite(length_unit_m) and length_unit_m > 0):
        raise ValueError(f"length unit must be positive, got {length_unit_m} m")
    sigma0 = flat_boundary_energy(kappa1 * math.exp(kappa2), alpha, beta, gamma)
    return sigma0 * length_unit_m / reference_energy_J_m2


@dataclass(frozen=True, eq=False)
class ConsistentConstants:
    """κ_q, w_q and g_q of every grain (model units), and the bulk driving force Δf_q in g_q."""

    kappa: np.ndarray
    weight: np.ndarray
    tilt: np.ndarray
    driving_force: np.ndarray


def consistent_grain_constants(surface_energy_J_m2, reference_energy_J_m2: float,
                               kappa1: float, kappa2: float, strain_energy_J_m3,
                               coupling_m3_J: float, alpha: float = 1.0,
                               beta: float = 1.0,
                               strain_reference_J_m3: float | None = None) -> ConsistentConstants:
    """Per-grain κ_q = κ0·e_q, w_q = e_q, g_q = λ(F_q − min_p F_p) + (w_q − 1)·α²/(4β).

    Parameters
    ----------
    surface_energy_J_m2 : array_like
        E_s,q of every grain (J/m²).
    reference_energy_J_m2 : float
        E0 (J/m²), e_q = E_s,q / E0.
    kappa1, kappa2 : float
        Eq. S15 constants, κ0 = κ1·exp(κ2).
    strain_energy_J_m3 : array_like
        F_strain,q of every grain (J/m³, theory Eq. S5/S9/S11); only differences matter.
    coupling_m3_J : float
        λ, from :func:`strain_coupling`.
    alpha, beta : float
        Landau coefficients; must be equal (wells at φ = 1, see the module docstring).
    strain_reference_J_m3 : float, optional
        The min_p F_strain,p the driving forces are measured from; by default the smallest of
        ``strain_energy_J_m3``. Grains of interpolated orientations pass the metal's smallest
        pole value, so that the same material gives the same offsets whatever the draw.
    """
    energy = np.array(surface_energy_J_m2, dtype=np.float64)
    strain = np.array(strain_energy_J_m3, dtype=np.float64)
    if energy.ndim != 1 or strain.shape != energy.shape:
        raise ValueError(f"surface and strain energies must be 1-D per-grain arrays of one length, "
                         f"got shapes {energy.shape} and {strain.shape}")
    if not (np.all(np.isfinite(energy)) and np.all(energy > 0)):
        raise ValueError("surface energies must be positive and finite")
    if not np.all(np.isfinite(strain)):
        raise ValueError("strain energies must be finite")
    if not (math.isfinite(reference_energy_J_m2) and reference_energy_J_m2 > 0):
        raise ValueError(f"E0 must be positive, got {reference_energy_J_m2} J/m²")
    if not (math.isfinite(coupling_m3_J) and coupling_m3_J >= 0):
        raise ValueError(f"coupling λ must be non-negative, got {coupling_m3_J} m³/J")
    if not math.isclose(alpha, beta, rel_tol=1e-12):
        raise ValueError(f"the consistent formulation needs alpha = beta (wells at φ = 1, where the "
                         f"tilt h(φ) = 1 and h'(φ) = 0); got alpha = {alpha}, beta = {beta}")
    relative = energy / reference_energy_J_m2
    if strain_reference_J_m3 is None:
        strain_reference_J_m3 = strain.min() if strain.size else 0.0
    driving = coupling_m3_J * (strain - strain_reference_J_m3)
    depth = (relative - 1.0) * alpha * alpha / (4.0 * beta)
    return ConsistentConstants(kappa=kappa1 * math.exp(kappa2) * relative, weight=relative,
                               tilt=driving + depth, driving_force=driving)
