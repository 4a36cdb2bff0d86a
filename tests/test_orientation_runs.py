"""Requirements on grains as crystals in runs (issue 13): nucleus orientations, per-grain E_s and
E_a, result.nc's orientation variables, the summary's classes, the IPF figures, the VTK colours,
`softgrain ebsd` and `compare-experiments --ebsd`.

Each test states the requirement it checks. Statistical tests use fixed seeds and thresholds far
in the tails (p < 1e-3) with a textured negative control. Runs are small (a few seconds).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import warnings
from pathlib import Path

import meshio
import numpy as np
import pytest
import xarray as xr
from orix import io as orix_io
from orix.quaternion import Rotation
from orix.vector import Vector3d
from scipy import stats

from cli_helpers import invoke_main
from softgrain import analysis, cli
from softgrain.config import load_config
from softgrain.errors import ConfigError
from softgrain.materials.metals import ORIENTATIONS
from softgrain.output import viewers
from softgrain.output.orientation_plots import ipf_colours
from softgrain.phasefield.initial import nucleate
from softgrain.phasefield.mapping import MappingConstants, gradient_coefficient, mobility
from softgrain.physics import orientations as ori
from softgrain.setup import build, restore, simulate, simulation
from test_ebsd import _crystal_map, _grain_orientations, _pixel_orientations, _voronoi_labels
from test_orientations import _ipf_bin_counts, _ipf_bin_probabilities, _sphere_bin_counts

ISOTROPIC = {"material.surface_energy_J_m2": {"001": 0.47, "101": 0.47, "111": 0.47},
             "material.diffusion_barrier_eV": {"001": 0.08, "101": 0.08, "111": 0.08}}
MANY_NUCLEI = {"grid.nx": 200, "grid.ny": 40, "nucleation.rows": 20, "nucleation.count": 4000,
               "nucleation.radius_cells": 0.5}
SMALL = {"grid.nx": 40, "grid.ny": 24, "nucleation.count": 12, "run.end_time_s": 6.0,
         "run.snapshot_times_s": [3.0], "deposition.crossing_time_s": 8.0}


def _quiet_build(config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sub-stepping notes: expected, not under test
        return build(config)


def _quiet_simulate(config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate(config)


# --- nucleus orientations ---------------------------------------------------------------------


def test_random_nuclei_have_uniform_growth_directions_and_a_uniform_pole_figure():
    """orientation_distribution = "random" with isotropic inputs: the 4,000 nuclei's growth
    directions fill the standard triangle by area (IPF density) and their crystal ⟨001⟩ axes are
    uniform in the sample frame ({001} pole figure), chi-square p > 1e-3; a ⟨101⟩ fibre fails both.
    Isotropic inputs give every grain the same L and κ."""
    config = load_config("li-liquid", {**ISOTROPIC, **MANY_NUCLEI, "nucleation.orientation_distribution": "random"})
    inputs = _quiet_build(config)
    quaternions = inputs.grain_quaternion
    assert quaternions.shape == (4000, 4)
    expected = _ipf_bin_probabilities()
    inside = expected > 0
    counts = _ipf_bin_counts(ori.growth_directions(quaternions))
    assert stats.chisquare(counts[inside], expected[inside] * counts.sum()).pvalue > 1e-3
    axes = (~ori.as_orientations(quaternions)).outer(Vector3d(np.eye(3))).data.reshape(-1, 3)
    assert stats.chisquare(_sphere_bin_counts(axes)).pvalue > 1e-3
    assert np.ptp(inputs.kappa) < 1e-12 * inputs.kappa.max()
    assert np.ptp(inputs.mobility) < 1e-12 * inputs.mobility.max()

    fibre = _quiet_build(config.updated({"nucleation.orientation_distribution": "fibre",
                                         "nucleation.fibre_spread_deg": 15.0}))
    textured = _ipf_bin_counts(ori.growth_directions(fibre.grain_quaternion))
    assert stats.chisquare(textured[inside], expected[inside] * textured.sum()).pvalue < 1e-10
    fibre_axes = (~ori.as_orientations(fibre.grain_quaternion)).outer(Vector3d(np.eye(3))).data.reshape(-1, 3)
    assert stats.chisquare(_sphere_bin_counts(fibre_axes)).pvalue < 1e-10


def test_fibre_nuclei_scatter_about_the_fibre_axis_by_the_spread():
    """Fibre mode: the growth directions' mean angle to the fibre axis is 1.25 σ (Rayleigh) for a
    small spread, and an [h, k, l] axis equals the named pole."""
    changes = {**MANY_NUCLEI, "nucleation.orientation_distribution": "fibre", "nucleation.fibre_spread_deg": 5.0}
    named = _quiet_build(load_config("li-liquid", {**changes, "nucleation.fibre_axis": "111"}))
    listed = _quiet_build(load_config("li-liquid", {**changes, "nucleation.fibre_axis": [1, 1, 1]}))
    np.testing.assert_array_equal(named.grain_quaternion, listed.grain_quaternion)
    angle = ori.pole_angles_deg(ori.growth_directions(named.grain_quaternion))[:, 2]
    assert np.mean(angle) == pytest.approx(1.2533 * 5.0, rel=0.05)


def test_three_label_mode_keeps_the_label_draw_and_gives_each_grain_its_label():
    """Labels mode: nucleation is exactly nucleate()'s (the twist comes from a separate stream), each
    grain's growth direction is its labelled pole, and E_s, E_a, L, κ are the pole values; random
    mode keeps the same nucleus positions."""
    config = load_config("li-solid")
    inputs = _quiet_build(config)
    direct = nucleate((config.grid.ny, config.grid.nx), config.nucleation.count, config.nucleation.rows,
                      config.nucleation.radius_cells, len(ORIENTATIONS), config.run.seed,
                      allowed_orientations=np.arange(3), layer=config.nucleation.layer,
                      min_spacing_cells=config.nucleation.min_spacing_cells)
    np.testing.assert_array_equal(inputs.nucleation.labels, direct.labels)
    np.testing.assert_array_equal(inputs.nucleation.grain_orientation, direct.grain_orientation)
    classes = ori.classify(ori.growth_directions(inputs.grain_quaternion), 1e-6)
    np.testing.assert_array_equal(classes, inputs.nucleation.grain_orientation)
    go = inputs.nucleation.grain_orientation
    params = inputs.orientation_parameters
    np.testing.assert_array_equal(inputs.grain_surface_energy_J_m2, params.surface_energy_J_m2[go])
    np.testing.assert_array_equal(inputs.grain_barrier_eV, params.barrier_eV[go])
    np.testing.assert_array_equal(inputs.kappa, params.kappa[go])
    # The interpolation agrees with the pole values at the labelled grains (to rounding).
    interpolated = ori.interpolate_pole_values(ori.growth_directions(inputs.grain_quaternion),
                                               dict(zip(ORIENTATIONS, params.surface_energy_J_m2)))
    np.testing.assert_allclose(interpolated, inputs.grain_surface_energy_J_m2, rtol=0, atol=1e-12)
    random = _quiet_build(config.updated({"nucleation.orientation_distribution": "random"}))
    np.testing.assert_array_equal(random.nucleation.labels, inputs.nucleation.labels)


def test_random_mode_maps_every_grain_through_eq_s14_s15_with_its_interpolated_inputs():
    """Random mode: E_s and E_a of each grain are the barycentric interpolation at its growth
    direction, L_q and κ_q follow Eq. S14–S15 with E0 = the mean E_s of the grains, the grain's
    orientation index is its nearest pole; the draw is reproducible from run.seed."""
    config = load_config("li-solid", {"nucleation.orientation_distribution": "random"})
    inputs = _quiet_build(config)
    directions = ori.growth_directions(inputs.grain_quaternion)
    params = inputs.orientation_parameters
    energy = ori.interpolate_pole_values(directions, dict(zip(ORIENTATIONS, params.surface_energy_J_m2)))
    barrier = ori.interpolate_pole_values(directions, dict(zip(ORIENTATIONS, params.barrier_eV)))
    np.testing.assert_allclose(inputs.grain_surface_energy_J_m2, energy, rtol=1e-15)
    np.testing.assert_allclose(inputs.grain_barrier_eV, barrier, rtol=1e-15)
    constants = MappingConstants.from_data()
    assert params.reference_energy_J_m2 == pytest.approx(energy.mean(), rel=1e-15)
    np.testing.assert_allclose(inputs.kappa, gradient_coefficient(energy, energy.mean(), constants), rtol=1e-14)
    np.testing.assert_allclose(inputs.mobility, mobility(barrier, params.temperature_K, constants), rtol=1e-14)
    np.testing.assert_array_equal(inputs.nucleation.grain_orientation, ori.nearest_pole(directions)[0])
    again = _quiet_build(config)
    np.testing.assert_array_equal(again.grain_quaternion, inputs.grain_quaternion)
    other = _quiet_build(config.updated({"run.seed": 2}))
    assert not np.allclose(other.grain_quaternion, inputs.grain_quaternion)


def test_configuration_refuses_contradictory_orientation_settings():
    """Restricted labels with random orientations, an unknown fibre axis or a zero vector, and an
    inverted height window are one-line ConfigErrors naming the key."""
    cases = [({"nucleation.orientation_distribution": "random", "nucleation.orientations": ["001"]},
              "nucleation.orientations"),
             ({"nucleation.fibre_axis": "110"}, "nucleation.fibre_axis"),
             ({"nucleation.fibre_axis": [0, 0, 0]}, "nucleation.fibre_axis"),
             ({"nucleation.fibre_spread_deg": -1.0}, "nucleation.fibre_spread_deg"),
             ({"analysis.tolerance_deg": 0.0}, "analysis.tolerance_deg"),
             ({"analysis.window_um": [5.0, 1.0]}, "analysis.window_um")]
    for changes, key in cases:
        with pytest.raises(ConfigError) as caught:
            load_config("li-solid", changes)
        assert key in str(caught.value) and "\n" not in str(caught.value)
    assert load_config("li-solid").analysis.tolerance_deg == ori.DEFAULT_TOLERANCE_DEG


def test_a_random_mode_run_resumes_from_its_checkpoint_state():
    """A random-mode run rebuilt from its checkpoint state (orientations redrawn from run.seed)
    continues to the same grain maps."""
    config = load_config("li-liquid", {**SMALL, "nucleation.orientation_distribution": "random"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = simulation(config)
        whole.run()
        half = simulation(config)
        half.advance_to(whole.total_steps // 2)
        resumed = restore(half.state_dict())
    resumed.run()
    np.testing.assert_array_equal(resumed.field.labels(resumed.active_rows()),
                                  whole.field.labels(whole.active_rows()))


# --- a run's outputs ----------------------------------------------------------------------------


def _run_main(args: list[str]) -> tuple[int, str]:
    """``softgrain ARGS`` in-process (for module-scoped fixtures, where capsys is not available)."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(sys, "argv", ["softgrain", *args])
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err), \
                pytest.raises(SystemExit) as info:
            cli.main()
    finally:
        monkeypatch.undo()
    return (info.value.code if isinstance(info.value.code, int) else 0), err.getvalue()


@pytest.fixture(scope="module")
def random_run(tmp_path_factory):
    """`softgrain run li-liquid --set nucleation.orientation_distribution=random --out DIR` (small)."""
    folder = tmp_path_factory.mktemp("random") / "run"
    args = ["run", "li-liquid", "--out", str(folder), "--quiet",
            "--set", "nucleation.orientation_distribution=random", "--set", "analysis.window_um=[0, 2]"]
    for key, value in SMALL.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    code, err = _run_main(args)
    assert code == 0, err
    return folder


def test_a_random_run_writes_orientations_classes_and_ipf_figures(random_run):
    """result.nc holds per grain a unit quaternion and its Bunge Euler angles (degrees, the same
    rotation), the growth direction, class and angle to the nearest pole; summary.json adds the
    4-class fractions (overall and in the window); the IPF map and growth texture are written."""
    for name in ("result.nc", "summary.json", "grain_maps.png", "texture.png", "ipf_map.png", "growth_texture.png"):
        assert (random_run / name).is_file(), name
    with xr.open_dataset(random_run / "result.nc") as ds:
        ds = ds.load()
    n = ds.sizes["grain_id"]
    q = ds["grain_quaternion"].values
    assert q.shape == (n, 4) and ds["grain_euler_bunge"].attrs["units"] == "degree"
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)
    from_euler = Rotation.from_euler(np.radians(ds["grain_euler_bunge"].values)).data
    np.testing.assert_allclose(np.abs(np.sum(from_euler * q, axis=1)), 1.0, atol=1e-9)
    assert set(ds["grain_class"].values) <= set(ori.CLASSES)
    assert ds.attrs["orientation_distribution"] == "random"
    expected_class = ori.class_labels(ori.classify(ori.growth_directions(q), 15.0))
    np.testing.assert_array_equal(ds["grain_class"].values.astype(str), expected_class.astype(str))
    np.testing.assert_allclose(ds["grain_pole_misorientation"].values,
                               ori.nearest_pole(ori.growth_directions(q))[1], atol=1e-9)
    summary = json.loads((random_run / "summary.json").read_text())
    classes = summary["classes"]
    assert classes["tolerance_deg"] == 15.0 and classes["window_um"] == [0.0, 2.0]
    final = analysis.class_texture(ds.isel(time=[-1]), window_um=[0.0, 2.0])
    for c in ori.CLASSES:
        assert classes["count_fraction"][c][-1] == pytest.approx(float(final["count_fraction"].sel({"class": c})[0]))
    assert sum(classes["count_fraction"][c][-1] for c in ori.CLASSES) == pytest.approx(1.0)
    assert sum(classes["window_area_fraction"][c][-1] for c in ori.CLASSES) == pytest.approx(1.0)
    grains_in_window = np.unique(ds["grain"].values[-1][:4][ds["grain"].values[-1][:4] >= 0]).size
    assert classes["window_grains"][-1] == grains_in_window


def test_a_label_run_keeps_todays_summary_keys():
    """Labels mode: summary.json has exactly the keys of the three-label model."""
    ds = _quiet_simulate(load_config("li-liquid", SMALL))
    assert set(analysis.summary(ds)) == {"times_s", "fractions", "grain_fractions", "grain_count",
                                         "surface_grain_count", "surface_grain_width_um"}
    assert "grain_quaternion" in ds and ds.attrs["orientation_distribution"] == "labels"
    classes = analysis.class_texture(ds.isel(time=[-1]))
    assert float(classes["count_fraction"].sel({"class": "other"})[0]) == 0.0


def test_vtk_export_gains_ipf_colours(random_run, tmp_path):
    """Every occupied cell of the VTK export carries its grain's IPF colour (RGB 0–255), empty
    cells are black, and the class and pole angle are cell data too."""
    with xr.open_dataset(random_run / "result.nc") as ds:
        ds = ds.load()
    written = viewers.export_vtk(ds, tmp_path)
    mesh = meshio.read(written[-2])
    grain = mesh.cell_data["grain"][0]
    colour = mesh.cell_data["ipf_colour"][0]
    expected = np.round(255 * ipf_colours(ds["grain_quaternion"].values)).astype(np.uint8)
    occupied = grain >= 0
    np.testing.assert_array_equal(colour[occupied], expected[grain[occupied]])
    assert np.all(colour[~occupied] == 0)
    assert set(np.unique(mesh.cell_data["grain_class"][0])) <= {-1, 0, 1, 2, 3}
    assert "pole_misorientation_deg" in mesh.cell_data


# --- real EBSD files ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ebsd_map(tmp_path_factory):
    """A 50 × 60 .ang and .h5 of 20 grains: 8 "001", 4 "101", 2 "111", 6 "other" (orix-written)."""
    rng = np.random.default_rng(13)
    labels = _voronoi_labels(np.array([50, 60]), 20, rng, min_distance=8.0)
    classes = ["001"] * 8 + ["101"] * 4 + ["111"] * 2 + ["other"] * 6
    pixel_q = _pixel_orientations(labels, _grain_orientations(labels, classes, rng), rng)
    folder = tmp_path_factory.mktemp("ebsd")
    for suffix in (".ang", ".h5"):
        orix_io.save(str(folder / f"map{suffix}"), _crystal_map(labels, pixel_q), overwrite=True)
    area = np.bincount(labels.ravel(), minlength=20)
    return {"folder": folder, "count_fraction": {"001": 0.4, "101": 0.2, "111": 0.1, "other": 0.3},
            "area_fraction": {c: area[[i for i, k in enumerate(classes) if k == c]].sum() / labels.size
                              for c in ori.CLASSES}}


@pytest.mark.parametrize("suffix", [".ang", ".h5"])
def test_softgrain_ebsd_reports_the_known_fractions_as_json(ebsd_map, suffix, monkeypatch, capsys):
    """`softgrain ebsd FILE --json` returns grains, count and area fractions over 001/101/111/other
    and the tolerance; --plot (drawn once, for .h5) writes the IPF map and the growth texture."""
    path = ebsd_map["folder"] / f"map{suffix}"
    plot = ebsd_map["folder"] / "plot.png"
    extra = ["--plot", str(plot)] if suffix == ".h5" else []
    code, out, err = invoke_main(monkeypatch, capsys, "ebsd", str(path), "--json", *extra)
    assert code == 0, err
    report = json.loads(out)
    assert report["grains"] == 20 and report["tolerance_deg"] == 15.0
    assert report["count_fraction"] == pytest.approx(ebsd_map["count_fraction"], abs=1e-12)
    assert report["area_fraction"] == pytest.approx(ebsd_map["area_fraction"], abs=1e-12)
    if extra:
        assert report["plots"] == [str(plot), str(plot.with_name("plot_texture.png"))]
        assert all(Path(p).stat().st_size > 10_000 for p in report["plots"])


def test_softgrain_ebsd_bad_input_exits_2_with_one_line(ebsd_map, tmp_path, monkeypatch, capsys):
    """Missing, truncated and unindexed files, and a bad tolerance → exit 2, one line on stderr."""
    text = (ebsd_map["folder"] / "map.ang").read_text()
    lines = text.splitlines(keepends=True)
    (tmp_path / "cut.ang").write_text("".join(lines[:-70]))
    unindexed = tmp_path / "unindexed.h5"
    labels = np.zeros((6, 8), int)
    orix_io.save(str(unindexed), _crystal_map(labels, np.tile([1.0, 0, 0, 0], (48, 1)),
                                              indexed=np.zeros((6, 8), bool)), overwrite=True)
    cases = [([str(tmp_path / "missing.ang")], "no such file"),
             ([str(tmp_path / "cut.ang")], "truncated"),
             ([str(unindexed)], "no indexed points"),
             ([str(ebsd_map["folder"] / "map.h5"), "--tolerance", "120"], "--tolerance")]
    for args, match in cases:
        code, out, err = invoke_main(monkeypatch, capsys, "ebsd", *args)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and match in err, err


def test_compare_experiments_takes_an_ebsd_file_in_place_of_the_papers_percentages(ebsd_map, monkeypatch, capsys):
    """--ebsd li-solid=FILE: the li-solid row's measured fractions are the file's count fractions
    ("other" included); the other conditions keep the paper's."""
    path = ebsd_map["folder"] / "map.h5"
    code, out, err = invoke_main(monkeypatch, capsys, "compare-experiments", "--seeds", "0", "--json",
                                 "--ebsd", f"li-solid={path}")
    assert code == 0, err
    rows = {row["preset"]: row for row in json.loads(out)["conditions"]}
    assert rows["li-solid"]["experiment"] == pytest.approx(ebsd_map["count_fraction"], abs=1e-12)
    assert rows["li-solid"]["ebsd_file"]["grains"] == 20 and rows["li-solid"]["source"] == str(path)
    assert rows["li-solid"]["experiment_favoured"] == "001"
    assert rows["li-solid-80c"]["experiment"]["101"] == pytest.approx(0.487)
    code, out, err = invoke_main(monkeypatch, capsys, "compare-experiments", "--seeds", "0",
                                 "--ebsd", f"li-liquid={path}")
    assert code == 2 and "--ebsd" in err and err.count("\n") == 1
