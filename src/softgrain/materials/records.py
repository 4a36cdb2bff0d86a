"""The one reader of softgrain's data files: numbers with a unit, a confidence label and a source.

Every number in ``softgrain/data/*.toml`` carries a label (how sure it is) and a source (where it
comes from). This module reads those files and checks each entry, so that a bad file fails with a
message naming the file and the field (``<file>: <field>: <problem>``, :func:`data_error`) instead
of producing a silently wrong simulation. The loaders of :mod:`softgrain.materials` all go through
it.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from softgrain.errors import UserInputError

LABELS = frozenset({"PAPER", "EXP-DATA", "LIT", "CALIBRATED", "ASSUMED", "INFERRED"})
"""Confidence labels of a number: from the paper, measured data, recalled literature, calibrated
by softgrain, an assumption (see ``data/li.toml``), or inferred by softgrain from the paper's
numbers (e.g. EBSD grain counts reconstructed from printed percentages, ``data/experiments.toml``)."""


class MaterialDataError(UserInputError):
    """A materials data file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Quantity:
    """A number with its unit, confidence label and source."""

    value: float
    unit: str
    label: str
    source: str


def data_error(path: str | Path, where: str, message: str) -> MaterialDataError:
    """The error of a bad entry: ``<path>: <where>: <message>``."""
    return MaterialDataError(f"{path}: {where}: {message}")


def data_path(name: str) -> Path:
    """Path of a data file shipped in ``softgrain/data``."""
    return Path(str(resources.files("softgrain") / "data" / name))


def read_toml(path: Path | str, text: str | None = None) -> dict[str, Any]:
    """Parse a TOML data file (or ``text`` attributed to ``path``); a bad file names itself."""
    try:
        if text is None:
            text = Path(path).read_bytes().decode("utf-8")  # no newline translation (see config)
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MaterialDataError(f"{path}: malformed TOML: {exc}") from None
    except OSError as exc:
        raise MaterialDataError(f"{path}: cannot read: {exc.strerror}") from None


@lru_cache(maxsize=None)
def load_data_file(name: str) -> dict[str, Any]:
    """Parsed ``softgrain/data/<name>`` (raw tables; validated by the loaders that use them)."""
    return read_toml(data_path(name))


def table(doc: Mapping[str, Any], key: str, path: str | Path, where: str = "") -> Mapping[str, Any]:
    """The sub-table ``key`` of ``doc``; a missing one is an error naming ``where.key``."""
    value = doc.get(key)
    name = f"{where}.{key}" if where else key
    if not isinstance(value, Mapping):
        raise data_error(path, name, "missing table")
    return value


def text(entry: Mapping[str, Any], key: str, path: str | Path, where: str) -> str:
    """The text field ``key`` of ``entry``."""
    value = entry.get(key)
    if not isinstance(value, str):
        raise data_error(path, f"{where}.{key}" if where else key, "missing text field")
    return value


def provenance(entry: Mapping[str, Any], path: str | Path, where: str) -> tuple[str, str]:
    """``(label, source)`` of an entry: a known label and a non-empty source."""
    label = entry.get("label")
    source = entry.get("source")
    if label not in LABELS:
        raise data_error(path, f"{where}.label", f"must be one of {sorted(LABELS)}, got {label!r}")
    if not isinstance(source, str) or not source.strip():
        raise data_error(path, f"{where}.source", "every number needs a source")
    return label, source


def number(value: Any, path: str | Path, where: str, *, positive: bool = False) -> float:
    """A finite number (``positive``: > 0); anything else is an error naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise data_error(path, where, f"expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise data_error(path, where, f"must be finite, got {value}")
    if positive and value <= 0:
        raise data_error(path, where, f"must be positive, got {value}")
    return value


def parse_quantity(entry: Any, path: str | Path, where: str, *, unit: str | None = None,
                   positive: bool = False) -> Quantity:
    """Validate one ``{value, unit, label, source}`` table."""
    if not isinstance(entry, Mapping):
        raise data_error(path, where, "expected a table with value, label and source")
    label, source = provenance(entry, path, where)
    value = number(entry.get("value"), path, f"{where}.value", positive=positive)
    found_unit = entry.get("unit", unit or "")
    if unit is not None and found_unit != unit:
        raise data_error(path, f"{where}.unit", f"expected {unit!r}, got {found_unit!r}")
    return Quantity(value, str(found_unit), label, source)


__all__ = [
    "LABELS",
    "MaterialDataError",
    "Quantity",
    "data_error",
    "data_path",
    "load_data_file",
    "number",
    "parse_quantity",
    "provenance",
    "read_toml",
    "table",
    "text",
]
