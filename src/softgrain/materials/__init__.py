"""Materials data: the TOML files in ``softgrain/data`` as validated, sourced numbers.

- :mod:`~softgrain.materials.records` — the one reader of those files (value, unit, label,
  source) and its error messages
- :mod:`~softgrain.materials.constants` — physical constants and the phase-field model's
  constants (``data/phasefield.toml``)
- :mod:`~softgrain.materials.metals` — Li, Na, K: surface energies against strain, barriers
- :mod:`~softgrain.materials.substrates` — bulk moduli, the interlayer catalogue (Fig. 5A) and
  the constants of the conditions → strain mapping
- :mod:`~softgrain.materials.observations` — the paper's EBSD measurements and grain sizes
"""
