"""Interlayer (seed-layer) design, paper Fig. 5A: the five criteria and modulus → strain → texture.

The paper's argument: a substrate whose bulk modulus is close to Li's strains the plated Li less
under stack pressure, so the surface-energy anisotropy that favours (001) stays small and the
diffusion-favoured (101) grains win. An interlayer should have (paper, Conclusions)

1. a bulk modulus below 30 GPa,
2. an amorphous structure (no grain boundaries),
3. electrochemical stability against Li,
4. electronic conductivity,
5. lithophilicity.

The materials of Fig. 5A and their bulk moduli are data
(:mod:`softgrain.materials.substrates`). This module evaluates the criteria from the data, finds
the Li fraction at which each family falls below 30 GPa, and follows the chain bulk modulus →
lattice strain (:mod:`softgrain.physics.conditions`) → surface energies → the thermodynamic
theory's favoured orientation. Phase-field ensembles on chosen substrates are a study
(:mod:`softgrain.studies.interlayer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from softgrain.materials.metals import ORIENTATIONS, load_metal
from softgrain.materials.records import data_error, data_path
from softgrain.materials.substrates import (FAMILY_CRITERIA, INTERLAYER_FILE, REFERENCE_METALS,
                                            InterlayerMaterial, family_criteria, family_series,
                                            find_material, interlayer_materials, modulus_threshold)
from softgrain.physics.conditions import lattice_strain
from softgrain.physics.theory import energy_difference, rank_orientations

CRITERIA: tuple[str, ...] = ("bulk_modulus",) + FAMILY_CRITERIA
"""The paper's five interlayer criteria, in its order (Conclusions)."""


@dataclass(frozen=True)
class Criterion:
    """One criterion evaluated for one material, with where the answer comes from."""

    holds: bool
    label: str
    source: str


@dataclass(frozen=True)
class Candidate:
    """An interlayer candidate and its five criteria."""

    material: InterlayerMaterial
    criteria: Mapping[str, Criterion]

    @property
    def passes(self) -> bool:
        return all(c.holds for c in self.criteria.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.material.name, "family": self.material.family, "x_li": self.material.x_li,
            "bulk_modulus_GPa": self.material.bulk_modulus_GPa,
            "criteria": {k: c.holds for k, c in self.criteria.items()},
            "passes": self.passes,
            "criteria_sources": {k: {"label": c.label, "source": c.source} for k, c in self.criteria.items()},
        }


def modulus_crossing_x(family: str, threshold_GPa: float | None = None) -> float | None:
    """Smallest Li fraction x above which the family's modulus stays below the threshold.

    The family's points (ending at pure Li) are joined by straight lines, as drawn in Fig. 5A.
    Returns None if no point lies below the threshold, 0 if all do.
    """
    limit = modulus_threshold().value if threshold_GPa is None else float(threshold_GPa)
    x, b = family_series(family)
    above = np.nonzero(b >= limit)[0]
    if above.size == 0:
        return 0.0
    last = int(above[-1])
    if last == len(x) - 1:
        return None
    # Linear interpolation between the last point at/above the limit and the next one below it.
    x0, x1, b0, b1 = x[last], x[last + 1], b[last], b[last + 1]
    return float(x0 + (b0 - limit) * (x1 - x0) / (b0 - b1))


def evaluate_criteria(material: InterlayerMaterial) -> dict[str, Criterion]:
    """The five criteria of one material, from the data (see ``data/interlayer.toml``).

    Criterion 1 compares the bulk modulus with
    :func:`~softgrain.materials.substrates.modulus_threshold`; criteria 2–5 follow the family's
    rules (:func:`~softgrain.materials.substrates.family_criteria`), either a fixed ``value`` or a
    Li-fraction window ``x_min ≤ x < x_max``.
    """
    threshold = modulus_threshold()
    result = {"bulk_modulus": Criterion(
        material.bulk_modulus_GPa < threshold.value, material.label,
        f"B = {material.bulk_modulus_GPa:.4g} GPa ({material.source}) vs < {threshold.value:g} GPa "
        f"({threshold.source})")}
    for key, rule in family_criteria(material.family).items():
        if rule.value is not None:
            holds = rule.value
        else:
            if material.x_li is None:
                raise data_error(data_path(INTERLAYER_FILE), f"family.{material.family}.{key}",
                                 "Li-fraction window for a material without x")
            holds = ((rule.x_min is None or material.x_li >= rule.x_min)
                     and (rule.x_max is None or material.x_li < rule.x_max))
        result[key] = Criterion(bool(holds), rule.label, rule.source)
    return result


def assess_candidates() -> list[Candidate]:
    """Every material of Fig. 5A except the deposited metals themselves, with its criteria."""
    return [Candidate(m, evaluate_criteria(m)) for m in interlayer_materials()
            if m.family not in REFERENCE_METALS]


def texture_chain(names: Iterable[str], stack_pressure_MPa: float, temperature_C: float,
                  metal: str = "Li") -> list[dict[str, Any]]:
    """Bulk modulus → lattice strain → surface energies → the theory's favoured orientation.

    Parameters
    ----------
    names : iterable of str
        Substrate materials (see :func:`~softgrain.materials.substrates.interlayer_materials`).
    stack_pressure_MPa, temperature_C : float
        Cell conditions (the paper's experiments: 5 MPa, 25 °C).
    metal : str
        Deposited metal.

    Returns
    -------
    list of dict
        Per substrate: modulus, strain and its factors, surface energies (J/m²), ΔE_s(001−101),
        ΔU(001−101) (J/m³) and the orientation ranked first by
        :func:`softgrain.physics.theory.rank_orientations`.
    """
    data = load_metal(metal)
    rows = []
    for name in names:
        material = find_material(name)
        strained = lattice_strain(stack_pressure_MPa, material.name, data.symbol)
        energies = data.surface_energies(strained.strain)
        ranking = rank_orientations(data, temperature_C, strained.strain)
        fig3a = energy_difference(data, ("001", "101"), temperature_C, strained.strain)
        rows.append({
            "substrate": material.name, "bulk_modulus_GPa": material.bulk_modulus_GPa,
            "strain": strained.strain, "modulus_factor": strained.modulus_factor,
            "pressure_factor": strained.pressure_factor,
            "surface_energy_J_m2": {o: energies[o] for o in ORIENTATIONS},
            "delta_surface_energy_001_101_J_m2": energies["001"] - energies["101"],
            "delta_u_001_101_J_m3": fig3a.delta_u_J_m3,
            "theory_favoured": ranking[0].orientation,
        })
    return rows


def interlayer_report(stack_pressure_MPa: float = 5.0, temperature_C: float = 25.0,
                      metal: str = "Li") -> dict[str, Any]:
    """Everything ``softgrain interlayer --json`` prints (without a simulation)."""
    threshold = modulus_threshold()
    candidates = assess_candidates()
    families = ("Ag", "Au", "c-LiSi", "a-LiSi")
    return {
        "threshold_GPa": threshold.value,
        "threshold_source": threshold.source,
        "materials": [m.as_dict() for m in interlayer_materials()],
        "candidates": [c.as_dict() for c in candidates],
        "modulus_crossing_x": {f: modulus_crossing_x(f) for f in families},
        "conditions": {"stack_pressure_MPa": stack_pressure_MPa, "temperature_C": temperature_C,
                       "metal": metal},
        "texture_chain": texture_chain([c.material.name for c in candidates], stack_pressure_MPa, temperature_C, metal),
    }


__all__ = [
    "CRITERIA",
    "Candidate",
    "Criterion",
    "assess_candidates",
    "evaluate_criteria",
    "interlayer_report",
    "modulus_crossing_x",
    "texture_chain",
]
