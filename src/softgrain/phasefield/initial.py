"""Initial conditions: nucleation on the substrate and analytic states for tests.

Nuclei sit at distinct random cells of the bottom ``rows`` rows (the substrate), each a disc of
``radius`` cells with a random orientation; overlapping discs are split between their nearest
centres. Everything is drawn from one ``numpy.random.Generator`` seeded by the configuration,
so a seed reproduces the nucleation exactly, and two runs that differ only in material data share
the same nuclei (as the paper's compared cases do).
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


def nucleate(shape: tuple[int, int], count: int, rows: int, radius: float, n_orientations: int,
             seed: int, allowed_orientations: np.ndarray | None = None) -> Nucleation:
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
    """
    ny, nx = shape
    if count > nx * rows:
        raise ConfigError(f"nucleation.count = {count} exceeds the {nx * rows} bottom cells")
    rng = np.random.default_rng(seed)
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
