"""Requirements on softgrain.output.orientation_plots (issue 13): IPF maps and texture figures."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import AxesImage
from orix.vector import Vector3d

from softgrain.errors import UserInputError
from softgrain.output import orientation_plots as plots
from softgrain.physics import orientations as ori


def _fibonacci_sphere(n: int) -> np.ndarray:
    """n nearly equal-area points on the sphere (golden-angle spiral)."""
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = np.pi * (1 + 5 ** 0.5) * k
    r = np.sqrt(1 - z ** 2)
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


def test_ipf_colours_follow_the_tsl_key():
    """Growth along ⟨001⟩ is red, ⟨101⟩ green, ⟨111⟩ blue (orix's TSL key of m-3m)."""
    colours = plots.ipf_colours(ori.label_orientations(["001", "101", "111"], 1))
    assert np.allclose(colours, np.eye(3), atol=0.01)  # orix puts [101] at (0.005, 1, 0)


def test_kernel_density_is_in_multiples_of_random():
    """The kernel density averages to 1 MRD over the sphere, for any σ, and a uniform sample reads
    ≈ 1 MRD everywhere."""
    grid = _fibonacci_sphere(20_000)
    rng = np.random.default_rng(0)
    data = ori.reduce_directions(rng.standard_normal((3, 3)))
    for sigma in (5.0, 12.0):
        density = plots._kernel_density_mrd(grid, data, np.array([1.0, 2.0, 3.0]), sigma, 6.0)
        assert density.mean() == pytest.approx(1.0, rel=1e-3)
    uniform = _fibonacci_sphere(30_000)
    density = plots._kernel_density_mrd(grid[:500], uniform, np.ones(len(uniform)), 10.0, len(uniform))
    assert np.allclose(density, 1.0, atol=0.02)


def test_ipf_grain_map_colours_each_grain_and_saves(tmp_path):
    """Every cell shows its grain's IPF colour, empty cells are black; the PNG is written."""
    q = ori.label_orientations(["001", "101", "111"], 2)
    grain_map = np.array([[0, 0, 1, 1], [0, 2, 2, 1], [-1, 2, 2, -1]])
    path = tmp_path / "map.png"
    fig = plots.plot_ipf_grain_map(grain_map, q, spacing=(0.5, 0.5), periodic_x=True, path=path)
    image = next(a for a in fig.axes[0].get_children() if isinstance(a, AxesImage)).get_array()
    expected = np.where(grain_map[..., None] >= 0, np.eye(3)[np.maximum(grain_map, 0)], 0.0)
    assert np.allclose(image, expected, atol=0.01)
    assert path.stat().st_size > 10_000
    with pytest.raises(UserInputError, match="no directory"):
        plots.plot_ipf_grain_map(grain_map, q, path=tmp_path / "missing" / "map.png")


def test_growth_texture_figure_has_ipf_and_pole_figure_panels(tmp_path):
    """Two IPF densities (count, area) and three pole figures, each with an MRD colour bar; a
    ⟨001⟩ fibre puts the area-weighted IPF maximum at [001]."""
    q = ori.fibre_orientations(40, (0, 0, 1), 3.0, 4)
    path = tmp_path / "texture.png"
    fig = plots.plot_growth_texture(q, np.arange(40) + 1.0, sigma_deg=8.0, path=path)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert sum("growth direction" in t for t in titles) == 2
    assert sum("pole figure" in t for t in titles) == 3
    assert sum(ax.get_ylabel() == "MRD" for ax in fig.axes) == 5
    area_ipf = next(ax for ax in fig.axes if "by area" in ax.get_title() and "growth" in ax.get_title())
    mesh = area_ipf.collections[0]
    density = np.asarray(mesh.get_array()).reshape(mesh._coordinates.shape[:2])
    x, y = mesh._coordinates[..., 0], mesh._coordinates[..., 1]
    peak = np.unravel_index(np.argmax(density), density.shape)
    assert np.hypot(x[peak], y[peak]) < 0.05  # [001] projects to the origin
    assert path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="grain_area"):
        plots.plot_growth_texture(q, [1.0])


def test_ipf_density_keeps_every_symmetry_image_that_matters():
    """Dropping the m-3m images far from the standard triangle changes the IPF density by less
    than 1e-5 MRD against the full 48-fold symmetrisation."""
    rng = np.random.default_rng(0)
    directions = ori.reduce_directions(rng.standard_normal((50, 3)))
    weights = rng.uniform(1, 2, 50)
    grid = ori.reduce_directions(rng.standard_normal((300, 3)))
    near, near_weights = plots._symmetric_images_near_triangle(directions, weights, 5.0)
    every = ori.crystal_symmetry().outer(Vector3d(directions)).unit.data.reshape(-1, 3)
    assert len(near) < len(every) / 3
    full = plots._kernel_density_mrd(grid, every, np.tile(weights, 48) / 48, 5.0, weights.sum())
    assert np.allclose(plots._kernel_density_mrd(grid, near, near_weights, 5.0, weights.sum()), full, atol=1e-5)
