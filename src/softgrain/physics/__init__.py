"""The physics of grain selection that does not need the phase-field engine.

- :mod:`~softgrain.physics.theory` — the thermodynamic theory, paper Eq. S1–S11 (Fig. 3A)
- :mod:`~softgrain.physics.conditions` — stack pressure and substrate → lattice strain
- :mod:`~softgrain.physics.interlayer` — the five interlayer criteria and the chain
  bulk modulus → strain → favoured orientation (Fig. 5A)
- :mod:`~softgrain.physics.anisotropy` — surface energies along the strain path and the theory's
  boundary on the Fig. 4 phase map
"""
