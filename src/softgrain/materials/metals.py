"""The soft metals Li, Na and K: orientation-resolved surface energies and diffusion barriers.

Each metal's file (``data/li.toml``, ``na.toml``, ``k.toml``) tabulates the surface energy E_s of
(001), (101) and (111) against biaxial lattice strain (negative = compression), interpolated
linearly in between, so strain is a continuous input; the surface self-diffusion barriers E_a do
not depend on strain. Li's file also holds the constants of the thermodynamic theory (Fig. 3A).
Files are read and checked by :mod:`softgrain.materials.records`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from softgrain.errors import UserInputError
from softgrain.materials.constants import ZERO_CELSIUS_K
from softgrain.materials.records import (LABELS, MaterialDataError, Quantity, data_error, data_path,
                                         number, parse_quantity, read_toml, table)

ORIENTATIONS: tuple[str, ...] = ("001", "101", "111")
"""bcc orientations handled by softgrain, in the paper's notation ((001)=(100), (101)=(110))."""

MELTING_MARGIN_K = 1e-6
"""A temperature closer than this to the melting point counts as molten (guards float rounding)."""


class MoltenMetalError(UserInputError):
    """A temperature at or above the metal's melting point: every model here describes a solid."""


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
    def melting_point_C(self) -> float:
        """Melting point in °C (the data give kelvin)."""
        return self.melting_point.value - ZERO_CELSIUS_K

    def is_solid_at(self, temperature_C: float) -> bool:
        """True below the melting point: the one rule of ``theory``, ``interlayer`` and ``run``."""
        return float(temperature_C) + ZERO_CELSIUS_K < self.melting_point.value - MELTING_MARGIN_K

    def require_solid(self, temperature_C: float, what: str = "temperature") -> None:
        """Refuse a temperature at which the metal is not solid.

        Parameters
        ----------
        temperature_C : float
            Temperature (°C).
        what : str
            How the caller names the temperature in the message (``run.temperature_C``, …).

        Raises
        ------
        MoltenMetalError
            Naming ``what``, the temperature and the melting point with its source.
        """
        if not self.is_solid_at(temperature_C):
            raise MoltenMetalError(
                f"{what} = {float(temperature_C):g} °C is not below the melting point of "
                f"{self.symbol} ({self.melting_point_C:.1f} °C, {self.melting_point.source}); "
                "softgrain describes a solid deposit")

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


def parse_metal(doc: Mapping[str, Any], path: str) -> Metal:
    """Validate a parsed metal file (see ``data/li.toml`` for the format)."""
    meta = table(doc, "metal", path)
    for key in ("symbol", "name", "structure"):
        if not isinstance(meta.get(key), str):
            raise data_error(path, f"metal.{key}", "missing text field")
    melting = parse_quantity(meta.get("melting_point"), path, "metal.melting_point", unit="K",
                             positive=True)

    surf = table(doc, "surface_energy", path)
    if surf.get("unit") != "J/m^2":
        raise data_error(path, "surface_energy.unit", f"expected 'J/m^2', got {surf.get('unit')!r}")
    strain_raw = surf.get("strain")
    if not isinstance(strain_raw, list) or not strain_raw:
        raise data_error(path, "surface_energy.strain", "expected a list of strains")
    strains = np.array([number(s, path, "surface_energy.strain") for s in strain_raw])
    if np.any(np.diff(strains) <= 0):
        raise data_error(path, "surface_energy.strain", "strains must be strictly increasing")
    if not (strains[0] <= 0.0 <= strains[-1]):
        raise data_error(path, "surface_energy.strain", "the unstrained state (0) must be covered")
    if np.any(np.abs(strains) > 0.2):
        raise data_error(path, "surface_energy.strain",
                         "strains are fractions (−0.03 = 3 % compression); |strain| > 0.2 looks like percent")

    energy_table: dict[str, np.ndarray] = {}
    for orientation in ORIENTATIONS:
        where = f'surface_energy."{orientation}"'
        entry = surf.get(orientation)
        if not isinstance(entry, Mapping):
            raise data_error(path, where, "missing orientation")
        values = entry.get("values")
        labels = entry.get("labels")
        if not isinstance(values, list) or len(values) != len(strains):
            raise data_error(path, f"{where}.values",
                             f"expected {len(strains)} numbers (one per strain point)")
        if not isinstance(labels, list) or len(labels) != len(strains):
            raise data_error(path, f"{where}.labels", f"expected {len(strains)} labels")
        for label in labels:
            if label not in LABELS:
                raise data_error(path, f"{where}.labels", f"unknown label {label!r}")
        if not isinstance(entry.get("source"), str) or not entry["source"].strip():
            raise data_error(path, f"{where}.source", "every number needs a source")
        energies = np.array([number(v, path, f"{where}.values") for v in values])
        if np.any(energies <= 0):
            raise data_error(path, f"{where}.values", "surface energies must be positive (J/m^2)")
        if np.any(energies > 5):
            raise data_error(path, f"{where}.values", "above 5 J/m^2: wrong unit? expected J/m^2")
        energy_table[orientation] = energies

    barrier_doc = table(doc, "diffusion_barrier", path)
    if barrier_doc.get("unit") != "eV":
        raise data_error(path, "diffusion_barrier.unit",
                             f"expected 'eV', got {barrier_doc.get('unit')!r}")
    barriers: dict[str, float] = {}
    for orientation in ORIENTATIONS:
        where = f'diffusion_barrier."{orientation}"'
        entry = barrier_doc.get(orientation)
        if not isinstance(entry, Mapping):
            raise data_error(path, where, "missing orientation")
        quantity = parse_quantity(entry, path, where)
        if quantity.value < 0 or quantity.value > 3:
            raise data_error(path, f"{where}.value",
                             f"barrier must lie in 0–3 eV, got {quantity.value}")
        barriers[orientation] = quantity.value

    theory: dict[str, Quantity] = {}
    for key, entry in doc.get("theory", {}).items():
        theory[key] = parse_quantity(entry, path, f"theory.{key}")

    return Metal(
        symbol=meta["symbol"], name=meta["name"], structure=meta["structure"],
        melting_point=melting, strain_points=strains, surface_energy_table=energy_table,
        diffusion_barrier_eV=barriers, theory=theory, source_file=path,
    )


def available_metals() -> list[str]:
    """Symbols of the metals shipped with softgrain."""
    return ["Li", "Na", "K"]


def load_metal_file(path: Path | str) -> Metal:
    """Load and validate a metal data file from any path."""
    return parse_metal(read_toml(path), str(path))


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
    return load_metal_file(data_path(f"{key}.toml"))


__all__ = ["MELTING_MARGIN_K", "ORIENTATIONS", "Metal", "MoltenMetalError", "available_metals",
           "load_metal", "load_metal_file", "parse_metal"]
