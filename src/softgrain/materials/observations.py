"""The paper's measurements: EBSD texture fractions and grain sizes of electrodeposited Li.

Three conditions were measured (paper Fig. 3C–F, Fig. 5D; data in ``data/experiments.toml``):
Li on bare Cu at 25 °C and at 80 °C, and Li on an amorphous Li0.7Si0.3 seed layer at 25 °C, all
at 5 MPa stack pressure; each names the preset that models it. Grain sizes were observed in
solid-electrolyte (30–50 µm) and liquid-electrolyte (5–10 µm) cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

from softgrain.materials.metals import ORIENTATIONS
from softgrain.materials.records import (data_error, data_path, load_data_file, number, provenance,
                                        text)

EXPERIMENTS_FILE = "experiments.toml"


@dataclass(frozen=True)
class ExperimentalCondition:
    """One EBSD measurement of the paper and the preset that models it.

    Attributes
    ----------
    preset : str
        Preset with the same metal, temperature and conditions.
    description : str
    temperature_C, stack_pressure_MPa : float
    substrate : str
    fraction : dict
        Orientation → measured fraction (0–1), ``None`` where the paper gives no number.
    label, source : str
    count : dict
        Orientation → number of grains (``None`` where not known); empty without a count.
    count_total : int or None
        Grains classified in all (including those near none of the three orientations).
    count_label, count_source : str
        Provenance of the counts: INFERRED from the printed percentages (``""`` without a count).
    """

    preset: str
    description: str
    temperature_C: float
    stack_pressure_MPa: float
    substrate: str
    fraction: Mapping[str, float | None]
    label: str
    source: str
    count: Mapping[str, int | None] = field(default_factory=dict)
    count_total: int | None = None
    count_label: str = ""
    count_source: str = ""


FRACTION_DIGITS_TOLERANCE = 0.0005 + 1e-9
"""How far k/n may be from a printed fraction: half of its last printed digit (0.1 %)."""


@dataclass(frozen=True)
class GrainSizeObservation:
    """Observed range of Li grain diameters (µm) in one kind of cell."""

    min_um: float
    max_um: float
    stack_pressure_MPa: float
    label: str
    source: str


def _path() -> str:
    return str(data_path(EXPERIMENTS_FILE))


def _document() -> dict[str, Any]:
    return load_data_file(EXPERIMENTS_FILE)


def _number(entry: Mapping[str, Any], key: str, where: str) -> float:
    return number(entry.get(key), _path(), f"{where}.{key}")


@lru_cache(maxsize=None)
def load_experiments() -> tuple[ExperimentalCondition, ...]:
    """The paper's EBSD conditions from ``data/experiments.toml``, validated."""
    path = _path()
    entries = _document().get("condition")
    if not isinstance(entries, list) or not entries:
        raise data_error(path, "condition", "expected [[condition]] tables")
    out = []
    for i, entry in enumerate(entries):
        where = f"condition[{i}]"
        label, source = provenance(entry, path, where)
        raw = entry.get("fraction")
        if not isinstance(raw, Mapping) or not raw:
            raise data_error(path, f"{where}.fraction", "expected a table orientation = fraction")
        unknown = set(raw) - set(ORIENTATIONS)
        if unknown:
            raise data_error(path, f"{where}.fraction", f"unknown orientation(s) {sorted(unknown)}")
        fraction: dict[str, float | None] = {}
        for orientation in ORIENTATIONS:
            if orientation in raw:
                value = _number(raw, orientation, f"{where}.fraction")
                if not 0 <= value <= 1:
                    raise data_error(path, f"{where}.fraction.{orientation}",
                                     f"must be a fraction in [0, 1], got {value}")
                fraction[orientation] = value
            else:
                fraction[orientation] = None
        if sum(v for v in fraction.values() if v is not None) > 1 + 1e-9:
            raise data_error(path, f"{where}.fraction", "fractions add up to more than 1")
        count, total, count_label, count_source = _counts(entry.get("count"), fraction, path, where)
        out.append(ExperimentalCondition(
            preset=text(entry, "preset", path, where), description=text(entry, "description", path, where),
            temperature_C=_number(entry, "temperature_C", where),
            stack_pressure_MPa=_number(entry, "stack_pressure_MPa", where),
            substrate=text(entry, "substrate", path, where), fraction=fraction, label=label,
            source=source, count=count, count_total=total, count_label=count_label,
            count_source=count_source))
    return tuple(out)


def _counts(raw: Any, fraction: Mapping[str, float | None], path: str, where: str
            ) -> tuple[dict[str, int | None], int | None, str, str]:
    """Validate a ``[condition.count]`` table: whole numbers that reproduce the printed fractions."""
    if raw is None:
        return {}, None, "", ""
    where = f"{where}.count"
    if not isinstance(raw, Mapping):
        raise data_error(path, where, "expected a table total = n, orientation = k, label, source")
    label, source = provenance(raw, path, where)
    unknown = set(raw) - set(ORIENTATIONS) - {"total", "label", "source"}
    if unknown:
        raise data_error(path, where, f"unknown key(s) {sorted(unknown)}")

    def whole(key: str) -> int:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise data_error(path, f"{where}.{key}", f"must be a non-negative integer, got {value!r}")
        return value

    total = whole("total")
    if total == 0:
        raise data_error(path, f"{where}.total", "must be positive")
    count: dict[str, int | None] = {}
    for orientation in ORIENTATIONS:
        if orientation not in raw:
            count[orientation] = None
            continue
        k = whole(orientation)
        printed = fraction[orientation]
        if printed is None:
            raise data_error(path, f"{where}.{orientation}", "a count needs the printed fraction it comes from")
        if abs(k / total - printed) > FRACTION_DIGITS_TOLERANCE:
            raise data_error(path, f"{where}.{orientation}",
                             f"{k}/{total} = {k / total:.4f} does not round to the printed {printed}")
        count[orientation] = k
    if sum(k for k in count.values() if k is not None) > total:
        raise data_error(path, where, f"counts add up to more than total = {total}")
    return count, total, label, source


@lru_cache(maxsize=None)
def load_grain_sizes() -> dict[str, GrainSizeObservation]:
    """Observed grain sizes: ``{"solid": …, "liquid": …}``."""
    path = _path()
    grain_size = _document().get("grain_size")
    if not isinstance(grain_size, Mapping):
        raise data_error(path, "grain_size", "missing table")
    out = {}
    for kind in ("solid", "liquid"):
        entry = grain_size.get(kind)
        where = f"grain_size.{kind}"
        if not isinstance(entry, Mapping):
            raise data_error(path, where, "missing table")
        label, source = provenance(entry, path, where)
        low, high = _number(entry, "min_um", where), _number(entry, "max_um", where)
        if not 0 < low <= high:
            raise data_error(path, where, f"need 0 < min_um ≤ max_um, got {low}, {high}")
        out[kind] = GrainSizeObservation(low, high, _number(entry, "stack_pressure_MPa", where),
                                         label, source)
    return out


__all__ = ["ExperimentalCondition", "GrainSizeObservation", "load_experiments", "load_grain_sizes"]
