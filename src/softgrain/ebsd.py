"""EBSD-like texture statistics of grain maps, simulated or measured, and reading of EBSD files.

One function, :func:`grain_texture`, turns a grain map (integer labels, −1 = no grain) and one
orientation per grain into the statistics EBSD papers report along the growth direction: the
number of grains, and the count and area fractions of "001", "101", "111" (growth direction
within a tolerance, default 15°, of ⟨001⟩/⟨101⟩/⟨111⟩) and "other"; with the per-grain growth
direction and misorientation to the nearest pole. A simulation (row 0 at the substrate, growth
along the rows, i.e. sample z) and a measured map use the same function, so they are comparable.

Measured maps (:func:`analyse_ebsd`): .ang (EDAX/TSL), .ctf (Oxford/HKL) and orix's HDF5 (.h5) are
read with :func:`orix.io.load`; grains are segmented by a flood fill over the map's four
neighbours joining pixels whose symmetry-reduced (m-3m) misorientation is below a threshold
(default 10°, the default of MTEX's ``calcGrains``); grains smaller than a minimum number of pixels
(default 5) are dropped from the statistics (noise, mis-indexed points). A grain's orientation is
the mean of its pixels' quaternions after moving each to the symmetry equivalent nearest the
grain's first pixel.

Sample frame: the growth direction is a sample axis, "z" (the map normal: plan-view maps of a
film's top surface; default), "x" or "y" (cross-sections), in the frame of the Euler angles as
stored — orix applies no vendor frame conversion; vendors' frames differ by rotations about z, so
"z" is unaffected and "x"/"y" follow the acquisition software's convention.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from orix.quaternion import Orientation, Rotation
from orix.quaternion.symmetry import Oh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from softgrain.errors import ParameterError, UserInputError
from softgrain.physics.orientations import (
    CLASSES,
    DEFAULT_TOLERANCE_DEG,
    SAMPLE_AXES,
    as_orientations,
    classify,
    growth_directions,
    nearest_pole,
    quaternions,
)

DEFAULT_MISORIENTATION_THRESHOLD_DEG = 10.0
"""Grain boundary threshold: neighbours misoriented by less belong to one grain (MTEX's default)."""

DEFAULT_MIN_GRAIN_SIZE_PX = 5
"""Grains with fewer pixels are dropped from the statistics as noise / mis-indexing."""

EBSD_SUFFIXES = (".ang", ".ctf", ".h5", ".hdf5")

# Pixel pairs per chunk when computing neighbour misorientations (bounds memory to ~100 MB).
_PAIRS_PER_CHUNK = 200_000


class EBSDFileError(UserInputError):
    """An EBSD file cannot be read or used; the one-line message names the file."""


# --- Texture statistics of a grain map --------------------------------------------------------


def _nan_to_none(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class GrainTexture:
    """EBSD-like statistics of the grains of a map (see :func:`grain_texture`).

    Per-grain arrays are indexed by grain id (0 … n_grains − 1 of the input orientations); grains
    absent from the window have ``grain_area`` 0 and are not counted.
    """

    tolerance_deg: float
    grains: int
    count_fraction: dict[str, float]
    area_fraction: dict[str, float]
    grain_area: np.ndarray
    grain_class: np.ndarray
    growth_direction: np.ndarray
    nearest_pole: np.ndarray
    misorientation_deg: np.ndarray
    counted: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: ``grains``, ``count_fraction``, ``area_fraction`` (each over
        "001", "101", "111", "other"; null where no grain), ``tolerance_deg``."""
        return {
            "grains": int(self.grains),
            "count_fraction": {c: _nan_to_none(v) for c, v in self.count_fraction.items()},
            "area_fraction": {c: _nan_to_none(v) for c, v in self.area_fraction.items()},
            "tolerance_deg": float(self.tolerance_deg),
        }


def grain_texture(grain_map: np.ndarray, grain_orientations: Orientation | np.ndarray, *,
                  rows: tuple[int, int] | None = None, tolerance_deg: float = DEFAULT_TOLERANCE_DEG,
                  sample_axis: str = "z", min_cells: int = 1) -> GrainTexture:
    """Count and area fractions of the EBSD-like classes in a grain map (optionally a height window).

    Parameters
    ----------
    grain_map
        Integer array (any shape; (ny, nx) with row 0 at the substrate for a simulation) of grain
        ids, −1 where there is no grain.
    grain_orientations
        One orientation per grain id: orix orientations or quaternions (n_grains, 4).
    rows
        Half-open window ``(first, stop)`` of rows (axis 0) to count in, e.g. the bottom 20 µm;
        None = the whole map.
    tolerance_deg
        Class tolerance around each pole (default 15°).
    sample_axis
        Sample axis of growth: "z" for softgrain runs and plan-view EBSD.
    min_cells
        A grain counts (in both fractions) only with at least this many cells in the window.

    Returns
    -------
    GrainTexture
        Fractions are NaN when no grain is counted.

    Raises
    ------
    ValueError
        If a grain id exceeds the orientations given, or the window or ``min_cells`` is invalid.
    """
    grain_map = np.asarray(grain_map)
    if not np.issubdtype(grain_map.dtype, np.integer):
        raise ValueError(f"grain_map must hold integer grain ids, got dtype {grain_map.dtype}")
    orientations = as_orientations(grain_orientations)
    n_grains = orientations.size
    if min_cells < 1:
        raise ValueError(f"min_cells must be >= 1, got {min_cells}")
    if rows is not None:
        first, stop = (int(r) for r in rows)
        if grain_map.ndim < 1 or not 0 <= first < stop <= grain_map.shape[0]:
            raise ValueError(f"rows window {rows} must satisfy 0 <= first < stop <= {grain_map.shape[0]}")
        grain_map = grain_map[first:stop]
    occupied = grain_map[grain_map >= 0]
    if occupied.size and occupied.max() >= n_grains:
        raise ValueError(f"grain_map refers to grain {int(occupied.max())} but only {n_grains} "
                         "orientations were given")
    area = np.bincount(occupied.ravel(), minlength=n_grains).astype(np.int64)
    directions = growth_directions(orientations, sample_axis) if n_grains else np.zeros((0, 3))
    grain_class = classify(directions, tolerance_deg) if n_grains else np.zeros(0, np.int64)
    pole, angle = nearest_pole(directions) if n_grains else (np.zeros(0, np.int64), np.zeros(0))
    counted = area >= min_cells
    class_counts = np.bincount(grain_class[counted], minlength=len(CLASSES)).astype(float)
    class_area = np.bincount(grain_class[counted], weights=area[counted], minlength=len(CLASSES))
    n_counted = int(counted.sum())
    total_area = float(class_area.sum())
    count_fraction = class_counts / n_counted if n_counted else np.full(len(CLASSES), np.nan)
    area_fraction = class_area / total_area if total_area else np.full(len(CLASSES), np.nan)
    return GrainTexture(
        tolerance_deg=float(tolerance_deg),
        grains=n_counted,
        count_fraction=dict(zip(CLASSES, count_fraction.tolist())),
        area_fraction=dict(zip(CLASSES, area_fraction.tolist())),
        grain_area=area,
        grain_class=grain_class,
        growth_direction=directions,
        nearest_pole=pole,
        misorientation_deg=angle,
        counted=counted,
    )


def class_map(grain_map: np.ndarray, grain_class: np.ndarray) -> np.ndarray:
    """Class index (into :data:`~softgrain.physics.orientations.CLASSES`) per cell; −1 = no grain."""
    grain_map = np.asarray(grain_map)
    out = np.full(grain_map.shape, -1, dtype=np.int64)
    occupied = grain_map >= 0
    out[occupied] = np.asarray(grain_class)[grain_map[occupied]]
    return out


# --- Segmentation -------------------------------------------------------------------------------


def neighbour_misorientation_deg(orientation_map: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetry-reduced (m-3m) misorientation angles to the right and lower neighbours (degrees).

    Returns ``(right, down)`` of shapes (ny, nx − 1) and (ny − 1, nx); NaN where a pixel of the
    pair is not valid.
    """
    out = []
    for first, second in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                          ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        a, b = orientation_map[first], orientation_map[second]
        both = valid[first] & valid[second]
        angles = np.full(both.shape, np.nan)
        qa, qb = a[both], b[both]
        values = np.empty(len(qa))
        for start in range(0, len(qa), _PAIRS_PER_CHUNK):
            stop = start + _PAIRS_PER_CHUNK
            values[start:stop] = Orientation(qa[start:stop], symmetry=Oh).angle_with(
                Orientation(qb[start:stop], symmetry=Oh), degrees=True)
        angles[both] = values
        out.append(angles)
    return out[0], out[1]


def _mean_orientations(q: np.ndarray, labels: np.ndarray, n_grains: int) -> np.ndarray:
    """Mean quaternion of each grain with cubic symmetry (pixels moved next to the first pixel)."""
    _, first = np.unique(labels, return_index=True)
    reference = q[first][labels]
    symmetry = Rotation(Oh.proper_subgroup.data)
    total = np.zeros((n_grains, 4))
    chunk = _PAIRS_PER_CHUNK // symmetry.size
    for start in range(0, len(q), chunk):
        pixels = q[start:start + chunk]
        # Equivalents s·q of each pixel (left multiplication: crystal symmetry), shape (24, m, 4).
        candidates = symmetry.outer(Rotation(pixels)).data
        dots = np.einsum("smk,mk->sm", candidates, reference[start:start + chunk])
        best = np.argmax(np.abs(dots), axis=0)
        columns = np.arange(len(pixels))
        chosen = candidates[best, columns] * np.sign(dots[best, columns])[:, None]
        np.add.at(total, labels[start:start + chunk], chosen)
    return total / np.linalg.norm(total, axis=1, keepdims=True)


def segment_grains(orientation_map: np.ndarray, valid: np.ndarray, *,
                   threshold_deg: float = DEFAULT_MISORIENTATION_THRESHOLD_DEG,
                   min_size_px: int = DEFAULT_MIN_GRAIN_SIZE_PX) -> tuple[np.ndarray, np.ndarray]:
    """Grains of an orientation map: connected regions whose neighbours differ by < threshold.

    Parameters
    ----------
    orientation_map
        Quaternions (ny, nx, 4).
    valid
        Boolean (ny, nx): indexed points of the analysed phase.
    threshold_deg
        Misorientation below which four-neighbours belong to the same grain.
    min_size_px
        Grains with fewer pixels get label −1.

    Returns
    -------
    labels : ndarray of int, (ny, nx)
        Grain id per pixel, −1 for invalid pixels and dropped small grains; ids are 0 … n − 1,
        ordered by first pixel in row-major order.
    grain_quaternions : ndarray, (n, 4)
        Mean orientation of each grain.
    """
    if not 0 < threshold_deg < 63:
        raise ValueError(f"threshold_deg must be in (0, 63) (m-3m misorientations are ≤ 62.8°), "
                         f"got {threshold_deg}")
    if min_size_px < 1:
        raise ValueError(f"min_size_px must be >= 1, got {min_size_px}")
    ny, nx = valid.shape
    index = np.arange(ny * nx).reshape(ny, nx)
    right, down = neighbour_misorientation_deg(orientation_map, valid)
    joined_right = np.nan_to_num(right, nan=np.inf) < threshold_deg
    joined_down = np.nan_to_num(down, nan=np.inf) < threshold_deg
    rows = np.concatenate([index[:, :-1][joined_right], index[:-1, :][joined_down]])
    cols = np.concatenate([index[:, 1:][joined_right], index[1:, :][joined_down]])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(ny * nx, ny * nx))
    _, component = connected_components(graph, directed=False)
    component = component.reshape(ny, nx)
    component[~valid] = -1
    sizes = np.bincount(component[valid], minlength=component.max() + 1)
    keep = sizes >= min_size_px
    kept_ids = np.flatnonzero(keep)
    # Renumber the kept components 0 … n − 1 in order of their first pixel.
    order = np.full(len(sizes), -1, dtype=np.int64)
    flat = component.ravel()
    first_pixel = np.full(len(sizes), ny * nx)
    np.minimum.at(first_pixel, flat[flat >= 0], np.flatnonzero(flat >= 0))
    ranked = kept_ids[np.argsort(first_pixel[kept_ids], kind="stable")]
    order[ranked] = np.arange(len(ranked))
    labels = np.where(component >= 0, order[np.maximum(component, 0)], -1)
    if not len(ranked):
        return labels, np.zeros((0, 4))
    inside = labels >= 0
    means = _mean_orientations(orientation_map[inside], labels[inside], len(ranked))
    return labels, means


# --- Reading EBSD files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EBSDMap:
    """An EBSD map on a square grid, reduced to what the texture statistics need."""

    path: Path
    phase: str
    point_group: str
    orientations: np.ndarray  # (ny, nx, 4) quaternions; identity where not valid
    valid: np.ndarray  # (ny, nx) indexed points of the analysed phase
    step: tuple[float, float]  # (dy, dx)
    scan_unit: str


def _fail(path: Path, message: str) -> EBSDFileError:
    return EBSDFileError(f"{path}: {' '.join(str(message).split())}")


def _header_lines(path: Path, comment: str | None, stop: str | None, limit: int = 1000) -> list[str]:
    lines = []
    with open(path, encoding="utf-8", errors="replace") as stream:
        for _, line in zip(range(limit), stream):
            if comment is not None and not line.startswith(comment):
                break
            if stop is not None and line.startswith(stop):
                break
            lines.append(line.strip().lstrip(comment or "").strip())
    return lines


_HEADER_ENTRY = re.compile(r"^(\w+)\s*[:\t ]\s*(.*)$")


def _header_value(lines: list[str], key: str) -> str | None:
    """Value of ``KEY: value`` (.ang) or ``Key<TAB>value`` (.ctf) header entries, else None."""
    for line in lines:
        match = _HEADER_ENTRY.match(line)
        if match and match.group(1).upper() == key.upper():
            return match.group(2).strip()
    return None


def _expected_points(path: Path) -> int | None:
    """Points the header of a text file promises (NROWS × NCOLS or XCells × YCells), if stated."""
    suffix = path.suffix.lower()
    if suffix == ".ang":
        header = _header_lines(path, "#", None)
        grid = _header_value(header, "GRID")
        if grid is not None and grid.lower().startswith("hex"):
            raise _fail(path, "hexagonal-grid .ang files are not supported; resample to a square "
                              "grid first (e.g. in OIM Analysis or MTEX)")
        n_rows, n_cols = _header_value(header, "NROWS"), _header_value(header, "NCOLS_ODD")
    elif suffix == ".ctf":
        header = _header_lines(path, None, "Phase\tX\tY")
        n_rows, n_cols = _header_value(header, "YCells"), _header_value(header, "XCells")
    else:
        return None
    try:
        return int(n_rows) * int(n_cols) if n_rows and n_cols else None
    except ValueError:
        raise _fail(path, f"header grid size is not a number (rows {n_rows!r}, columns {n_cols!r})") from None


def read_ebsd(path: str | Path, *, phase: str | None = None) -> EBSDMap:
    """Read an EBSD map (.ang, .ctf, orix .h5) with orix and check it can be analysed.

    Parameters
    ----------
    path
        File to read.
    phase
        Name of the phase to analyse; needed only when several phases are indexed.

    Raises
    ------
    EBSDFileError
        One line naming the file: missing, unknown format, unreadable or truncated, hexagonal
        grid, no indexed points, several phases without ``phase``, or a phase that is not cubic
        m-3m (Li, Na, K are bcc).
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "no such file")
    if path.suffix.lower() not in EBSD_SUFFIXES:
        raise _fail(path, f"unknown EBSD format {path.suffix!r}; use one of {', '.join(EBSD_SUFFIXES)}")
    if path.stat().st_size == 0:
        raise _fail(path, "empty file")
    expected = _expected_points(path)
    # Imported here, not at module level: orix.io pulls in h5py and diffpy (~3 s) that only
    # reading a file needs.
    from orix import io as orix_io

    try:
        # orix prints notes about phase names to stdout; keep stdout clean for --json output.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            xmap = orix_io.load(str(path))
    except Exception as error:  # orix's readers raise many types (ValueError, OSError, IndexError, KeyError…)
        raise _fail(path, f"cannot read as EBSD map ({type(error).__name__}: {error})") from error
    size = int(xmap.size)
    if size == 0:
        raise _fail(path, "no data points")
    if expected is not None and size != expected:
        raise _fail(path, f"truncated: header promises {expected} points, file has {size}")
    shape = tuple(int(s) for s in xmap.shape)
    if len(shape) != 2 or shape[0] * shape[1] != size:
        raise _fail(path, f"not a complete 2-D square-grid map ({size} points for a grid of shape {shape})")
    indexed = np.asarray(xmap.is_indexed)
    if not indexed.any():
        raise _fail(path, "no indexed points")
    phase_ids = np.asarray(xmap.phase_id)
    present = sorted(int(i) for i in np.unique(phase_ids[indexed]))
    names = {i: xmap.phases[i].name for i in present}
    if phase is not None:
        chosen = [i for i in present if names[i] == phase]
        if not chosen:
            raise _fail(path, f"no indexed points of phase {phase!r}; indexed phases: {sorted(names.values())}")
        phase_id = chosen[0]
    elif len(present) == 1:
        phase_id = present[0]
    else:
        raise _fail(path, f"several indexed phases {sorted(names.values())}; choose one with phase=")
    point_group = xmap.phases[phase_id].point_group
    if point_group is None:
        raise _fail(path, f"phase {names[phase_id]!r} has no symmetry in the file; need cubic m-3m")
    if point_group.laue.name != "m-3m":
        raise _fail(path, f"phase {names[phase_id]!r} has point group {point_group.name} (Laue "
                          f"{point_group.laue.name}), not cubic m-3m as bcc Li, Na, K")
    rotations = xmap.rotations
    if rotations.ndim > 1:  # several matches per point: the first is the best
        rotations = rotations[:, 0]
    data = rotations.data.reshape(-1, 4)
    rows, cols = np.asarray(xmap.row).reshape(-1), np.asarray(xmap.col).reshape(-1)
    grid = np.zeros(shape + (4,))
    grid[..., 0] = 1.0
    valid = np.zeros(shape, dtype=bool)
    usable = indexed & (phase_ids == phase_id) & np.all(np.isfinite(data), axis=1)
    grid[rows[usable], cols[usable]] = data[usable]
    valid[rows[usable], cols[usable]] = True
    if not valid.any():
        raise _fail(path, "no indexed points")
    return EBSDMap(path=path, phase=names[phase_id], point_group=point_group.name,
                   orientations=grid, valid=valid, step=(float(xmap.dy), float(xmap.dx)),
                   scan_unit=str(xmap.scan_unit))


@dataclass(frozen=True)
class EBSDAnalysis:
    """Grains and texture statistics of one EBSD map (see :func:`analyse_ebsd`)."""

    ebsd: EBSDMap
    growth_direction: str
    threshold_deg: float
    min_size_px: int
    labels: np.ndarray
    grain_quaternions: np.ndarray
    texture: GrainTexture

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: ``grains``, ``count_fraction``, ``area_fraction``, ``tolerance_deg``,
        and the file, phase, growth direction, segmentation settings and map coverage."""
        valid = int(self.ebsd.valid.sum())
        return {
            **self.texture.to_dict(),
            "file": str(self.ebsd.path),
            "phase": self.ebsd.phase,
            "growth_direction": self.growth_direction,
            "misorientation_threshold_deg": self.threshold_deg,
            "min_grain_size_px": self.min_size_px,
            "map_shape": list(self.labels.shape),
            "indexed_fraction": valid / self.labels.size,
            "segmented_fraction": float((self.labels >= 0).sum() / valid) if valid else 0.0,
        }


def analyse_ebsd(path: str | Path, *, growth_direction: str = "z",
                 tolerance_deg: float = DEFAULT_TOLERANCE_DEG,
                 threshold_deg: float = DEFAULT_MISORIENTATION_THRESHOLD_DEG,
                 min_size_px: int = DEFAULT_MIN_GRAIN_SIZE_PX, phase: str | None = None) -> EBSDAnalysis:
    """Read an EBSD file, segment its grains and classify them along the growth direction.

    Parameters
    ----------
    path
        .ang, .ctf or orix .h5 file.
    growth_direction
        Sample axis of growth: "z" (map normal; default), "x" or "y".
    tolerance_deg
        Class tolerance around ⟨001⟩/⟨101⟩/⟨111⟩ (default 15°).
    threshold_deg
        Grain boundary misorientation threshold (default 10°).
    min_size_px
        Smallest grain counted, pixels (default 5).
    phase
        Phase to analyse when the map indexes several.

    Raises
    ------
    EBSDFileError
        See :func:`read_ebsd`; also when no grain reaches ``min_size_px``.
    ParameterError
        For an unknown growth direction or an invalid tolerance, threshold or size (the message
        names the parameter).
    """
    if growth_direction not in SAMPLE_AXES:
        raise ParameterError("growth_direction", f"must be one of {list(SAMPLE_AXES)}, got {growth_direction!r}")
    if not (math.isfinite(tolerance_deg) and 0 < tolerance_deg <= 90):
        raise ParameterError("tolerance_deg", f"must be in (0, 90] degrees, got {tolerance_deg}")
    if not (math.isfinite(threshold_deg) and 0 < threshold_deg < 63):
        raise ParameterError("threshold_deg", f"must be in (0, 63) degrees, got {threshold_deg}")
    if int(min_size_px) != min_size_px or min_size_px < 1:
        raise ParameterError("min_size_px", f"must be an integer >= 1, got {min_size_px}")
    ebsd = read_ebsd(path, phase=phase)
    labels, grain_q = segment_grains(ebsd.orientations, ebsd.valid, threshold_deg=threshold_deg,
                                     min_size_px=int(min_size_px))
    if len(grain_q) == 0:
        raise _fail(ebsd.path, f"no grain of at least {min_size_px} pixels at a {threshold_deg}° threshold")
    texture = grain_texture(labels, grain_q, tolerance_deg=tolerance_deg, sample_axis=growth_direction)
    return EBSDAnalysis(ebsd=ebsd, growth_direction=growth_direction, threshold_deg=float(threshold_deg),
                        min_size_px=int(min_size_px), labels=labels, grain_quaternions=quaternions(grain_q),
                        texture=texture)
