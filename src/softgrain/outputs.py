"""What a phase-field run leaves in its output folder (``softgrain run … --out DIR``).

- ``result.nc``: the run's dataset (grain maps, per-grain parameters, configuration);
- ``summary.json``: orientation fractions and grain counts at each snapshot;
- ``grain_maps.png``: orientation / surface-energy / diffusion-barrier maps (paper Fig. 2 columns);
- ``texture.png``: orientation fractions against height and time.

Each file is written atomically, so a run that fails part-way never leaves a truncated file.
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from softgrain import analysis, io, plots

RESULT_FILE = "result.nc"
SUMMARY_FILE = "summary.json"
MAPS_FIGURE = "grain_maps.png"
TEXTURE_FIGURE = "texture.png"


def save_run(ds: xr.Dataset, folder: str | Path, figures: bool = True) -> dict[str, Path]:
    """Write a run's result, summary and figures into ``folder``; return the paths written."""
    folder = Path(folder)
    written = {
        "result": io.write_netcdf(ds, folder / RESULT_FILE),
        "summary": io.write_json(folder / SUMMARY_FILE, analysis.summary(ds)),
    }
    if figures and ds.sizes.get("time", 0):
        written["maps"] = io.save_figure(plots.plot_grain_maps(ds), folder / MAPS_FIGURE)
        written["texture"] = io.save_figure(plots.plot_texture_evolution(ds), folder / TEXTURE_FIGURE)
    return written
