"""Requirements on softgrain.physics.orientations (issue 13: grains as crystals).

Each test states the requirement it checks. Statistical tests use fixed seeds and thresholds far in
the tails (p < 1e-3, 4.5 σ), and each has a negative control where that is what proves its power.
"""

from __future__ import annotations

import numpy as np
import pytest
from orix.quaternion import Orientation
from orix.quaternion.symmetry import Oh
from orix.vector import Vector3d
from scipy import integrate, stats

from softgrain.physics import orientations as ori

LI_SURFACE_ENERGY = {"001": 0.462, "101": 0.465, "111": 0.54}  # J/m², softgrain's li.toml (calibrated)
LI_BARRIER = {"001": 0.14, "101": 0.02, "111": 0.20}  # eV, paper (001/101) and ASSUMED (111)


# --- helpers: equal-area binning on the sphere and in the standard triangle ------------------


def _sphere_bin_counts(vectors: np.ndarray, bands: int = 8, sectors: int = 12) -> np.ndarray:
    """Counts in equal-area bins of the upper hemisphere (Archimedes: uniform in z and azimuth)."""
    v = vectors * np.where(vectors[:, 2] < 0, -1.0, 1.0)[:, None]
    band = np.minimum((v[:, 2] * bands).astype(int), bands - 1)
    sector = np.minimum(((np.arctan2(v[:, 1], v[:, 0]) % (2 * np.pi)) / (2 * np.pi) * sectors).astype(int),
                        sectors - 1)
    return np.bincount(band * sectors + sector, minlength=bands * sectors)


_PHI_EDGES = np.radians(np.linspace(0.0, 45.0, 6))
_THETA_EDGES = np.radians([0.0, 15.0, 25.0, 32.0, 38.0, 43.0, 47.0, 90.0])


def _theta_max(phi: float) -> float:
    """Polar angle of the triangle's [101]–[111] edge (x = z) at azimuth phi."""
    return float(np.arctan(1.0 / np.cos(phi)))


def _ipf_bin_probabilities() -> np.ndarray:
    """Exact probability of each (azimuth, polar) bin of the standard triangle for uniform n."""
    probabilities = np.zeros((len(_PHI_EDGES) - 1, len(_THETA_EDGES) - 1))
    for i in range(len(_PHI_EDGES) - 1):
        for j in range(len(_THETA_EDGES) - 1):
            lo, hi = _THETA_EDGES[j], _THETA_EDGES[j + 1]
            probabilities[i, j] = integrate.quad(
                lambda p: np.cos(min(lo, _theta_max(p))) - np.cos(min(hi, _theta_max(p))),
                _PHI_EDGES[i], _PHI_EDGES[i + 1])[0]
    return (probabilities / (4 * np.pi / 48)).ravel()


def _ipf_bin_counts(reduced: np.ndarray) -> np.ndarray:
    phi = np.arctan2(reduced[:, 1], reduced[:, 0])
    theta = np.arccos(np.clip(reduced[:, 2], -1, 1))
    i = np.clip(np.searchsorted(_PHI_EDGES, phi, side="right") - 1, 0, len(_PHI_EDGES) - 2)
    j = np.clip(np.searchsorted(_THETA_EDGES, theta, side="right") - 1, 0, len(_THETA_EDGES) - 2)
    return np.bincount(i * (len(_THETA_EDGES) - 1) + j, minlength=(len(_PHI_EDGES) - 1) * (len(_THETA_EDGES) - 1))


# --- uniformity of random orientations ----------------------------------------------------------


def test_ipf_bins_cover_the_triangle_exactly():
    """The bin probabilities of the IPF test are exact: they sum to 1 (triangle = 1/48 sphere)."""
    assert _ipf_bin_probabilities().sum() == pytest.approx(1.0, abs=1e-9)


def test_random_growth_directions_are_uniform_in_the_inverse_pole_figure():
    """Random orientations: the reduced growth directions fill the standard triangle by area
    (IPF density, chi-square over equal-probability-known bins); a 20° fibre fails the same test."""
    expected = _ipf_bin_probabilities()
    n = 20_000
    counts = _ipf_bin_counts(ori.growth_directions(ori.random_orientations(n, 7)))
    assert counts.sum() == n
    outside = expected == 0  # bins wholly beyond the triangle's [101]–[111] edge
    assert np.all(counts[outside] == 0)
    assert stats.chisquare(counts[~outside], expected[~outside] * n).pvalue > 1e-3
    textured = _ipf_bin_counts(ori.growth_directions(ori.fibre_orientations(n, (1, 0, 1), 20.0, 7)))
    assert stats.chisquare(textured[~outside], expected[~outside] * n).pvalue < 1e-10


@pytest.mark.parametrize("sample_axis", ["z", "x"])
def test_random_orientations_give_a_uniform_pole_figure(sample_axis):
    """Random orientations: the crystal ⟨001⟩ axes seen in the sample frame (the {001} pole
    figure) and the growth axis seen in the crystal frame are uniform on the sphere; a ⟨111⟩
    fibre (its {001} poles on a ring 54.7° from z) fails the same test."""
    orientations = ori.random_orientations(6000, 11)
    crystal_axes = Vector3d(np.eye(3))
    in_sample = (~orientations).outer(crystal_axes).data.reshape(-1, 3)
    assert stats.chisquare(_sphere_bin_counts(in_sample)).pvalue > 1e-3
    fibre = ori.fibre_orientations(6000, (1, 1, 1), 20.0, 11)
    fibre_poles = (~fibre).outer(crystal_axes).data.reshape(-1, 3)
    assert stats.chisquare(_sphere_bin_counts(fibre_poles)).pvalue < 1e-10
    growth = (orientations * Vector3d(ori.SAMPLE_AXES[sample_axis])).data
    assert stats.chisquare(_sphere_bin_counts(growth)).pvalue > 1e-3


def test_label_orientations_give_a_uniform_in_plane_rotation():
    """The three-label mode spins each nucleus uniformly about the growth axis: the crystal axis
    [100] of "001" grains points in a uniform azimuth in the film plane."""
    orientations = ori.label_orientations(["001"] * 4000, 5)
    a100 = (~orientations * Vector3d.xvector()).data
    assert np.allclose(a100[:, 2], 0.0, atol=1e-12)
    azimuth = np.arctan2(a100[:, 1], a100[:, 0]) % (2 * np.pi)
    assert stats.kstest(azimuth / (2 * np.pi), "uniform").pvalue > 1e-3


# --- classification --------------------------------------------------------------------------


def test_cap_fractions_are_the_analytic_solid_angles():
    """At 15° the caps hold m(1 − cos 15°)/2 of the sphere: 6, 12 and 8 poles."""
    cap = (1 - np.cos(np.radians(15))) / 2
    fractions = ori.random_cap_fractions(15.0)
    assert fractions["001"] == pytest.approx(6 * cap) == pytest.approx(0.1022225, abs=1e-7)
    assert fractions["101"] == pytest.approx(12 * cap) == pytest.approx(0.2044450, abs=1e-7)
    assert fractions["111"] == pytest.approx(8 * cap) == pytest.approx(0.1362967, abs=1e-7)
    assert fractions["other"] == pytest.approx(1 - 26 * cap) == pytest.approx(0.5570357, abs=1e-7)
    assert ori.POLE_MULTIPLICITY == {"001": 6, "101": 12, "111": 8}


def test_overlapping_caps_are_refused_by_the_analytic_fractions():
    """Above 17.63° (half the 35.26° between ⟨101⟩ and ⟨111⟩) caps overlap: no simple sum."""
    assert ori._smallest_pole_separation_deg() == pytest.approx(np.degrees(np.arccos(np.sqrt(2 / 3))))
    with pytest.raises(ValueError, match="non-overlapping"):
        ori.random_cap_fractions(18.0)


@pytest.mark.parametrize("tolerance", [15.0, 10.0])
def test_classifying_random_orientations_reproduces_the_cap_fractions(tolerance):
    """10,000 random orientations fall into the classes with the analytic probabilities
    (multinomial chi-square, and every class within 4.5 binomial σ)."""
    n = 10_000
    classes = ori.classify(ori.growth_directions(ori.random_orientations(n, 2024)), tolerance)
    counts = np.bincount(classes, minlength=4)
    expected = np.array([ori.random_cap_fractions(tolerance)[c] for c in ori.CLASSES])
    assert stats.chisquare(counts, expected * n).pvalue > 1e-3
    sigma = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(counts / n - expected) < 4.5 * sigma)


def test_no_direction_is_further_than_the_circumcentre_from_a_pole():
    """The angle to the nearest pole never exceeds 27.57°, reached at the standard triangle's
    circumcentre (equidistant from [001], [101], [111])."""
    a, b, c = (np.array(ori.POLE_DIRECTIONS[p], float) / np.linalg.norm(ori.POLE_DIRECTIONS[p]) for p in ori.POLES)
    centre = np.cross(a, b) + np.cross(b, c) + np.cross(c, a)
    _, at_centre = ori.nearest_pole(centre)
    assert at_centre[0] == pytest.approx(27.5693, abs=1e-4)
    _, angles = ori.nearest_pole(ori.growth_directions(ori.random_orientations(20_000, 6)))
    assert angles.max() <= at_centre[0] + 1e-9 and angles.max() > 26.0


def test_the_three_labels_classify_back_to_themselves():
    """An orientation drawn for label L has its growth axis exactly on ⟨L⟩: class L, angle 0."""
    labels = list(ori.POLES) * 50
    directions = ori.growth_directions(ori.label_orientations(labels, 3))
    assert list(ori.class_labels(ori.classify(directions))) == labels
    _, angle = ori.nearest_pole(directions)
    assert np.all(angle < 1e-5)


def test_classification_uses_every_symmetry_equivalent_and_the_tolerance_edge():
    """[0 1 1], [−1 1 0] are ⟨101⟩; a direction 14° from [010] is "001", one 16° away is "other"."""
    directions = np.array([[0, 1, 1], [-1, 1, 0], [1, -1, -1], [0, -1, 0],
                           [np.sin(np.radians(14)), np.cos(np.radians(14)), 0],
                           [np.sin(np.radians(16)), np.cos(np.radians(16)), 0]], dtype=float)
    assert list(ori.class_labels(ori.classify(directions))) == ["101", "101", "111", "001", "001", "other"]
    index, angle = ori.nearest_pole(directions)
    assert angle[4] == pytest.approx(14.0) and angle[5] == pytest.approx(16.0)
    with pytest.raises(ValueError, match="tolerance_deg"):
        ori.classify(directions, tolerance_deg=0.0)


def test_growth_direction_is_the_crystal_direction_along_the_chosen_sample_axis():
    """Bunge (φ1, Φ, φ2): the crystal direction along sample z is (sinφ2 sinΦ, cosφ2 sinΦ, cosΦ),
    reduced into the triangle 0 ≤ y ≤ x ≤ z; sample x and y give other directions."""
    o = Orientation.from_euler(np.radians([[10.0, 20.0, 30.0]]), symmetry=Oh)
    phi, big_phi, phi2 = np.radians([10.0, 20.0, 30.0])
    expected = np.sort(np.abs([np.sin(phi2) * np.sin(big_phi), np.cos(phi2) * np.sin(big_phi), np.cos(big_phi)]))
    n = ori.growth_directions(o)[0]
    assert np.allclose(n, [expected[1], expected[0], expected[2]])
    assert 0 <= n[1] <= n[0] <= n[2]
    matrix = o.to_matrix()[0]
    for axis, column in (("x", 0), ("y", 1)):
        assert np.allclose(ori.growth_directions(o, axis)[0], ori.reduce_directions(matrix[:, column])[0])
    with pytest.raises(ValueError, match="sample axis"):
        ori.growth_directions(o, "w")


# --- sampling ---------------------------------------------------------------------------------


def test_sampling_is_reproducible_from_the_seed():
    """Same seed → identical orientations; another seed → different ones."""
    for draw in (lambda s: ori.random_orientations(50, s),
                 lambda s: ori.label_orientations(["001", "111"] * 25, s),
                 lambda s: ori.fibre_orientations(50, (1, 1, 1), 5.0, s)):
        assert np.array_equal(draw(1).data, draw(1).data)
        assert not np.allclose(draw(1).data, draw(2).data)
    with pytest.raises(ValueError, match="unknown"):
        ori.label_orientations(["110"], 1)


def test_fibre_tilt_follows_the_von_mises_fisher_law():
    """Fibre about [101] with spread σ: cos(tilt) has the vMF CDF (e^{κw} − e^{−κ})/(e^κ − e^{−κ}),
    κ = 1/σ²; spread 0 is a perfect fibre."""
    sigma = 6.0
    kappa = 1 / np.radians(sigma) ** 2
    o = ori.fibre_orientations(4000, (1, 0, 1), sigma, 9)
    axis = np.array([1, 0, 1]) / np.sqrt(2)
    w = (o * Vector3d.zvector()).data @ axis

    def cdf(x):
        return (np.exp(kappa * (x - 1)) - np.exp(-2 * kappa)) / (1 - np.exp(-2 * kappa))

    assert stats.kstest(w, cdf).pvalue > 1e-3
    tilt = np.degrees(np.arccos(np.clip(w, -1, 1)))
    assert np.mean(tilt) == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.05)
    perfect = ori.growth_directions(ori.fibre_orientations(20, (1, 1, 1), 0.0, 9))
    assert np.all(ori.nearest_pole(perfect)[1] < 1e-5)
    with pytest.raises(ValueError, match="spread"):
        ori.fibre_orientations(3, (1, 0, 1), -1.0, 1)


# --- anisotropy interpolation -----------------------------------------------------------------


def test_interpolation_is_exact_at_every_pole_and_its_equivalents():
    """E(n) at ⟨001⟩, ⟨101⟩, ⟨111⟩ (any equivalent, any label orientation) equals the DFT value
    bit for bit — the three-label mode keeps today's numbers."""
    directions = np.array([[0, 0, 1], [0, -1, 0], [1, 0, 1], [0, 1, -1], [1, 1, 1], [-1, 1, -1]], dtype=float)
    poles = ["001", "001", "101", "101", "111", "111"]
    for table in (LI_SURFACE_ENERGY, LI_BARRIER):
        values = ori.interpolate_pole_values(directions, table)
        assert values.tolist() == [table[p] for p in poles]
    labels = list(ori.POLES) * 20
    from_labels = ori.interpolate_pole_values(ori.growth_directions(ori.label_orientations(labels, 4)),
                                              LI_SURFACE_ENERGY)
    assert from_labels.tolist() == [LI_SURFACE_ENERGY[p] for p in labels]


def test_interpolation_stays_within_the_pole_values_and_is_continuous():
    """Elsewhere E lies within [min, max] of the pole values; mirror images across the triangle's
    edges (m-3m mirror planes) agree; the 001–101 edge midpoint is the mean of the two poles."""
    directions = ori.growth_directions(ori.random_orientations(5000, 8))
    for table in (LI_SURFACE_ENERGY, LI_BARRIER):
        values = ori.interpolate_pole_values(directions, table)
        assert values.min() >= min(table.values()) and values.max() <= max(table.values())
        assert values.max() - values.min() > 0.5 * (max(table.values()) - min(table.values()))
        # A direction just outside the triangle across x = z equals its mirror image inside.
        inside = np.array([0.6, 0.1, 0.62])
        outside = np.array([0.62, 0.1, 0.6])
        assert ori.interpolate_pole_values(outside, table) == pytest.approx(
            ori.interpolate_pole_values(inside, table), abs=1e-15)
    midpoint = [np.sin(np.radians(22.5)), 0, np.cos(np.radians(22.5))]
    assert ori.interpolate_pole_values(midpoint, LI_BARRIER)[0] == pytest.approx((0.14 + 0.02) / 2)
    weights = ori.triangle_weights(directions)
    assert np.all(weights >= 0) and np.allclose(weights.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="missing"):
        ori.interpolate_pole_values(midpoint, {"001": 1.0, "101": 2.0})


# --- conversions ---------------------------------------------------------------------------------


def test_quaternions_and_bunge_euler_angles_round_trip():
    """Per-grain quaternions and Bunge Euler angles (degrees) describe the same rotations."""
    o = ori.random_orientations(200, 12)
    q = ori.quaternions(o)
    assert q.shape == (200, 4) and np.all(q[:, 0] >= 0) and np.allclose(np.linalg.norm(q, axis=1), 1)
    euler = ori.bunge_euler_deg(q)
    assert euler.shape == (200, 3)
    assert np.all((euler[:, 1] >= 0) & (euler[:, 1] <= 180))
    back = Orientation.from_euler(np.radians(euler), symmetry=Oh)
    assert np.allclose(np.abs(np.sum(back.data * q, axis=1)), 1.0, atol=1e-9)
    with pytest.raises(ValueError, match="finite"):
        ori.as_orientations([[0, 0, 0, 0]])
