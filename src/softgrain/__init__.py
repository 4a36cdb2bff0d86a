"""softgrain — grain selection growth of electrodeposited soft metals (Li, Na, K).

The package is layered; imports flow one way, from the top to the bottom:

- :mod:`softgrain.cli` and :mod:`softgrain.report` — flags, tables and text for people;
- :mod:`softgrain.studies` — sweeps, seed ensembles, the paper's comparisons, benchmarks;
- :mod:`softgrain.setup` — a configuration becomes the numbers of a run; running and resuming;
- :mod:`softgrain.analysis` — texture, grain counts, statistics over seeds;
- :mod:`softgrain.output` — files, the result schema, checkpoints, figures, viewers;
- :mod:`softgrain.config`, :mod:`softgrain.phasefield`, :mod:`softgrain.physics` — the
  configuration schema, the phase-field engine (Eq. S12–S15), the theory (Eq. S1–S11);
- :mod:`softgrain.materials` — the data files with their sources;
- :mod:`softgrain.errors`, :mod:`softgrain.provenance` — at the bottom.

Python API: ``softgrain.setup.simulate(softgrain.config.load_config("li-solid"))``.
"""

__version__ = "0.1.0"
