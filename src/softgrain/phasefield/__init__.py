"""The multi-grain Allen–Cahn phase-field engine (paper Eq. S12–S15).

- :mod:`~softgrain.phasefield.energy` — the free-energy functional (equations only)
- :mod:`~softgrain.phasefield.kernels` — the dense NumPy reference update
- :mod:`~softgrain.phasefield.sparse` — the compiled sparse update used for production runs
- :mod:`~softgrain.phasefield.initial` — nucleation and analytic initial states
- :mod:`~softgrain.phasefield.deposition` — the layer-by-layer deposition front
- :mod:`~softgrain.phasefield.solver` — the time loop and the result dataset
"""

from softgrain.phasefield.solver import Simulation, run

__all__ = ["Simulation", "run"]
