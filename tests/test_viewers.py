"""``softgrain animate`` / ``export --vtk`` / ``show`` and the provenance stored in result.nc.

The files are read back with the tools a user would open them with (imageio for the GIF,
meshio for the VTK files, an XML parser for the .pvd series).
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import imageio.v3 as iio
import meshio
import numpy as np
import pytest

from softgrain import provenance
from softgrain.output import viewers
from softgrain.output import files as io
from softgrain.output import results as outputs
from softgrain.setup import save_run, simulate
from softgrain.config import load_config, validate_config
from softgrain.materials.metals import ORIENTATIONS
from softgrain.output.plots import ORIENTATION_COLOURS
from cli_helpers import invoke_main

SNAPSHOTS = [1.0, 2.0, 3.0]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A small finished run (dense kernel) written like `softgrain run` writes it."""
    config = load_config("li-solid", {
        "numerics.kernel": "dense", "grid.nx": 24, "grid.ny": 12, "nucleation.count": 8,
        "run.end_time_s": 4.0, "deposition.crossing_time_s": 4.0, "run.snapshot_times_s": SNAPSHOTS})
    folder = tmp_path_factory.mktemp("run")
    with pytest.warns(UserWarning):  # the small grid sub-steps; not under test here
        ds = simulate(config)
    save_run(ds, folder)
    return folder


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    return invoke_main(monkeypatch, capsys, *args)


def hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])


def test_animate_writes_a_gif_with_one_frame_per_snapshot(run_folder, tmp_path, monkeypatch, capsys):
    target = tmp_path / "growth.gif"
    code, _, err = run_main(monkeypatch, capsys, "animate", str(run_folder), "--out", str(target))
    assert code == 0, err
    frames = iio.imread(target, index=None)
    ds = io.read_netcdf(run_folder / outputs.RESULT_FILE)
    assert frames.shape[0] == ds.sizes["time"] == len(SNAPSHOTS) + 1
    assert frames.ndim == 4 and frames.shape[-1] in (3, 4)
    # Every orientation present in the last map shows in the last frame in its palette colour
    # (GIF quantisation may shift colours slightly).
    pixels = frames[-1, ..., :3].reshape(-1, 3).astype(int)
    grains = ds["grain"].values[-1]
    present = {str(ds["grain_orientation"].values[g]) for g in np.unique(grains[grains >= 0])}
    assert present
    for orientation in ORIENTATIONS:
        distance = np.abs(pixels - hex_rgb(ORIENTATION_COLOURS[orientation])).sum(axis=1).min()
        if orientation in present:
            assert distance <= 12, orientation
    assert [p.name for p in tmp_path.iterdir()] == ["growth.gif"]   # no temporary files left


def test_animate_refuses_bad_targets_with_one_line(run_folder, tmp_path, monkeypatch, capsys):
    existing = tmp_path / "exists.gif"
    existing.write_bytes(b"keep me")
    cases = [
        (["--out", str(existing)], "--overwrite"),
        (["--out", str(tmp_path / "movie.avi")], "allowed: .gif, .mp4"),
        (["--out", str(tmp_path / "a.gif"), "--fps", "0"], "--fps"),
        (["--out", str(tmp_path / "nofolder" / "a.gif")], "no folder"),
    ]
    if not viewers.mp4_available():
        cases.append((["--out", str(tmp_path / "movie.mp4")], "imageio-ffmpeg"))
    for args, named in cases:
        code, out, err = run_main(monkeypatch, capsys, "animate", str(run_folder), *args)
        assert code == 2 and out == "" and len(err.splitlines()) == 1 and named in err, (args, err)
    assert existing.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.gif"]


def test_export_vtk_files_open_in_meshio_and_match_the_maps(run_folder, tmp_path, monkeypatch, capsys):
    target = tmp_path / "paraview"
    code, _, err = run_main(monkeypatch, capsys, "export", str(run_folder), "--vtk", "--out", str(target))
    assert code == 0, err
    ds = io.read_netcdf(run_folder / outputs.RESULT_FILE)
    series = ET.parse(target / viewers.PVD_FILE).getroot()
    entries = series.find("Collection").findall("DataSet")
    assert [float(e.get("timestep")) for e in entries] == list(ds["time"].values)
    orientation_of_grain = np.array([ORIENTATIONS.index(o) for o in ds["grain_orientation"].values])
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    for k, entry in enumerate(entries):
        mesh = meshio.read(target / entry.get("file"))
        assert mesh.cells[0].type == "quad" and len(mesh.cells[0].data) == ny * nx
        grain = mesh.cell_data["grain"][0]
        assert np.array_equal(grain, ds["grain"].values[k].ravel())
        occupied = grain >= 0
        assert np.array_equal(mesh.cell_data["orientation"][0][occupied], orientation_of_grain[grain[occupied]])
        assert np.all(mesh.cell_data["orientation"][0][~occupied] == -1)
        energy = mesh.cell_data["surface_energy_J_m2"][0]
        assert np.allclose(energy[occupied], ds["grain_surface_energy"].values[grain[occupied]])
        assert np.all(np.isnan(energy[~occupied]))
        assert np.allclose(mesh.cell_data["barrier_eV"][0][occupied], ds["grain_barrier"].values[grain[occupied]])
        # Cell k of the row-major grid sits at (x[k % nx], y[k // nx]) in µm.
        centres = mesh.points[mesh.cells[0].data].mean(axis=1)
        spacing = float(ds["x"].values[1] - ds["x"].values[0])
        assert np.allclose(centres[nx + 1, :2], [ds["x"].values[1] + spacing / 2, ds["y"].values[1] + spacing / 2])
    code, _, err = run_main(monkeypatch, capsys, "export", str(run_folder), "--vtk", "--out", str(target))
    assert code == 2 and "--overwrite" in err and len(err.splitlines()) == 1


def test_export_needs_a_format_and_a_result(run_folder, tmp_path, monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, "export", str(run_folder))
    assert code == 2 and "--vtk" in err and len(err.splitlines()) == 1
    for command in (["export", str(tmp_path), "--vtk"], ["animate", str(tmp_path)], ["show", str(tmp_path)]):
        code, out, err = run_main(monkeypatch, capsys, *command)
        assert code == 2 and out == "" and len(err.splitlines()) == 1 and "result" in err, command
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / outputs.RESULT_FILE).write_bytes(b"CDF\x01 truncated")
    code, _, err = run_main(monkeypatch, capsys, "show", str(broken))
    assert code == 2 and "cannot read" in err and len(err.splitlines()) == 1


def test_show_prints_texture_and_provenance(run_folder, monkeypatch, capsys):
    code, out, err = run_main(monkeypatch, capsys, "show", str(run_folder))
    assert code == 0, err
    summary = json.loads((run_folder / outputs.SUMMARY_FILE).read_text())
    for orientation in ORIENTATIONS:
        assert f"({orientation})" in out
    for t, fraction in zip(summary["times_s"], summary["fractions"]["101"]):
        assert f"{fraction:.1%}" in out
    assert "complete" in out and "softgrain_version" in out and "git_commit" in out


def test_result_records_provenance_that_reproduces_the_run(run_folder):
    ds = io.read_netcdf(run_folder / outputs.RESULT_FILE)
    attrs = ds.attrs
    env = provenance.environment()
    for key in ("softgrain_version", "git_commit", "git_dirty", "python", "platform", "numpy_version"):
        assert attrs[key] == env[key]
    started = dt.datetime.fromisoformat(attrs["started_at"].replace("Z", "+00:00"))
    finished = dt.datetime.fromisoformat(attrs["finished_at"].replace("Z", "+00:00"))
    assert started <= finished and attrs["wall_time_s"] > 0
    assert attrs["status"] == "complete" and attrs["seed"] == 1
    # The stored configuration alone re-makes the run exactly.
    config = validate_config(json.loads(attrs["config_json"]), source="result.nc")
    with pytest.warns(UserWarning):
        again = simulate(config)
    assert np.array_equal(again["grain"].values, ds["grain"].values)
    assert np.array_equal(again["free_energy"].values, ds["free_energy"].values)


def test_git_commit_is_unknown_outside_a_checkout(monkeypatch):
    provenance.git_state.cache_clear()
    monkeypatch.setattr(provenance, "_git", lambda args, cwd: None)
    try:
        assert provenance.git_state() == ("unknown", None)
        assert provenance.environment()["git_dirty"] == "unknown"
    finally:
        provenance.git_state.cache_clear()
