"""Substrates and interlayers: bulk moduli, the Fig. 5A catalogue, and the strain-mapping constants.

Data only, with sources (``data/bulk_moduli.toml``, ``data/interlayer.toml``):

* the bulk moduli of the pure metals (Li, Na, K, Cu, Ag, Au);
* the materials of the paper's Fig. 5A — Li, Na, Cu, Ag, Au, Li_xAg and Li_xAu on the straight
  line between the pure phases (the paper's construction), crystalline and amorphous Li_xSi from
  first-principles data — as :class:`InterlayerMaterial` (:func:`interlayer_materials`);
* the rules of the interlayer criteria 2–5 per family and the 30 GPa limit of criterion 1
  (evaluated in :mod:`softgrain.physics.interlayer`);
* the constants of the stack pressure / substrate → lattice strain mapping
  (:func:`load_strain_mapping`, used by :mod:`softgrain.physics.conditions`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

import numpy as np

from softgrain.errors import UserInputError
from softgrain.materials.records import (MaterialDataError, Quantity, data_error, data_path,
                                         load_data_file, parse_quantity, provenance)

INTERLAYER_FILE = "interlayer.toml"

REFERENCE_METALS: tuple[str, ...] = ("Li", "Na")
"""Deposited soft metals shown in Fig. 5A for reference; they are not interlayer candidates."""

PURE_SUBSTRATES: tuple[str, ...] = ("Cu", "Ag", "Au")
"""Pure current-collector / seed-layer metals of Fig. 5A (moduli from ``bulk_moduli.toml``)."""

FAMILY_CRITERIA: tuple[str, ...] = ("amorphous", "stable", "conductive", "lithophilic")
"""Interlayer criteria 2–5 of the paper (Conclusions), stated per family in the data."""


def _interlayer_path() -> str:
    return str(data_path(INTERLAYER_FILE))


def load_interlayer_document() -> dict[str, Any]:
    """Parsed ``data/interlayer.toml`` (raw tables; validated by the functions that use them)."""
    return load_data_file(INTERLAYER_FILE)


@lru_cache(maxsize=None)
def load_bulk_moduli() -> dict[str, Quantity]:
    """Bulk moduli (GPa) of metals and substrates, with sources."""
    path = str(data_path("bulk_moduli.toml"))
    return {name: parse_quantity(entry, path, name, positive=True)
            for name, entry in load_data_file("bulk_moduli.toml").items()}


# ---------------------------------------------------------------------------------------------
# Conditions → strain mapping constants
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StrainMapping:
    """Constants of the conditions → strain mapping (see :mod:`softgrain.physics.conditions`).

    Attributes
    ----------
    full_strain : Quantity
        Strain reached on the reference substrate above ``full_strain_pressure`` (−0.03).
    reference_substrate : str
        Substrate on which the full strain is reached (Cu).
    reference_source : str
        Why that substrate is the reference.
    full_strain_pressure_MPa : Quantity
        Stack pressure at and above which the strain is saturated (MPa).
    """

    full_strain: Quantity
    reference_substrate: str
    reference_source: str
    full_strain_pressure_MPa: Quantity


@lru_cache(maxsize=None)
def load_strain_mapping() -> StrainMapping:
    """The mapping constants from ``data/interlayer.toml``, validated."""
    path = _interlayer_path()
    section = load_interlayer_document().get("strain_mapping")
    if not isinstance(section, Mapping):
        raise data_error(path, "strain_mapping", "missing table")
    full = parse_quantity(section.get("full_strain"), path, "strain_mapping.full_strain", unit="1")
    if not -0.2 <= full.value <= 0.2:
        raise data_error(path, "strain_mapping.full_strain.value",
                         f"must be a fraction in [-0.2, 0.2], got {full.value}")
    pressure = parse_quantity(section.get("full_strain_pressure"), path,
                              "strain_mapping.full_strain_pressure", unit="MPa", positive=True)
    reference = section.get("reference_substrate")
    if not isinstance(reference, Mapping) or not isinstance(reference.get("name"), str):
        raise data_error(path, "strain_mapping.reference_substrate.name", "missing text field")
    if not isinstance(reference.get("source"), str) or not reference["source"].strip():
        raise data_error(path, "strain_mapping.reference_substrate.source", "every choice needs a source")
    if reference["name"] not in load_bulk_moduli():
        raise data_error(path, "strain_mapping.reference_substrate.name",
                         f"{reference['name']!r} has no bulk modulus in bulk_moduli.toml")
    return StrainMapping(full, reference["name"], reference["source"], pressure)


@dataclass(frozen=True)
class YieldStrengthPoints:
    """Two measured yield strengths of a metal at two temperatures (``[strain_relaxation.<metal>]``).

    Used only by the optional strain relaxation of :mod:`softgrain.physics.conditions`.
    """

    metal: str
    reference_temperature_C: Quantity
    reference_strength_MPa: Quantity
    hot_temperature_C: Quantity
    hot_strength_MPa: Quantity


def load_yield_strength_points(metal: str) -> YieldStrengthPoints:
    """σ_y at two temperatures for ``metal`` from ``data/interlayer.toml``, validated.

    Raises
    ------
    MaterialDataError
        If the file has no such data for ``metal`` (only Li has), or an entry is malformed.
    """
    path = _interlayer_path()
    tables = load_interlayer_document().get("strain_relaxation", {})
    section = tables.get(metal) if isinstance(tables, Mapping) else None
    if not isinstance(section, Mapping):
        known = ", ".join(sorted(tables)) if isinstance(tables, Mapping) else "none"
        raise MaterialDataError(f"{path}: strain_relaxation: no yield-strength data for {metal} "
                                f"(data for: {known})")
    where = f"strain_relaxation.{metal}"
    points = YieldStrengthPoints(
        metal,
        parse_quantity(section.get("reference_temperature"), path, f"{where}.reference_temperature", unit="degC"),
        parse_quantity(section.get("reference_strength"), path, f"{where}.reference_strength", unit="MPa", positive=True),
        parse_quantity(section.get("hot_temperature"), path, f"{where}.hot_temperature", unit="degC"),
        parse_quantity(section.get("hot_strength"), path, f"{where}.hot_strength", unit="MPa", positive=True))
    if not points.hot_temperature_C.value > points.reference_temperature_C.value:
        raise data_error(path, f"{where}.hot_temperature", "must lie above reference_temperature")
    return points


# ---------------------------------------------------------------------------------------------
# The Fig. 5A catalogue
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InterlayerMaterial:
    """One point of Fig. 5A.

    Attributes
    ----------
    name : str
        Formula, e.g. ``"Cu"``, ``"Li0.8Ag0.2"``, ``"Li15Si4"``, ``"Li0.7Si0.3"`` (amorphous).
    family : str
        ``"Li"``, ``"Na"``, ``"Cu"``, ``"Ag"``, ``"Au"`` (the pure metal and its Li alloys),
        ``"c-LiSi"`` (crystalline Si and Li–Si phases) or ``"a-LiSi"`` (amorphous).
    x_li : float or None
        Li fraction x of Li_x M_(1−x) (1 = pure Li); None for Na.
    bulk_modulus_GPa : float
    amorphous : bool
    label, source : str
        Confidence label and source of the modulus.
    """

    name: str
    family: str
    x_li: float | None
    bulk_modulus_GPa: float
    amorphous: bool
    label: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "x_li": self.x_li,
                "bulk_modulus_GPa": self.bulk_modulus_GPa, "amorphous": self.amorphous,
                "label": self.label, "source": self.source}


@lru_cache(maxsize=None)
def modulus_threshold() -> Quantity:
    """Criterion 1: the largest acceptable bulk modulus (30 GPa, PAPER), with its source."""
    entry = load_interlayer_document().get("criteria", {}).get("bulk_modulus_max")
    return parse_quantity(entry, _interlayer_path(), "criteria.bulk_modulus_max", unit="GPa",
                          positive=True)


def alloy_name(metal: str, x_li: float) -> str:
    """Formula of Li_x M_(1−x) with two decimals at most, e.g. ``alloy_name("Ag", 0.8)`` → ``"Li0.8Ag0.2"``."""
    return f"Li{round(x_li, 2):g}{metal}{round(1.0 - x_li, 2):g}"


def linear_alloy_modulus(metal: str, x_li: Any) -> float | np.ndarray:
    """Bulk modulus (GPa) of Li_x M_(1−x) on the straight line between M (x = 0) and Li (x = 1).

    This is the paper's Fig. 5A construction for Ag and Au (Materials Project end points), not a
    property of the real alloys.
    """
    moduli = load_bulk_moduli()
    if metal not in moduli:
        raise UserInputError(f"no bulk modulus for {metal!r}; known: {', '.join(moduli)}")
    x = np.asarray(x_li, dtype=float)
    if np.any((x < 0) | (x > 1)) or not np.all(np.isfinite(x)):
        raise UserInputError(f"Li fraction x must lie in [0, 1], got {x_li!r}")
    value = x * moduli["Li"].value + (1.0 - x) * moduli[metal].value
    return float(value) if value.ndim == 0 else value


def _phases() -> list[InterlayerMaterial]:
    path = _interlayer_path()
    phases = load_interlayer_document().get("phase")
    if not isinstance(phases, list) or not phases:
        raise data_error(path, "phase", "expected a list of [[phase]] tables")
    out = []
    for i, entry in enumerate(phases):
        where = f"phase[{i}]"
        if not isinstance(entry, Mapping):
            raise data_error(path, where, "expected a table")
        name, family = entry.get("name"), entry.get("family")
        if not isinstance(name, str) or not isinstance(family, str):
            raise data_error(path, where, "name and family must be text")
        x = entry.get("x_li")
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 <= x <= 1:
            raise data_error(path, f"{where}.x_li", f"must be a Li fraction in [0, 1], got {x!r}")
        if not isinstance(entry.get("amorphous"), bool):
            raise data_error(path, f"{where}.amorphous", "must be true or false")
        modulus = parse_quantity(entry.get("bulk_modulus"), path, f"{where}.bulk_modulus",
                                 unit="GPa", positive=True)
        out.append(InterlayerMaterial(name, family, float(x), modulus.value, entry["amorphous"],
                                      modulus.label, modulus.source))
    return out


@lru_cache(maxsize=None)
def interlayer_materials() -> tuple[InterlayerMaterial, ...]:
    """Every material of Fig. 5A: Li, Na, Cu, Ag, Au, Li_xAg, Li_xAu, crystalline and amorphous Li_xSi."""
    path = _interlayer_path()
    moduli = load_bulk_moduli()
    out: list[InterlayerMaterial] = []
    for name in REFERENCE_METALS + PURE_SUBSTRATES:
        q = moduli[name]
        x = 1.0 if name == "Li" else (None if name in REFERENCE_METALS else 0.0)
        out.append(InterlayerMaterial(name, name, x, q.value, False, q.label, q.source))
    alloys = load_interlayer_document().get("linear_alloys")
    if not isinstance(alloys, Mapping):
        raise data_error(path, "linear_alloys", "missing table")
    grid = alloys.get("x_li")
    if not isinstance(grid, list) or not all(isinstance(x, (int, float)) and 0 < x < 1 for x in grid):
        raise data_error(path, "linear_alloys.x_li", "expected Li fractions in (0, 1)")
    for metal in alloys.get("metals", []):
        for x in grid:
            out.append(InterlayerMaterial(
                alloy_name(metal, x), metal, float(x), linear_alloy_modulus(metal, x), False,
                str(alloys.get("label", "")),
                f"linear between {metal} ({moduli[metal].value:g} GPa) and Li ({moduli['Li'].value:g} GPa): "
                f"{alloys.get('source', '')}"))
    out.extend(_phases())
    names = [m.name.lower() for m in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MaterialDataError(f"{path}: duplicate material names: {', '.join(duplicates)}")
    return tuple(out)


def find_material(name: str) -> InterlayerMaterial:
    """The material called ``name`` (case-insensitive)."""
    for material in interlayer_materials():
        if material.name.lower() == str(name).strip().lower():
            return material
    raise UserInputError(f"unknown material {name!r}; known: "
                         f"{', '.join(m.name for m in interlayer_materials())}")


def family_series(family: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, B) of a family from its Li-poorest member to pure Li (x = 1), sorted by x."""
    members = [m for m in interlayer_materials() if m.family == family and m.x_li is not None]
    if not members:
        raise UserInputError(f"unknown family {family!r}")
    li = find_material("Li")
    points = sorted({(m.x_li, m.bulk_modulus_GPa) for m in members} | {(li.x_li, li.bulk_modulus_GPa)})
    x, b = (np.array(v, dtype=float) for v in zip(*points))
    return x, b


def substrate_bulk_modulus(substrate: str | float) -> float:
    """Bulk modulus (GPa) of a substrate given by name or directly as a number in GPa.

    Names are those of the catalogue (:func:`interlayer_materials`: Cu, Ag, Au, Li, Na and the
    interlayer materials such as ``"Li0.7Si0.3"``, ``"Li15Si4"``, ``"Li0.8Ag0.2"``), matched
    case-insensitively.

    Raises
    ------
    UserInputError
        For an unknown name (the message lists the known ones) or a non-positive modulus.
    """
    if isinstance(substrate, bool):
        raise UserInputError(f"substrate must be a material name or a bulk modulus in GPa, got {substrate!r}")
    if isinstance(substrate, (int, float)):
        value = float(substrate)
        if not math.isfinite(value) or value <= 0:
            raise UserInputError(f"substrate bulk modulus must be a positive number of GPa, got {substrate!r}")
        return value
    known = {m.name.lower(): m for m in interlayer_materials()}
    found = known.get(str(substrate).strip().lower())
    if found is None:
        raise UserInputError(
            f"unknown substrate {substrate!r}; known: {', '.join(m.name for m in known.values())} "
            "(or give its bulk modulus in GPa)")
    return found.bulk_modulus_GPa


# ---------------------------------------------------------------------------------------------
# Criteria 2–5 per family
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CriterionRule:
    """How one of criteria 2–5 holds for a family: always/never (``value``) or in a Li window.

    With ``value`` None the criterion holds for ``x_min ≤ x < x_max`` (either bound optional).
    """

    value: bool | None
    x_min: float | None
    x_max: float | None
    label: str
    source: str


@lru_cache(maxsize=None)
def family_criteria(family: str) -> dict[str, CriterionRule]:
    """The rules of criteria 2–5 for ``family``, from ``data/interlayer.toml``."""
    path = _interlayer_path()
    table = load_interlayer_document().get("family", {}).get(family)
    if not isinstance(table, Mapping):
        raise data_error(path, f"family.{family}", "missing criteria table")
    rules = {}
    for key in FAMILY_CRITERIA:
        where = f"family.{family}.{key}"
        entry = table.get(key)
        if not isinstance(entry, Mapping):
            raise data_error(path, where, "missing")
        label, source = entry.get("label"), entry.get("source")
        if not isinstance(label, str) or not isinstance(source, str) or not source.strip():
            raise data_error(path, where, "needs a label and a source")
        label, source = provenance(entry, path, where)
        if "value" in entry:
            if not isinstance(entry["value"], bool):
                raise data_error(path, f"{where}.value", "must be true or false")
            rules[key] = CriterionRule(entry["value"], None, None, label, source)
        elif "x_min" in entry or "x_max" in entry:
            rules[key] = CriterionRule(None, entry.get("x_min"), entry.get("x_max"), label, source)
        else:
            raise data_error(path, where, "give value or x_min/x_max")
    return rules


__all__ = [
    "CriterionRule",
    "FAMILY_CRITERIA",
    "InterlayerMaterial",
    "PURE_SUBSTRATES",
    "REFERENCE_METALS",
    "StrainMapping",
    "YieldStrengthPoints",
    "alloy_name",
    "family_criteria",
    "family_series",
    "find_material",
    "interlayer_materials",
    "linear_alloy_modulus",
    "load_bulk_moduli",
    "load_interlayer_document",
    "load_strain_mapping",
    "load_yield_strength_points",
    "modulus_threshold",
    "substrate_bulk_modulus",
]
