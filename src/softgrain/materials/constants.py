"""Physical constants, and the phase-field model's constants with their sources.

The model constants (Eq. S14–S15 mapping, Landau coefficients, grid, nucleation, deposition) live
in ``data/phasefield.toml``, one ``{value, label, source}`` table each; the configuration schema
takes its defaults from there, so that no model number is written twice.
"""

from __future__ import annotations

from functools import lru_cache

from softgrain.materials.records import Quantity, data_path, parse_quantity, read_toml

BOLTZMANN_EV_K = 8.617333262e-5
"""Boltzmann constant in eV/K (CODATA 2018, exact SI definition)."""

ZERO_CELSIUS_K = 273.15
"""0 °C in kelvin (SI definition)."""


def celsius_to_kelvin(temperature_c: float) -> float:
    """Absolute temperature (K) of ``temperature_c`` °C."""
    return float(temperature_c) + ZERO_CELSIUS_K


@lru_cache(maxsize=None)
def load_phasefield_constants() -> dict[str, dict[str, Quantity]]:
    """Phase-field constants (mapping, Landau, grid, nucleation, deposition) with sources."""
    path = data_path("phasefield.toml")
    doc = read_toml(path)
    out: dict[str, dict[str, Quantity]] = {}
    for section, entries in doc.items():
        out[section] = {k: parse_quantity(v, str(path), f"{section}.{k}") for k, v in entries.items()}
    return out


__all__ = ["BOLTZMANN_EV_K", "ZERO_CELSIUS_K", "celsius_to_kelvin", "load_phasefield_constants"]
