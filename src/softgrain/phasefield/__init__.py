"""The multi-grain Allen–Cahn phase-field engine (paper Eq. S12–S15).

The engine knows NumPy, numba and the materials data, never a configuration: it runs the numbers
of a :class:`~softgrain.phasefield.inputs.ModelInputs`, which :func:`softgrain.setup.build` makes
from a configuration.

- :mod:`~softgrain.phasefield.energy` — the free-energy functional (equations only)
- :mod:`~softgrain.phasefield.mapping` — DFT data → L_q, κ_q (Eq. S14–S15) and the stability limit
- :mod:`~softgrain.phasefield.update` — the physics of one cell's explicit-Euler update
- :mod:`~softgrain.phasefield.dense` — the dense NumPy reference update
- :mod:`~softgrain.phasefield.sparse` — the compiled sparse update used for production runs
- :mod:`~softgrain.phasefield.initial` — nucleation and analytic initial states
- :mod:`~softgrain.phasefield.deposition` — the layer-by-layer deposition front
- :mod:`~softgrain.phasefield.inputs` — everything a run needs, as numbers
- :mod:`~softgrain.phasefield.solver` — the time loop, snapshots and checkpoint state
"""
