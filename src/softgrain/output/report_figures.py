"""Figures of the reproduction report that no single command draws: ensembles beside the paper.

Like :mod:`softgrain.output.plots`, every function returns a :class:`matplotlib.figure.Figure`
built without pyplot and draws only what it is given (the numbers come from the stages of
:mod:`softgrain.studies.reproduce`); :func:`softgrain.output.files.save_figure` writes it.

* :func:`plot_ensemble_winners` — area fraction of each orientation per preset, mean and 95 %
  interval over seeds, the paper's selected orientation marked (Fig. 2, S3, S5, S6);
* :func:`plot_final_maps` — the final orientation map of one seed per preset (the 400 s column
  of Fig. 2);
* :func:`plot_fraction_comparison` — simulated fractions against the EBSD fractions of each
  experimental condition, both with their 95 % intervals (Fig. 3C–F, 5D).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from softgrain.materials.metals import ORIENTATIONS
from softgrain.output.plots import ORIENTATION_COLOURS, orientation_cmap

Interval = tuple[float, float, float]
"""(mean, low, high) of a fraction in 0–1; NaN bounds where there is no interval."""

_EBSD_COLOUR = "0.35"


def _error_bars(values: Sequence[Interval]) -> tuple[np.ndarray, np.ndarray]:
    """Bar heights and asymmetric error lengths in percent (no bar where the bound is NaN)."""
    mean = np.array([v[0] for v in values], dtype=float)
    low = np.array([v[1] for v in values], dtype=float)
    high = np.array([v[2] for v in values], dtype=float)
    below = np.where(np.isfinite(low), mean - low, 0.0)
    above = np.where(np.isfinite(high), high - mean, 0.0)
    return 100 * mean, 100 * np.vstack([np.clip(below, 0, None), np.clip(above, 0, None)])


def plot_ensemble_winners(fractions: Mapping[str, Mapping[str, Interval]],
                          expected: Mapping[str, str], *, seeds: int, title: str = "") -> Figure:
    """Mean area fraction (95 % CI) of each orientation per preset, with the paper's winner marked.

    Parameters
    ----------
    fractions : mapping
        Preset → orientation → (mean, low, high), fractions in 0–1.
    expected : mapping
        Preset → the orientation the paper finds selected (marked with a star above its bar).
    seeds : int
        Seeds per preset (printed in the axis label).
    title : str
        Figure title.
    """
    presets = list(fractions)
    fig = Figure(figsize=(max(5.5, 1.9 * len(presets) + 1.5), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / len(ORIENTATIONS)
    centres = np.arange(len(presets))
    for k, orientation in enumerate(ORIENTATIONS):
        heights, errors = _error_bars([fractions[p][orientation] for p in presets])
        positions = centres + (k - (len(ORIENTATIONS) - 1) / 2) * width
        ax.bar(positions, heights, width * 0.92, yerr=errors, capsize=3,
               color=ORIENTATION_COLOURS[orientation], label=f"({orientation})",
               error_kw={"elinewidth": 1, "ecolor": "black"})
        for position, preset, height in zip(positions, presets, heights):
            if expected.get(preset) == orientation:
                ax.annotate("★ paper", (position, min(height, 100) + 3), ha="center", va="bottom",
                            fontsize=8, color="black")
    ax.set_xticks(centres, presets)
    ax.set_ylim(0, 118)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel(f"area fraction at the end (%)\nmean, 95 % CI over {seeds} seeds")
    ax.legend(ncol=3, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    ax.grid(axis="y", color="0.9")
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_final_maps(maps: Mapping[str, np.ndarray], spacing_um: float, *, title: str = "") -> Figure:
    """Final orientation maps (index into ORIENTATIONS, −1 = no grain), one panel per case.

    Parameters
    ----------
    maps : mapping
        Panel title → (ny, nx) orientation-index map, row 0 at the substrate.
    spacing_um : float
        Grid spacing (µm) for the axes.
    title : str
        Figure title.
    """
    names = list(maps)
    ny, nx = np.asarray(maps[names[0]]).shape
    aspect = ny / nx
    fig = Figure(figsize=(7.5, 0.6 + len(names) * (7.5 * aspect * 0.82 + 0.45)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    extent = (0, nx * spacing_um, 0, ny * spacing_um)
    for ax, name in zip(axes, names):
        ax.imshow(np.asarray(maps[name]), origin="lower", cmap=orientation_cmap(), vmin=-1,
                  vmax=len(ORIENTATIONS) - 1, interpolation="nearest", extent=extent)
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_ylabel("height (µm)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel("x (µm)", fontsize=8)
    handles = [Patch(color=ORIENTATION_COLOURS[o], label=f"({o})") for o in ORIENTATIONS]
    handles.append(Patch(color="black", label="no grain"))
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize="small", frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_fraction_comparison(conditions: Mapping[str, Mapping[str, Mapping[str, Interval | None]]],
                             *, seeds: int, title: str = "") -> Figure:
    """Simulated vs measured fraction of each orientation, one panel per experimental condition.

    Parameters
    ----------
    conditions : mapping
        Condition label → {"simulated": {orientation: (mean, low, high)},
        "experiment": {orientation: (value, low, high) or None}, optionally "counted":
        {orientation: (fraction, low, high)}}: simulated area fractions, the measurement (its
        Wilson interval where the grains were counted; NaN bounds: a bare value; None: not
        reported, drawn as "n/a") and, where given, the simulated grain-count fractions.
    seeds : int
        Seeds behind the simulated means.
    title : str
        Figure title.
    """
    labels = list(conditions)
    with_counts = any(conditions[label].get("counted") for label in labels)
    width = 0.27 if with_counts else 0.38
    offsets = (-width, 0.0, width) if with_counts else (-0.2, None, 0.2)
    fig = Figure(figsize=(3.3 * len(labels) + 0.6, 3.7), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(labels), sharey=True, squeeze=False)[0]
    centres = np.arange(len(ORIENTATIONS))
    for ax, label in zip(axes, labels):
        simulated = conditions[label]["simulated"]
        measured = conditions[label]["experiment"]
        counted = conditions[label].get("counted")
        heights, errors = _error_bars([simulated[o] for o in ORIENTATIONS])
        ax.bar(centres + offsets[0], heights, width * 0.95, yerr=errors, capsize=2,
               color=[ORIENTATION_COLOURS[o] for o in ORIENTATIONS], error_kw={"elinewidth": 1})
        if counted:
            c_heights, c_errors = _error_bars([counted[o] for o in ORIENTATIONS])
            ax.bar(centres + offsets[1], c_heights, width * 0.95, yerr=c_errors, capsize=2,
                   color=[ORIENTATION_COLOURS[o] for o in ORIENTATIONS], alpha=0.45,
                   edgecolor="black", linewidth=0.6, error_kw={"elinewidth": 1})
        known = [o for o in ORIENTATIONS if measured.get(o) is not None]
        if known:
            m_heights, m_errors = _error_bars([measured[o] for o in known])
            ax.bar(centres[[ORIENTATIONS.index(o) for o in known]] + offsets[2], m_heights, width * 0.95,
                   yerr=m_errors, capsize=2, color="white", edgecolor=_EBSD_COLOUR, hatch="///",
                   error_kw={"elinewidth": 1, "ecolor": _EBSD_COLOUR})
        for o in ORIENTATIONS:
            if measured.get(o) is None:
                ax.text(ORIENTATIONS.index(o) + offsets[2], 2, "n/a", ha="center", va="bottom",
                        fontsize=7, color=_EBSD_COLOUR, rotation=90)
        ax.set_xticks(centres, [f"({o})" for o in ORIENTATIONS])
        ax.set_xlim(-0.6, len(ORIENTATIONS) - 0.35)
        ax.set_title(label, fontsize=9)
        ax.set_ylim(0, 105)
        ax.grid(axis="y", color="0.9")
        ax.set_axisbelow(True)
    axes[0].set_ylabel("fraction (%)")
    handles = [Patch(facecolor="0.45", label=f"simulated: area fraction, mean and 95 % CI over {seeds} seeds")]
    if with_counts:
        handles.append(Patch(facecolor="0.45", alpha=0.45, edgecolor="black", linewidth=0.6,
                             label="simulated: grain-count fraction in the EBSD-like window, pooled, Wilson 95 % CI"))
    handles.append(Patch(facecolor="white", edgecolor=_EBSD_COLOUR, hatch="///",
                         label="EBSD (paper): grain fraction, Wilson 95 % CI where the count is known"))
    fig.legend(handles=handles, loc="outside lower center", ncol=1, fontsize="small", frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


__all__ = ["plot_ensemble_winners", "plot_final_maps", "plot_fraction_comparison"]
