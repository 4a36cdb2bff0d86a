"""DFT data → phase-field constants (paper Eq. S14–S15) and the explicit-Euler stability limit.

    L_q = L1 · exp(−L2 · E_a,q / (k_B T))          mobility from the surface self-diffusion barrier
    κ_q = κ1 · exp(κ2 · E_s,q / E0)                gradient coefficient from the surface energy

with L1 = 7.5, L2 = 0.27, κ1 = 4.1e-9, κ2 = 20 (paper, below Eq. S15; ``data/phasefield.toml``) and
E0 the mean surface energy of the grains present (paper: "the average E_s among the grains").

Like MOOSE's ``GBEvolution`` material, this is the one place where physical inputs become model
constants; the kernels only see the resulting per-grain arrays. :func:`stable_time_step` and
:func:`substeps_for` give the explicit-Euler limit and the sub-steps that respect it;
:func:`substeps_for_grains` the sub-steps that the grains still present need (adaptive sub-steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from softgrain.materials.constants import BOLTZMANN_EV_K, celsius_to_kelvin, load_phasefield_constants
from softgrain.materials.metals import ORIENTATIONS
from softgrain.phasefield.energy import MAX_TILT_CURVATURE, Landau
from softgrain.phasefield.grains import GrainParameters


class SubsteppingWarning(UserWarning):
    """Δt exceeded the explicit-Euler limit and was split into sub-steps."""


@dataclass(frozen=True)
class MappingConstants:
    """Fitting constants of Eq. S14–S15 (defaults: the paper's values, ``data/phasefield.toml``)."""

    L1: float
    L2: float
    kappa1: float
    kappa2: float

    @classmethod
    def from_data(cls) -> "MappingConstants":
        table = load_phasefield_constants()["mapping"]
        return cls(**{k: table[k].value for k in ("L1", "L2", "kappa1", "kappa2")})


def mobility(barrier_eV, temperature_K: float, constants: MappingConstants) -> np.ndarray:
    """Eq. S14: L = L1·exp(−L2·E_a/(k_B T)) for barrier(s) ``barrier_eV`` in eV."""
    barrier = np.asarray(barrier_eV, dtype=float)
    return constants.L1 * np.exp(-constants.L2 * barrier / (BOLTZMANN_EV_K * temperature_K))


def gradient_coefficient(surface_energy_J_m2, reference_energy_J_m2: float,
                         constants: MappingConstants) -> np.ndarray:
    """Eq. S15: κ = κ1·exp(κ2·E_s/E0)."""
    energy = np.asarray(surface_energy_J_m2, dtype=float)
    return constants.kappa1 * np.exp(constants.kappa2 * energy / reference_energy_J_m2)


@dataclass(frozen=True)
class OrientationParameters:
    """Per-orientation physical inputs and the phase-field constants mapped from them.

    Arrays are ordered like ``orientations``; a grain of orientation index ``k`` has mobility
    ``mobility[k]`` and gradient coefficient ``kappa[k]``.
    """

    orientations: tuple[str, ...]
    surface_energy_J_m2: np.ndarray
    barrier_eV: np.ndarray
    temperature_K: float
    reference_energy_J_m2: float
    mobility: np.ndarray
    kappa: np.ndarray


def map_orientations(surface_energy_J_m2: dict[str, float], barrier_eV: dict[str, float],
                     temperature_C: float, grain_orientation: np.ndarray | None = None,
                     constants: MappingConstants | None = None) -> OrientationParameters:
    """Map DFT surface energies and barriers of (001), (101), (111) to L and κ.

    Parameters
    ----------
    surface_energy_J_m2, barrier_eV : dict
        Orientation → value, for every orientation in :data:`~softgrain.materials.metals.ORIENTATIONS`.
    temperature_C : float
        Temperature in °C.
    grain_orientation : numpy.ndarray, optional
        Orientation index of every grain present; E0 is the mean surface energy over these grains
        (paper, below Eq. S15). Without it E0 is the mean over the three orientations.
    constants : MappingConstants, optional
        Fitting constants; the paper's by default.
    """
    constants = constants or MappingConstants.from_data()
    energies = np.array([surface_energy_J_m2[o] for o in ORIENTATIONS], dtype=float)
    barriers = np.array([barrier_eV[o] for o in ORIENTATIONS], dtype=float)
    temperature_K = celsius_to_kelvin(temperature_C)
    if grain_orientation is not None and len(grain_orientation) > 0:
        reference = float(energies[np.asarray(grain_orientation)].mean())
    else:
        reference = float(energies.mean())
    return OrientationParameters(
        orientations=ORIENTATIONS,
        surface_energy_J_m2=energies,
        barrier_eV=barriers,
        temperature_K=temperature_K,
        reference_energy_J_m2=reference,
        mobility=mobility(barriers, temperature_K, constants),
        kappa=gradient_coefficient(energies, reference, constants),
    )


def stability_rates(mobility: np.ndarray, kappa: np.ndarray, landau: Landau,
                    spacing: float = 1.0, weight: np.ndarray | None = None,
                    tilt: np.ndarray | None = None) -> np.ndarray:
    """Decay rate of each grain's fastest linear mode: explicit Euler needs Δt < 2 / rate.

    Linearising ∂φ_q/∂t = −L_q(∂f/∂φ_q − κ_q ∇²φ) about any state with 0 ≤ φ ≤ 1, the fastest
    mode decays at rate L_q (c_q + 8κ_q/h²) (the 2-D 5-point Laplacian's largest eigenvalue is
    8/h²), with c_q a bound of the local curvature ∂²f/∂φ_q² over a grain boundary (one other
    grain p at 1):

        c_q = w_q(−α + 3β) + γ(w_q + max_p w_p) + |g_q|·max|h''|,   max|h''| = 60·√3/18,

    for per-grain weights w_q and tilts g_q (default: the Landau weight w for every grain and no
    tilt, the paper's case, where c_q = w(−α + 3β + 2γ)). Extreme inputs overflow to inf (no
    warning); :func:`softgrain.setup.build` refuses them naming the keys.
    """
    mob = np.asarray(mobility, dtype=float)
    kap = np.asarray(kappa, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        if weight is None and tilt is None:
            local = landau.w * landau.max_curvature
        else:
            w = np.full(mob.shape, landau.w) if weight is None else np.asarray(weight, dtype=float)
            g = np.zeros(mob.shape) if tilt is None else np.asarray(tilt, dtype=float)
            local = (w * (-landau.alpha + 3.0 * landau.beta) + landau.gamma * (w + w.max())
                     + np.abs(g) * MAX_TILT_CURVATURE)
        return mob * (local + 8.0 * kap / (spacing * spacing))


def stable_time_step(mobility: np.ndarray, kappa: np.ndarray, landau: Landau,
                     spacing: float = 1.0, weight: np.ndarray | None = None,
                     tilt: np.ndarray | None = None) -> float:
    """Largest explicit-Euler time step for which every grain's update is linearly stable.

    2 / max_q of :func:`stability_rates`; without the local term this is the familiar
    Δt·L·κ/h² < 1/4.
    """
    return float(2.0 / stability_rates(mobility, kappa, landau, spacing, weight, tilt).max())


def substeps_for(dt: float, limit: float, safety: float = 0.9) -> int:
    """Number of equal sub-steps that bring ``dt`` below ``safety × limit``."""
    return max(1, math.ceil(dt / (safety * limit)))


def substeps_for_grains(dt: float, grains: GrainParameters, present, landau: Landau,
                        spacing: float = 1.0, safety: float = 0.9) -> int:
    """Sub-steps of ``dt`` that keep explicit Euler stable for the grains ``present`` only.

    A grain whose order parameter is exactly 0 everywhere stays 0 (every term of its update is
    proportional to φ_q or to its neighbours' φ_q), whatever the step, so only the grains present
    bound the stable step; when the grains with the largest L_q(c_q + 8κ_q/h²) have vanished
    the step can grow. ``present`` is a boolean mask or an index array over the grains; with no
    grain present 1 is returned.
    """
    present = np.asarray(present)
    ids = np.flatnonzero(present) if present.dtype == bool else present.astype(np.int64)
    if ids.size == 0:
        return 1
    limit = stable_time_step(grains.mobility[ids], grains.kappa[ids], landau, spacing,
                             grains.weight[ids], grains.tilt[ids])
    return substeps_for(dt, limit, safety)
