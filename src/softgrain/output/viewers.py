"""Looking at a finished (or partial) run: animation and ParaView export.

Both read the ``result.nc`` that a run writes into its output folder
(:func:`softgrain.output.results.load_result`):

- :func:`write_animation` — the orientation map at every stored snapshot as an animated GIF
  (imageio + Pillow) or, if the optional ``imageio-ffmpeg`` plugin is installed, an MP4. Set
  ``run.snapshot_times_s`` densely for a smooth animation: only stored snapshots can be shown.
- :func:`export_vtk` — one VTK XML unstructured grid (``.vtu``, written by meshio) per snapshot
  with cell data ``grain``, ``orientation`` (0 = (001), 1 = (101), 2 = (111), −1 = no grain),
  ``surface_energy_J_m2`` and ``barrier_eV`` (NaN where no grain) and, for results with crystal
  orientations, ``ipf_colour`` (RGB 0–255 of orix's TSL IPF key along the growth direction,
  black where no grain; in ParaView colour by it with "Map Scalars" off), ``grain_class``
  (0/1/2 = within the class tolerance of ⟨001⟩/⟨101⟩/⟨111⟩, 3 = other, −1 = no grain) and
  ``pole_misorientation_deg``, plus a ``.pvd`` collection that ParaView opens as a time series.

Colours are the colour-blind-safe orientation palette of :mod:`softgrain.output.plots`. The
texture table of a run is :func:`softgrain.report.run_tables`.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from xml.sax.saxutils import quoteattr

import imageio.v3 as iio
import meshio
import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from softgrain.errors import ParameterError, UserInputError
from softgrain.materials.metals import ORIENTATIONS
from softgrain.output.files import atomic_path, atomic_write_text
from softgrain.output.orientation_plots import ipf_colours
from softgrain.output.plots import draw_grain_boundaries, map_legend_handles, orientation_cmap
from softgrain.output.results import grain_quaternions, grid_step, orientation_index, orientation_map, per_cell
from softgrain.physics.orientations import CLASSES

logger = logging.getLogger(__name__)

ANIMATION_FILE = "orientation.gif"
VTK_FOLDER = "vtk"
PVD_FILE = "grain_maps.pvd"


# ---------------------------------------------------------------------------------------------
# Animation
# ---------------------------------------------------------------------------------------------

def orientation_frames(ds: xr.Dataset, width_in: float = 8.0, dpi: int = 100) -> np.ndarray:
    """RGB frames (n_snapshots, height, width, 3) of the orientation map, one per snapshot.

    Each frame shows the map with the boundaries between grains drawn as in the grain-map
    figure (grains of one orientation share a colour), black where nothing is deposited or no
    grain has φ ≥ 0.5, the time, and the legend of :func:`softgrain.output.plots.map_legend_handles`.
    """
    if ds.sizes.get("time", 0) == 0:
        raise UserInputError("the result holds no snapshot to animate")
    orientation = orientation_index(ds)
    x, y = ds["x"].values, ds["y"].values
    step_x, step_y = grid_step(x), grid_step(y)
    extent = [float(x[0]), float(x[-1]) + step_x, float(y[0]), float(y[-1]) + step_y]
    aspect = (extent[3] - extent[2]) / (extent[1] - extent[0])
    # Fixed size for every frame (no tight bounding box): video encoders need equal frames.
    fig = Figure(figsize=(width_in, width_in * aspect + 1.6), dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(np.full(ds["grain"].shape[1:], -1), origin="lower", extent=extent,
                      cmap=orientation_cmap(), vmin=-1.5, vmax=len(ORIENTATIONS) - 0.5,
                      interpolation="nearest")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("height (µm)")
    fig.legend(handles=map_legend_handles(), loc="outside lower center", ncol=5, frameon=False,
               fontsize="small")
    label = f"{ds.attrs.get('preset', '')}: {ds.attrs.get('metal', '')}, {ds.attrs.get('temperature_C', '')} °C"
    frames = []
    boundaries = None
    for t, grain_map in zip(ds["time"].values, ds["grain"].values):
        image.set_data(orientation_map(grain_map, orientation))
        if boundaries is not None:
            boundaries.remove()
        boundaries = draw_grain_boundaries(ax, grain_map, extent)
        fig.suptitle(f"{label}, t = {float(t):g} s")
        canvas.draw()
        frames.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return np.stack(frames)


def mp4_available() -> bool:
    """True if imageio can write MP4 (the optional ``imageio-ffmpeg`` plugin is installed)."""
    return importlib.util.find_spec("imageio_ffmpeg") is not None


def write_animation(ds: xr.Dataset, path: str | Path, fps: float = 4.0) -> Path:
    """Write the orientation map over time to ``path`` (.gif, or .mp4 with imageio-ffmpeg), atomically.

    Raises
    ------
    ParameterError
        Unknown extension, MP4 without the plugin, missing folder (``path``), non-positive
        ``fps``.
    UserInputError
        No snapshots.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if not (np.isfinite(fps) and fps > 0):
        raise ParameterError("fps", f"{fps}: allowed: frames per second > 0")
    if suffix not in (".gif", ".mp4"):
        raise ParameterError("path", f"{target}: unknown animation format {target.suffix!r}; allowed: .gif, .mp4")
    if suffix == ".mp4" and not mp4_available():
        raise ParameterError("path", f"{target}: writing MP4 needs the imageio-ffmpeg plugin "
                             "(pip install imageio-ffmpeg); or use a .gif")
    if not target.parent.is_dir():
        raise ParameterError("path", f"{target}: no folder {target.parent}")
    frames = orientation_frames(ds)
    with atomic_path(target, suffix=suffix) as tmp:
        if suffix == ".gif":
            # Pillow's GIF writer takes the frame duration in ms; loop=0 repeats for ever.
            iio.imwrite(tmp, frames, extension=".gif", duration=1000.0 / fps, loop=0)
        else:
            # Even sizes keep the common yuv420p encoders happy.
            even = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]
            iio.imwrite(tmp, even, extension=".mp4", fps=fps)
    logger.info("wrote %s (%d frames)", target, len(frames))
    return target


# ---------------------------------------------------------------------------------------------
# ParaView export
# ---------------------------------------------------------------------------------------------

def grid_mesh(ds: xr.Dataset):
    """Points and quad cells of the (ny, nx) grid in µm; cell k = row-major (y, x) index."""
    x, y = ds["x"].values.astype(float), ds["y"].values.astype(float)
    step_x, step_y = grid_step(x), grid_step(y)
    xe = np.append(x, x[-1] + step_x)
    ye = np.append(y, y[-1] + step_y)
    px, py = np.meshgrid(xe, ye)                      # (ny+1, nx+1) corner coordinates
    points = np.column_stack([px.ravel(), py.ravel(), np.zeros(px.size)])
    ny, nx = y.size, x.size
    corner = (np.arange(ny)[:, None] * (nx + 1) + np.arange(nx)[None, :]).ravel()
    quads = np.column_stack([corner, corner + 1, corner + nx + 2, corner + nx + 1]).astype(np.int64)
    return points, quads


def snapshot_cell_data(ds: xr.Dataset, index: int) -> dict[str, np.ndarray]:
    """Cell arrays of snapshot ``index`` (row-major over (y, x)) for the VTK export."""
    grain_map = ds["grain"].values[index]
    data = {
        "grain": grain_map.astype(np.int32).ravel(),
        "orientation": orientation_map(grain_map, orientation_index(ds)).ravel(),
        "surface_energy_J_m2": per_cell(grain_map, ds["grain_surface_energy"].values.astype(float), np.nan).ravel(),
        "barrier_eV": per_cell(grain_map, ds["grain_barrier"].values.astype(float), np.nan).ravel(),
    }
    if "grain_quaternion" in ds:
        rgb = np.round(255 * ipf_colours(grain_quaternions(ds))).astype(np.uint8)
        colour = np.zeros(grain_map.shape + (3,), dtype=np.uint8)  # black where no grain
        occupied = grain_map >= 0
        colour[occupied] = rgb[grain_map[occupied]]
        grain_class = np.array([CLASSES.index(str(c)) for c in ds["grain_class"].values], dtype=np.int32)
        data["ipf_colour"] = colour.reshape(-1, 3)
        data["grain_class"] = per_cell(grain_map, grain_class, np.int32(-1)).astype(np.int32).ravel()
        data["pole_misorientation_deg"] = per_cell(
            grain_map, ds["grain_pole_misorientation"].values.astype(float), np.nan).ravel()
    return data


def export_vtk(ds: xr.Dataset, folder: str | Path) -> list[Path]:
    """Write one ``.vtu`` per snapshot and a ``.pvd`` time series into ``folder`` (atomically).

    Returns
    -------
    list of pathlib.Path
        The ``.vtu`` files, then the ``.pvd`` file.
    """
    if ds.sizes.get("time", 0) == 0:
        raise UserInputError("the result holds no snapshot to export")
    folder = Path(folder)
    points, quads = grid_mesh(ds)
    written = []
    for k, step in enumerate(ds["step"].values):
        mesh = meshio.Mesh(points, [("quad", quads)],
                           cell_data={name: [values] for name, values in snapshot_cell_data(ds, k).items()})
        path = folder / f"grain_map_{int(step):09d}.vtu"
        with atomic_path(path, suffix=".vtu") as tmp:
            meshio.write(tmp, mesh, file_format="vtu")
        written.append(path)
    entries = "\n".join(
        f'    <DataSet timestep="{float(t)!r}" part="0" file={quoteattr(p.name)}/>'
        for t, p in zip(ds["time"].values, written))
    pvd = ('<?xml version="1.0"?>\n'
           '<VTKFile type="Collection" version="0.1" byte_order="LittleEndian">\n'
           f"  <Collection>\n{entries}\n  </Collection>\n</VTKFile>\n")
    written.append(atomic_write_text(folder / PVD_FILE, pvd))
    return written


__all__ = ["ANIMATION_FILE", "PVD_FILE", "VTK_FOLDER", "export_vtk", "grid_mesh", "mp4_available",
           "orientation_frames", "snapshot_cell_data", "write_animation"]
