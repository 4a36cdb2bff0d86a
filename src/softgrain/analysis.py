"""Texture analysis of grain maps: orientation fractions (overall and by height), surviving grains,
grain width at the top surface, and ensemble statistics over nucleation seeds.

A grain map is an integer (ny, nx) array of grain indices (−1 = no grain / not deposited), row 0 at
the substrate; ``grain_orientation`` gives each grain's orientation index into
:data:`~softgrain.materials.ORIENTATIONS`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr
from scipy import stats

from softgrain.materials.metals import ORIENTATIONS


def orientation_map(grain_map: np.ndarray, grain_orientation: np.ndarray) -> np.ndarray:
    """Orientation index at every cell (−1 where no grain)."""
    grain_map = np.asarray(grain_map)
    lookup = np.asarray(grain_orientation)
    out = np.full(grain_map.shape, -1, dtype=np.int32)
    occupied = grain_map >= 0
    out[occupied] = lookup[grain_map[occupied]]
    return out


def area_fractions(grain_map: np.ndarray, grain_orientation: np.ndarray) -> np.ndarray:
    """Area fraction of each orientation within the grain-occupied region, shape (3,).

    NaN where no cell is occupied.
    """
    omap = orientation_map(grain_map, grain_orientation)
    counts = np.bincount(omap[omap >= 0].ravel(), minlength=len(ORIENTATIONS)).astype(float)
    total = counts.sum()
    return counts / total if total else np.full(len(ORIENTATIONS), np.nan)


def grain_count_fractions(grain_map: np.ndarray, grain_orientation: np.ndarray) -> np.ndarray:
    """Fraction of the grains present that have each orientation, shape (3,)."""
    present = np.unique(np.asarray(grain_map)[np.asarray(grain_map) >= 0])
    counts = np.bincount(np.asarray(grain_orientation)[present], minlength=len(ORIENTATIONS)).astype(float)
    return counts / counts.sum() if counts.sum() else np.full(len(ORIENTATIONS), np.nan)


def fractions_by_height(grain_map: np.ndarray, grain_orientation: np.ndarray) -> np.ndarray:
    """Area fraction of each orientation in every row, shape (ny, 3); NaN for empty rows."""
    omap = orientation_map(grain_map, grain_orientation)
    counts = np.stack([(omap == k).sum(axis=1) for k in range(len(ORIENTATIONS))], axis=1).astype(float)
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, counts / np.where(total > 0, total, 1), np.nan)


def surface_row(grain_map: np.ndarray, min_coverage: float = 0.95) -> int | None:
    """Index of the topmost row whose grain coverage is at least ``min_coverage``; None if none."""
    coverage = (np.asarray(grain_map) >= 0).mean(axis=1)
    rows = np.nonzero(coverage >= min_coverage)[0]
    return int(rows.max()) if rows.size else None


def _runs_periodic(row: np.ndarray) -> list[int]:
    """Lengths of runs of equal, non-negative labels along a periodic row."""
    row = np.asarray(row)
    n = row.size
    if n == 0:
        return []
    if np.all(row == row[0]):
        return [n] if row[0] >= 0 else []
    # Start at a label change so that a run wrapping around the edge is counted once.
    start = int(np.nonzero(row != np.roll(row, 1))[0][0])
    rolled = np.roll(row, -start)
    edges = np.nonzero(np.diff(rolled) != 0)[0] + 1
    pieces = np.split(rolled, edges)
    return [len(p) for p in pieces if p[0] >= 0]


def surface_grains(grain_map: np.ndarray, spacing_um: float = 1.0) -> tuple[int, float]:
    """Surviving grains at the top surface and their mean width (µm, periodic in x).

    The top surface is :func:`surface_row`; a grain cut into two segments by others counts once
    in the grain count and as two segments in the width.
    """
    row_index = surface_row(grain_map)
    if row_index is None:
        return 0, float("nan")
    row = np.asarray(grain_map)[row_index]
    runs = _runs_periodic(row)
    count = int(np.unique(row[row >= 0]).size)
    return count, float(np.mean(runs) * spacing_um) if runs else float("nan")


def texture(ds: xr.Dataset) -> xr.Dataset:
    """Texture statistics of every snapshot of a run result.

    Returns
    -------
    xarray.Dataset
        ``area_fraction`` (time, orientation), ``grain_fraction`` (time, orientation),
        ``fraction_by_height`` (time, y, orientation), ``grain_count`` (time),
        ``surface_grain_count`` (time), ``surface_grain_width_um`` (time).
    """
    orientation = np.array([ORIENTATIONS.index(o) for o in ds["grain_orientation"].values])
    spacing = float(ds["x"].values[1] - ds["x"].values[0]) if ds.sizes["x"] > 1 else 1.0
    maps = ds["grain"].values
    area = np.array([area_fractions(m, orientation) for m in maps]).reshape(len(maps), len(ORIENTATIONS))
    count_fraction = np.array([grain_count_fractions(m, orientation) for m in maps]).reshape(area.shape)
    by_height = np.array([fractions_by_height(m, orientation) for m in maps]).reshape(
        len(maps), ds.sizes["y"], len(ORIENTATIONS))
    grain_count = np.array([np.unique(m[m >= 0]).size for m in maps], dtype=np.int64)
    surface = [surface_grains(m, spacing) for m in maps]
    return xr.Dataset(
        {
            "area_fraction": (("time", "orientation"), area),
            "grain_fraction": (("time", "orientation"), count_fraction),
            "fraction_by_height": (("time", "y", "orientation"), by_height),
            "grain_count": (("time",), grain_count),
            "surface_grain_count": (("time",), np.array([s[0] for s in surface], dtype=np.int64)),
            "surface_grain_width_um": (("time",), np.array([s[1] for s in surface])),
        },
        coords={"time": ds["time"].values, "y": ds["y"].values, "orientation": list(ORIENTATIONS)},
    )


def summary(ds: xr.Dataset) -> dict:
    """The ``summary.json`` content of a run: fractions per orientation at each snapshot."""
    tex = texture(ds)
    return {
        "times_s": [float(t) for t in tex["time"].values],
        "fractions": {o: [float(v) for v in tex["area_fraction"].sel(orientation=o).values]
                      for o in ORIENTATIONS},
        "grain_fractions": {o: [float(v) for v in tex["grain_fraction"].sel(orientation=o).values]
                            for o in ORIENTATIONS},
        "grain_count": [int(v) for v in tex["grain_count"].values],
        "surface_grain_count": [int(v) for v in tex["surface_grain_count"].values],
        "surface_grain_width_um": [float(v) for v in tex["surface_grain_width_um"].values],
    }


def mean_confidence_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval of independent samples.

    Returns ``(mean, low, high)``; with one sample the interval is (nan, nan).
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if x.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, df=x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half
