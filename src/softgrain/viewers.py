"""Looking at a finished (or partial) run: animation, ParaView export, summary table.

All three read the ``result.nc`` that ``softgrain run`` writes into its output folder:

- :func:`write_animation` — the orientation map at every stored snapshot as an animated GIF
  (imageio + Pillow) or, if the optional ``imageio-ffmpeg`` plugin is installed, an MP4. Set
  ``run.snapshot_times_s`` densely for a smooth animation: only stored snapshots can be shown.
- :func:`export_vtk` — one VTK XML unstructured grid (``.vtu``, written by meshio) per snapshot
  with cell data ``grain``, ``orientation`` (0 = (001), 1 = (101), 2 = (111), −1 = no grain),
  ``surface_energy_J_m2`` and ``barrier_eV`` (NaN where no grain), plus a ``.pvd`` collection
  that ParaView opens as a time series.
- :func:`summary_table` — the texture at each snapshot and the run's provenance as a rich table.

Colours are the colour-blind-safe orientation palette of :mod:`softgrain.plots`.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import xarray as xr

from softgrain import io
from softgrain.errors import UserInputError
from softgrain.materials.metals import ORIENTATIONS

logger = logging.getLogger(__name__)

ANIMATION_FILE = "orientation.gif"
VTK_FOLDER = "vtk"
PVD_FILE = "grain_maps.pvd"


def load_result(folder: str | Path) -> xr.Dataset:
    """The ``result.nc`` of a run folder, fully loaded.

    Raises
    ------
    UserInputError
        If the folder has no readable result (the message names the path).
    """
    from softgrain.outputs import RESULT_FILE

    path = Path(folder) / RESULT_FILE
    if not Path(folder).is_dir():
        raise UserInputError(f"{folder}: no such run folder")
    if not path.is_file():
        raise UserInputError(f"{path}: no result file (write one with: softgrain run … --out {folder})")
    try:
        ds = io.read_netcdf(path)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path}: cannot read the result: {exc}") from None
    missing = [name for name in ("grain", "grain_orientation") if name not in ds]
    if missing:
        raise UserInputError(f"{path}: not a softgrain result (missing {', '.join(missing)})")
    return ds


def _orientation_index(ds: xr.Dataset) -> np.ndarray:
    return np.array([ORIENTATIONS.index(str(o)) for o in ds["grain_orientation"].values], dtype=np.int32)


def _per_cell(grain_map: np.ndarray, per_grain: np.ndarray, empty) -> np.ndarray:
    out = np.full(grain_map.shape, empty, dtype=np.result_type(per_grain, type(empty)))
    occupied = grain_map >= 0
    out[occupied] = per_grain[grain_map[occupied]]
    return out


# ---------------------------------------------------------------------------------------------
# Animation
# ---------------------------------------------------------------------------------------------

def orientation_frames(ds: xr.Dataset, width_in: float = 8.0, dpi: int = 100) -> np.ndarray:
    """RGB frames (n_snapshots, height, width, 3) of the orientation map, one per snapshot.

    Each frame shows the map (black = no grain / not deposited), the time, and a legend keyed
    to (001)/(101)/(111) in :data:`softgrain.plots.ORIENTATION_COLOURS`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from softgrain.analysis import orientation_map
    from softgrain.plots import ORIENTATION_COLOURS, orientation_cmap

    if ds.sizes.get("time", 0) == 0:
        raise UserInputError("the result holds no snapshot to animate")
    orientation = _orientation_index(ds)
    x, y = ds["x"].values, ds["y"].values
    step_x = float(x[1] - x[0]) if x.size > 1 else 1.0
    step_y = float(y[1] - y[0]) if y.size > 1 else 1.0
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
    fig.legend(handles=[Patch(color=ORIENTATION_COLOURS[o], label=f"({o})") for o in ORIENTATIONS],
               loc="outside lower center", ncol=len(ORIENTATIONS), frameon=False)
    label = f"{ds.attrs.get('preset', '')}: {ds.attrs.get('metal', '')}, {ds.attrs.get('temperature_C', '')} °C"
    frames = []
    for t, grain_map in zip(ds["time"].values, ds["grain"].values):
        image.set_data(orientation_map(grain_map, orientation))
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
    UserInputError
        Unknown extension, MP4 without the plugin, non-positive ``fps``, no snapshots.
    """
    import imageio.v3 as iio

    target = Path(path)
    suffix = target.suffix.lower()
    if not (np.isfinite(fps) and fps > 0):
        raise UserInputError(f"--fps {fps}: allowed: frames per second > 0")
    if suffix not in (".gif", ".mp4"):
        raise UserInputError(f"--out {target}: unknown animation format {target.suffix!r}; allowed: .gif, .mp4")
    if suffix == ".mp4" and not mp4_available():
        raise UserInputError(f"--out {target}: writing MP4 needs the imageio-ffmpeg plugin "
                             "(pip install imageio-ffmpeg); or use a .gif")
    if not target.parent.is_dir():
        raise UserInputError(f"--out {target}: no folder {target.parent}")
    frames = orientation_frames(ds)
    with io.atomic_path(target, suffix=suffix) as tmp:
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
    step_x = float(x[1] - x[0]) if x.size > 1 else 1.0
    step_y = float(y[1] - y[0]) if y.size > 1 else 1.0
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
    return {
        "grain": grain_map.astype(np.int32).ravel(),
        "orientation": _per_cell(grain_map, _orientation_index(ds), np.int32(-1)).astype(np.int32).ravel(),
        "surface_energy_J_m2": _per_cell(grain_map, ds["grain_surface_energy"].values.astype(float), np.nan).ravel(),
        "barrier_eV": _per_cell(grain_map, ds["grain_barrier"].values.astype(float), np.nan).ravel(),
    }


def export_vtk(ds: xr.Dataset, folder: str | Path) -> list[Path]:
    """Write one ``.vtu`` per snapshot and a ``.pvd`` time series into ``folder`` (atomically).

    Returns
    -------
    list of pathlib.Path
        The ``.vtu`` files, then the ``.pvd`` file.
    """
    import meshio

    if ds.sizes.get("time", 0) == 0:
        raise UserInputError("the result holds no snapshot to export")
    folder = Path(folder)
    points, quads = grid_mesh(ds)
    written = []
    for k, step in enumerate(ds["step"].values):
        mesh = meshio.Mesh(points, [("quad", quads)],
                           cell_data={name: [values] for name, values in snapshot_cell_data(ds, k).items()})
        path = folder / f"grain_map_{int(step):09d}.vtu"
        with io.atomic_path(path, suffix=".vtu") as tmp:
            meshio.write(tmp, mesh, file_format="vtu")
        written.append(path)
    entries = "\n".join(
        f'    <DataSet timestep="{float(t)!r}" part="0" file={quoteattr(p.name)}/>'
        for t, p in zip(ds["time"].values, written))
    pvd = ('<?xml version="1.0"?>\n'
           '<VTKFile type="Collection" version="0.1" byte_order="LittleEndian">\n'
           f"  <Collection>\n{entries}\n  </Collection>\n</VTKFile>\n")
    written.append(io.atomic_write_text(folder / PVD_FILE, pvd))
    return written


# ---------------------------------------------------------------------------------------------
# Summary table
# ---------------------------------------------------------------------------------------------

_PROVENANCE_KEYS = ("preset", "metal", "temperature_C", "seed", "status", "last_time_s",
                    "started_at", "finished_at", "resumed_at", "wall_time_s", "softgrain_version",
                    "git_commit", "git_dirty", "platform", "command")


def summary_table(ds: xr.Dataset, title: str = ""):
    """(texture table, provenance table) as :class:`rich.table.Table` objects."""
    from rich.table import Table

    from softgrain.analysis import texture

    tex = texture(ds)
    table = Table(title=title or f"{ds.attrs.get('preset', 'run')}: texture by snapshot")
    for column in ("t (s)", "step", *(f"({o})" for o in ORIENTATIONS), "grains",
                   "surface grains", "surface width (µm)"):
        table.add_column(column, justify="right")
    for k, t in enumerate(tex["time"].values):
        fractions = [f"{v:.1%}" if np.isfinite(v) else "–" for v in tex["area_fraction"].values[k]]
        width = float(tex["surface_grain_width_um"].values[k])
        table.add_row(f"{float(t):g}", str(int(ds["step"].values[k])), *fractions,
                      str(int(tex["grain_count"].values[k])),
                      str(int(tex["surface_grain_count"].values[k])),
                      f"{width:.3g}" if np.isfinite(width) else "–")
    provenance = Table(title="provenance", show_header=False)
    provenance.add_column("key", style="bold")
    provenance.add_column("value")
    for key in _PROVENANCE_KEYS:
        if key in ds.attrs and str(ds.attrs[key]) != "":
            provenance.add_row(key, str(ds.attrs[key]))
    return table, provenance
