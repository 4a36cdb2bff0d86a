"""The Fig. 4 phase map: the anisotropy path, the theory's ΔU = 0 line, classification, and the
`softgrain phase-map` store contract (tiny grid; the full-grid map is marked slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from softgrain.cli import app
from softgrain.physics import anisotropy, theory
from softgrain.studies import phasemap
from softgrain.errors import UserInputError
from softgrain.materials.metals import load_metal

LI = load_metal("Li")
TINY_SET = ["--set", "grid.nx=40", "--set", "grid.ny=16", "--set", "nucleation.count=10",
            "--set", "run.end_time_s=10", "--set", "numerics.kernel=dense"]


def test_anisotropy_path_follows_the_strain_data():
    path = anisotropy.AnisotropyPath.for_metal(LI)
    unstrained, strained = LI.surface_energies(0.0), LI.surface_energies(-0.03)
    assert path.a_unstrained == pytest.approx(unstrained["101"] - unstrained["001"])
    assert path.a_strained == pytest.approx(strained["101"] - strained["001"])
    assert path.surface_energies(path.a_unstrained) == pytest.approx(unstrained)
    assert path.surface_energies(path.a_strained) == pytest.approx(strained)
    # Inside the data the path is the materials module's own interpolation in strain.
    halfway = 0.5 * (path.a_unstrained + path.a_strained)
    assert path.equivalent_strain(halfway) == pytest.approx(-0.015)
    assert path.surface_energies(halfway) == pytest.approx(LI.surface_energies(-0.015))
    # By construction A is exactly the (101) − (001) gap, also beyond the data.
    for a in (0.0, 0.05, 0.2):
        e = path.surface_energies(a)
        assert e["101"] - e["001"] == pytest.approx(a)
    beyond = path.a_unstrained + 1.5 * (path.a_strained - path.a_unstrained)
    assert path.equivalent_strain(beyond) == pytest.approx(-0.045)
    with pytest.raises(UserInputError, match="non-positive surface energies"):
        path.surface_energies(50.0)


def test_theory_delta_u_matches_the_theory_module_at_the_data_points():
    for strain in (0.0, -0.03):
        for temperature in (25.0, 80.0):
            path = anisotropy.AnisotropyPath.for_metal(LI)
            a = path.anisotropy_at_strain(strain)
            expected = theory.energy_difference(LI, ("001", "101"), temperature, strain).delta_u_J_m3
            got = anisotropy.theory_delta_u(LI, [LI.barrier("101")], [a], temperature)[0, 0]
            assert got == pytest.approx(expected, rel=1e-9)


def test_theory_boundary_is_where_delta_u_vanishes():
    barriers = np.array([0.02, 0.06, 0.10, 0.14])
    boundary = anisotropy.theory_boundary(LI, barriers, 25.0)
    for barrier, a_star in zip(barriers, boundary):
        du = anisotropy.theory_delta_u(LI, [barrier], [a_star], 25.0)[0, 0]
        assert abs(du) < 1e-6 * 1e4
    # Equal barriers leave no strain-energy difference: the line ends at A = 0.
    assert boundary[-1] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(boundary) < 0)
    # At the data barrier the solid case lies on the (001) side at 25 °C (paper Fig. 3A).
    solid = anisotropy.AnisotropyPath.for_metal(LI).a_strained
    assert solid > boundary[0]


def test_axes_increase_and_cover_the_requested_ranges():
    path = anisotropy.AnisotropyPath.for_metal(LI)
    a = phasemap.anisotropy_values(path, 5)
    assert a[0] == pytest.approx(path.a_unstrained)
    assert a[-1] > path.a_strained
    assert np.all(np.diff(a) > 0)
    assert np.all(np.diff(a, 2) > 0)  # quadratic: denser near the liquid case
    linear = phasemap.anisotropy_values(path, 5, spacing="linear")
    np.testing.assert_allclose(np.diff(linear), np.diff(linear)[0])
    b = phasemap.barrier_values(LI, 4)
    np.testing.assert_allclose(b, [0.02, 0.06, 0.10, 0.14])
    with pytest.raises(UserInputError, match="barrier_max"):
        phasemap.barrier_values(LI, 4, maximum=0.01)
    with pytest.raises(UserInputError, match="resolution"):
        phasemap.phase_map_plan(1)


def test_classify_majority_and_mixed():
    values = np.array([[[0.7, 0.3, 0.0], [0.4, 0.4, 0.2]],
                       [[0.1, 0.9, 0.0], [np.nan, np.nan, np.nan]]])
    means = xr.DataArray(values, dims=("b", "a", "orientation"),
                         coords={"orientation": ["001", "101", "111"]})
    classes = phasemap.classify(means)
    assert classes.values.tolist() == [["001", "mixed"], ["101", ""]]


def test_phase_map_cli_store_contract(tmp_path):
    from distributed import LocalCluster

    out = tmp_path / "map"
    runner = CliRunner()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=":0") as cluster:
        args = ["phase-map", "--resolution", "2", "--seeds", "2", "--out", str(out), "--quiet",
                "--scheduler", cluster.scheduler_address, *TINY_SET]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        again = runner.invoke(app, args)  # resumes: nothing left to run
        assert again.exit_code == 0 and "8 from the store" in again.output
        other = runner.invoke(app, [*args[:2], "3", *args[3:]])
        assert other.exit_code != 0 and "different sweep definition" in str(other.exception)
    assert (out / "phase_map.png").stat().st_size > 10_000
    with xr.open_zarr(out / "phase_map.zarr") as ds:
        assert ds["fraction"].dims == ("barrier_101_eV", "surface_energy_anisotropy", "seed",
                                       "orientation")
        assert [str(o) for o in ds["orientation"].values] == ["001", "101", "111"]
        for axis in ("barrier_101_eV", "surface_energy_anisotropy"):
            assert np.all(np.diff(ds[axis].values) > 0)
        assert ds["fraction"].shape == (2, 2, 2, 3)
        assert (ds["status"] == 1).all()
        np.testing.assert_allclose(ds["fraction"].sum("orientation"), 1.0)
        assert ds["barrier_101_eV"].attrs["config_key"] == "material.diffusion_barrier_eV.101"
    summary = json.loads((out / "phase_map.json").read_text())
    assert summary["tasks"] == {"total": 8, "ok": 8, "failed": 0}
    assert len(summary["theory_boundary_anisotropy_J_m2"]) == 2


@pytest.mark.slow
def test_default_phase_map_regions(tmp_path):
    """The default map (paper grid, 4 × 4 points, 2 seeds): (101) at the liquid corner, (001) at the
    highest anisotropy with the data barrier. Minutes on 2 cores with the sparse kernel."""
    summary = phasemap.make_phase_map(tmp_path / "map", workers=2)
    dominant = summary["dominant"]
    assert summary["tasks"]["failed"] == 0
    assert dominant[0][0] == "101"   # E_a(101) = 0.02 eV, unstrained surface energies
    assert dominant[0][-1] == "001"  # E_a(101) = 0.02 eV, beyond the strained anisotropy
