"""Orientation figures as EBSD users expect them: IPF grain maps and growth-direction textures.

* :func:`plot_ipf_grain_map` — a grain map coloured by orix's TSL inverse-pole-figure key along
  the growth direction (the crystal direction parallel to the growth axis: red ⟨001⟩, green ⟨101⟩,
  blue ⟨111⟩), grain boundaries drawn, the colour key beside the map.
* :func:`plot_growth_texture` — inverse pole figure densities of the grains' growth directions,
  count-weighted and area-weighted (multiples of a random distribution, MRD), with each grain as a
  dot and the 15° class caps around [001], [101], [111]; and {001}, {101}, {111} pole figures
  (area-weighted) viewed down the growth axis.

Densities are kernel estimates with a von Mises–Fisher kernel of half-width ``sigma_deg``
(κ = 1/σ²), normalised so that a uniform distribution reads 1 MRD, evaluated on a grid of the
stereographic plane. orix's ``pole_density_function`` smooths a histogram in (azimuth, polar)
index space, which streaks radially around the projection pole — the growth axis, exactly where
a fibre texture has its peak — so it is not used here. The IPF colour key is orix's
(``DirectionColorKeyTSL``) evaluated on the same kind of grid (orix's own key drawing
interpolates with ``griddata`` and takes seconds).

Both take per-grain orientations (orix orientations or quaternions (n, 4)) and, like the rest of
softgrain's figures, are built on :class:`matplotlib.figure.Figure` without pyplot state; they
return the figure and, given ``path``, also save it atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch
from matplotlib.path import Path as MplPath
from orix.crystal_map import Phase
from orix.projections import InverseStereographicProjection, StereographicProjection
from orix.quaternion import Orientation, Rotation
from orix.vector import Miller, Vector3d

from softgrain.physics.orientations import (
    DEFAULT_TOLERANCE_DEG,
    POLE_DIRECTIONS,
    POLES,
    SAMPLE_AXES,
    as_orientations,
    crystal_symmetry,
    growth_directions,
)
from softgrain.output.files import save_figure
from softgrain.output.results import class_tolerance_deg, grain_quaternions, grid_step

EMPTY_COLOUR = (0.0, 0.0, 0.0)
"""Cells without a grain (not deposited, not indexed, dropped) are black, as in the paper's maps."""


def _orix_plot():
    """orix.plot, imported on first use: it takes seconds to import (it builds its matplotlib
    projections), and every softgrain command imports this module but few draw orientations.
    Importing it registers the "ipf" and "stereographic" projections used below."""
    import orix.plot
    import orix.plot.direction_color_keys

    return orix.plot


def ipf_colours(orientations: Orientation | np.ndarray, sample_axis: str = "z") -> np.ndarray:
    """RGB (n, 3) of each orientation in orix's TSL IPF key of m-3m along ``sample_axis``."""
    key = _orix_plot().IPFColorKeyTSL(crystal_symmetry(), direction=Vector3d(SAMPLE_AXES[sample_axis]))
    return np.asarray(key.orientation2color(as_orientations(orientations))).reshape(-1, 3)


def _boundary_segments(grain_map: np.ndarray, periodic_x: bool) -> np.ndarray:
    """Line segments (in cell units) between neighbouring cells of different grains."""
    ny, nx = grain_map.shape
    segments = []
    right = np.roll(grain_map, -1, axis=1) if periodic_x else grain_map[:, 1:]
    left = grain_map if periodic_x else grain_map[:, :-1]
    rows, cols = np.nonzero((left != right) & ((left >= 0) | (right >= 0)))
    for r, c in zip(rows, cols):
        segments.append(((c + 1, r), (c + 1, r + 1)))
    rows, cols = np.nonzero((grain_map[:-1] != grain_map[1:]) & ((grain_map[:-1] >= 0) | (grain_map[1:] >= 0)))
    for r, c in zip(rows, cols):
        segments.append(((c, r + 1), (c + 1, r + 1)))
    return np.array(segments, dtype=float).reshape(-1, 2, 2)


def plot_ipf_grain_map(grain_map: np.ndarray, grain_orientations: Orientation | np.ndarray, *,
                       sample_axis: str = "z", spacing: tuple[float, float] = (1.0, 1.0),
                       unit: str = "µm", origin: str = "lower", periodic_x: bool = False,
                       title: str | None = None, path: str | os.PathLike[str] | None = None) -> Figure:
    """Grain map coloured by the IPF key along the growth direction, with the key beside it.

    Parameters
    ----------
    grain_map
        (ny, nx) grain ids, −1 = no grain (black).
    grain_orientations
        One orientation per grain id (orix or quaternions (n, 4)).
    sample_axis
        Growth axis in the sample frame: "z" for softgrain runs and plan-view EBSD.
    spacing
        Cell size (dy, dx) in ``unit``.
    origin
        "lower" puts row 0 at the bottom (simulations: the substrate); "upper" at the top (EBSD).
    periodic_x
        Draw the boundary between the last and first column (softgrain's periodic x).
    title
        Figure title.
    path
        If given, the figure is also saved there (atomically; format from the extension).
    """
    grain_map = np.asarray(grain_map)
    colours = ipf_colours(grain_orientations, sample_axis)  # also registers orix's projections
    image = np.empty(grain_map.shape + (3,))
    image[:] = EMPTY_COLOUR
    occupied = grain_map >= 0
    image[occupied] = colours[grain_map[occupied]]
    ny, nx = grain_map.shape
    dy, dx = spacing
    aspect = (ny * dy) / (nx * dx)
    width = 9.0
    fig = Figure(figsize=(width, max(2.6, min(9.0, 0.78 * width * aspect + 1.2))), layout="constrained")
    grid = fig.add_gridspec(1, 2, width_ratios=[4.2, 1.0])
    ax = fig.add_subplot(grid[0, 0])
    extent = (0, nx * dx, 0, ny * dy) if origin == "lower" else (0, nx * dx, ny * dy, 0)
    ax.imshow(image, origin=origin, extent=extent, interpolation="nearest")
    segments = _boundary_segments(grain_map, periodic_x)
    if len(segments):
        # Row r spans [r·dy, (r+1)·dy] in data units for either origin (the extent flips the axis).
        segments[..., 0] *= dx
        segments[..., 1] *= dy
        ax.add_collection(LineCollection(segments, colors="black", linewidths=0.4, alpha=0.7))
    ax.set_xlim(0, nx * dx)
    ax.set_ylim((0, ny * dy) if origin == "lower" else (ny * dy, 0))
    ax.set_xlabel(f"x ({unit})")
    ax.set_ylabel(f"height ({unit})" if origin == "lower" else f"y ({unit})")
    ax.set_title(f"IPF-{sample_axis.upper()} (growth direction) — {int(np.unique(grain_map[occupied]).size)} grains",
                 fontsize="medium")
    key_ax = fig.add_subplot(grid[0, 1], projection="ipf", symmetry=crystal_symmetry().laue,
                             direction=Vector3d(SAMPLE_AXES[sample_axis]))
    _draw_ipf_key(key_ax)
    # The stereographic axes' own text() takes vectors; place the caption in axes coordinates.
    Axes.text(key_ax, 0.5, -0.12, f"IPF key: crystal direction\n∥ growth axis ({sample_axis})",
                transform=key_ax.transAxes, ha="center", va="top", fontsize="small")
    if title:
        fig.suptitle(title)
    if path is not None:
        save_figure(fig, path)
    return fig


# --- Stereographic grids, kernel densities, the IPF key ------------------------------------------

_UPPER_HEMISPHERE = InverseStereographicProjection(pole=-1)
_UPPER_PROJECTION = StereographicProjection(pole=-1)
_KERNEL_TERMS_PER_CHUNK = 2_000_000  # grid × data terms per chunk (16 MB of float64)


def _plane_grid(ax, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid nodes (x, y) of spacing ``step`` over the axes' limits and their unit vectors (…, 3)."""
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    x, y = np.meshgrid(np.arange(x0, x1 + step, step), np.arange(y0, y1 + step, step))
    vectors = _UPPER_HEMISPHERE.xy2vector(x.ravel(), y.ravel()).unit.data.reshape(x.shape + (3,))
    return x, y, vectors


def _density_step(sigma_deg: float) -> float:
    """Grid spacing in the stereographic plane resolving a σ-wide kernel (σ/2.5 at the centre,
    where the plane coordinate tan(θ/2) changes by 0.5 per radian)."""
    return 0.5 * np.radians(sigma_deg) / 2.5


def _in_standard_triangle(vectors: np.ndarray) -> np.ndarray:
    """Whether each unit vector (…, 3) lies in the standard triangle 0 ≤ y ≤ x ≤ z."""
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    return (y >= -1e-12) & (x >= y - 1e-12) & (z >= x - 1e-12)


def _kernel_density_mrd(grid: np.ndarray, data: np.ndarray, weights: np.ndarray, sigma_deg: float,
                        total_weight: float) -> np.ndarray:
    """Weighted von Mises–Fisher kernel density of unit vectors at ``grid`` (m, 3), in MRD.

    f(g) = Σ w_i K(g·v_i) / W with K(t) = κ e^{κ(t−1)} / (2π (1 − e^{−2κ})), κ = 1/σ²; K is
    normalised on the sphere, so 4π f = 1 for a uniform distribution. ``data`` may omit vectors
    too far from every grid point to contribute; W = ``total_weight`` is the weight of all.
    """
    kappa = 1.0 / np.radians(sigma_deg) ** 2
    norm = kappa / (2.0 * np.pi * -np.expm1(-2.0 * kappa))
    density = np.empty(len(grid))
    chunk = max(1, _KERNEL_TERMS_PER_CHUNK // max(1, len(data)))
    for start in range(0, len(grid), chunk):
        cosines = grid[start:start + chunk] @ data.T
        density[start:start + chunk] = np.exp(kappa * (cosines - 1.0)) @ weights
    return 4.0 * np.pi * norm * density / total_weight


def _symmetric_images_near_triangle(directions: np.ndarray, weights: np.ndarray, sigma_deg: float):
    """The m-3m images of the directions that come within 4σ of the standard triangle, and their
    weights (each image 1/48 of its direction's)."""
    images = crystal_symmetry().outer(Vector3d(directions)).unit.data.reshape(-1, 3)
    tiled = np.tile(weights, crystal_symmetry().size) / crystal_symmetry().size
    # A cap about the corners' mean direction that holds the three corners holds the triangle.
    corners = np.array([POLE_DIRECTIONS[p] for p in POLES], dtype=float)
    corners /= np.linalg.norm(corners, axis=1, keepdims=True)
    centre = corners.sum(axis=0) / np.linalg.norm(corners.sum(axis=0))
    radius = np.arccos(np.min(corners @ centre))
    near = images @ centre >= np.cos(min(np.pi, radius + 4.0 * np.radians(sigma_deg)))
    return images[near], tiled[near]


def _outline(ax, corners: Sequence[Sequence[float]] | None) -> PathPatch:
    """Outline in the stereographic plane: the great-circle polygon through ``corners`` (the
    standard triangle) or, with None, the primitive circle of the upper hemisphere."""
    if corners is None:
        angle = np.linspace(0.0, 2.0 * np.pi, 721)
        xy = np.column_stack([np.cos(angle), np.sin(angle)])
    else:
        corners = [np.asarray(c, dtype=float) / np.linalg.norm(c) for c in corners]
        points = []
        for a, b in zip(corners, corners[1:] + corners[:1]):
            t = np.linspace(0.0, 1.0, 200)[:, None]
            arc = (1 - t) * a + t * b  # on the great circle through a and b once normalised
            points.append(arc / np.linalg.norm(arc, axis=1, keepdims=True))
        x, y = _UPPER_PROJECTION.vector2xy(Vector3d(np.concatenate(points)))
        xy = np.column_stack([x, y])
    return PathPatch(MplPath(xy, closed=True), transform=ax.transData, facecolor="none", edgecolor="none")


def _draw_density(ax, fig, x: np.ndarray, y: np.ndarray, density: np.ndarray, outline: PathPatch) -> None:
    # 0 … at least 2 MRD, so that a random texture (1 MRD) reads mid-scale rather than as a peak.
    mesh = ax.pcolormesh(x, y, density, cmap="magma_r", vmin=0.0, vmax=max(2.0, float(np.max(density))),
                         zorder=1, shading="gouraud", rasterized=True)
    ax.add_patch(outline)
    mesh.set_clip_path(outline)
    fig.colorbar(mesh, ax=ax, label="MRD", shrink=0.7, pad=0.02)


def _draw_ipf_key(ax) -> None:
    """orix's TSL colour key of m-3m filled into an IPF axes' standard triangle."""
    x, y, vectors = _plane_grid(ax, 0.0015)
    inside = _in_standard_triangle(vectors)
    rgba = np.zeros(vectors.shape[:-1] + (4,))
    key = _orix_plot().direction_color_keys.DirectionColorKeyTSL(crystal_symmetry().laue)
    rgba[inside, :3] = key.direction2color(Vector3d(vectors[inside])).reshape(-1, 3)
    rgba[inside, 3] = 1.0
    ax.imshow(rgba, extent=(x[0, 0], x[0, -1], y[0, 0], y[-1, 0]), origin="lower",
              interpolation="bilinear", zorder=0)


def _draw_caps(ax, tolerance_deg: float) -> None:
    """The class caps (tolerance circles) around [001], [101], [111], clipped to the triangle."""
    for pole in POLES:
        circle = Vector3d(POLE_DIRECTIONS[pole]).get_circle(opening_angle=np.radians(tolerance_deg),
                                                            steps=400).unit.data.reshape(-1, 3)
        inside = _in_standard_triangle(circle)
        # Plot each run of consecutive points inside the triangle as one line.
        edges = np.flatnonzero(np.diff(np.concatenate([[0], inside.astype(int), [0]])))
        for start, stop in zip(edges[::2], edges[1::2]):
            if stop - start > 1:
                ax.plot(Vector3d(circle[start:stop]), color="tab:cyan", linestyle="--", linewidth=1.0)


def _to_growth_frame(sample_axis: str) -> Rotation:
    """Rotation of sample vectors that brings the growth axis to +z (the centre of a pole figure)."""
    if sample_axis == "z":
        return Rotation.identity()
    if sample_axis == "x":
        return Rotation.from_axes_angles([0, 1, 0], -np.pi / 2)
    return Rotation.from_axes_angles([1, 0, 0], np.pi / 2)


def _axis_name(vector: np.ndarray) -> str:
    index = int(np.argmax(np.abs(vector)))
    return ("−" if vector[index] < 0 else "") + "xyz"[index]


def plot_growth_texture(grain_orientations: Orientation | np.ndarray, grain_area: Sequence[float], *,
                        sample_axis: str = "z", tolerance_deg: float = DEFAULT_TOLERANCE_DEG,
                        sigma_deg: float = 5.0, title: str | None = None,
                        path: str | os.PathLike[str] | None = None) -> Figure:
    """Growth-direction texture of a set of grains (one run, an ensemble, or an EBSD map).

    Top row: inverse pole figures of the growth direction — density count-weighted (each grain
    once) and area-weighted — with the grains as dots (size ∝ area, colour = IPF key) and the
    ``tolerance_deg`` class caps (dashed). Bottom row: {001}, {101}, {111} pole figures
    (area-weighted, upper hemisphere) viewed down the growth axis (centre = growth axis).

    Parameters
    ----------
    grain_orientations
        Orientations of the grains (orix or quaternions (n, 4)); concatenate runs for ensembles.
    grain_area
        Area (cells or µm²) of each grain; grains with area 0 are left out.
    sample_axis
        Growth axis in the sample frame.
    tolerance_deg
        Radius of the class caps drawn.
    sigma_deg
        Half-width σ of the von Mises–Fisher smoothing kernel, degrees.
    title
        Figure title.
    path
        If given, the figure is also saved there (atomically).
    """
    _orix_plot()  # registers the "ipf" and "stereographic" projections
    orientations = as_orientations(grain_orientations)
    area = np.asarray(grain_area, dtype=float).reshape(-1)
    if area.size != orientations.size:
        raise ValueError(f"grain_area has {area.size} entries for {orientations.size} orientations")
    if not sigma_deg > 0:
        raise ValueError(f"sigma_deg must be > 0, got {sigma_deg}")
    keep = area > 0
    orientations, area = orientations[keep], area[keep]
    growth = growth_directions(orientations, sample_axis)
    colours = ipf_colours(orientations, sample_axis)
    fig = Figure(figsize=(12, 8.5), layout="constrained")
    grid = fig.add_gridspec(2, 6)
    panels = ((np.ones(area.size), f"growth direction ({sample_axis}), by grain count (n = {area.size})"),
              (area, f"growth direction ({sample_axis}), by area"))
    for column, (weights, label) in enumerate(panels):
        ax = fig.add_subplot(grid[0, 3 * column:3 * column + 3], projection="ipf",
                             symmetry=crystal_symmetry().laue, direction=Vector3d(SAMPLE_AXES[sample_axis]))
        ax.set_title(label, fontsize="medium", pad=16)
        if area.size:
            x, y, vectors = _plane_grid(ax, _density_step(sigma_deg))
            images, image_weights = _symmetric_images_near_triangle(growth, weights, sigma_deg)
            density = _kernel_density_mrd(vectors.reshape(-1, 3), images, image_weights, sigma_deg,
                                          weights.sum()).reshape(x.shape)
            _draw_density(ax, fig, x, y, density, _outline(ax, [POLE_DIRECTIONS[p] for p in POLES]))
            # Dots shrink for large sets so that they do not hide the density.
            scale = min(1.0, np.sqrt(150.0 / area.size))
            ax.scatter(Vector3d(growth), c=colours, s=scale * (8 + 60 * area / area.max()),
                       edgecolors="black", linewidths=0.4 * scale, zorder=5)
        _draw_caps(ax, tolerance_deg)
    to_growth = _to_growth_frame(sample_axis)
    plot_x = _axis_name((~to_growth * Vector3d.xvector()).data[0])
    plot_y = _axis_name((~to_growth * Vector3d.yvector()).data[0])
    phase = Phase(point_group=crystal_symmetry())
    for column, pole in enumerate(POLES):
        ax = fig.add_subplot(grid[1, 2 * column:2 * column + 2], projection="stereographic")
        ax.set_labels(plot_x, plot_y, None)
        label = f"{{{pole}}} pole figure, by area (centre: {sample_axis})"
        ax.set_title(label, fontsize="medium", pad=16)
        if area.size:
            family = Miller(uvw=POLE_DIRECTIONS[pole], phase=phase).symmetrise(unique=True).unit
            in_sample = to_growth * (~orientations).outer(Vector3d(family.data))
            data = in_sample.data.reshape(-1, 3)
            weights = np.repeat(area, family.size)
            # The family holds ±v: only poles near the upper hemisphere reach the plotted disk.
            near = data[:, 2] >= -np.sin(np.radians(4.0 * sigma_deg))
            x, y, vectors = _plane_grid(ax, _density_step(sigma_deg))
            inside = np.hypot(x, y) <= 1.0 + 2 * _density_step(sigma_deg)
            density = np.zeros(x.shape)  # nodes beyond the rim are clipped away
            density[inside] = _kernel_density_mrd(vectors[inside], data[near], weights[near], sigma_deg,
                                                  weights.sum())
            _draw_density(ax, fig, x, y, density, _outline(ax, None))
    if title:
        fig.suptitle(title)
    if path is not None:
        save_figure(fig, Path(path))
    return fig


# --- A run's figures ------------------------------------------------------------------------------


def _run_label(ds) -> str:
    attrs = ds.attrs
    return (f"{attrs.get('preset', 'run')}: {attrs.get('metal', '')}, {attrs.get('temperature_C', '')} °C, "
            f"seed {attrs.get('seed', '')}, {attrs.get('orientation_distribution', 'labels')} orientations")


def plot_run_ipf_map(ds, time_index: int = -1, path: str | os.PathLike[str] | None = None) -> Figure:
    """A run's grain map at one snapshot (default: the last) in the IPF key along the growth axis.

    ``ds`` is a run result (``result.nc``) with ``grain_quaternion``; the growth axis is the
    grid's height y (sample z); boundaries across the periodic x edge are drawn.
    """
    grain_map = ds["grain"].values[time_index]
    spacing = (grid_step(ds["y"].values), grid_step(ds["x"].values))
    time_s = float(ds["time"].values[time_index])
    return plot_ipf_grain_map(grain_map, grain_quaternions(ds), spacing=spacing, periodic_x=True,
                              title=f"{_run_label(ds)}, t = {time_s:g} s", path=path)


def plot_run_growth_texture(ds, time_index: int = -1, path: str | os.PathLike[str] | None = None) -> Figure:
    """Growth-direction texture (IPF densities by count and area, pole figures) of the grains
    present in one snapshot of a run (default: the last), with the run's class tolerance."""
    grain_map = ds["grain"].values[time_index]
    quaternions = grain_quaternions(ds)
    area = np.bincount(grain_map[grain_map >= 0].ravel(), minlength=len(quaternions))
    time_s = float(ds["time"].values[time_index])
    return plot_growth_texture(quaternions, area, tolerance_deg=class_tolerance_deg(ds),
                               title=f"{_run_label(ds)}, grains at t = {time_s:g} s", path=path)

