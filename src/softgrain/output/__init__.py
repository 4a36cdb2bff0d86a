"""What softgrain writes and how it is read back: files, the result schema, checkpoints, figures.

- :mod:`~softgrain.output.results` — the one schema of ``result.nc`` and the sweep stores (names,
  units, attributes) and the accessors everyone uses (orientation index, per-grain → per-cell)
- :mod:`~softgrain.output.files` — atomic writes, output folders, NetCDF, the one figure writer
- :mod:`~softgrain.output.checkpoint` — checkpoints and runs that stop cleanly
- :mod:`~softgrain.output.plots` — the figures of the paper
- :mod:`~softgrain.output.viewers` — animation and ParaView export of a run
"""
