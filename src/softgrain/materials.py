"""Materials data: load and validate the TOML files in ``softgrain/data``.

Every number in those files carries a unit, a confidence label and a source; this module turns
them into typed objects and checks them, so that a bad file fails with a message naming the file
and the field instead of producing a silently wrong simulation.

Surface energies are tabulated against biaxial lattice strain (negative = compression) and
interpolated linearly in between; strain is therefore a continuous input.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from softgrain.errors import UserInputError

ORIENTATIONS: tuple[str, ...] = ("001", "101", "111")
"""bcc orientations handled by softgrain, in the paper's notation ((001)=(100), (101)=(110))."""

LABELS = frozenset({"PAPER", "EXP-DATA", "LIT", "CALIBRATED", "ASSUMED"})

BOLTZMANN_EV_K = 8.617333262e-5
"""Boltzmann constant in eV/K (CODATA 2018, exact SI definition)."""

ZERO_CELSIUS_K = 273.15


class MaterialDataError(UserInputError):
    """A materials data file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Quantity:
    """A number with its unit, confidence label and source."""

    value: float
    unit: str
    label: str
    source: str


@dataclass(frozen=True)
class Metal:
    """Orientation-resolved data of one soft metal.

    Attributes
    ----------
    symbol, name, structure : str
        Chemical symbol, name, crystal structure.
    melting_point : Quantity
        Melting point in K.
    strain_points : numpy.ndarray
        Biaxial strains (increasing) at which surface energies are tabulated.
    surface_energy_table : dict
        Orientation → surface energies (J/m²) at ``strain_points``.
    diffusion_barrier_eV : dict
        Orientation → surface self-diffusion barrier (eV), strain-independent.
    theory : dict
        Name → :class:`Quantity` of the thermodynamic-theory constants given for this metal.
    source_file : str
        Path of the file the data came from.
    """

    symbol: str
    name: str
    structure: str
    melting_point: Quantity
    strain_points: np.ndarray
    surface_energy_table: Mapping[str, np.ndarray]
    diffusion_barrier_eV: Mapping[str, float]
    theory: Mapping[str, Quantity] = field(default_factory=dict)
    source_file: str = ""

    @property
    def strain_range(self) -> tuple[float, float]:
        return float(self.strain_points[0]), float(self.strain_points[-1])

    def surface_energy(self, orientation: str, strain: float = 0.0) -> float:
        """Surface energy (J/m²) of ``orientation`` at biaxial ``strain``, linearly interpolated.

        Raises
        ------
        MaterialDataError
            If the orientation is unknown or the strain lies outside the tabulated range
            (no extrapolation: the data do not say what happens there).
        """
        table = self.surface_energy_table.get(orientation)
        if table is None:
            raise MaterialDataError(
                f"{self.source_file}: unknown orientation {orientation!r}; "
                f"known: {', '.join(self.surface_energy_table)}"
            )
        strain = float(strain)
        low, high = self.strain_range
        if not np.isfinite(strain) or strain < low - 1e-12 or strain > high + 1e-12:
            raise MaterialDataError(
                f"{self.source_file}: no surface-energy data for {self.symbol} at strain "
                f"{strain:+.4f}; the data cover {low:+.3f} to {high:+.3f}"
            )
        return float(np.interp(strain, self.strain_points, table))

    def surface_energies(self, strain: float = 0.0) -> dict[str, float]:
        """All orientations' surface energies (J/m²) at ``strain``."""
        return {o: self.surface_energy(o, strain) for o in self.surface_energy_table}

    def barrier(self, orientation: str) -> float:
        """Surface self-diffusion barrier (eV) of ``orientation``."""
        try:
            return float(self.diffusion_barrier_eV[orientation])
        except KeyError:
            raise MaterialDataError(
                f"{self.source_file}: unknown orientation {orientation!r}; "
                f"known: {', '.join(self.diffusion_barrier_eV)}"
            ) from None


def _fail(path: str, where: str, message: str) -> MaterialDataError:
    return MaterialDataError(f"{path}: {where}: {message}")


def _read_toml(path: Path | str, text: str | None = None) -> dict[str, Any]:
    try:
        if text is None:
            text = Path(path).read_text(encoding="utf-8")
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MaterialDataError(f"{path}: malformed TOML: {exc}") from None
    except OSError as exc:
        raise MaterialDataError(f"{path}: cannot read: {exc.strerror}") from None


def _table(doc: Mapping[str, Any], key: str, path: str, where: str = "") -> Mapping[str, Any]:
    value = doc.get(key)
    name = f"{where}.{key}" if where else key
    if not isinstance(value, Mapping):
        raise _fail(path, name, "missing table")
    return value


def _provenance(entry: Mapping[str, Any], path: str, where: str) -> tuple[str, str]:
    label = entry.get("label")
    source = entry.get("source")
    if label not in LABELS:
        raise _fail(path, f"{where}.label", f"must be one of {sorted(LABELS)}, got {label!r}")
    if not isinstance(source, str) or not source.strip():
        raise _fail(path, f"{where}.source", "every number needs a source")
    return label, source


def _number(value: Any, path: str, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, where, f"expected a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise _fail(path, where, f"must be finite, got {value}")
    if positive and value <= 0:
        raise _fail(path, where, f"must be positive, got {value}")
    return value


def parse_quantity(entry: Any, path: str, where: str, *, unit: str | None = None,
                   positive: bool = False) -> Quantity:
    """Validate one ``{value, unit, label, source}`` table."""
    if not isinstance(entry, Mapping):
        raise _fail(path, where, "expected a table with value, label and source")
    label, source = _provenance(entry, path, where)
    value = _number(entry.get("value"), path, f"{where}.value", positive=positive)
    found_unit = entry.get("unit", unit or "")
    if unit is not None and found_unit != unit:
        raise _fail(path, f"{where}.unit", f"expected {unit!r}, got {found_unit!r}")
    return Quantity(value, str(found_unit), label, source)


def parse_metal(doc: Mapping[str, Any], path: str) -> Metal:
    """Validate a parsed metal file (see ``data/li.toml`` for the format)."""
    meta = _table(doc, "metal", path)
    for key in ("symbol", "name", "structure"):
        if not isinstance(meta.get(key), str):
            raise _fail(path, f"metal.{key}", "missing text field")
    melting = parse_quantity(meta.get("melting_point"), path, "metal.melting_point", unit="K",
                             positive=True)

    surf = _table(doc, "surface_energy", path)
    if surf.get("unit") != "J/m^2":
        raise _fail(path, "surface_energy.unit", f"expected 'J/m^2', got {surf.get('unit')!r}")
    strain_raw = surf.get("strain")
    if not isinstance(strain_raw, list) or not strain_raw:
        raise _fail(path, "surface_energy.strain", "expected a list of strains")
    strains = np.array([_number(s, path, "surface_energy.strain") for s in strain_raw])
    if np.any(np.diff(strains) <= 0):
        raise _fail(path, "surface_energy.strain", "strains must be strictly increasing")
    if not (strains[0] <= 0.0 <= strains[-1]):
        raise _fail(path, "surface_energy.strain", "the unstrained state (0) must be covered")
    if np.any(np.abs(strains) > 0.2):
        raise _fail(path, "surface_energy.strain",
                    "strains are fractions (−0.03 = 3 % compression); |strain| > 0.2 looks like percent")

    table: dict[str, np.ndarray] = {}
    for orientation in ORIENTATIONS:
        where = f'surface_energy."{orientation}"'
        entry = surf.get(orientation)
        if not isinstance(entry, Mapping):
            raise _fail(path, where, "missing orientation")
        values = entry.get("values")
        labels = entry.get("labels")
        if not isinstance(values, list) or len(values) != len(strains):
            raise _fail(path, f"{where}.values",
                        f"expected {len(strains)} numbers (one per strain point)")
        if not isinstance(labels, list) or len(labels) != len(strains):
            raise _fail(path, f"{where}.labels", f"expected {len(strains)} labels")
        for label in labels:
            if label not in LABELS:
                raise _fail(path, f"{where}.labels", f"unknown label {label!r}")
        source = entry.get("source")
        if not isinstance(source, str) or not source.strip():
            raise _fail(path, f"{where}.source", "every number needs a source")
        energies = np.array([_number(v, path, f"{where}.values") for v in values])
        if np.any(energies <= 0):
            raise _fail(path, f"{where}.values", "surface energies must be positive (J/m^2)")
        if np.any(energies > 5):
            raise _fail(path, f"{where}.values", "above 5 J/m^2: wrong unit? expected J/m^2")
        table[orientation] = energies

    barrier_doc = _table(doc, "diffusion_barrier", path)
    if barrier_doc.get("unit") != "eV":
        raise _fail(path, "diffusion_barrier.unit",
                    f"expected 'eV', got {barrier_doc.get('unit')!r}")
    barriers: dict[str, float] = {}
    for orientation in ORIENTATIONS:
        where = f'diffusion_barrier."{orientation}"'
        entry = barrier_doc.get(orientation)
        if not isinstance(entry, Mapping):
            raise _fail(path, where, "missing orientation")
        quantity = parse_quantity(entry, path, where)
        if quantity.value < 0 or quantity.value > 3:
            raise _fail(path, f"{where}.value",
                        f"barrier must lie in 0–3 eV, got {quantity.value}")
        barriers[orientation] = quantity.value

    theory: dict[str, Quantity] = {}
    for key, entry in doc.get("theory", {}).items():
        theory[key] = parse_quantity(entry, path, f"theory.{key}")

    return Metal(
        symbol=meta["symbol"], name=meta["name"], structure=meta["structure"],
        melting_point=melting, strain_points=strains, surface_energy_table=table,
        diffusion_barrier_eV=barriers, theory=theory, source_file=path,
    )


def _data_path(name: str) -> Path:
    return Path(str(resources.files("softgrain") / "data" / name))


def available_metals() -> list[str]:
    """Symbols of the metals shipped with softgrain."""
    return ["Li", "Na", "K"]


def load_metal_file(path: Path | str) -> Metal:
    """Load and validate a metal data file from any path."""
    return parse_metal(_read_toml(path), str(path))


@lru_cache(maxsize=None)
def load_metal(symbol: str) -> Metal:
    """Load the shipped data of ``symbol`` (``"Li"``, ``"Na"`` or ``"K"``, case-insensitive).

    Raises
    ------
    MaterialDataError
        For an unknown metal (the message lists the known ones) or an invalid data file.
    """
    known = {m.lower(): m for m in available_metals()}
    key = str(symbol).strip().lower()
    if key not in known:
        raise MaterialDataError(
            f"unknown metal {symbol!r}; known metals: {', '.join(available_metals())}"
        )
    return load_metal_file(_data_path(f"{key}.toml"))


@lru_cache(maxsize=None)
def load_phasefield_constants() -> dict[str, dict[str, Quantity]]:
    """Phase-field constants (mapping, Landau, grid, nucleation, deposition) with sources."""
    path = _data_path("phasefield.toml")
    doc = _read_toml(path)
    out: dict[str, dict[str, Quantity]] = {}
    for section, entries in doc.items():
        out[section] = {k: parse_quantity(v, str(path), f"{section}.{k}") for k, v in entries.items()}
    return out


@lru_cache(maxsize=None)
def load_bulk_moduli() -> dict[str, Quantity]:
    """Bulk moduli (GPa) of metals and substrates, with sources."""
    path = _data_path("bulk_moduli.toml")
    doc = _read_toml(path)
    return {name: parse_quantity(entry, str(path), name, positive=True)
            for name, entry in doc.items()}


def celsius_to_kelvin(temperature_c: float) -> float:
    return float(temperature_c) + ZERO_CELSIUS_K
