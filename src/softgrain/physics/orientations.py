"""Crystal orientations of bcc grains (Li, Na, K): sampling, growth directions, anisotropy, classes.

A grain's orientation is a rotation with the cubic Laue symmetry m-3m (Li, Na and K are bcc, space
group Im-3m). It is an :class:`orix.quaternion.Orientation` in orix's (Bunge) convention: it maps
*sample* vectors to *crystal* vectors, so the crystal direction parallel to the growth axis (sample
z, the film normal, unless stated otherwise) is ``n = O * z``. That growth direction ``n``,
reduced by symmetry to the standard stereographic triangle [001]–[101]–[111] (orix's fundamental
sector of m-3m: 0 ≤ y ≤ x ≤ z), decides everything the model needs from the orientation:

* the anisotropic inputs E_s(n) (surface energy) and E_a(n) (surface self-diffusion barrier),
  interpolated from the three DFT pole values by :func:`interpolate_pole_values` (ASSUMED rule,
  documented there);
* the EBSD-like class "001" / "101" / "111" (n within a tolerance, default 15°, of any member of
  ⟨001⟩ / ⟨101⟩ / ⟨111⟩) or "other" (:func:`classify`), and the angle to the nearest pole
  (:func:`nearest_pole`).

Orientation names follow the paper: (001) ≡ (100), (101) ≡ (110), (111).

Nucleus orientations (all seeded through a :class:`numpy.random.Generator`):

* :func:`label_orientations` — the paper's three labels: growth axis along ⟨001⟩, ⟨101⟩ or ⟨111⟩
  with a uniformly random rotation about the growth axis;
* :func:`random_orientations` — uniform (Haar) over SO(3);
* :func:`fibre_orientations` — a fibre texture about a crystal direction with a spread in degrees
  (von Mises–Fisher scatter of the growth direction; uniform rotation about the growth axis).

The fraction of uniformly random orientations that fall into each class is analytic
(:func:`random_cap_fractions`): at 15° the ⟨001⟩ caps (6 poles) hold 10.22 %, ⟨101⟩ (12 poles)
20.44 %, ⟨111⟩ (8 poles) 13.63 %, and 55.70 % is "other".
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from orix.quaternion import Orientation, Rotation
from orix.quaternion.symmetry import Oh, Symmetry
from orix.vector import Vector3d

POLES: tuple[str, ...] = ("001", "101", "111")
"""The three low-index growth directions of the paper, in its notation ((101) ≡ (110))."""

CLASSES: tuple[str, ...] = POLES + ("other",)
"""EBSD-like classes of a growth direction: within the tolerance of a pole family, else "other"."""

DEFAULT_TOLERANCE_DEG = 15.0
"""Angular tolerance of the EBSD-like classes (the usual 15° of texture-component statistics)."""

POLE_DIRECTIONS: dict[str, tuple[int, int, int]] = {"001": (0, 0, 1), "101": (1, 0, 1), "111": (1, 1, 1)}
"""Crystal directions of the poles: the vertices of orix's standard triangle of m-3m."""

SAMPLE_AXES: dict[str, tuple[float, float, float]] = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0),
                                                      "z": (0.0, 0.0, 1.0)}
"""Sample axes a growth axis may be along; z (the film normal) is the default."""

# Weights of the triangle interpolation smaller than this are rounding noise (a direction 1e-10 rad
# from a pole); zeroing them makes the interpolation return the pole value exactly at the poles.
_WEIGHT_NOISE = 1e-10


def crystal_symmetry() -> Symmetry:
    """The point group of bcc Li, Na and K: m-3m (orix ``Oh``, 48 operations, Laue class m-3m)."""
    return Oh


# --- Conversions ---------------------------------------------------------------------------


def as_orientations(orientations: Orientation | Rotation | np.ndarray | Sequence) -> Orientation:
    """Orientations with m-3m symmetry from an orix object or unit quaternions of shape (n, 4).

    Quaternions are (a, b, c, d) = (w, x, y, z), orix's order, and are normalised here.

    Raises
    ------
    ValueError
        If the array is not (n, 4) or holds a zero or non-finite quaternion.
    """
    if isinstance(orientations, Rotation):
        data = orientations.data
    else:
        data = np.asarray(orientations, dtype=float)
    data = np.atleast_2d(data).reshape(-1, 4) if np.asarray(data).size else np.zeros((0, 4))
    norms = np.linalg.norm(data, axis=1)
    if not np.all(np.isfinite(data)) or np.any(norms == 0):
        raise ValueError("orientations: quaternions must be finite and non-zero")
    return Orientation(data / norms[:, None], symmetry=Oh)


def quaternions(orientations: Orientation | np.ndarray) -> np.ndarray:
    """Unit quaternions (n, 4), (w, x, y, z), scalar part made non-negative (q and −q are equal)."""
    data = as_orientations(orientations).data.copy()
    data[data[:, 0] < 0] *= -1
    return data


def bunge_euler_deg(orientations: Orientation | np.ndarray) -> np.ndarray:
    """Bunge Euler angles (φ1, Φ, φ2) in degrees, shape (n, 3), of the rotations as stored.

    Bunge (ZXZ, passive, sample → crystal) is the convention of .ang/.ctf files and of orix.
    """
    return np.degrees(Rotation(as_orientations(orientations).data).to_euler())


# --- Sampling nucleus orientations -----------------------------------------------------------


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=float)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _orientations_with_growth_direction(directions: np.ndarray, rng: np.random.Generator) -> Orientation:
    """Orientations O with O·z = ``directions`` (crystal, unit) and a uniform twist about z.

    O = R_align · R_z(ψ): R_z(ψ) spins the crystal about the growth axis (ψ uniform in [0, 2π)),
    R_align is the shortest rotation taking z to the growth direction.
    """
    directions = _unit(np.atleast_2d(directions))
    z = np.array([0.0, 0.0, 1.0])
    axes = np.cross(z, directions)
    sin_angle = np.linalg.norm(axes, axis=1)
    angles = np.arctan2(sin_angle, directions @ z)
    # Where the direction is (anti)parallel to z any perpendicular axis will do.
    axes = np.where(sin_angle[:, None] > 1e-12, axes, np.array([1.0, 0.0, 0.0]))
    align = Rotation.from_axes_angles(axes, angles)
    twist = Rotation.from_axes_angles(np.tile(z, (len(directions), 1)),
                                      rng.uniform(0.0, 2.0 * np.pi, len(directions)))
    return as_orientations(align * twist)


def label_orientations(labels: Sequence[str], rng: np.random.Generator | int) -> Orientation:
    """One orientation per label whose growth axis (sample z) is parallel to the labelled pole.

    Parameters
    ----------
    labels
        Each one of :data:`POLES` ("001", "101", "111").
    rng
        Generator (or seed) for the uniform rotation about the growth axis. Use a stream of its
        own so that drawing these rotations leaves any other draws (e.g. the labels) unchanged.

    Raises
    ------
    ValueError
        If a label is not one of :data:`POLES`.
    """
    unknown = sorted({str(label) for label in labels} - set(POLES))
    if unknown:
        raise ValueError(f"orientation labels: unknown {unknown}; use {list(POLES)}")
    directions = np.array([POLE_DIRECTIONS[label] for label in labels], dtype=float).reshape(-1, 3)
    return _orientations_with_growth_direction(directions, np.random.default_rng(rng))


def random_orientations(count: int, rng: np.random.Generator | int) -> Orientation:
    """``count`` orientations uniform (Haar measure) over SO(3).

    A normalised 4-vector of independent standard normals is uniform on S³, i.e. a Haar-uniform
    rotation (Muller 1959; Shoemake 1992). Drawn here rather than with ``Orientation.random``
    because that uses NumPy's global state and cannot be seeded per run.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    data = np.random.default_rng(rng).standard_normal((int(count), 4))
    return as_orientations(data) if count else Orientation(np.zeros((0, 4)), symmetry=Oh)


def fibre_orientations(count: int, axis: Sequence[float], spread_deg: float,
                       rng: np.random.Generator | int) -> Orientation:
    """``count`` orientations of a fibre texture: growth direction near the crystal ``axis``.

    The growth direction is drawn from a von Mises–Fisher distribution on the sphere about
    ``axis`` with concentration κ = 1/σ², σ = ``spread_deg`` in radians: for small spreads the tilt
    away from the axis is Rayleigh-distributed with per-component standard deviation σ (mean tilt
    1.25 σ); ``spread_deg = 0`` is a perfect fibre. The rotation about the growth axis is uniform.

    Parameters
    ----------
    count
        Number of orientations.
    axis
        Crystal direction [uvw] of the fibre, e.g. (1, 0, 1).
    spread_deg
        σ of the scatter about the axis, degrees, ≥ 0.
    rng
        Generator or seed.
    """
    axis = np.asarray(axis, dtype=float).reshape(3)
    if not np.all(np.isfinite(axis)) or np.linalg.norm(axis) == 0:
        raise ValueError(f"fibre axis must be a non-zero crystal direction, got {axis.tolist()}")
    if not np.isfinite(spread_deg) or spread_deg < 0:
        raise ValueError(f"fibre spread_deg must be >= 0, got {spread_deg}")
    rng = np.random.default_rng(rng)
    axis = _unit(axis)
    count = int(count)
    if spread_deg == 0:
        cos_tilt = np.ones(count)
    else:
        kappa = 1.0 / np.radians(spread_deg) ** 2
        u = rng.uniform(0.0, 1.0, count)
        u = np.where(u == 0.0, np.finfo(float).tiny, u)
        # Inverse CDF of cos(tilt) for the von Mises–Fisher distribution on S² (Wood 1994).
        cos_tilt = np.clip(1.0 + np.log(u + (1.0 - u) * np.exp(-2.0 * kappa)) / kappa, -1.0, 1.0)
    azimuth = rng.uniform(0.0, 2.0 * np.pi, count)
    # An orthonormal frame (e1, e2, axis) to tilt the axis in.
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = _unit(np.cross(axis, helper))
    e2 = np.cross(axis, e1)
    sin_tilt = np.sqrt(np.clip(1.0 - cos_tilt ** 2, 0.0, None))
    directions = (cos_tilt[:, None] * axis + sin_tilt[:, None]
                  * (np.cos(azimuth)[:, None] * e1 + np.sin(azimuth)[:, None] * e2))
    if count == 0:
        return Orientation(np.zeros((0, 4)), symmetry=Oh)
    return _orientations_with_growth_direction(directions, rng)


# --- Growth directions, classes, interpolation ------------------------------------------------


def _sample_axis(sample_axis: str) -> Vector3d:
    try:
        return Vector3d(SAMPLE_AXES[sample_axis])
    except KeyError:
        raise ValueError(f"sample axis must be one of {list(SAMPLE_AXES)}, got {sample_axis!r}") from None


def reduce_directions(directions: np.ndarray) -> np.ndarray:
    """Unit crystal directions (n, 3) mapped by m-3m symmetry into the standard triangle.

    The triangle is orix's fundamental sector of m-3m, 0 ≤ y ≤ x ≤ z, vertices [001], [101], [111].
    """
    directions = _unit(np.atleast_2d(np.asarray(directions, dtype=float)).reshape(-1, 3))
    return Vector3d(directions).in_fundamental_sector(Oh).unit.data.reshape(-1, 3)


def growth_directions(orientations: Orientation | np.ndarray, sample_axis: str = "z") -> np.ndarray:
    """Crystal direction parallel to the growth axis, in the standard triangle, shape (n, 3).

    Parameters
    ----------
    orientations
        Orientations (sample → crystal) or quaternions (n, 4).
    sample_axis
        The sample axis along which the film grows: "z" (film normal; default), "x" or "y".
    """
    ori = as_orientations(orientations)
    return reduce_directions((ori * _sample_axis(sample_axis)).data)


def _pole_family_axes() -> dict[str, np.ndarray]:
    """Distinct axes (±v counted once) of each pole family under m-3m: 3 ⟨001⟩, 6 ⟨101⟩, 4 ⟨111⟩."""
    families = {}
    for label, direction in POLE_DIRECTIONS.items():
        members = Oh.outer(Vector3d(direction)).unit.data.reshape(-1, 3)
        # Count v and −v once: make the first non-zero component positive.
        first = members[np.arange(len(members)), np.argmax(np.abs(members) > 1e-9, axis=1)]
        members = members * np.sign(first)[:, None]
        families[label] = np.unique(np.round(members, 12), axis=0)
    return families


_FAMILY_AXES = _pole_family_axes()
POLE_MULTIPLICITY: dict[str, int] = {label: 2 * len(axes) for label, axes in _FAMILY_AXES.items()}
"""Number of equivalent poles of each family on the sphere: ⟨001⟩ 6, ⟨101⟩ 12, ⟨111⟩ 8."""


def pole_angles_deg(directions: np.ndarray) -> np.ndarray:
    """Angle (degrees) from each direction to the nearest member of each pole family, (n, 3).

    Columns follow :data:`POLES`. Every symmetry equivalent of the family is considered, so the
    directions need not be reduced first.
    """
    directions = _unit(np.atleast_2d(np.asarray(directions, dtype=float)).reshape(-1, 3))
    cosines = [np.max(np.abs(directions @ _FAMILY_AXES[label].T), axis=1) for label in POLES]
    return np.degrees(np.arccos(np.clip(np.stack(cosines, axis=1), -1.0, 1.0)))


def nearest_pole(directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest pole family of each direction and the angle to it (the misorientation of the
    growth direction from the nearest low-index pole).

    Returns
    -------
    index : ndarray of int, shape (n,)
        Index into :data:`POLES`.
    angle_deg : ndarray, shape (n,)
        Angle to that pole, degrees: 0 at a pole, at most 27.57° (the standard triangle's
        circumcentre, equidistant from [001], [101] and [111]).
    """
    angles = pole_angles_deg(directions)
    index = np.argmin(angles, axis=1)
    return index, angles[np.arange(len(angles)), index]


def classify(directions: np.ndarray, tolerance_deg: float = DEFAULT_TOLERANCE_DEG) -> np.ndarray:
    """EBSD-like class index (into :data:`CLASSES`) of each growth direction, shape (n,).

    A direction belongs to "001" / "101" / "111" when it lies within ``tolerance_deg`` of any
    member of ⟨001⟩ / ⟨101⟩ / ⟨111⟩, else to "other" (index 3). Where caps overlap (tolerance above
    17.6°, half the 35.3° between ⟨101⟩ and ⟨111⟩) the nearest pole wins.
    """
    if not np.isfinite(tolerance_deg) or not 0 < tolerance_deg <= 90:
        raise ValueError(f"tolerance_deg must be in (0, 90], got {tolerance_deg}")
    index, angle = nearest_pole(directions)
    return np.where(angle <= tolerance_deg, index, len(POLES)).astype(np.int64)


def class_labels(class_index: np.ndarray) -> np.ndarray:
    """Class names ("001", "101", "111", "other") of class indices."""
    return np.asarray(CLASSES, dtype=object)[np.asarray(class_index, dtype=int)]


def _smallest_pole_separation_deg() -> float:
    """Smallest angle between two distinct poles of any families (⟨101⟩–⟨111⟩: 35.26°)."""
    axes = np.concatenate([_FAMILY_AXES[label] for label in POLES])
    cosines = np.abs(axes @ axes.T)
    np.fill_diagonal(cosines, 0.0)
    return float(np.degrees(np.arccos(np.clip(cosines.max(), -1.0, 1.0))))


def random_cap_fractions(tolerance_deg: float = DEFAULT_TOLERANCE_DEG) -> dict[str, float]:
    """Fraction of uniformly random orientations in each class (analytic).

    For a uniform orientation the growth direction is uniform on the sphere. A cap of half-angle θ
    covers 2π(1 − cos θ) of the 4π sphere, and each family has :data:`POLE_MULTIPLICITY` poles, so
    f = m (1 − cos θ) / 2. At 15°: 001 → 0.10222, 101 → 0.20445, 111 → 0.13630, other → 0.55704.

    Raises
    ------
    ValueError
        If the caps overlap (θ above half the smallest pole separation, 35.26°/2 = 17.63°), where
        the simple sum no longer holds.
    """
    limit = _smallest_pole_separation_deg() / 2
    if not 0 < tolerance_deg <= limit:
        raise ValueError(f"tolerance_deg must be in (0, {limit:.2f}] for non-overlapping caps, "
                         f"got {tolerance_deg}")
    cap = (1.0 - np.cos(np.radians(tolerance_deg))) / 2.0
    fractions = {label: POLE_MULTIPLICITY[label] * cap for label in POLES}
    fractions["other"] = 1.0 - sum(fractions.values())
    return fractions


def triangle_weights(directions: np.ndarray) -> np.ndarray:
    """Barycentric weights of the reduced growth direction on the poles [001], [101], [111], (n, 3).

    n (reduced into the standard triangle) is written as n ∝ Σ w_i v_i with v_i the unit pole
    vectors; w_i = det(...)/det(v_001, v_101, v_111) by Cramer's rule, normalised to Σ w_i = 1.
    These are the ordinary barycentric coordinates of the central (gnomonic) projection of n onto
    the plane through the three poles. Weights are ≥ 0 inside the triangle; rounding noise below
    1e-10 is zeroed, so a pole gets exactly (1, 0, 0), (0, 1, 0) or (0, 0, 1).
    """
    n = reduce_directions(directions)
    vertices = np.array([_unit(np.array(POLE_DIRECTIONS[label], dtype=float)) for label in POLES])
    total = np.linalg.det(vertices)
    a, b, c = vertices
    w = np.stack([np.einsum("ij,j->i", n, np.cross(b, c)),
                  np.einsum("ij,j->i", n, np.cross(c, a)),
                  np.einsum("ij,j->i", n, np.cross(a, b))], axis=1) / total
    w = np.where(w > _WEIGHT_NOISE, w, 0.0)
    return w / w.sum(axis=1, keepdims=True)


def interpolate_pole_values(directions: np.ndarray, pole_values: Mapping[str, float]) -> np.ndarray:
    """E(n) for any growth direction from the three DFT values at the poles (ASSUMED rule).

    E(n) = Σ_i w_i(n) E_i with w the barycentric weights of :func:`triangle_weights` — used for the
    surface energy E_s(n) and the surface self-diffusion barrier E_a(n) alike.

    ASSUMED (no DFT value exists between the poles): the DFT data (Jäckle & Groß 2014; Tran et al.
    2016) cover only the three low-index facets, while a grain's growth direction is generally
    vicinal. The linear (barycentric) mix is the simplest rule that (1) returns the DFT value
    exactly at each pole, so the three-label mode is unchanged; (2) is continuous over the whole
    sphere: the triangle's edges are mirror planes of m-3m and on an edge the opposite pole's
    weight vanishes, so the symmetry-equivalent triangles agree there; (3) stays within the
    minimum and maximum of the pole values, inventing no extremum the DFT does not show; (4) has no
    free parameter. Not captured: the cusps of a broken-bond (Wulff) surface energy, which rises
    linearly with the vicinal angle and is higher than this mix between the poles, and the
    step-edge (Ehrlich–Schwoebel) barriers that govern diffusion on vicinal surfaces.

    Parameters
    ----------
    directions
        Crystal directions (n, 3); reduced here.
    pole_values
        Values at "001", "101", "111" (e.g. J/m² or eV).

    Raises
    ------
    ValueError
        If a pole value is missing or not finite.
    """
    missing = [label for label in POLES if label not in pole_values]
    if missing:
        raise ValueError(f"pole values: missing {missing}; need {list(POLES)}")
    values = np.array([float(pole_values[label]) for label in POLES])
    if not np.all(np.isfinite(values)):
        raise ValueError(f"pole values must be finite, got {dict(zip(POLES, values.tolist()))}")
    return triangle_weights(directions) @ values
