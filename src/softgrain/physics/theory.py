"""Thermodynamic theory of grain selection (paper Eq. S1–S11).

The energy density of a grain of orientation *i* is (Eq. S1, thermal part taken isotropic → 0)

.. math::

    U_i = \\Gamma_{surface,i} + F_{strain,i}

and two grains are compared through (Eq. S2)

.. math::

    \\Delta U_{12} = U_1 - U_2 = \\Delta\\Gamma_{surface} + \\Delta F_{strain},

with :math:`\\Delta U_{12} < 0` meaning grain 1 is favoured. The pieces:

* Eq. S3  — :math:`\\Delta\\Gamma = (E_{s,1} - E_{s,2}) / h`
  (:func:`surface_energy_difference`);
* Eq. S9  — :math:`\\varepsilon_i = \\varepsilon_c + (\\varepsilon_T - \\varepsilon_c)
  \\exp(-\\beta D_i / (L R))` (:func:`intrinsic_strain`);
* Eq. S10 — :math:`\\Delta F_{strain} = \\sigma_y (\\varepsilon_1 - \\varepsilon_2)`
  (:func:`strain_energy_difference`; elastic part and extrinsic creep strain neglected, as in the
  paper);
* Eq. S11 — :math:`D_i = D_0 \\exp(-E_{a,i} / (k_B T))` (:func:`diffusivity`).

All energy densities are in J/m³. Surface energies depend on the biaxial lattice strain of the
film (interpolated by :class:`softgrain.materials.metals.Metal`); the electrolyte selects that strain
through :data:`ELECTROLYTE_STRAIN`, and any strain inside the tabulated range may be given
directly instead. The functions are NumPy-vectorised over temperature.

Examples
--------
Fig. 3A: under a solid electrolyte (−3 % strain) Li turns from (001) to (101) between 25 and
80 °C; unstrained (liquid electrolyte) it stays (101):

>>> round(crossover_temperature("Li", strain="solid"), 1)
48.7
>>> energy_difference("Li", ("001", "101"), [25.0, 80.0], strain="solid").favoured.tolist()
['001', '101']
>>> crossover_temperature("Li", strain="liquid") is None
True
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from collections.abc import Iterator, Mapping
from typing import Any, Iterable, Sequence

import numpy as np
from scipy.optimize import brentq

from softgrain.errors import UserInputError
from softgrain.materials.constants import BOLTZMANN_EV_K, ZERO_CELSIUS_K
from softgrain.materials.metals import Metal, load_metal
from softgrain.materials.records import MaterialDataError
from softgrain.materials.substrates import load_strain_mapping


class _ElectrolyteStrain(Mapping[str, float]):
    """Electrolyte name → biaxial lattice strain of the deposit; read from the data when used."""

    _NAMES = ("liquid", "solid")

    def __getitem__(self, name: str) -> float:
        if name == "liquid":
            # Liquid cells run at stack pressures of ~100s of kPa, below Li's yield strength,
            # which leaves Li unstrained (paper, "Grain selection" and Fig. S3; MODEL.md §1).
            return 0.0
        if name == "solid":
            # Solid-electrolyte cells put Li under ~3 % biaxial compression: the full strain of
            # the conditions → strain mapping (data/interlayer.toml, strain_mapping.full_strain).
            return load_strain_mapping().full_strain.value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._NAMES)

    def __len__(self) -> int:
        return len(self._NAMES)

    def __repr__(self) -> str:
        return f"ELECTROLYTE_STRAIN({dict(self)})"


ELECTROLYTE_STRAIN: Mapping[str, float] = _ElectrolyteStrain()
"""Biaxial lattice strain of the deposit (negative = compression) implied by each electrolyte:
``"liquid"`` → 0, ``"solid"`` → the full strain of ``data/interlayer.toml`` (−0.03).

This is the single place where the electrolyte → strain choice is made; every other module
should call :func:`resolve_strain`.
"""

ORIENTATION_ALIASES_NOTE = "cubic equivalents such as 100, 110, 011 and (001) are accepted"

FIG3A_PAIR: tuple[str, str] = ("001", "101")
"""The pair compared in the paper's Fig. 3A: ΔU = U(001) − U(101)."""

CROSSOVER_BRACKET_C: tuple[float, float] = (-100.0, 300.0)
"""Default search interval (°C) of :func:`crossover_temperature`; clipped at the melting point."""


# Number of sub-intervals scanned for sign changes before brentq refines one; fine enough that
# two roots closer than (bracket width)/600 ≈ 0.7 °C are the only way to miss a crossover.
_CROSSOVER_SCAN_POINTS = 601

_THEORY_KEYS: Mapping[str, tuple[str, str]] = {
    # dataclass field: (key in the data file's [theory] table, required unit)
    "yield_strength_Pa": ("yield_strength", "Pa"),
    "tensile_strain": ("tensile_strain", "1"),
    "compressive_strain": ("compressive_strain", "1"),
    "diffusion_prefactor_m2_s": ("diffusion_prefactor", "m^2/s"),
    "beta": ("beta", "1"),
    "grain_size_m": ("grain_size", "m"),
    "thickness_m": ("thickness", "m"),
    "deposition_rate_m_s": ("deposition_rate", "m/s"),
}

_POSITIVE_FIELDS = (
    "yield_strength_Pa",
    "diffusion_prefactor_m2_s",
    "beta",
    "grain_size_m",
    "thickness_m",
    "deposition_rate_m_s",
)


@dataclass(frozen=True)
class TheoryParameters:
    """Constants of Eq. S3, S9–S11 (defaults: the paper's Fig. 3A values, via :meth:`from_data`).

    Parameters
    ----------
    yield_strength_Pa : float
        Yield strength σ_y (Pa), taken isotropic (Eq. S6–S7).
    tensile_strain : float
        ε_T, strain of a grain that closes the gap to its neighbour without diffusion (Eq. S9).
    compressive_strain : float
        ε_c, strain when diffusion fully relaxes the gap (Eq. S9). Must be below ``tensile_strain``.
    diffusion_prefactor_m2_s : float
        D_0 of the Arrhenius law, Eq. S11 (m²/s).
    beta : float
        Fitting constant β of Eq. S9 (dimensionless, positive).
    grain_size_m : float
        Grain size L (m), Eq. S9.
    thickness_m : float
        Film thickness h (m), Eq. S3.
    deposition_rate_m_s : float
        Deposition rate R (m/s), Eq. S9.

    Raises
    ------
    UserInputError
        If a value is not a finite number, a size, rate, D_0, β or σ_y is not positive, or
        ``tensile_strain <= compressive_strain``; the message names the parameter.
    """

    yield_strength_Pa: float
    tensile_strain: float
    compressive_strain: float
    diffusion_prefactor_m2_s: float
    beta: float
    grain_size_m: float
    thickness_m: float
    deposition_rate_m_s: float

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise UserInputError(f"theory parameter {f.name}: expected a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise UserInputError(f"theory parameter {f.name}: must be finite, got {value}")
            object.__setattr__(self, f.name, value)
        for name in _POSITIVE_FIELDS:
            if getattr(self, name) <= 0:
                raise UserInputError(
                    f"theory parameter {name}: must be positive, got {getattr(self, name)}"
                )
        if not self.tensile_strain > self.compressive_strain:
            raise UserInputError(
                "theory parameters tensile_strain and compressive_strain: ε_T must exceed ε_c, "
                f"got tensile_strain={self.tensile_strain}, compressive_strain={self.compressive_strain}"
            )

    @property
    def strain_energy_amplitude(self) -> float:
        """A = σ_y (ε_T − ε_c) in J/m³ (Eq. S10): the largest possible |ΔF_strain|."""
        return self.yield_strength_Pa * (self.tensile_strain - self.compressive_strain)

    @property
    def relaxation_scale_m2_s(self) -> float:
        """L R / β (m²/s): the diffusivity at which Eq. S9 has relaxed the strain by 1/e."""
        return self.grain_size_m * self.deposition_rate_m_s / self.beta

    def replace(self, **changes: Any) -> "TheoryParameters":
        """A copy with some fields changed (validated again)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise UserInputError(f"unknown theory parameter(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_data(cls, metal: str | Metal = "Li", **overrides: Any) -> "TheoryParameters":
        """Read the defaults from the ``[theory]`` tables of a metal's data file.

        Only Li has a ``[theory]`` section (the paper gives Fig. 3A parameters for Li only).
        For Na and K — and any metal file without that section — **Li's Fig. 3A values are used**
        (σ_y = 0.55 MPa, ε_T = 0.2, ε_c = −0.2, D_0 = 1e-15 m²/s, β = 1, L = h = 10 µm,
        R = 1e-9 m/s). These are not Na/K measurements; override them where better values exist.

        Parameters
        ----------
        metal : str or Metal
            Symbol of a shipped metal, or an already loaded :class:`~softgrain.materials.metals.Metal`.
        **overrides
            Field values replacing the data-file ones (e.g. ``thickness_m=20e-6``).

        Raises
        ------
        MaterialDataError
            If the ``[theory]`` section is incomplete or a unit differs from the expected one
            (the message names the file and the field).
        UserInputError
            For an unknown metal, an unknown override or an invalid value.
        """
        data = load_metal(metal) if isinstance(metal, str) else metal
        theory = data.theory if data.theory else load_metal("Li").theory
        source = data.source_file if data.theory else load_metal("Li").source_file
        values: dict[str, float] = {}
        for field_name, (key, unit) in _THEORY_KEYS.items():
            quantity = theory.get(key)
            if quantity is None:
                raise MaterialDataError(f"{source}: theory.{key}: missing (needed by the theory)")
            if quantity.unit != unit:
                raise MaterialDataError(
                    f"{source}: theory.{key}.unit: expected {unit!r}, got {quantity.unit!r}"
                )
            values[field_name] = quantity.value
        unknown = set(overrides) - set(values)
        if unknown:
            raise UserInputError(f"unknown theory parameter(s): {', '.join(sorted(unknown))}")
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class EnergyDifference:
    """ΔU = U(first) − U(second) of one orientation pair and its two parts (Eq. S2).

    Arrays have the shape of the temperatures given; for a scalar temperature the fields are
    floats and ``favoured`` is a string.

    Attributes
    ----------
    metal : str
        Chemical symbol.
    pair : tuple of str
        (first, second) orientation.
    strain : float
        Biaxial lattice strain at which the surface energies were taken.
    temperature_C : float or numpy.ndarray
        Temperatures (°C).
    delta_gamma_J_m3, delta_f_strain_J_m3, delta_u_J_m3 : float or numpy.ndarray
        ΔΓ_surface (Eq. S3), ΔF_strain (Eq. S10) and their sum ΔU (J/m³).
    favoured : str or numpy.ndarray
        ``pair[0]`` where ΔU < 0, ``pair[1]`` where ΔU > 0, ``"tie"`` where ΔU == 0.
    """

    metal: str
    pair: tuple[str, str]
    strain: float
    temperature_C: Any
    delta_gamma_J_m3: Any
    delta_f_strain_J_m3: Any
    delta_u_J_m3: Any
    favoured: Any

    def rows(self) -> list[dict[str, Any]]:
        """One plain-Python dict per temperature (the ``softgrain theory --json`` row format)."""
        temps = np.atleast_1d(self.temperature_C)
        dg = np.broadcast_to(self.delta_gamma_J_m3, temps.shape)
        df = np.atleast_1d(self.delta_f_strain_J_m3)
        du = np.atleast_1d(self.delta_u_J_m3)
        fav = np.atleast_1d(self.favoured)
        return [
            {
                "temperature_C": float(t),
                "delta_gamma_J_m3": float(g),
                "delta_f_strain_J_m3": float(f),
                "delta_u_J_m3": float(u),
                "favoured": str(w),
            }
            for t, g, f, u, w in zip(temps, dg, df, du, fav)
        ]


@dataclass(frozen=True)
class RankedOrientation:
    """One orientation's energy density relative to a reference orientation (J/m³)."""

    orientation: str
    delta_u_J_m3: float
    delta_gamma_J_m3: float
    delta_f_strain_J_m3: float


# --------------------------------------------------------------------------------------------
# Equations
# --------------------------------------------------------------------------------------------

def _scalar_or_array(x: np.ndarray) -> float | np.ndarray:
    return float(x) if np.ndim(x) == 0 else x


def _first_bad(values: np.ndarray, ok: np.ndarray) -> float:
    return float(np.ravel(values)[~np.ravel(ok)][0])


def _positive_kelvin(T_K: Any) -> np.ndarray:
    T = np.asarray(T_K, dtype=float)
    ok = np.isfinite(T) & (T > 0)
    if not np.all(ok):
        raise UserInputError(f"temperature must be above absolute zero, got {_first_bad(T, ok)} K")
    return T


def diffusivity(barrier_eV: Any, T_K: Any, D0: float) -> float | np.ndarray:
    """Arrhenius surface self-diffusivity, Eq. S11: ``D = D0 · exp(−E_a / (k_B T))``.

    Parameters
    ----------
    barrier_eV : float or array_like
        Diffusion barrier E_a (eV).
    T_K : float or array_like
        Absolute temperature (K), > 0; broadcast against ``barrier_eV``.
    D0 : float
        Prefactor (m²/s), > 0.

    Returns
    -------
    float or numpy.ndarray
        D in the units of ``D0``.
    """
    if not (math.isfinite(D0) and D0 > 0):
        raise UserInputError(f"diffusion prefactor D0 must be positive, got {D0}")
    T = _positive_kelvin(T_K)
    return _scalar_or_array(D0 * np.exp(-np.asarray(barrier_eV, dtype=float) / (BOLTZMANN_EV_K * T)))


def intrinsic_strain(D: Any, params: TheoryParameters) -> float | np.ndarray:
    """Deposition-induced strain of a grain with diffusivity ``D``, Eq. S9.

    ``ε = ε_c + (ε_T − ε_c) · exp(−β D / (L R))``: slow diffusion (D → 0) leaves the tensile
    strain ε_T of mechanically closed gaps; fast diffusion (D → ∞) relaxes it to ε_c.

    Parameters
    ----------
    D : float or array_like
        Diffusivity (m²/s), ≥ 0.
    params : TheoryParameters
        Supplies ε_T, ε_c, β, L and R.
    """
    D = np.asarray(D, dtype=float)
    if np.any(D < 0) or np.any(np.isnan(D)):
        raise UserInputError("diffusivity must be non-negative")
    relaxed = np.exp(-D / params.relaxation_scale_m2_s)
    span = params.tensile_strain - params.compressive_strain
    return _scalar_or_array(params.compressive_strain + span * relaxed)


def surface_energy_difference(E_s1: Any, E_s2: Any, h: float) -> float | np.ndarray:
    """ΔΓ_surface = (E_s,1 − E_s,2) / h, Eq. S3, in J/m³ for E_s in J/m² and h in m."""
    if not (math.isfinite(h) and h > 0):
        raise UserInputError(f"film thickness h must be positive, got {h}")
    return _scalar_or_array((np.asarray(E_s1, dtype=float) - np.asarray(E_s2, dtype=float)) / h)


def strain_energy(barrier_eV: Any, T_K: Any, params: TheoryParameters) -> float | np.ndarray:
    """F_strain = σ_y·ε of a grain with surface self-diffusion barrier ``barrier_eV`` (J/m³).

    The per-grain part of Eq. S10, with ε from Eq. S9 and D from Eq. S11 — the quantity whose
    differences :func:`strain_energy_difference` takes (only differences are physical). The
    phase field's consistent formulation uses it as each grain's bulk driving force
    (:mod:`softgrain.phasefield.consistent`).

    Parameters
    ----------
    barrier_eV : float or array_like
        Diffusion barrier(s) E_a (eV).
    T_K : float or array_like
        Absolute temperature (K).
    params : TheoryParameters
    """
    T = _positive_kelvin(T_K)
    D = diffusivity(barrier_eV, T, params.diffusion_prefactor_m2_s)
    return _scalar_or_array(params.yield_strength_Pa * np.asarray(intrinsic_strain(D, params)))


def strain_energy_difference(barrier1_eV: Any, barrier2_eV: Any, T_K: Any,
                             params: TheoryParameters) -> float | np.ndarray:
    """ΔF_strain = σ_y (ε_1 − ε_2), Eq. S10 (J/m³).

    Equivalent to ``A [exp(−β D_1/(L R)) − exp(−β D_2/(L R))]`` with A = σ_y (ε_T − ε_c) and
    D_i from Eq. S11. Negative when grain 1 diffuses faster (lower barrier): the mobile grain
    stores less strain energy. Antisymmetric in the two barriers and bounded by ±A.

    Parameters
    ----------
    barrier1_eV, barrier2_eV : float or array_like
        Diffusion barriers of grains 1 and 2 (eV).
    T_K : float or array_like
        Absolute temperature (K).
    params : TheoryParameters
    """
    T = _positive_kelvin(T_K)
    D0 = params.diffusion_prefactor_m2_s
    eps1 = np.asarray(intrinsic_strain(diffusivity(barrier1_eV, T, D0), params))
    eps2 = np.asarray(intrinsic_strain(diffusivity(barrier2_eV, T, D0), params))
    return _scalar_or_array(params.yield_strength_Pa * (eps1 - eps2))


# --------------------------------------------------------------------------------------------
# Metal-level helpers
# --------------------------------------------------------------------------------------------

def resolve_strain(strain: float | str | None) -> float:
    """Biaxial strain from a number or an electrolyte name (see :data:`ELECTROLYTE_STRAIN`).

    ``None`` means unstrained. Numeric strings are accepted too.
    """
    if strain is None:
        return 0.0
    if isinstance(strain, str):
        key = strain.strip().lower()
        if key in ELECTROLYTE_STRAIN:
            return ELECTROLYTE_STRAIN[key]
        try:
            value = float(key)
        except ValueError:
            raise UserInputError(
                f"unknown electrolyte {strain!r}; known: {', '.join(ELECTROLYTE_STRAIN)} "
                "(or give a strain as a number)"
            ) from None
    elif isinstance(strain, bool):
        raise UserInputError(f"strain must be a number, got {strain!r}")
    else:
        value = float(strain)
    if not math.isfinite(value):
        raise UserInputError(f"strain must be finite, got {strain!r}")
    return value


def _metal(metal: str | Metal) -> Metal:
    return load_metal(metal) if isinstance(metal, str) else metal


def normalise_orientation(name: Any, metal: str | Metal = "Li") -> str:
    """Canonical orientation name (``"001"``, ``"101"``, ``"111"``) of ``name``.

    Parentheses, brackets and spaces are dropped, and cubic equivalents map onto the paper's
    names: {100, 010, 001} → 001, {110, 101, 011} → 101.

    Raises
    ------
    UserInputError
        For an orientation the metal has no data for; the message names it.
    """
    data = _metal(metal)
    known = list(data.diffusion_barrier_eV)
    text = "".join(ch for ch in str(name) if ch not in "()[]{}<> ")
    candidate = text
    if len(text) == 3 and set(text) <= {"0", "1"}:
        # The three indices of a bcc family are interchangeable; sort them to find the family.
        candidate = {"001": "001", "011": "101", "111": "111"}.get("".join(sorted(text)), text)
    if candidate not in known:
        raise UserInputError(
            f"unknown orientation {str(name)!r} for {data.symbol}; known: {', '.join(known)} "
            f"({ORIENTATION_ALIASES_NOTE})"
        )
    return candidate


def _pair(metal: Metal, pair: Sequence[Any]) -> tuple[str, str]:
    if isinstance(pair, str) or len(pair) != 2:
        raise UserInputError(f"pair must name exactly two orientations, got {pair!r}")
    first, second = (normalise_orientation(p, metal) for p in pair)
    if first == second:
        raise UserInputError(f"pair must name two different orientations, got {pair!r}")
    return first, second


def _kelvin_below_melting(metal: Metal, temperature_C: Any) -> np.ndarray:
    try:
        t = np.asarray(temperature_C, dtype=float)
    except (TypeError, ValueError):
        raise UserInputError(f"temperature must be a number in °C, got {temperature_C!r}") from None
    finite = np.isfinite(t)
    if not np.all(finite):
        raise UserInputError(f"temperature must be finite, got {_first_bad(t, finite)}")
    T = t + ZERO_CELSIUS_K
    if np.any(T <= 0):
        raise UserInputError(f"temperature {_first_bad(t, T > 0)} °C is below absolute zero")
    solid = np.array([metal.is_solid_at(v) for v in t.ravel()], dtype=bool).reshape(t.shape)
    if not np.all(solid):
        metal.require_solid(_first_bad(t, solid))   # the rule every command shares
    return T


def energy_difference(metal: str | Metal, pair: Sequence[str], temperature_C: Any,
                      strain: float | str | None = 0.0,
                      params: TheoryParameters | None = None) -> EnergyDifference:
    """ΔU = U(pair[0]) − U(pair[1]) = ΔΓ_surface + ΔF_strain (Eq. S2, S3, S10).

    Parameters
    ----------
    metal : str or Metal
        ``"Li"``, ``"Na"``, ``"K"`` or a loaded :class:`~softgrain.materials.metals.Metal`.
    pair : sequence of two str
        Orientations (first, second); ΔU < 0 favours the first.
    temperature_C : float or array_like
        Temperatures (°C), above absolute zero and below the metal's melting point.
    strain : float or str, optional
        Biaxial lattice strain (negative = compression) at which the surface energies are taken,
        or an electrolyte name from :data:`ELECTROLYTE_STRAIN` (``"liquid"`` → 0,
        ``"solid"`` → −0.03). Default: unstrained.
    params : TheoryParameters, optional
        Default: :meth:`TheoryParameters.from_data` for this metal.

    Returns
    -------
    EnergyDifference
    """
    data = _metal(metal)
    first, second = _pair(data, pair)
    eps = resolve_strain(strain)
    p = params if params is not None else TheoryParameters.from_data(data)
    T = _kelvin_below_melting(data, temperature_C)
    dgamma = surface_energy_difference(
        data.surface_energy(first, eps), data.surface_energy(second, eps), p.thickness_m
    )
    df = np.asarray(strain_energy_difference(data.barrier(first), data.barrier(second), T, p))
    du = dgamma + df
    favoured = np.where(du < 0, first, np.where(du > 0, second, "tie"))
    scalar = np.ndim(temperature_C) == 0
    return EnergyDifference(
        metal=data.symbol,
        pair=(first, second),
        strain=eps,
        temperature_C=float(temperature_C) if scalar else np.asarray(temperature_C, dtype=float),
        delta_gamma_J_m3=float(dgamma) if scalar else np.full(T.shape, dgamma),
        delta_f_strain_J_m3=float(df) if scalar else df,
        delta_u_J_m3=float(du) if scalar else du,
        favoured=str(favoured) if scalar else favoured,
    )


def rank_orientations(metal: str | Metal, temperature_C: float, strain: float | str | None = 0.0,
                      params: TheoryParameters | None = None,
                      reference: str = "001") -> list[RankedOrientation]:
    """All orientations ordered by energy density U relative to ``reference`` (lowest first).

    Only differences of U are defined by the theory, so each entry is U(o) − U(reference)
    (Eq. S2 with grain 2 = ``reference``); the first entry is the favoured orientation.

    Parameters
    ----------
    metal, strain, params
        As in :func:`energy_difference`.
    temperature_C : float
        One temperature (°C).
    reference : str
        Orientation all others are compared with (its own entry is 0).
    """
    data = _metal(metal)
    ref = normalise_orientation(reference, data)
    if np.ndim(temperature_C) != 0:
        raise UserInputError("rank_orientations takes one temperature")
    ranked = []
    for orientation in data.diffusion_barrier_eV:
        if orientation == ref:
            ranked.append(RankedOrientation(orientation, 0.0, 0.0, 0.0))
            continue
        d = energy_difference(data, (orientation, ref), temperature_C, strain, params)
        ranked.append(RankedOrientation(orientation, d.delta_u_J_m3, d.delta_gamma_J_m3,
                                        d.delta_f_strain_J_m3))
    return sorted(ranked, key=lambda r: r.delta_u_J_m3)


def _clipped_bracket(data: Metal, bracket: Iterable[float]) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bracket)
    except (TypeError, ValueError):
        raise UserInputError(f"bracket must be two temperatures in °C, got {bracket!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise UserInputError(f"bracket must be two increasing finite temperatures, got {bracket!r}")
    # The theory only holds for the solid: stay strictly inside (absolute zero, melting point).
    lo = max(lo, -ZERO_CELSIUS_K + 1.0)
    hi = min(hi, data.melting_point_C - 1e-3)
    if lo >= hi:
        raise UserInputError(
            f"bracket {bracket!r} lies outside the solid range of {data.symbol} "
            f"(melting point {data.melting_point_C:.1f} °C)"
        )
    return lo, hi


def crossover_temperatures(metal: str | Metal, pair: Sequence[str] = FIG3A_PAIR,
                           strain: float | str | None = 0.0,
                           params: TheoryParameters | None = None,
                           bracket: Iterable[float] = CROSSOVER_BRACKET_C) -> list[float]:
    """All temperatures (°C, increasing) in ``bracket`` where ΔU changes sign.

    The bracket is clipped to the solid range of the metal (below its melting point). ΔU is
    scanned on a uniform grid and every sign change is refined with :func:`scipy.optimize.brentq`.
    """
    data = _metal(metal)
    first, second = _pair(data, pair)
    p = params if params is not None else TheoryParameters.from_data(data)
    eps = resolve_strain(strain)
    lo, hi = _clipped_bracket(data, bracket)
    grid = np.linspace(lo, hi, _CROSSOVER_SCAN_POINTS)
    du = np.asarray(energy_difference(data, (first, second), grid, eps, p).delta_u_J_m3)

    def f(t: float) -> float:
        return energy_difference(data, (first, second), t, eps, p).delta_u_J_m3

    roots: list[float] = []
    sign = np.sign(du)
    for i in range(len(grid) - 1):
        if sign[i] == 0:
            if not roots or roots[-1] != grid[i]:
                roots.append(float(grid[i]))
        elif sign[i] * sign[i + 1] < 0:
            roots.append(float(brentq(f, grid[i], grid[i + 1], xtol=1e-10, rtol=1e-12)))
    if sign[-1] == 0:
        roots.append(float(grid[-1]))
    return roots


def crossover_temperature(metal: str | Metal, pair: Sequence[str] = FIG3A_PAIR,
                          strain: float | str | None = 0.0,
                          params: TheoryParameters | None = None,
                          bracket: Iterable[float] = CROSSOVER_BRACKET_C) -> float | None:
    """Temperature (°C) at which ΔU = U(pair[0]) − U(pair[1]) changes sign, or ``None``.

    With the shipped Li data and Fig. 3A parameters the solid-electrolyte case has one crossover
    between 25 and 80 °C ((001) below, (101) above) and the liquid case none.

    Parameters
    ----------
    metal, pair, strain, params
        As in :func:`energy_difference`.
    bracket : (float, float)
        Search interval in °C, default (−100, 300); clipped to below the melting point.

    Returns
    -------
    float or None
        The lowest crossover in the bracket (see :func:`crossover_temperatures` for all of them),
        or ``None`` when ΔU keeps one sign throughout.
    """
    roots = crossover_temperatures(metal, pair, strain, params, bracket)
    return roots[0] if roots else None


def critical_thickness(metal: str | Metal, pair: Sequence[str] = FIG3A_PAIR,
                       temperature_C: float = 25.0, strain: float | str | None = 0.0,
                       params: TheoryParameters | None = None) -> float | None:
    """Film thickness h* (m) at which ΔΓ_surface(h) + ΔF_strain = 0.

    ΔΓ = ΔE_s / h fades as the film grows while ΔF_strain does not depend on h (L, the grain
    size, is a separate parameter), so h* = −ΔE_s / ΔF_strain. Thinner films follow the
    surface-energy preference, thicker ones the strain-energy (diffusion) preference.

    Returns
    -------
    float or None
        h* in metres, or ``None`` if the two terms have the same sign (or one vanishes): then
        one orientation is favoured at every thickness.
    """
    data = _metal(metal)
    first, second = _pair(data, pair)
    eps = resolve_strain(strain)
    p = params if params is not None else TheoryParameters.from_data(data)
    if np.ndim(temperature_C) != 0:
        raise UserInputError("critical_thickness takes one temperature")
    T = float(_kelvin_below_melting(data, temperature_C))
    delta_es = data.surface_energy(first, eps) - data.surface_energy(second, eps)
    df = float(strain_energy_difference(data.barrier(first), data.barrier(second), T, p))
    if delta_es == 0 or df == 0 or (delta_es > 0) == (df > 0):
        return None
    return -delta_es / df


def default_temperatures_C(metal: str | Metal = "Li") -> np.ndarray:
    """−20 … 100 °C in 5 °C steps (the range of the paper's Fig. 3A), below the melting point."""
    data = _metal(metal)
    grid = np.arange(-20.0, 100.0 + 2.5, 5.0)
    return grid[[data.is_solid_at(t) for t in grid]]


__all__ = [
    "CROSSOVER_BRACKET_C",
    "ELECTROLYTE_STRAIN",
    "EnergyDifference",
    "FIG3A_PAIR",
    "RankedOrientation",
    "TheoryParameters",
    "critical_thickness",
    "crossover_temperature",
    "crossover_temperatures",
    "default_temperatures_C",
    "diffusivity",
    "energy_difference",
    "intrinsic_strain",
    "normalise_orientation",
    "rank_orientations",
    "resolve_strain",
    "strain_energy",
    "strain_energy_difference",
    "surface_energy_difference",
]
