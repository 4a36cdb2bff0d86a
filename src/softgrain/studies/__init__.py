"""Studies built from many runs: sweeps, seed ensembles, the paper's comparisons, benchmarks.

- :mod:`~softgrain.studies.sweep` — sweep files, axes and the resolved plan
- :mod:`~softgrain.studies.store` — the Zarr results store of a sweep
- :mod:`~softgrain.studies.runner` — running a plan's tasks on Dask; seed ensembles
- :mod:`~softgrain.studies.experiments` — the paper's EBSD conditions against theory and ensembles
- :mod:`~softgrain.studies.interlayer` — phase-field ensembles on interlayer substrates
- :mod:`~softgrain.studies.phasemap` — the Fig. 4 texture phase map
- :mod:`~softgrain.studies.benchmark` — performance measurements of the kernels
"""
