"""Figures of softgrain, one function per figure of the paper.

Each ``plot_*`` function returns a :class:`matplotlib.figure.Figure` built without
:mod:`matplotlib.pyplot`, so no GUI backend, global figure registry or display is involved: the
figures are rendered by the Agg canvas when saved and are safe in headless runs and threads. The
one figure writer is :func:`softgrain.output.files.save_figure` (checks the path and the format,
writes atomically). The functions draw what they are given; the numbers come from
:mod:`softgrain.physics` (theory, interlayer) or are passed in (run results, texture, phase map).

Figures:

* :func:`plot_theory_fig3a` — paper Fig. 3A: ΔΓ_surface, ΔF_strain and ΔU against temperature;
* :func:`plot_grain_maps` — paper Fig. 2 columns: orientation, surface-energy and barrier maps;
* :func:`plot_texture_evolution` — orientation fractions against height and time;
* :func:`plot_interlayer_moduli` — paper Fig. 5A: bulk modulus against Li fraction;
* :func:`plot_phase_map` — paper Fig. 4: the texture phase map.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from softgrain.materials.metals import ORIENTATIONS, Metal, load_metal
from softgrain.output.results import TASK_OK, grid_step, orientation_index, orientation_map, per_cell
from softgrain.physics.interlayer import interlayer_report
from softgrain.physics.theory import (
    ELECTROLYTE_STRAIN,
    FIG3A_PAIR,
    TheoryParameters,
    crossover_temperatures,
    default_temperatures_C,
    energy_difference,
    resolve_strain,
)

# Plotting in kJ/m³ keeps the tick labels short; Fig. 3A's terms are ~1e3–1e4 J/m³.
_J_PER_KJ = 1e3


def plot_theory_fig3a(metal: str | Metal = "Li", pair: Sequence[str] = FIG3A_PAIR,
                      temperatures_C: Any = None,
                      strains: Mapping[str, float | str] | None = None,
                      params: TheoryParameters | None = None,
                      points: int = 241) -> Figure:
    """Paper Fig. 3A: ΔΓ_surface, ΔF_strain and ΔU = U(pair[0]) − U(pair[1]) vs temperature.

    One panel per strain case (default: the liquid and the solid electrolyte of
    :data:`softgrain.physics.theory.ELECTROLYTE_STRAIN`), with the ΔU = 0 line and every crossover
    temperature in the plotted range marked.

    Parameters
    ----------
    metal : str or Metal
        Metal symbol or loaded data.
    pair : two str
        Orientations compared (default (001), (101) as in the paper).
    temperatures_C : array_like, optional
        The plotted range is ``min(temperatures_C)`` … ``max(temperatures_C)``; default −20 … 100 °C
        (below the melting point). A single temperature also uses the default range.
    strains : mapping, optional
        Panel title → strain (number, or electrolyte name). Default: liquid and solid.
    params : TheoryParameters, optional
        Default: :meth:`TheoryParameters.from_data` for ``metal``.
    points : int
        Number of temperatures sampled per curve.

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = load_metal(metal) if isinstance(metal, str) else metal
    p = params if params is not None else TheoryParameters.from_data(data)
    cases = dict(strains) if strains else {name: name for name in ELECTROLYTE_STRAIN}
    span = np.atleast_1d(np.asarray(temperatures_C if temperatures_C is not None
                                    else default_temperatures_C(data), dtype=float))
    if span.size == 0 or span.min() == span.max():
        span = default_temperatures_C(data)
    grid = np.linspace(span.min(), span.max(), points)

    fig = Figure(figsize=(4.2 * len(cases), 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(cases), sharey=True, squeeze=False)[0]
    for ax, (title, strain) in zip(axes, cases.items()):
        eps = resolve_strain(strain)
        d = energy_difference(data, pair, grid, eps, p)
        first, second = d.pair
        ax.plot(grid, d.delta_gamma_J_m3 / _J_PER_KJ, color="tab:blue", ls="--",
                label=r"$\Delta\Gamma_\mathrm{surface}$")
        ax.plot(grid, d.delta_f_strain_J_m3 / _J_PER_KJ, color="tab:orange", ls="-.",
                label=r"$\Delta F_\mathrm{strain}$")
        ax.plot(grid, d.delta_u_J_m3 / _J_PER_KJ, color="black", lw=2, label=r"$\Delta U$")
        ax.axhline(0.0, color="grey", lw=0.8)
        for t_cross in crossover_temperatures(data, d.pair, eps, p, (grid[0], grid[-1])):
            ax.axvline(t_cross, color="tab:red", lw=1, ls=":")
            ax.plot([t_cross], [0.0], "o", color="tab:red", zorder=3)
            ax.annotate(f"{t_cross:.1f} °C", (t_cross, 0.0), textcoords="offset points",
                        xytext=(4, 6), color="tab:red", fontsize=8)
        ax.set_title(f"{data.symbol}, {title} (strain {eps:+.3f})", fontsize=10)
        ax.set_xlabel("temperature (°C)")
    axes[0].set_ylabel(f"U({first}) − U({second}) terms (kJ/m³)")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"{data.symbol} ({first}) vs ({second}), paper Eq. S3 + S10: "
                 f"ΔU > 0 favours ({second}), ΔU < 0 favours ({first})", fontsize=10)
    return fig


# --- Phase-field figures (paper Fig. 2 columns) ---------------------------------------------

ORIENTATION_COLOURS = {"001": "#0072B2", "101": "#D55E00", "111": "#009E73"}
"""Okabe–Ito colour-blind-safe palette keyed to the orientations; empty space is black as in the paper."""


def orientation_cmap() -> ListedColormap:
    """Colormap for orientation-index maps: −1 (no grain) black, then (001), (101), (111)."""
    return ListedColormap(["black"] + [ORIENTATION_COLOURS[o] for o in ORIENTATIONS])


EMPTY_COLOUR = "black"
"""Cells not deposited yet, or where no grain has φ ≥ 0.5 (the paper's "black space")."""

BOUNDARY_COLOUR = "0.45"
"""Grain boundaries drawn over the orientation maps (grains of one orientation share a colour)."""


def map_legend_handles() -> list:
    """Legend entries of an orientation map: the orientations, empty space, grain boundaries."""
    return ([Patch(color=c, label=f"({o})") for o, c in ORIENTATION_COLOURS.items()]
            + [Patch(facecolor=EMPTY_COLOUR, edgecolor="0.6", label="not deposited / no grain"),
               Line2D([], [], color=BOUNDARY_COLOUR, lw=2, label="grain boundary")])


def _grain_boundaries(grain_map):
    """Cells whose right (periodic) or upper neighbour belongs to another grain."""
    occupied = grain_map >= 0
    right = (grain_map != np.roll(grain_map, -1, axis=1)) & occupied & np.roll(occupied, -1, axis=1)
    up = np.zeros_like(right)
    up[:-1] = (grain_map[:-1] != grain_map[1:]) & occupied[:-1] & occupied[1:]
    return right | up


def draw_grain_boundaries(ax, grain_map: np.ndarray, extent: Sequence[float]):
    """Overlay the boundaries between grains on an orientation map; returns the image artist."""
    edges = _grain_boundaries(grain_map)
    return ax.imshow(np.ma.masked_where(~edges, edges), origin="lower", extent=extent,
                     cmap=ListedColormap([BOUNDARY_COLOUR]), vmin=0, vmax=1, alpha=0.85,
                     interpolation="nearest")


def _property_panel(fig, ax, image: np.ndarray, values: Mapping[str, float], cmap_name: str,
                    quantity: str, unit: str, t: float, extent: Sequence[float]) -> None:
    """A per-cell map of a per-orientation property, on a colour scale fixed by the orientations.

    The scale spans the values of the orientations in the run (the same at every snapshot), and
    the colourbar marks where each orientation sits on it; a panel whose grains all share one
    value says so in its title rather than leaving a reader to guess from one flat colour.
    """
    levels = np.array(sorted(values.values()))
    low, high = float(levels[0]), float(levels[-1])
    if high <= low:
        pad = max(abs(low) * 0.05, 1e-3)
        low, high = low - pad, high + pad
    im = ax.imshow(image, origin="lower", extent=extent, cmap=colormaps[cmap_name].with_extremes(
        bad=EMPTY_COLOUR), vmin=low, vmax=high, interpolation="nearest")
    # An inset colourbar is exactly as tall as the (equal-aspect) map it belongs to.
    bar = fig.colorbar(im, cax=ax.inset_axes([1.02, 0.0, 0.025, 1.0]))
    bar.set_label(f"{quantity} ({unit})")
    # Mark each orientation on the bar; values closer than 5 % of the scale share one tick.
    groups: list[list[tuple[str, float]]] = []
    for orientation, value in sorted(values.items(), key=lambda item: item[1]):
        if groups and value - groups[-1][-1][1] < 0.05 * (high - low):
            groups[-1].append((orientation, value))
        else:
            groups.append([(orientation, value)])
    bar.set_ticks([float(np.mean([v for _, v in group])) for group in groups])
    bar.set_ticklabels([", ".join(f"({o}) {v:.3g}" for o, v in group) for group in groups],
                       fontsize="x-small")
    present = np.unique(image[np.isfinite(image)])
    title = f"{quantity}, t = {t:g} s"
    if present.size == 1:
        owners = [f"({o})" for o, v in values.items() if np.isclose(v, present[0])]
        title += f"\nuniform: every grain is {'/'.join(owners) or ''} ({present[0]:.3g} {unit})"
    ax.set_title(title, fontsize="medium")


def plot_grain_maps(ds: xr.Dataset, times: Sequence[float] | None = None) -> Figure:
    """Orientation, surface-energy and diffusion-barrier maps at the snapshot ``times`` (Fig. 2).

    The orientation maps carry the grain boundaries; black is empty space (not deposited yet, or
    no grain with φ ≥ 0.5). The surface-energy and barrier maps share one colour scale over all
    snapshots, spanning the orientations' values, with each orientation marked on the colourbar.

    Parameters
    ----------
    ds : xarray.Dataset
        A run result (:func:`softgrain.setup.simulate`, or a run folder's ``result.nc``).
    times : sequence of float, optional
        Snapshot times to show (nearest stored); all snapshots by default.
    """
    stored = ds["time"].values
    times = stored if times is None else sorted({float(stored[np.abs(stored - t).argmin()]) for t in times})
    orientation = orientation_index(ds)
    extent = [float(ds.x[0]), float(ds.x[-1]) + grid_step(ds.x.values),
              float(ds.y[0]), float(ds.y[-1]) + grid_step(ds.y.values)]
    energies = ds["grain_surface_energy"].values.astype(float)
    barriers = ds["grain_barrier"].values.astype(float)
    nucleated = sorted(set(orientation.tolist()))
    energy_of = {ORIENTATIONS[k]: float(energies[orientation == k][0]) for k in nucleated}
    barrier_of = {ORIENTATIONS[k]: float(barriers[orientation == k][0]) for k in nucleated}
    # Rows as tall as the maps (equal aspect) plus titles and labels: colourbars then match them.
    aspect = (extent[3] - extent[2]) / (extent[1] - extent[0])
    fig = Figure(figsize=(15, len(times) * (3.7 * aspect + 0.8) + 1.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(times), 3, squeeze=False)
    for row, t in enumerate(times):
        gmap = ds["grain"].sel(time=t).values
        ax = axes[row, 0]
        ax.imshow(orientation_map(gmap, orientation), origin="lower", extent=extent,
                  cmap=orientation_cmap(), vmin=-1.5, vmax=len(ORIENTATIONS) - 0.5,
                  interpolation="nearest")
        draw_grain_boundaries(ax, gmap, extent)
        ax.set_title(f"orientation, t = {t:g} s", fontsize="medium")
        _property_panel(fig, axes[row, 1], per_cell(gmap, energies, np.nan), energy_of, "viridis",
                        "surface energy E$_s$", "J/m²", t, extent)
        _property_panel(fig, axes[row, 2], per_cell(gmap, barriers, np.nan), barrier_of, "plasma",
                        "diffusion barrier E$_a$", "eV", t, extent)
        for ax in axes[row]:
            ax.set_ylabel("height (µm)")
            ax.set_xlabel("x (µm)" if row == len(times) - 1 else "")
    fig.legend(handles=map_legend_handles(), loc="outside lower center", ncols=5, frameon=False,
               fontsize="small")
    fig.suptitle(f"{ds.attrs.get('preset', '')}: {ds.attrs.get('metal', '')}, "
                 f"{ds.attrs.get('temperature_C', '')} °C, seed {ds.attrs.get('seed', '')}")
    return fig


# Line and marker per orientation: curves that coincide (e.g. two orientations at 0) stay apart.
_ORIENTATION_STYLES = {"001": ("-", "o"), "101": ("--", "s"), "111": (":", "^")}
_FRACTION_LIMITS = (-0.04, 1.04)   # margins: a fraction of 0 or 1 must not hide in the axis line


def plot_texture_evolution(texture: xr.Dataset) -> Figure:
    """Orientation fractions against height (last snapshot) and against time (all snapshots).

    Each orientation has its own colour, line style and marker (markers staggered along the
    height profile), the fraction axes have margins beyond 0 and 1, one legend serves both
    panels, and the title names the orientation that covers most of the deposit at the end.

    Parameters
    ----------
    texture : xarray.Dataset
        :func:`softgrain.analysis.texture` of a run result.
    """
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_h, ax_t = fig.subplots(1, 2)
    last = texture.isel(time=-1)
    heights = texture["y"].values
    every = max(1, heights.size // 12)
    for k, (o, colour) in enumerate(ORIENTATION_COLOURS.items()):
        line, marker = _ORIENTATION_STYLES[o]
        ax_h.plot(last["fraction_by_height"].sel(orientation=o), heights, color=colour, ls=line,
                  marker=marker, ms=5, markevery=(k * every // 3, every), label=f"({o})")
        # Shrinking markers nest where curves coincide (e.g. two orientations at 0).
        ax_t.plot(texture["time"], texture["area_fraction"].sel(orientation=o), color=colour, ls=line,
                  marker=marker, ms=9 - 2 * k)
    ax_h.set_xlabel("area fraction in the row")
    ax_h.set_ylabel("height above substrate (µm)")
    ax_h.set_title(f"by height, t = {float(last['time']):g} s")
    ax_h.set_xlim(*_FRACTION_LIMITS)
    ax_t.set_xlabel("time (s)")
    ax_t.set_ylabel("area fraction of the deposit")
    ax_t.set_ylim(*_FRACTION_LIMITS)
    ax_t.set_title("deposit-averaged, by snapshot")
    fig.legend(loc="outside right center", frameon=False)
    final = last["area_fraction"].values
    what = texture.attrs.get("preset", "")
    if np.isfinite(final).any() and np.nansum(final) > 0:
        winner = ORIENTATIONS[int(np.nanargmax(final))]
        verdict = (f"({winner}) wins: {np.nanmax(final):.0%} of the deposit at "
                   f"t = {float(last['time']):g} s")
    else:
        verdict = f"no deposit at t = {float(last['time']):g} s"
    fig.suptitle(f"{what + ': ' if what else ''}{verdict}")
    return fig


# --- Interlayer design (paper Fig. 5A) -------------------------------------------------------

# Okabe–Ito colours not used for the orientations, one per family of Fig. 5A.
_FAMILY_STYLES = {
    "Ag": {"color": "#56B4E9", "marker": "s", "ls": ":", "label": "Li$_x$Ag$_{1-x}$ (linear)"},
    "Au": {"color": "#E69F00", "marker": "D", "ls": ":", "label": "Li$_x$Au$_{1-x}$ (linear)"},
    "c-LiSi": {"color": "#CC79A7", "marker": "^", "ls": "--", "label": "crystalline Li–Si"},
    "a-LiSi": {"color": "#009E73", "marker": "o", "ls": "-", "label": "amorphous Li$_x$Si$_{1-x}$"},
}


def plot_interlayer_moduli(report: Mapping[str, Any] | None = None) -> Figure:
    """Paper Fig. 5A: bulk modulus against Li fraction x, with Li, Na, Cu and the 30 GPa limit.

    Parameters
    ----------
    report : mapping, optional
        :func:`softgrain.physics.interlayer.interlayer_report` output (default: computed). Its
        ``materials``, ``threshold_GPa``, ``modulus_crossing_x`` and ``candidates`` are drawn;
        candidates meeting all five criteria are ringed.

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = report if report is not None else interlayer_report()
    materials = data["materials"]
    threshold = float(data["threshold_GPa"])
    passing = {c["name"] for c in data["candidates"] if c["passes"]}
    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    by_name = {m["name"]: m for m in materials}
    li = by_name["Li"]
    for family, style in _FAMILY_STYLES.items():
        members = sorted((m for m in materials if m["family"] == family), key=lambda m: m["x_li"])
        if family in ("Ag", "Au"):
            members = [by_name[family]] + [m for m in members if m["name"] != family]
        points = members + [li]
        ax.plot([m["x_li"] for m in points], [m["bulk_modulus_GPa"] for m in points],
                color=style["color"], ls=style["ls"], lw=1.2, zorder=1)
        ax.plot([m["x_li"] for m in members], [m["bulk_modulus_GPa"] for m in members],
                ls="none", marker=style["marker"], color=style["color"], ms=6, label=style["label"],
                zorder=2)
        crossing = data.get("modulus_crossing_x", {}).get(family)
        if crossing is not None:
            ax.plot([crossing], [threshold], marker="|", ms=14, color=style["color"], zorder=3)
    for name in sorted(passing):
        m = by_name[name]
        ax.plot([m["x_li"]], [m["bulk_modulus_GPa"]], ls="none", marker="o", ms=13, mfc="none",
                mec="black", mew=1.2, zorder=3)
    cu = by_name["Cu"]
    ax.plot([cu["x_li"]], [cu["bulk_modulus_GPa"]], "*", ms=14, color="#D55E00", zorder=4,
            label=f"Cu ({cu['bulk_modulus_GPa']:g} GPa)")
    ax.plot([li["x_li"]], [li["bulk_modulus_GPa"]], "*", ms=14, color="black", zorder=4,
            label=f"Li ({li['bulk_modulus_GPa']:g} GPa)")
    na = by_name["Na"]
    ax.axhline(na["bulk_modulus_GPa"], color="0.45", ls="-.", lw=1,
               label=f"Na ({na['bulk_modulus_GPa']:g} GPa)")
    ax.axhline(threshold, color="black", ls="--", lw=1)
    ax.axhspan(0, threshold, color="0.92", zorder=0)
    ax.annotate(f"criterion 1: B < {threshold:g} GPa", (0.01, threshold), textcoords="offset points",
                xytext=(2, 4), fontsize=8)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(0, max(m["bulk_modulus_GPa"] for m in materials) * 1.08)
    ax.set_xlabel("Li fraction x in Li$_x$M$_{1-x}$")
    ax.set_ylabel("bulk modulus B (GPa)")
    ax.set_title("Interlayer design (paper Fig. 5A); ringed: meets all five criteria", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    return fig


def _cell_edges(centres: Any, lowest: float | None = None) -> np.ndarray:
    """Edges of cells around increasing (possibly unevenly spaced) centres, for pcolormesh.

    ``lowest`` clips the first edge (a barrier or an anisotropy below 0 is not on the map).
    """
    c = np.asarray(centres, dtype=float)
    if c.size == 1:
        edges = np.array([c[0] - 0.5, c[0] + 0.5])
    else:
        mid = (c[1:] + c[:-1]) / 2
        edges = np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])
    if lowest is not None:
        edges[0] = max(edges[0], min(lowest, c[0]))
    return edges


def _end_time(ds) -> float | None:
    """End time (s) of the runs of a sweep store, from its base configuration."""
    try:
        return float(json.loads(ds.attrs["base_config_json"])["run"]["end_time_s"])
    except (KeyError, TypeError, ValueError):
        return None


def plot_phase_map(ds, *, theory_line: tuple[Any, Any] | None = None,
                   markers: Mapping[str, tuple[float, float]] | None = None,
                   strained_anisotropy: float | None = None,
                   equivalent_strain: tuple[Any, Any] | None = None,
                   majority: float = 0.5, title: str = "") -> Figure:
    """Paper Fig. 4: dominant orientation and the fraction of each orientation over the map.

    Parameters
    ----------
    ds : xarray.Dataset
        A phase-map store (:mod:`softgrain.studies.phasemap`): ``fraction`` (barrier_101_eV,
        surface_energy_anisotropy, seed, orientation) and ``status``; seeds with status ≠ ok are
        left out of the means.
    theory_line : (barriers, anisotropies), optional
        The thermodynamic theory's ΔU(001 − 101) = 0 line, drawn dashed.
    markers : mapping, optional
        Label → (barrier, anisotropy) of the cases to mark (e.g. liquid and solid Li).
    strained_anisotropy : float, optional
        Anisotropy of the strained data; above it the surface energies are extrapolated (dotted
        line).
    equivalent_strain : (forward, inverse), optional
        Functions A → strain and strain → A for a secondary axis in % strain.
    majority : float
        Mean fraction an orientation needs to be "dominant"; other points are "mixed".
    title : str
        Figure title suffix.

    Returns
    -------
    matplotlib.figure.Figure
        Four panels: dominant orientation (with the per-point mean fraction of the winner) and
        the mean area fraction of (001), (101), (111). Every panel carries the phase-field
        boundary (mean (101) fraction = mean (001) fraction, solid), the theory line and the
        case markers.
    """
    x_name, y_name = "barrier_101_eV", "surface_energy_anisotropy"
    fraction = ds["fraction"]
    if "status" in ds:
        fraction = fraction.where(ds["status"] == TASK_OK)
    means = fraction.mean("seed", skipna=True).transpose(x_name, y_name, "orientation")
    x = ds[x_name].values.astype(float)
    y = ds[y_name].values.astype(float)
    names = [str(o) for o in means["orientation"].values]
    values = means.values  # (x, y, orientation)

    finite = np.all(np.isfinite(values), axis=-1)
    best = np.argmax(np.nan_to_num(values, nan=-1.0), axis=-1)
    top = np.nanmax(np.where(finite[..., None], values, np.nan), axis=-1) if finite.any() else \
        np.full(finite.shape, np.nan)
    mixed_code, missing_code = len(names), len(names) + 1
    classes = np.where(finite & (top >= majority), best, mixed_code)
    classes = np.where(finite, classes, missing_code)

    fig = Figure(figsize=(11.5, 8.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2, sharex=True, sharey=True).ravel()
    xe, ye = _cell_edges(x, lowest=0.0), _cell_edges(y, lowest=0.0)

    colours = [ORIENTATION_COLOURS[o] for o in names] + ["0.75", "white"]
    axes[0].pcolormesh(xe, ye, classes.T, cmap=ListedColormap(colours), vmin=-0.5,
                       vmax=missing_code + 0.5, shading="flat", edgecolors="white", linewidth=0.5)
    marked = [(mx, my) for mx, my in (markers or {}).values()]
    for i, xi in enumerate(x):
        for j, yj in enumerate(y):
            if not finite[i, j]:
                continue
            # A case marker near its cell's centre would hide the label: move the label aside.
            beside = any(abs(mx - xi) < 0.3 * (xe[i + 1] - xe[i]) and abs(my - yj) < 0.3 * (ye[j + 1] - ye[j])
                         for mx, my in marked)
            axes[0].annotate(f"{names[best[i, j]]} {top[i, j]:.0%}", (xi, yj),
                             xytext=(9, 0) if beside else (0, 0), textcoords="offset points",
                             ha="left" if beside else "center", va="center", fontsize=7,
                             color="white" if classes[i, j] < mixed_code else "black")
    handles = [Patch(color=ORIENTATION_COLOURS[o], label=f"({o}) ≥ {majority:.0%}") for o in names]
    handles.append(Patch(color="0.75", label="mixed"))
    axes[0].set_title("dominant orientation (mean over seeds)", fontsize=10)

    for ax, k in zip(axes[1:], range(len(names))):
        mesh = ax.pcolormesh(xe, ye, values[..., k].T, cmap="viridis", vmin=0.0, vmax=1.0,
                             shading="flat")
        ax.set_title(f"area fraction of ({names[k]})", fontsize=10)
        fig.colorbar(mesh, ax=ax, shrink=0.85, label="fraction")

    line_handles = []
    i001, i101 = (names.index("001"), names.index("101")) if {"001", "101"} <= set(names) else (None, None)
    for ax in axes:
        if i001 is not None and x.size > 1 and y.size > 1 and finite.all():
            difference = values[..., i101] - values[..., i001]
            if difference.min() < 0 < difference.max():
                ax.contour(x, y, difference.T, levels=[0.0], colors="black", linewidths=1.8)
        if theory_line is not None:
            tx, ty = (np.asarray(v, dtype=float) for v in theory_line)
            ax.plot(tx, ty, color="black", ls="--", lw=1.4)
        if strained_anisotropy is not None and strained_anisotropy < ye[-1]:
            ax.axhline(strained_anisotropy, color="0.3", ls=":", lw=1)
        for label, (mx, my) in (markers or {}).items():
            marker = "o" if "liquid" in label else "s"
            ax.plot([mx], [my], marker=marker, ms=9, mfc="white", mec="black", mew=1.5, ls="none",
                    zorder=5)
        ax.set_xlim(xe[0], xe[-1])
        ax.set_ylim(ye[0], ye[-1])
    line_handles.append(Line2D([], [], color="black", lw=1.8, label="phase field: (101) = (001)"))
    if theory_line is not None:
        line_handles.append(Line2D([], [], color="black", ls="--", lw=1.4,
                                   label="theory: ΔU(001−101) = 0"))
    if strained_anisotropy is not None and strained_anisotropy < ye[-1]:
        line_handles.append(Line2D([], [], color="0.3", ls=":", lw=1,
                                   label="strained data (above: extrapolated)"))
    for label in markers or {}:
        marker = "o" if "liquid" in label else "s"
        line_handles.append(Line2D([], [], marker=marker, ms=8, mfc="white", mec="black", ls="none",
                                   label=label))
    fig.legend(handles=handles + line_handles, fontsize=8, loc="outside lower center", ncols=5,
               frameon=False)
    for ax in axes[2:]:
        ax.set_xlabel("(101) diffusion barrier E$_a$(101) (eV)")
    for ax in axes[::2]:
        ax.set_ylabel("anisotropy A = E$_s$(101) − E$_s$(001) (J/m²)")
    if equivalent_strain is not None:
        forward, inverse = equivalent_strain
        # Compression in % (= −100 × strain) reads upwards with the anisotropy.
        secondary = axes[0].secondary_yaxis(
            "right", functions=(lambda a: -100 * np.asarray(forward(a)),
                                lambda c: np.asarray(inverse(-np.asarray(c) / 100))))
        secondary.set_ylabel("equivalent biaxial compression (%)", fontsize=8)
    end = _end_time(ds)
    when = f"texture when the runs ended, t = {end:g} s" if end is not None else "final texture"
    fig.suptitle("Texture phase map (paper Fig. 4): strain-energy-minimising (101) vs "
                 f"surface-energy-minimising (001) — {when}{' — ' + title if title else ''}",
                 fontsize=11)
    return fig
