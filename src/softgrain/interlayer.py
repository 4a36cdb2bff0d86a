"""Interlayer (seed-layer) design, paper Fig. 5A: bulk moduli, the five criteria, modulus → texture.

The paper's argument: a substrate whose bulk modulus is close to Li's strains the plated Li less
under stack pressure, so the surface-energy anisotropy that favours (001) stays small and the
diffusion-favoured (101) grains win. An interlayer should have (paper, Conclusions)

1. a bulk modulus below 30 GPa,
2. an amorphous structure (no grain boundaries),
3. electrochemical stability against Li,
4. electronic conductivity,
5. lithophilicity.

This module lists the materials of Fig. 5A with their bulk moduli (pure metals from
``data/bulk_moduli.toml``; Li_xAg and Li_xAu linear in x between the pure phases, as the paper
draws them; crystalline and amorphous Li_xSi from first-principles data in
``data/interlayer.toml``), evaluates the criteria from the data, finds the Li fraction at which
each family falls below 30 GPa, and follows the chain bulk modulus → lattice strain
(:mod:`softgrain.conditions`) → surface energies → the thermodynamic theory's favoured
orientation (and, on request, a phase-field ensemble).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from softgrain.conditions import lattice_strain, load_interlayer_document
from softgrain.errors import UserInputError
from softgrain.materials import (MaterialDataError, ORIENTATIONS, Quantity, load_bulk_moduli, load_metal,
                                 parse_quantity)

CRITERIA: tuple[str, ...] = ("bulk_modulus", "amorphous", "stable", "conductive", "lithophilic")
"""The paper's five interlayer criteria, in its order (Conclusions)."""

REFERENCE_METALS: tuple[str, ...] = ("Li", "Na")
"""Deposited soft metals shown in Fig. 5A for reference; they are not interlayer candidates."""

PURE_SUBSTRATES: tuple[str, ...] = ("Cu", "Ag", "Au")
"""Pure current-collector / seed-layer metals of Fig. 5A (moduli from ``bulk_moduli.toml``)."""

_DATA_NAME = "interlayer.toml"


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


def _path() -> str:
    return f"softgrain/data/{_DATA_NAME}"


@lru_cache(maxsize=None)
def modulus_threshold() -> Quantity:
    """Criterion 1: the largest acceptable bulk modulus (30 GPa, PAPER), with its source."""
    doc = load_interlayer_document()
    entry = doc.get("criteria", {}).get("bulk_modulus_max")
    return parse_quantity(entry, _path(), "criteria.bulk_modulus_max", unit="GPa", positive=True)


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
    doc = load_interlayer_document()
    phases = doc.get("phase")
    if not isinstance(phases, list) or not phases:
        raise MaterialDataError(f"{_path()}: phase: expected a list of [[phase]] tables")
    out = []
    for i, entry in enumerate(phases):
        where = f"phase[{i}]"
        if not isinstance(entry, Mapping):
            raise MaterialDataError(f"{_path()}: {where}: expected a table")
        name, family = entry.get("name"), entry.get("family")
        if not isinstance(name, str) or not isinstance(family, str):
            raise MaterialDataError(f"{_path()}: {where}: name and family must be text")
        x = entry.get("x_li")
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 <= x <= 1:
            raise MaterialDataError(f"{_path()}: {where}.x_li: must be a Li fraction in [0, 1], got {x!r}")
        if not isinstance(entry.get("amorphous"), bool):
            raise MaterialDataError(f"{_path()}: {where}.amorphous: must be true or false")
        modulus = parse_quantity(entry.get("bulk_modulus"), _path(), f"{where}.bulk_modulus",
                                 unit="GPa", positive=True)
        out.append(InterlayerMaterial(name, family, float(x), modulus.value, entry["amorphous"],
                                      modulus.label, modulus.source))
    return out


@lru_cache(maxsize=None)
def interlayer_materials() -> tuple[InterlayerMaterial, ...]:
    """Every material of Fig. 5A: Li, Na, Cu, Ag, Au, Li_xAg, Li_xAu, crystalline and amorphous Li_xSi."""
    moduli = load_bulk_moduli()
    doc = load_interlayer_document()
    out: list[InterlayerMaterial] = []
    for name in REFERENCE_METALS + PURE_SUBSTRATES:
        q = moduli[name]
        x = 1.0 if name == "Li" else (None if name in REFERENCE_METALS else 0.0)
        out.append(InterlayerMaterial(name, name, x, q.value, False, q.label, q.source))
    alloys = doc.get("linear_alloys")
    if not isinstance(alloys, Mapping):
        raise MaterialDataError(f"{_path()}: linear_alloys: missing table")
    grid = alloys.get("x_li")
    if not isinstance(grid, list) or not all(isinstance(x, (int, float)) and 0 < x < 1 for x in grid):
        raise MaterialDataError(f"{_path()}: linear_alloys.x_li: expected Li fractions in (0, 1)")
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
        raise MaterialDataError(f"{_path()}: duplicate material names: {', '.join(duplicates)}")
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


def _criterion_table(family: str) -> Mapping[str, Any]:
    families = load_interlayer_document().get("family", {})
    table = families.get(family)
    if not isinstance(table, Mapping):
        raise MaterialDataError(f"{_path()}: family.{family}: missing criteria table")
    return table


def evaluate_criteria(material: InterlayerMaterial) -> dict[str, Criterion]:
    """The five criteria of one material, from the data (see ``data/interlayer.toml``).

    Criterion 1 compares the bulk modulus with :func:`modulus_threshold`; criteria 2–5 are read
    from the family's table, either as a fixed ``value`` or as a Li-fraction window
    ``x_min ≤ x < x_max``.
    """
    threshold = modulus_threshold()
    result = {"bulk_modulus": Criterion(
        material.bulk_modulus_GPa < threshold.value, material.label,
        f"B = {material.bulk_modulus_GPa:.4g} GPa ({material.source}) vs < {threshold.value:g} GPa "
        f"({threshold.source})")}
    table = _criterion_table(material.family)
    for key in CRITERIA[1:]:
        where = f"family.{material.family}.{key}"
        entry = table.get(key)
        if not isinstance(entry, Mapping):
            raise MaterialDataError(f"{_path()}: {where}: missing")
        label, source = entry.get("label"), entry.get("source")
        if not isinstance(label, str) or not isinstance(source, str) or not source.strip():
            raise MaterialDataError(f"{_path()}: {where}: needs a label and a source")
        if "value" in entry:
            if not isinstance(entry["value"], bool):
                raise MaterialDataError(f"{_path()}: {where}.value: must be true or false")
            holds = entry["value"]
        elif "x_min" in entry or "x_max" in entry:
            if material.x_li is None:
                raise MaterialDataError(f"{_path()}: {where}: Li-fraction window for a material without x")
            holds = ((entry.get("x_min") is None or material.x_li >= entry["x_min"])
                     and (entry.get("x_max") is None or material.x_li < entry["x_max"]))
        else:
            raise MaterialDataError(f"{_path()}: {where}: give value or x_min/x_max")
        result[key] = Criterion(bool(holds), label, source)
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
        Substrate materials (see :func:`interlayer_materials`).
    stack_pressure_MPa, temperature_C : float
        Cell conditions (the paper's experiments: 5 MPa, 25 °C).
    metal : str
        Deposited metal.

    Returns
    -------
    list of dict
        Per substrate: modulus, strain and its factors, surface energies (J/m²), ΔE_s(001−101),
        ΔU(001−101) (J/m³) and the orientation ranked first by
        :func:`softgrain.theory.rank_orientations`.
    """
    from softgrain.theory import energy_difference, rank_orientations

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


def simulate_substrates(substrates: Sequence[str], seeds: int, preset: str = "li-solid-lixsi",
                        workers: int | None = None,
                        overrides: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Phase-field ensemble of ``preset`` with its ``conditions.substrate`` set to each substrate.

    Returns, per substrate, the resolved strain and each orientation's fraction as
    ``{"mean", "ci95": [lo, hi]}`` over ``seeds`` nucleation seeds
    (:func:`softgrain.sweep.run_ensemble` and :func:`softgrain.sweep.ensemble_statistics`).
    """
    from softgrain.config import load_config
    from softgrain.experiments import simulate_ensemble
    from softgrain.sweep import dask_client

    configs = {}
    for name in substrates:
        material = find_material(name)
        changes = dict(overrides or {})
        changes["conditions.substrate"] = material.name
        configs[material.name] = load_config(preset, changes)
    out: dict[str, dict[str, Any]] = {}
    # One Dask cluster for all substrates: starting worker processes costs seconds each time.
    with dask_client(None, workers) as client:
        for name, config in configs.items():
            result = simulate_ensemble(config, seeds, client=client)
            out[name] = {"strain": config.material.strain, **result}
    return out


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
    "InterlayerMaterial",
    "alloy_name",
    "assess_candidates",
    "evaluate_criteria",
    "family_series",
    "find_material",
    "interlayer_materials",
    "interlayer_report",
    "linear_alloy_modulus",
    "modulus_crossing_x",
    "modulus_threshold",
    "simulate_substrates",
    "texture_chain",
]
