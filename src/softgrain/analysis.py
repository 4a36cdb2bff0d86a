"""Texture analysis of grain maps: orientation fractions (overall and by height), surviving grains,
grain width at the top surface, grain counts in a window, EBSD-like classes of crystal orientations,
and statistics over nucleation seeds (Student-t means, Wilson intervals of proportions, an exact
test of two count distributions).

A grain map is an integer (ny, nx) array of grain indices (−1 = no grain / not deposited), row 0 at
the substrate; ``grain_orientation`` gives each grain's orientation index into
:data:`~softgrain.materials.metals.ORIENTATIONS`. Run results and sweep stores are read through
the accessors of their schema (:mod:`softgrain.output.results`).

Crystal orientations (every run stores one quaternion per grain) are classified as EBSD maps are
(:func:`class_texture`, through :func:`softgrain.ebsd.grain_texture`): a grain is "001", "101" or
"111" when its growth direction lies within a tolerance (default 15°) of ⟨001⟩, ⟨101⟩ or ⟨111⟩,
else "other"; count and area fractions, overall and in a height window.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr
from scipy import special
from scipy.special import logsumexp

from softgrain.ebsd import grain_texture
from softgrain.errors import ParameterError, UserInputError
from softgrain.materials.metals import ORIENTATIONS
from softgrain.output.results import (TASK_OK, class_tolerance_deg, grain_quaternions, grid_step,
                                      orientation_distribution, orientation_index, orientation_map)
from softgrain.physics.orientations import CLASSES


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
    orientation = orientation_index(ds)
    spacing = grid_step(ds["x"].values)
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
        # What the run was, for titles of figures drawn from the texture alone.
        attrs={key: ds.attrs[key] for key in ("preset", "metal", "temperature_C", "seed")
               if key in ds.attrs},
    )


def window_rows(y_um: np.ndarray, window_um: Sequence[float]) -> tuple[int, int]:
    """Half-open row range ``(first, stop)`` of the rows whose height y lies in [bottom, top).

    Raises
    ------
    ParameterError
        If the window is not ``[bottom, top]`` with 0 ≤ bottom < top (µm).
    """
    if len(window_um) != 2 or not (0 <= float(window_um[0]) < float(window_um[1])):
        raise ParameterError("window_um", f"= {list(window_um)!r}: need [bottom, top] in µm with "
                             "0 ≤ bottom < top")
    y = np.asarray(y_um, dtype=float)
    # A row belongs to the window when its height is in [bottom, top); 1e-9 µm absorbs rounding of
    # heights that are multiples of the spacing.
    first = int(np.searchsorted(y, float(window_um[0]) - 1e-9, side="left"))
    stop = int(np.searchsorted(y, float(window_um[1]) - 1e-9, side="left"))
    return first, stop


def class_texture(ds: xr.Dataset, tolerance_deg: float | None = None,
                  window_um: Sequence[float] | None = None, min_cells: int = 1) -> xr.Dataset:
    """EBSD-like class fractions of the grains of every snapshot of a run result.

    Each grain is classified by its growth direction (sample z, up the rows):
    "001"/"101"/"111" within ``tolerance_deg`` of ⟨001⟩/⟨101⟩/⟨111⟩, else "other"
    (:func:`softgrain.ebsd.grain_texture`, the same function as for measured EBSD maps).

    Parameters
    ----------
    ds : xarray.Dataset
        A run result with ``grain_quaternion``.
    tolerance_deg : float, optional
        Class tolerance; default: the run's ``analysis.tolerance_deg`` (15° unless set).
    window_um : [bottom, top], optional
        Also give the fractions of the grains in this height window (µm above the substrate).
    min_cells : int
        A grain counts only with at least this many cells (in the map or the window).

    Returns
    -------
    xarray.Dataset
        ``count_fraction`` and ``area_fraction`` (time, class) over "001", "101", "111",
        "other" (NaN without grains), ``grains`` (time); with a window also
        ``window_count_fraction``, ``window_area_fraction``, ``window_grains``. Attributes:
        ``tolerance_deg`` (and ``window_um``).
    """
    tolerance = class_tolerance_deg(ds) if tolerance_deg is None else float(tolerance_deg)
    quaternions = grain_quaternions(ds)
    maps = ds["grain"].values
    rows = None if window_um is None else window_rows(ds["y"].values, window_um)
    variables: dict[str, list] = {name: [] for name in ("count_fraction", "area_fraction", "grains")}
    if rows is not None:
        variables.update(window_count_fraction=[], window_area_fraction=[], window_grains=[])
    for grain_map in maps:
        whole = grain_texture(grain_map, quaternions, tolerance_deg=tolerance, min_cells=min_cells)
        variables["count_fraction"].append([whole.count_fraction[c] for c in CLASSES])
        variables["area_fraction"].append([whole.area_fraction[c] for c in CLASSES])
        variables["grains"].append(whole.grains)
        if rows is not None:
            if rows[0] < rows[1]:
                part = grain_texture(grain_map, quaternions, rows=rows, tolerance_deg=tolerance,
                                     min_cells=min_cells)
                count = [part.count_fraction[c] for c in CLASSES]
                area = [part.area_fraction[c] for c in CLASSES]
                grains = part.grains
            else:  # the window lies above the grid
                count = area = [float("nan")] * len(CLASSES)
                grains = 0
            variables["window_count_fraction"].append(count)
            variables["window_area_fraction"].append(area)
            variables["window_grains"].append(grains)
    n = len(maps)
    data = {}
    for name, values in variables.items():
        if name.endswith("grains"):
            data[name] = (("time",), np.asarray(values, dtype=np.int64).reshape(n))
        else:
            data[name] = (("time", "class"), np.asarray(values, dtype=float).reshape(n, len(CLASSES)))
    attrs: dict[str, Any] = {"tolerance_deg": tolerance}
    if window_um is not None:
        attrs["window_um"] = [float(v) for v in window_um]
    return xr.Dataset(data, coords={"time": ds["time"].values, "class": list(CLASSES)}, attrs=attrs)


def class_window_um(ds: xr.Dataset) -> list[float] | None:
    """The height window of ``analysis.window_um`` the run was configured with, else None."""
    try:
        window = json.loads(str(ds.attrs.get("config_json", "{}"))).get("analysis", {}).get("window_um")
    except (json.JSONDecodeError, AttributeError):
        return None
    return None if window is None else [float(v) for v in window]


def _fractions_json(tex: xr.Dataset, name: str) -> dict[str, list[float | None]]:
    return {c: [None if not np.isfinite(v) else float(v) for v in tex[name].sel({"class": c}).values]
            for c in CLASSES}


def summary(ds: xr.Dataset) -> dict:
    """The ``summary.json`` content of a run: fractions per orientation at each snapshot.

    Labels mode keeps the keys of the three-label model (``times_s``, ``fractions``,
    ``grain_fractions``, ``grain_count``, ``surface_grain_count``, ``surface_grain_width_um``);
    random and fibre runs (where ``fractions`` are by nearest pole) add ``classes``: the
    EBSD-like ``count_fraction`` and ``area_fraction`` over "001", "101", "111", "other" at each
    snapshot, ``grains``, ``tolerance_deg`` and, with ``analysis.window_um``, the same in the
    window.
    """
    tex = texture(ds)
    result: dict[str, Any] = {
        "times_s": [float(t) for t in tex["time"].values],
        "fractions": {o: [float(v) for v in tex["area_fraction"].sel(orientation=o).values]
                      for o in ORIENTATIONS},
        "grain_fractions": {o: [float(v) for v in tex["grain_fraction"].sel(orientation=o).values]
                            for o in ORIENTATIONS},
        "grain_count": [int(v) for v in tex["grain_count"].values],
        "surface_grain_count": [int(v) for v in tex["surface_grain_count"].values],
        "surface_grain_width_um": [float(v) for v in tex["surface_grain_width_um"].values],
    }
    if orientation_distribution(ds) != "labels" and "grain_quaternion" in ds:
        window = class_window_um(ds)
        classes = class_texture(ds, window_um=window)
        entry: dict[str, Any] = {
            "tolerance_deg": classes.attrs["tolerance_deg"],
            "count_fraction": _fractions_json(classes, "count_fraction"),
            "area_fraction": _fractions_json(classes, "area_fraction"),
            "grains": [int(v) for v in classes["grains"].values],
        }
        if window is not None:
            entry.update(window_um=window,
                         window_count_fraction=_fractions_json(classes, "window_count_fraction"),
                         window_area_fraction=_fractions_json(classes, "window_area_fraction"),
                         window_grains=[int(v) for v in classes["window_grains"].values])
        result["classes"] = entry
    return result


def class_ensemble_statistics(runs: Sequence[Mapping[str, float | None]],
                              confidence: float = 0.95) -> dict[str, dict[str, Any]]:
    """Mean and Student-t confidence interval over runs of each class's fraction.

    Parameters
    ----------
    runs : sequence of mapping
        One ``{"001": f, "101": f, "111": f, "other": f}`` per run (e.g. the final snapshot's
        ``count_fraction`` of :func:`class_texture`, or :meth:`softgrain.ebsd.GrainTexture.to_dict`'s);
        None/NaN entries (no grains) are left out.
    confidence : float
        Confidence level of the interval.

    Returns
    -------
    dict
        ``{"001": {"mean": m, "ci95": [low, high], "n": k}, …, "other": …}``; NaN intervals
        with fewer than two runs.
    """
    out = {}
    for c in CLASSES:
        samples = np.array([np.nan if run.get(c) is None else float(run[c]) for run in runs], dtype=float)
        mean, low, high = mean_confidence_interval(samples, confidence)
        out[c] = {"mean": mean, "ci95": [low, high], "n": int(np.isfinite(samples).sum())}
    return out


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
    # special.stdtrit is the Student-t quantile (what scipy.stats.t.ppf evaluates), without the
    # second-long import of scipy.stats.
    half = float(special.stdtrit(x.size - 1, 0.5 + confidence / 2) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def final_snapshot_measures(ds: xr.Dataset, keep_maps: bool = False) -> dict[str, Any]:
    """The texture of a run's last snapshot, as one task of a sweep stores it.

    Returns
    -------
    dict
        ``fraction`` (area fraction per orientation), ``surface_fraction`` (fractions in the top
        fully deposited row, NaN without one), ``grain_count``, ``surface_grain_count``,
        ``surface_grain_width_um`` and, with ``keep_maps``, ``final_orientation`` (ny, nx) int8 and
        ``final_grain`` (ny, nx) int32 (grain index, −1 = none).
    """
    final = ds.isel(time=[-1])
    tex = texture(final)
    orientation = orientation_index(final)
    grain_map = final["grain"].values[0]
    surface = surface_row(grain_map)
    surface_fraction = (fractions_by_height(grain_map, orientation)[surface]
                        if surface is not None else np.full(len(ORIENTATIONS), np.nan))
    result: dict[str, Any] = {
        "fraction": tex["area_fraction"].values[0].astype(float),
        "surface_fraction": np.asarray(surface_fraction, dtype=float),
        "grain_count": int(tex["grain_count"].values[0]),
        "surface_grain_count": int(tex["surface_grain_count"].values[0]),
        "surface_grain_width_um": float(tex["surface_grain_width_um"].values[0]),
    }
    if keep_maps:
        result["final_orientation"] = orientation_map(grain_map, orientation).astype(np.int8)
        result["final_grain"] = np.asarray(grain_map).astype(np.int32)
    return result


def ensemble_statistics(ds: xr.Dataset, variable: str = "fraction",
                        confidence: float = 0.95) -> dict[str, dict[str, Any]]:
    """Mean and confidence interval over seeds of each orientation's fraction.

    Only members with status ok enter. Intervals are Student-t (:func:`mean_confidence_interval`);
    NaN with fewer than two members.

    Parameters
    ----------
    ds : xarray.Dataset
        A seed ensemble (:func:`softgrain.studies.runner.run_ensemble`; dimensions ``seed`` and
        ``orientation`` only).
    variable : str
        ``"fraction"`` (area, default) or ``"surface_fraction"``.
    confidence : float
        Confidence level of the interval.

    Returns
    -------
    dict
        ``{"001": {"mean": m, "ci95": [low, high], "n": k}, ...}``.
    """
    if variable not in ds:
        raise UserInputError(f"no variable {variable!r} in the dataset; use 'fraction' or 'surface_fraction'")
    values = ds[variable]
    extra = [d for d in values.dims if d not in ("seed", "orientation")]
    if extra:
        raise UserInputError(f"ensemble_statistics needs one point; select along {', '.join(extra)} first")
    if "status" in ds:
        values = values.where(ds["status"] == TASK_OK)
    out = {}
    for orientation in values["orientation"].values:
        samples = values.sel(orientation=orientation).values
        mean, low, high = mean_confidence_interval(samples, confidence)
        out[str(orientation)] = {"mean": mean, "ci95": [low, high],
                                 "n": int(np.isfinite(samples).sum())}
    return out


# ---------------------------------------------------------------------------------------------
# Grain counts (EBSD-like statistics)
# ---------------------------------------------------------------------------------------------

def grain_orientations(grain_map: np.ndarray, orientation_cells: np.ndarray) -> np.ndarray:
    """Orientation index of every grain id, from a grain map and its orientation map.

    For stored results that keep both maps (``final_grain``, ``final_orientation``) but not the
    nuclei's orientations. Returns an int array of length ``grain_map.max() + 1`` (−1 for ids
    absent from the map).
    """
    grains = np.asarray(grain_map)
    cells = np.asarray(orientation_cells)
    if grains.shape != cells.shape:
        raise UserInputError(f"grain map {grains.shape} and orientation map {cells.shape} differ in shape")
    occupied = grains >= 0
    out = np.full(int(grains.max()) + 1 if occupied.any() else 0, -1, dtype=np.int64)
    out[grains[occupied]] = cells[occupied]
    return out


def window_grain_counts(grain_map: np.ndarray, grain_orientation: np.ndarray, window_rows: int,
                        min_cells: int = 1) -> np.ndarray:
    """Grains of each orientation in the bottom ``window_rows`` rows, shape (3,), int.

    A grain counts once if at least ``min_cells`` of its cells lie in the window, as a grain is
    counted once in an EBSD cross-section however large it is; smaller slivers (a grain's diffuse
    tail, or a nucleus reduced to a few cells) are left out, as an EBSD scan leaves out grains of
    a few pixels.

    Parameters
    ----------
    grain_map : (ny, nx) int array
        Grain index per cell (−1 = none), row 0 at the substrate.
    grain_orientation : int array
        Orientation index of each grain id.
    window_rows : int
        Height of the window in rows (clipped to the map).
    min_cells : int
        Smallest grain area counted, in cells.
    """
    if window_rows < 1:
        raise UserInputError(f"the counting window must be at least one row high, got {window_rows}")
    if min_cells < 1:
        raise UserInputError(f"the minimum grain size must be at least one cell, got {min_cells}")
    window = np.asarray(grain_map)[:window_rows]
    ids, cells = np.unique(window[window >= 0], return_counts=True)
    kept = ids[cells >= min_cells]
    return np.bincount(np.asarray(grain_orientation)[kept], minlength=len(ORIENTATIONS)).astype(np.int64)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of a binomial proportion ``successes / trials``; None without trials.

    The Wilson interval (no continuity correction; Newcombe 1998, method 3) keeps its coverage near
    the nominal level for small samples and proportions near 0 or 1, where the Wald interval
    fails — the EBSD counts are 3–19 of 21–39 grains. Computed by
    ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``.
    """
    if trials == 0:
        return None
    if not 0 <= successes <= trials:
        raise UserInputError(f"need 0 ≤ successes ≤ trials, got {successes} of {trials}")
    # scipy.stats costs half a second to import; only the commands that count grains pay for it.
    from scipy import stats

    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence,
                                                                     method="wilson")
    return float(ci.low), float(ci.high)


def _bounded_compositions(total: int, bounds: np.ndarray) -> np.ndarray:
    """Every vector x of non-negative integers with sum ``total`` and x ≤ ``bounds``, shape (T, k)."""
    k = len(bounds)
    rows = []
    for head in itertools.product(*(range(min(total, int(b)) + 1) for b in bounds[:-1])):
        last = total - sum(head)
        if 0 <= last <= bounds[-1]:
            rows.append((*head, last))
    return np.array(rows, dtype=np.int64).reshape(-1, k)


def count_agreement_p_value(first: Sequence[int], second: Sequence[int]) -> float | None:
    """Exact p-value that two samples of categorical counts come from one distribution.

    The Fisher–Freeman–Halton exact test of the 2 × k table ``[first; second]``: with both
    margins fixed, the smaller row follows the multivariate hypergeometric distribution
    (``scipy.stats.multivariate_hypergeom``); the p-value is the total probability of every
    table no more probable than the observed one (relative tolerance 1e-7, as R's
    ``fisher.test``). For a 2 × 2 table this is ``scipy.stats.fisher_exact`` (two-sided). The
    tables are enumerated exactly (scipy's R × C version samples them by Monte Carlo), which is
    cheap for three categories and EBSD-sized samples.

    Categories empty in both samples are dropped; with a single category left the samples
    cannot differ (p = 1). Returns None when either sample is empty.
    """
    a = np.asarray(first, dtype=np.int64)
    b = np.asarray(second, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1:
        raise UserInputError(f"count vectors must have one matching dimension, got {a.shape} and {b.shape}")
    if (a < 0).any() or (b < 0).any():
        raise UserInputError("counts must be non-negative")
    keep = (a + b) > 0
    a, b = a[keep], b[keep]
    if a.sum() == 0 or b.sum() == 0:
        return None
    if a.size < 2:
        return 1.0
    # scipy.stats: imported here for the reason given in wilson_interval.
    from scipy import stats

    small = a if a.sum() <= b.sum() else b
    column = a + b
    distribution = stats.multivariate_hypergeom(m=column, n=int(small.sum()))
    log_p = distribution.logpmf(_bounded_compositions(int(small.sum()), column))
    observed = distribution.logpmf(small)
    extreme = log_p <= observed + np.log1p(1e-7)
    return float(min(1.0, np.exp(logsumexp(log_p[extreme]))))
