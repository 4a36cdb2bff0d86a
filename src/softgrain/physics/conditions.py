r"""Physical cell conditions → biaxial lattice strain of the deposited metal.

The surface energies that drive grain selection depend on the lattice strain of the deposit
(:meth:`softgrain.materials.metals.Metal.surface_energy`). The paper ties that strain to two physical
conditions but gives no formula:

* the **stack pressure** — solid-electrolyte cells (> 10 MPa; the paper's experiments 5 MPa)
  strain Li by ~3 %, liquid cells (~100s of kPa, below Li's 0.41–0.89 MPa yield strength) leave
  it unstrained;
* the **substrate's bulk modulus** — "a reduced bulk modulus difference between the substrate
  and Li corresponds to a smaller lattice strain within the Li phase" (paper, Interfacial layer
  design; Fig. 5A).

softgrain therefore uses the documented assumption (constants in ``data/interlayer.toml``, read by
:func:`softgrain.materials.substrates.load_strain_mapping`)

.. math::

    \varepsilon = \varepsilon_{full} \cdot m \cdot g, \qquad
    m = \mathrm{clip}\Big(\frac{B_{sub} - B_{metal}}{B_{ref} - B_{metal}}, 0, 1\Big), \qquad
    g = \mathrm{clip}\Big(\frac{p - \sigma_y}{p_{full} - \sigma_y}, 0, 1\Big)

with ε_full = −0.03 (PAPER, also the edge of the DFT surface-energy data), B_ref the modulus of
Cu (the paper's strained case is Li on Cu), σ_y the yield strength of the deposited metal (Li:
0.55 MPa, PAPER) and p_full = 5 MPa (ASSUMED: the paper compares its ~3 %-strain solid case with
cells cycled at 5 MPa). Both factors are monotone and saturate: substrates stiffer than Cu do not
strain Li beyond the data, substrates softer than the metal do not strain it at all, and
pressures below the yield strength leave the metal unstrained. By default temperature does not
enter: the strain is taken from the pressure and the substrate only (a softer Li at 80 °C yields
earlier, which leaves a saturated 5 MPa cell saturated).

Optional strain relaxation (``conditions.strain_relaxation = "yield-strength"``, issue 11). The
elastic lattice strain a film can hold is bounded by its yield stress (ε ≲ σ_y / E). If the −3 %
of the 25 °C cell is that bound, heating relaxes it in proportion to the yield strength:

.. math::

    \varepsilon(T) = \varepsilon \cdot \min\Big(1, \frac{\sigma_y(T)}{\sigma_y(T_{ref})}\Big),
    \qquad \ln\sigma_y \text{ linear in } 1/T

through two measured strengths (``data/interlayer.toml`` ``[strain_relaxation.Li]``: 105 MPa at
room temperature and 35 MPa at 90 °C for micrometre-sized Li, Xu et al., PNAS 114, 57 (2017), the
paper's ref. 26), so that σ_y(80 °C)/σ_y(25 °C) = 0.384. It is capped at 1: below the reference
temperature the strain cannot exceed the full strain of the data. This is a hypothesis, not in the
paper (which keeps −3 % at 80 °C); the change of the elastic modulus with temperature and of the
theory's σ_y in Eq. S10 are not included. Only Li has the data.

Examples
--------
>>> lattice_strain(5.0, "Cu").strain      # the solid cell on Cu: the full strain, exactly
-0.03
>>> lattice_strain(0.35, "Cu").strain
0.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from softgrain.errors import UserInputError
from softgrain.materials.metals import load_metal
from softgrain.materials.records import MaterialDataError
from softgrain.materials.constants import ZERO_CELSIUS_K
from softgrain.materials.substrates import (StrainMapping, YieldStrengthPoints, load_bulk_moduli,
                                           load_strain_mapping, load_yield_strength_points,
                                           substrate_bulk_modulus)
from softgrain.physics.theory import TheoryParameters

PASCAL_PER_MPA = 1e6

STRAIN_RELAXATIONS = ("none", "yield-strength")
"""Values of ``conditions.strain_relaxation``: no temperature dependence, or the yield-strength law."""


def yield_strength_ratio(temperature_C: float, points: YieldStrengthPoints) -> float:
    """σ_y(T) / σ_y(T_ref), with ln σ_y linear in 1/T through the two measured points.

    Examples
    --------
    >>> from softgrain.materials.substrates import load_yield_strength_points
    >>> round(yield_strength_ratio(80.0, load_yield_strength_points("Li")), 3)
    0.384
    """
    t = float(temperature_C) + ZERO_CELSIUS_K
    t_ref = points.reference_temperature_C.value + ZERO_CELSIUS_K
    t_hot = points.hot_temperature_C.value + ZERO_CELSIUS_K
    if not (math.isfinite(t) and t > 0):
        raise UserInputError(f"temperature must be above absolute zero, got {temperature_C} °C")
    log_ratio = math.log(points.hot_strength_MPa.value / points.reference_strength_MPa.value)
    return math.exp(log_ratio * (1.0 / t - 1.0 / t_ref) / (1.0 / t_hot - 1.0 / t_ref))


def modulus_factor(substrate_GPa: float, metal_GPa: float, reference_GPa: float) -> float:
    """Share of the full strain set by the substrate–metal modulus mismatch, in [0, 1].

    ``(B_sub − B_metal) / (B_ref − B_metal)`` clipped to [0, 1]: 0 for a substrate as soft as the
    metal (or softer), 1 for the reference substrate (Cu) or stiffer.
    """
    if not reference_GPa > metal_GPa:
        raise UserInputError(f"reference substrate modulus {reference_GPa} GPa must exceed the "
                             f"metal's {metal_GPa} GPa")
    ratio = (float(substrate_GPa) - metal_GPa) / (reference_GPa - metal_GPa)
    return min(1.0, max(0.0, ratio))


def pressure_factor(stack_pressure_MPa: float, yield_strength_MPa: float,
                    full_strain_pressure_MPa: float) -> float:
    """Share of the full strain set by the stack pressure, in [0, 1].

    0 up to the metal's yield strength (the film does not flow, liquid cells), rising linearly to 1
    at ``full_strain_pressure_MPa`` and saturated above.
    """
    p = float(stack_pressure_MPa)
    if not math.isfinite(p) or p < 0:
        raise UserInputError(f"stack_pressure_MPa must be a non-negative number, got {stack_pressure_MPa!r}")
    if not full_strain_pressure_MPa > yield_strength_MPa:
        raise UserInputError(f"full-strain pressure {full_strain_pressure_MPa} MPa must exceed the "
                             f"yield strength {yield_strength_MPa} MPa")
    ratio = (p - yield_strength_MPa) / (full_strain_pressure_MPa - yield_strength_MPa)
    return min(1.0, max(0.0, ratio))


@dataclass(frozen=True)
class LatticeStrain:
    """The strain of the deposit under given conditions, with the factors that set it."""

    strain: float
    stack_pressure_MPa: float
    substrate: str
    substrate_modulus_GPa: float
    metal: str
    metal_modulus_GPa: float
    reference_modulus_GPa: float
    yield_strength_MPa: float
    modulus_factor: float
    pressure_factor: float
    relaxation: str = "none"
    relaxation_factor: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def lattice_strain(stack_pressure_MPa: float, substrate: str | float, metal: str = "Li",
                   mapping: StrainMapping | None = None, *, relaxation: str = "none",
                   temperature_C: float | None = None) -> LatticeStrain:
    """Biaxial lattice strain of ``metal`` deposited on ``substrate`` under a stack pressure.

    Parameters
    ----------
    stack_pressure_MPa : float
        Stack pressure (MPa), ≥ 0.
    substrate : str or float
        Substrate name (see :func:`softgrain.materials.substrates.substrate_bulk_modulus`) or its
        bulk modulus in GPa.
    metal : str
        Deposited metal (Li, Na, K); its bulk modulus comes from ``bulk_moduli.toml`` and its yield
        strength from the theory data (:meth:`softgrain.physics.theory.TheoryParameters.from_data`, which
        uses Li's Fig. 3A value for Na and K).
    mapping : StrainMapping, optional
        Default: :func:`softgrain.materials.substrates.load_strain_mapping`.
    relaxation : {"none", "yield-strength"}
        "yield-strength" scales the strain by min(1, σ_y(T)/σ_y(T_ref)) (module docstring).
    temperature_C : float, optional
        Temperature (°C); required with ``relaxation="yield-strength"``.

    Returns
    -------
    LatticeStrain

    Raises
    ------
    UserInputError
        For an unknown relaxation or a missing temperature; MaterialDataError where the metal has
        no yield-strength data.
    """
    if relaxation not in STRAIN_RELAXATIONS:
        raise UserInputError(f"strain relaxation {relaxation!r}: allowed: "
                             f"{', '.join(repr(r) for r in STRAIN_RELAXATIONS)}")
    constants = mapping or load_strain_mapping()
    data = load_metal(metal)
    moduli = load_bulk_moduli()
    if data.symbol not in moduli:
        raise MaterialDataError(f"bulk_moduli.toml: no bulk modulus for {data.symbol}")
    metal_GPa = moduli[data.symbol].value
    reference_GPa = moduli[constants.reference_substrate].value
    substrate_GPa = substrate_bulk_modulus(substrate)
    yield_MPa = TheoryParameters.from_data(data).yield_strength_Pa / PASCAL_PER_MPA
    m = modulus_factor(substrate_GPa, metal_GPa, reference_GPa)
    g = pressure_factor(stack_pressure_MPa, yield_MPa, constants.full_strain_pressure_MPa.value)
    # m·g lies in [0, 1], so the strain stays inside the surface-energy data (±0.03).
    strain = constants.full_strain.value * m * g
    factor = 1.0
    if relaxation == "yield-strength":
        if temperature_C is None:
            raise UserInputError("strain relaxation 'yield-strength' needs the temperature")
        factor = min(1.0, yield_strength_ratio(temperature_C, load_yield_strength_points(data.symbol)))
        strain *= factor
    return LatticeStrain(
        strain=strain + 0.0,  # + 0.0 turns −0.0 into 0.0 for unstrained cases
        stack_pressure_MPa=float(stack_pressure_MPa), substrate=str(substrate),
        substrate_modulus_GPa=substrate_GPa, metal=data.symbol, metal_modulus_GPa=metal_GPa,
        reference_modulus_GPa=reference_GPa, yield_strength_MPa=yield_MPa,
        modulus_factor=m, pressure_factor=g, relaxation=relaxation, relaxation_factor=factor)


__all__ = ["STRAIN_RELAXATIONS", "LatticeStrain", "lattice_strain", "modulus_factor",
           "pressure_factor", "yield_strength_ratio"]
