"""The texture phase map (paper Fig. 4): (101) diffusion barrier × surface-energy anisotropy.

The map sweeps two axes for Li (MODEL.md §3):

* ``barrier_101_eV`` — the (101) surface self-diffusion barrier, from its DFT value (0.02 eV) up to
  the (001) barrier (0.14 eV): raising it removes the diffusion (mobility) advantage of (101);
* ``surface_energy_anisotropy`` — A = E_s(101) − E_s(001) (J/m²), which grows with stack pressure
  through the lattice strain of the film.

How the surface energies move with A
------------------------------------
Along the *anisotropy path* of :mod:`softgrain.physics.anisotropy`: all three surface energies
move linearly between the unstrained and the −3 % strained data (beyond them, an extrapolation
labelled as such on the figure), so that E_s(101) − E_s(001) = A exactly.

Axis sampling
-------------
The anisotropy axis is sampled quadratically by default (A₀ + (A_max − A₀)·s², s evenly spaced in
[0, 1]): κ_q = κ1·exp(κ2·E_s/E0) amplifies small surface-energy differences, and a probe
implementation of the model (MODEL.md §6) switched from (101) to (001) already at
A ≈ 0.01–0.02 J/m², within the first ~15 % of the range, so points are concentrated there.
Where the switch lies in this engine is what the map measures; ``spacing="linear"`` samples
evenly.

Classification
--------------
At each point the seed-averaged area fractions decide: the orientation with a mean fraction of at
least :data:`MAJORITY` is *dominant*; a point without such an orientation is *mixed*. The
boundary between the strain-energy-minimising (101) and the surface-energy-minimising (001)
regions is drawn where the mean (101) and (001) fractions are equal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import xarray as xr

from softgrain.config import SimulationConfig, load_config
from softgrain.errors import ParameterError
from softgrain.materials.metals import ORIENTATIONS, Metal, load_metal
from softgrain.output import plots
from softgrain.output.files import check_writable, save_figure, write_json
from softgrain.output.results import TASK_FAILED, TASK_OK
from softgrain.physics.anisotropy import AnisotropyPath, case_markers, theory_boundary
from softgrain.studies.runner import run_plan
from softgrain.studies.sweep import (ANISOTROPY_KEY, Axis, SweepPlan, anisotropy_overrides, axis_keys,
                                     keys_overlap)

BARRIER_KEY = "material.diffusion_barrier_eV.101"

BARRIER_DIM = "barrier_101_eV"
ANISOTROPY_DIM = "surface_energy_anisotropy"

STORE_NAME = "phase_map.zarr"
FIGURE_NAME = "phase_map.png"
SUMMARY_NAME = "phase_map.json"

BASE_PRESET = "phase-map"
"""Simulation preset every point starts from (``presets/phase-map.toml``)."""

MAJORITY = 0.5
"""Mean area fraction an orientation needs to count as dominant at a point; else "mixed"."""

DEFAULT_RESOLUTION = 4
DEFAULT_SEEDS = 2
DEFAULT_EXTRAPOLATION = 1.25
"""Default upper end of the anisotropy axis, as a multiple of the strained anisotropy step:
A_max = A₀ + 1.25·(A₁ − A₀), a quarter beyond the solid-electrolyte value."""


def anisotropy_values(path: AnisotropyPath, resolution: int, maximum: float | None = None,
                      spacing: str = "quadratic") -> np.ndarray:
    """Increasing anisotropy values from A₀ to ``maximum`` (default A₀ + 1.25·(A₁ − A₀))."""
    start = path.a_unstrained
    stop = maximum if maximum is not None else start + DEFAULT_EXTRAPOLATION * (path.a_strained - start)
    if stop <= start:
        raise ParameterError("anisotropy_max", f"{stop} must exceed the unstrained anisotropy {start:.4f} J/m²")
    s = np.linspace(0.0, 1.0, resolution)
    if spacing == "quadratic":
        s = s**2
    elif spacing != "linear":
        raise ParameterError("spacing", f"{spacing!r}: expected 'quadratic' or 'linear'")
    return np.round(start + (stop - start) * s, 10)


def barrier_values(metal: Metal, resolution: int, maximum: float | None = None) -> np.ndarray:
    """Increasing (101) barriers from the metal's value to ``maximum`` (default: the (001) barrier)."""
    start = metal.barrier("101")
    stop = metal.barrier("001") if maximum is None else float(maximum)
    if stop <= start:
        raise ParameterError("barrier_max", f"{stop} eV must exceed the (101) barrier {start} eV")
    return np.round(np.linspace(start, stop, resolution), 10)


def phase_map_plan(resolution: int = DEFAULT_RESOLUTION, seeds: int | Sequence[int] = DEFAULT_SEEDS,
                   *, base: str | SimulationConfig = BASE_PRESET, overrides: dict[str, Any] | None = None,
                   barrier_max: float | None = None, anisotropy_max: float | None = None,
                   spacing: str = "quadratic", keep_maps: bool = False):
    """The Fig. 4 sweep as a :class:`softgrain.studies.sweep.SweepPlan`.

    Parameters
    ----------
    resolution : int
        Points per axis (resolution × resolution points), at least 2.
    seeds : int or sequence of int
        Nucleation seeds per point.
    base : str or SimulationConfig
        Preset / config file (default ``phase-map``) or a configuration.
    overrides : dict, optional
        Dotted-key changes to the base configuration (e.g. a smaller grid).
    barrier_max, anisotropy_max : float, optional
        Upper ends of the axes (defaults: the (001) barrier; 1.25× the strained anisotropy step).
    spacing : {"quadratic", "linear"}
        Sampling of the anisotropy axis (see the module documentation).
    keep_maps : bool
        Store the final orientation maps.
    """
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ParameterError("resolution", f"must be an integer ≥ 2, got {resolution!r}")
    config = base if isinstance(base, SimulationConfig) else load_config(base, overrides)
    if isinstance(base, SimulationConfig) and overrides:
        config = config.updated(overrides)
    metal = load_metal(config.material.metal)
    path = AnisotropyPath.for_metal(metal)
    axes = (
        Axis(BARRIER_DIM, BARRIER_KEY, tuple(barrier_values(metal, resolution, barrier_max).tolist()),
             "eV", f"({'101'}) surface self-diffusion barrier E_a(101)"),
        Axis(ANISOTROPY_DIM, ANISOTROPY_KEY,
             tuple(anisotropy_values(path, resolution, anisotropy_max, spacing).tolist()), "J/m^2",
             "surface-energy anisotropy A = E_s(101) - E_s(001) along the strain path",
             derive=anisotropy_overrides),
    )
    for key in overrides or {}:
        for axis in axes:
            if any(keys_overlap(key, set_by_axis) for set_by_axis in axis_keys(axis, config)):
                raise ParameterError("overrides", f"{key}: the phase map sets it at every point "
                                     f"(axis {axis.key}); leave it out")
    return SweepPlan.build(config, axes, seeds, keep_maps=keep_maps,
                           name=f"phase map {metal.symbol}",
                           description="paper Fig. 4: (101) barrier × surface-energy anisotropy")


def point_means(ds: xr.Dataset, variable: str = "fraction") -> xr.DataArray:
    """Mean over the successful seeds of ``variable`` (barrier, anisotropy, orientation)."""
    values = ds[variable]
    if "status" in ds:
        values = values.where(ds["status"] == TASK_OK)
    return values.mean("seed", skipna=True)


def classify(mean_fraction: xr.DataArray) -> xr.DataArray:
    """Dominant orientation per point: "001", "101", "111", "mixed", or "" where nothing ran."""
    values = mean_fraction.transpose(..., "orientation").values
    out = np.full(values.shape[:-1], "mixed", dtype=object)
    finite = np.all(np.isfinite(values), axis=-1)
    best = np.argmax(np.where(np.isfinite(values), values, -1.0), axis=-1)
    top = np.take_along_axis(np.nan_to_num(values, nan=-1.0), best[..., None], axis=-1)[..., 0]
    names = np.array([str(o) for o in mean_fraction["orientation"].values], dtype=object)
    majority = finite & (top >= MAJORITY)
    out[majority] = names[best[majority]]
    out[~finite] = ""
    dims = [d for d in mean_fraction.dims if d != "orientation"]
    return xr.DataArray(out, dims=dims, coords={d: mean_fraction[d] for d in dims})


def summarise(ds: xr.Dataset, config: SimulationConfig) -> dict[str, Any]:
    """Plain-JSON summary of a phase-map store: mean fractions, classes, theory line, cases."""
    means = point_means(ds).transpose(BARRIER_DIM, ANISOTROPY_DIM, "orientation")
    classes = classify(means)
    metal = load_metal(config.material.metal)
    path = AnisotropyPath.for_metal(metal)
    barriers = ds[BARRIER_DIM].values
    status = ds["status"]
    return {
        "metal": metal.symbol,
        "temperature_C": config.run.temperature_C,
        "barrier_101_eV": [float(b) for b in barriers],
        "surface_energy_anisotropy_J_m2": [float(a) for a in ds[ANISOTROPY_DIM].values],
        "equivalent_strain": [float(s) for s in path.equivalent_strain(ds[ANISOTROPY_DIM].values)],
        "seeds": [int(s) for s in ds["seed"].values],
        "tasks": {"total": int(status.size), "ok": int((status == TASK_OK).sum()),
                  "failed": int((status == TASK_FAILED).sum())},
        "task_time_s": {name: _finite_mean(ds[name].where(status == TASK_OK))
                        for name in ("wall_time_s", "cpu_time_s") if name in ds},
        "mean_fraction": {o: means.sel(orientation=o).values.round(4).tolist() for o in ORIENTATIONS},
        "dominant": classes.values.tolist(),
        "majority_threshold": MAJORITY,
        "cases": case_markers(metal),
        "theory_boundary_anisotropy_J_m2": [float(a) for a in theory_boundary(
            metal, barriers, config.run.temperature_C)],
    }


def _finite_mean(values: xr.DataArray) -> float | None:
    finite = values.values[np.isfinite(values.values)]
    return float(finite.mean()) if finite.size else None


def make_phase_map(out: str | os.PathLike, resolution: int = DEFAULT_RESOLUTION,
                   seeds: int | Sequence[int] = DEFAULT_SEEDS, *, workers: int | None = None,
                   scheduler: str | None = None, progress: bool = False,
                   overrides: dict[str, Any] | None = None, barrier_max: float | None = None,
                   anisotropy_max: float | None = None, spacing: str = "quadratic",
                   keep_maps: bool = False, backend: str | None = None,
                   batch: int | None = None) -> dict[str, Any]:
    """Run (or resume) the Fig. 4 sweep into ``out/phase_map.zarr`` and draw ``out/phase_map.png``.

    ``backend`` and ``batch`` override ``numerics.backend`` and ``numerics.batch`` of every run
    (``backend="jax"``: batches of runs per Dask task, :mod:`softgrain.studies.runner`).

    Returns
    -------
    dict
        The summary (also written to ``out/phase_map.json``) plus ``paths`` and ``report``.
    """
    folder = Path(out)
    check_writable(folder, "out")
    plan = phase_map_plan(resolution, seeds, overrides=overrides, barrier_max=barrier_max,
                          anisotropy_max=anisotropy_max, spacing=spacing,
                          keep_maps=keep_maps).with_numerics(backend=backend, batch=batch)
    ds, report = run_plan(plan, folder / STORE_NAME, workers=workers, scheduler=scheduler,
                          progress=progress)
    summary = summarise(ds, plan.base)
    metal = load_metal(plan.base.material.metal)
    path = AnisotropyPath.for_metal(metal)
    fine_barriers = np.linspace(ds[BARRIER_DIM].values.min(), ds[BARRIER_DIM].values.max(), 200)
    figure = plots.plot_phase_map(
        ds, theory_line=(fine_barriers, theory_boundary(metal, fine_barriers, plan.base.run.temperature_C)),
        markers={name: (m["barrier_101_eV"], m["surface_energy_anisotropy_J_m2"])
                 for name, m in summary["cases"].items()},
        strained_anisotropy=path.a_strained,
        equivalent_strain=(path.equivalent_strain, path.anisotropy_at_strain),
        majority=MAJORITY,
        title=(f"{metal.symbol}, {plan.base.run.temperature_C:g} °C, {plan.base.grid.nx}×"
               f"{plan.base.grid.ny} grid, {len(plan.seeds)} seed(s) per point"))
    paths = {
        "store": folder / STORE_NAME,
        "figure": save_figure(figure, folder / FIGURE_NAME),
    }
    summary["report"] = report.as_dict()
    paths["summary"] = write_json(folder / SUMMARY_NAME, summary)
    summary["paths"] = {k: str(v) for k, v in paths.items()}
    return summary
