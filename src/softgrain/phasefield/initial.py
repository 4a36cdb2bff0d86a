"""Initial conditions: nucleation on the substrate and analytic states for tests.

Nuclei sit at distinct random cells of the bottom ``rows`` rows (the substrate), each a disc of
``radius`` cells with a random orientation; overlapping discs are split between their nearest
centres. Everything is drawn from one ``numpy.random.Generator`` seeded by the configuration,
so a seed reproduces the nucleation exactly, and two runs that differ only in material data share
the same nuclei (as the paper's compared cases do).

Fair nucleation (issue 11)
--------------------------
With ``layer="columns"`` (the configuration's default) every cell of the nucleation layer — the
rows the discs touch — then belongs to the nucleus whose centre is nearest in x (periodic x, ties
to the lowest index): a Voronoi partition of the substrate. Islands that nucleate at once grow
until they meet, halfway between their centres; an unclaimed φ = 0 cell between two discs is not a
physical state of a deposit, and in the model it is a race — each grain invades φ = 0 at the
speed 2√(Lκα) of a front into an unstable state, which has nothing to do with which orientation
is favoured and which starves slow nuclei. ``layer="discs"`` keeps the discs only (softgrain up to
issue 10). ``min_spacing_cells`` keeps nucleus centres apart in x (random sequential placement
with the same seeded generator).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from softgrain.errors import ConfigError
from softgrain.materials.metals import ORIENTATIONS


@dataclass(frozen=True)
class Nucleation:
    """Initial grain map and the orientation of every grain.

    Attributes
    ----------
    labels : numpy.ndarray
        (ny, nx) int32, grain index or −1 where no grain is present.
    grain_orientation : numpy.ndarray
        (n,) int index into the list of orientations, one per grain.
    filled_rows : int
        Number of bottom rows touched by a nucleus (the initially deposited layer).
    """

    labels: np.ndarray
    grain_orientation: np.ndarray
    filled_rows: int


#: Restarts of the random sequential placement before ``min_spacing_cells`` is declared unattainable.
MAX_PLACEMENT_ATTEMPTS = 1000


def _periodic_distance(a: np.ndarray, b: np.ndarray, nx: int) -> np.ndarray:
    d = np.abs(a - b)
    return np.minimum(d, nx - d)


def _spaced_cells(rng: np.random.Generator, nx: int, rows: int, count: int,
                  min_spacing: float) -> np.ndarray:
    """``count`` distinct cells of the bottom ``rows`` rows whose x lie ≥ ``min_spacing`` apart.

    Random sequential placement: each nucleus is drawn uniformly from the cells still allowed by
    those already placed; when none is left (the placement jammed) everything is drawn again, up
    to :data:`MAX_PLACEMENT_ATTEMPTS` times.

    Raises
    ------
    ConfigError
        If no placement was found (the message names the key and what to lower).
    """
    x_of_cell = np.arange(nx * rows) % nx
    for _ in range(MAX_PLACEMENT_ATTEMPTS):
        allowed = np.ones(nx * rows, dtype=bool)
        cells = []
        for _ in range(count):
            candidates = np.flatnonzero(allowed)
            if candidates.size == 0:
                break
            cell = int(rng.choice(candidates))
            cells.append(cell)
            allowed &= _periodic_distance(x_of_cell, cell % nx, nx) >= min_spacing
        if len(cells) == count:
            return np.array(cells, dtype=np.int64)
    raise ConfigError(
        f"nucleation.min_spacing_cells = {min_spacing:g}: no placement of {count} nuclei that far "
        f"apart on {nx} columns found in {MAX_PLACEMENT_ATTEMPTS} random draws; lower "
        f"nucleation.min_spacing_cells or nucleation.count")


def columnar_layer(labels: np.ndarray, centre_x: np.ndarray, layer_rows: int) -> None:
    """Give every cell of rows < ``layer_rows`` to the nucleus whose centre is nearest in x.

    In place. Periodic x; ties go to the lowest grain index. ``centre_x`` are the drawn centre
    columns (not centroids of the labels, which are wrong for a disc that wraps around x = 0).
    """
    nx = labels.shape[1]
    if len(centre_x) == 0 or layer_rows <= 0:
        return
    distance = _periodic_distance(np.arange(nx)[None, :], np.asarray(centre_x)[:, None], nx)
    labels[:layer_rows, :] = distance.argmin(axis=0).astype(labels.dtype)[None, :]


def nucleate(shape: tuple[int, int], count: int, rows: int, radius: float, n_orientations: int,
             seed: int, allowed_orientations: np.ndarray | None = None,
             layer: str = "discs", min_spacing_cells: float = 0.0) -> Nucleation:
    """Place ``count`` nuclei of random orientation on the bottom ``rows`` rows of ``shape``.

    Parameters
    ----------
    shape : (ny, nx)
    count : int
        Number of nuclei; at most ``nx * rows`` (distinct cells).
    rows : int
        Thickness of the nucleation layer in cells.
    radius : float
        Disc radius in cells (periodic in x, clipped at the substrate).
    n_orientations : int
        Size of the orientation list that the returned indices refer to.
    seed : int
        Seed of the random generator.
    allowed_orientations : numpy.ndarray, optional
        Indices to draw orientations from (uniformly); all by default.
    layer : {"discs", "columns"}
        "discs": the discs only; "columns": then every cell of the nucleation layer (rows
        < ``filled_rows``) goes to the nucleus nearest in x (:func:`columnar_layer`; module
        docstring).
    min_spacing_cells : float
        Smallest periodic x distance between two centres; 0 keeps the plain draw (bit-identical
        to softgrain up to issue 10).
    """
    ny, nx = shape
    if count > nx * rows:
        raise ConfigError(f"nucleation.count = {count} exceeds the {nx * rows} bottom cells")
    if layer not in ("discs", "columns"):
        raise ConfigError(f"nucleation.layer = {layer!r}: not a permitted value; allowed: "
                          f"'columns', 'discs'")
    if count * min_spacing_cells > nx:
        raise ConfigError(f"nucleation.min_spacing_cells = {min_spacing_cells:g}: {count} nuclei "
                          f"cannot be that far apart on {nx} columns")
    rng = np.random.default_rng(seed)
    if min_spacing_cells > 0:
        cells = _spaced_cells(rng, nx, rows, count, min_spacing_cells)
    else:
        cells = rng.choice(nx * rows, size=count, replace=False)
    cy, cx = np.divmod(cells, nx)
    choices = np.arange(n_orientations) if allowed_orientations is None else np.asarray(allowed_orientations)
    orientation = rng.choice(choices, size=count).astype(np.int32)

    reach = int(np.ceil(radius))
    height = min(ny, rows + reach)
    yy, xx = np.mgrid[0:height, 0:nx]
    best = np.full((height, nx), np.inf)
    labels = np.full((ny, nx), -1, dtype=np.int32)
    for grain, (y0, x0) in enumerate(zip(cy, cx)):
        dx = np.abs(xx - x0)
        dx = np.minimum(dx, nx - dx)  # periodic in x
        dist2 = dx * dx + (yy - y0) ** 2
        claim = (dist2 <= radius * radius) & (dist2 < best)
        best[claim] = dist2[claim]
        labels[:height][claim] = grain
    filled = int(np.nonzero((labels >= 0).any(axis=1))[0].max()) + 1
    if layer == "columns":
        columnar_layer(labels, cx, filled)
    return Nucleation(labels=labels, grain_orientation=orientation, filled_rows=filled)


def nucleation_from_labels(labels: np.ndarray, orientation: list[str] | None,
                           shape: tuple[int, int]) -> Nucleation:
    """A given grain map as the initial state: ``labels`` 0..n−1 (−1 empty), one orientation each.

    Raises
    ------
    ConfigError
        If the labels do not fit ``shape`` or are not grain indices, or the orientations do not
        name one known orientation per grain.
    """
    labels = np.asarray(labels)
    if labels.shape != shape:
        raise ConfigError(f"initial labels have shape {labels.shape}, the grid is {shape} (ny, nx)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ConfigError("initial labels must be integers (grain index, −1 for no grain)")
    n = int(labels.max()) + 1
    if labels.min() < -1 or n < 1:
        raise ConfigError("initial labels must be −1 or grain indices 0..n−1")
    if orientation is None or len(orientation) != n:
        raise ConfigError(f"give one orientation per grain: {n} grains in the labels")
    bad = [o for o in orientation if o not in ORIENTATIONS]
    if bad:
        raise ConfigError(f"unknown orientation(s) {bad}; known: {', '.join(ORIENTATIONS)}")
    index = np.array([ORIENTATIONS.index(o) for o in orientation], dtype=np.int32)
    return Nucleation(labels=labels.astype(np.int32), grain_orientation=index, filled_rows=shape[0])


def disc_in_matrix(shape: tuple[int, int], radius: float, centre: tuple[float, float] | None = None) -> np.ndarray:
    """Labels of a circular grain 1 of ``radius`` cells embedded in grain 0 (analytic test state)."""
    ny, nx = shape
    cy, cx = centre if centre is not None else ((ny - 1) / 2, (nx - 1) / 2)
    yy, xx = np.mgrid[0:ny, 0:nx]
    return np.where((yy - cy) ** 2 + (xx - cx) ** 2 <= radius * radius, 1, 0).astype(np.int32)


def flat_boundary(shape: tuple[int, int], position: int | None = None) -> np.ndarray:
    """Labels of two grains meeting at a flat boundary normal to x (grain 0 left, 1 right).

    With periodic x there are two boundaries, at ``position`` and at the domain edge.
    """
    ny, nx = shape
    position = nx // 2 if position is None else position
    labels = np.zeros((ny, nx), dtype=np.int32)
    labels[:, position:] = 1
    return labels
