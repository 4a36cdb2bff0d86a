"""Requirements on softgrain.ebsd (issue 13): texture statistics of grain maps, EBSD files.

Synthetic EBSD maps are built here with known grains: a Voronoi tessellation whose grains get
chosen orientations (a known number per class), with per-pixel orientation noise and each pixel
stored as a random symmetry equivalent; written with orix itself (.ang, .h5) and, since orix has
no .ctf writer, with a minimal Oxford-format writer below. Reading them back must recover the
grain count and the count and area fractions.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from diffpy.structure import Lattice, Structure
from orix import io as orix_io
from orix.crystal_map import CrystalMap, Phase, PhaseList, create_coordinate_arrays
from orix.quaternion import Orientation, Rotation
from orix.quaternion.symmetry import Oh
from scipy import stats

from softgrain import ebsd
from softgrain.errors import UserInputError
from softgrain.physics import orientations as ori

LI_PHASE = dict(name="Li", space_group=229,  # Im-3m, a = 3.51 Å (bcc Li, room temperature)
                structure=Structure(lattice=Lattice(3.51, 3.51, 3.51, 90, 90, 90)))


# --- synthetic maps ------------------------------------------------------------------------------


def _voronoi_labels(shape, n_grains, rng, min_distance):
    """Voronoi grain ids on a pixel grid with seeds at least ``min_distance`` apart."""
    seeds = []
    while len(seeds) < n_grains:
        candidate = rng.uniform(0, 1, 2) * shape
        if all(np.hypot(*(candidate - s)) >= min_distance for s in seeds):
            seeds.append(candidate)
    yy, xx = np.indices(shape)
    distance = np.hypot(yy[..., None] - np.array(seeds)[:, 0], xx[..., None] - np.array(seeds)[:, 1])
    return np.argmin(distance, axis=-1)


def _neighbour_pairs(labels):
    pairs = np.concatenate([np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1),
                            np.stack([labels[:-1].ravel(), labels[1:].ravel()], 1)])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(np.sort(pairs, axis=1), axis=0)


def _orientation_in_class(label, rng):
    """One orientation whose growth direction (sample z) is in class ``label``, away from edges."""
    while True:
        if label == "other":
            o = ori.random_orientations(1, rng)
        else:
            o = ori.fibre_orientations(1, ori.POLE_DIRECTIONS[label], 3.0, rng)
        angle = ori.nearest_pole(ori.growth_directions(o))[1][0]
        if (label == "other" and angle > 18.0) or (label != "other" and angle < 12.0):
            return o.data[0]


def _grain_orientations(labels, classes, rng, min_misorientation=20.0):
    """Orientations per grain of the given classes, neighbours misoriented by ≥ the minimum."""
    q = np.array([_orientation_in_class(c, rng) for c in classes])
    pairs = _neighbour_pairs(labels)
    for _ in range(200):
        angles = Orientation(q[pairs[:, 0]], symmetry=Oh).angle_with(
            Orientation(q[pairs[:, 1]], symmetry=Oh), degrees=True)
        close = pairs[angles < min_misorientation, 1]
        if close.size == 0:
            return q
        for grain in np.unique(close):
            q[grain] = _orientation_in_class(classes[grain], rng)
    raise AssertionError("could not separate neighbouring grains")


def _pixel_orientations(labels, grain_q, rng, noise_deg=0.5):
    """Per-pixel quaternions: grain orientation, small noise, random symmetry equivalent."""
    q = grain_q[labels.ravel()]
    axes = rng.standard_normal((q.shape[0], 3))
    noise = Rotation.from_axes_angles(axes, np.radians(rng.normal(0, noise_deg, q.shape[0])))
    noisy = Rotation(q) * noise
    symmetry = Oh.proper_subgroup.data[rng.integers(0, 24, q.shape[0])]
    return (Rotation(symmetry) * noisy).data


def _crystal_map(labels, pixel_q, *, step=0.5, indexed=None, phase=None):
    shape = labels.shape
    coords, size = create_coordinate_arrays(shape, (step, step))
    phase_id = np.zeros(size, dtype=int)
    if indexed is not None:
        phase_id[~indexed.ravel()] = -1
    return CrystalMap(rotations=Rotation(pixel_q), phase_id=phase_id, x=coords["x"], y=coords["y"],
                      phase_list=PhaseList(Phase(**(phase or LI_PHASE))),
                      prop={"ci": np.where(phase_id >= 0, 0.9, -1.0), "iq": np.ones(size)})


def _write_ctf(path, labels_shape, pixel_q, step=0.5, indexed=None):
    """A minimal Oxford Channel Text File (what AZtec writes), Euler angles in degrees."""
    ny, nx = labels_shape
    euler = np.degrees(Rotation(pixel_q).to_euler())
    indexed = np.ones(ny * nx, bool) if indexed is None else indexed.ravel()
    lines = ["Channel Text File", "Prj\tsynthetic", "Author\tsoftgrain tests", "JobMode\tGrid",
             f"XCells\t{nx}", f"YCells\t{ny}", f"XStep\t{step}", f"YStep\t{step}",
             "AcqE1\t0", "AcqE2\t0", "AcqE3\t0",
             "Euler angles refer to Sample Coordinate system (CS0)!\tMag\t100\tCoverage\t100\tDevice\t0"
             "\tKV\t20\tAccV\t20\tTiltAngle\t70\tTiltAxis\t0",
             "Phases\t1", "3.510;3.510;3.510\t90.000;90.000;90.000\tLi\t11\t229",
             "Phase\tX\tY\tBands\tError\tEuler1\tEuler2\tEuler3\tMAD\tBC\tBS"]
    for k in range(ny * nx):
        y, x = divmod(k, nx)
        e = euler[k] if indexed[k] else (0.0, 0.0, 0.0)
        lines.append(f"{int(indexed[k])}\t{x * step:.4f}\t{y * step:.4f}\t{8 if indexed[k] else 0}\t"
                     f"{0 if indexed[k] else 3}\t{e[0]:.4f}\t{e[1]:.4f}\t{e[2]:.4f}\t0.5\t150\t150")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def textured_map():
    """A 70 × 90 map of 36 grains: 12 "001", 8 "101", 4 "111", 12 "other" (known areas)."""
    rng = np.random.default_rng(2026)
    labels = _voronoi_labels(np.array([70, 90]), 36, rng, min_distance=9.0)
    classes = ["001"] * 12 + ["101"] * 8 + ["111"] * 4 + ["other"] * 12
    grain_q = _grain_orientations(labels, classes, rng)
    pixel_q = _pixel_orientations(labels, grain_q, rng)
    area = np.bincount(labels.ravel(), minlength=36)
    class_area = {c: area[[i for i, k in enumerate(classes) if k == c]].sum() / labels.size
                  for c in ori.CLASSES}
    return dict(labels=labels, classes=classes, grain_q=grain_q, pixel_q=pixel_q,
                count_fraction={"001": 12 / 36, "101": 8 / 36, "111": 4 / 36, "other": 12 / 36},
                area_fraction=class_area)


# --- grain_texture on simulation-like maps ----------------------------------------------------


def test_grain_texture_counts_grains_and_areas_in_a_height_window():
    """Area fractions weight grains by cells, count fractions count each grain present once; the
    height window and the minimum size select cells and grains as documented."""
    q = np.concatenate([ori.label_orientations(["001", "101", "111"], 1).data,
                        [[np.cos(np.radians(10)), np.sin(np.radians(10)), 0, 0]]])  # 20° tilt: other
    grain_map = np.array([[0, 0, 1, 1, 2, 3],
                          [0, 0, 1, 1, 2, 3],
                          [0, 0, 0, 1, 1, 3],
                          [0, 0, 0, 0, -1, -1]])
    whole = ebsd.grain_texture(grain_map, q)
    assert whole.grains == 4
    assert whole.count_fraction == {"001": 0.25, "101": 0.25, "111": 0.25, "other": 0.25}
    assert whole.area_fraction == pytest.approx({"001": 11 / 22, "101": 6 / 22, "111": 2 / 22, "other": 3 / 22})
    assert whole.misorientation_deg[:3] == pytest.approx([0, 0, 0], abs=1e-5)
    assert whole.misorientation_deg[3] == pytest.approx(20.0) and whole.nearest_pole[3] == 0
    top = ebsd.grain_texture(grain_map, q, rows=(2, 4))
    assert top.grains == 3 and top.count_fraction["111"] == 0.0
    assert top.area_fraction == pytest.approx({"001": 7 / 10, "101": 2 / 10, "111": 0.0, "other": 1 / 10})
    big = ebsd.grain_texture(grain_map, q, min_cells=3)
    assert big.grains == 3 and big.count_fraction["111"] == 0.0
    json.dumps(whole.to_dict())
    empty = ebsd.grain_texture(np.full((2, 2), -1), q)
    assert empty.grains == 0 and empty.to_dict()["area_fraction"]["001"] is None
    assert ebsd.class_map(grain_map, whole.grain_class)[3].tolist() == [0, 0, 0, 0, -1, -1]
    with pytest.raises(ValueError, match="orientations"):
        ebsd.grain_texture(grain_map, q[:3])
    with pytest.raises(ValueError, match="rows"):
        ebsd.grain_texture(grain_map, q, rows=(3, 9))


def test_grain_texture_of_many_random_grains_matches_the_cap_fractions():
    """1,500 random grains of random sizes: count fractions match the analytic cap fractions
    (chi-square) and area fractions agree with them within sampling error."""
    rng = np.random.default_rng(3)
    n = 1500
    grain_map = rng.integers(0, n, size=(300, 100))
    texture = ebsd.grain_texture(grain_map, ori.random_orientations(n, rng))
    expected = np.array([ori.random_cap_fractions()[c] for c in ori.CLASSES])
    counts = np.array([texture.count_fraction[c] for c in ori.CLASSES]) * texture.grains
    assert stats.chisquare(counts, expected * texture.grains).pvalue > 1e-3
    area = np.array([texture.area_fraction[c] for c in ori.CLASSES])
    # Area-weighted: the binomial error with Kish's effective number of grains (Σa)²/Σa².
    n_effective = texture.grain_area.sum() ** 2 / np.sum(texture.grain_area.astype(float) ** 2)
    assert np.all(np.abs(area - expected) < 4.5 * np.sqrt(expected * (1 - expected) / n_effective))


# --- segmentation -------------------------------------------------------------------------------


def test_segmentation_recovers_the_voronoi_grains_and_their_mean_orientations(textured_map):
    """Flood fill with a 10° threshold finds every grain with exactly its pixels, and the
    symmetry-aware mean orientation is within 0.3° of the grain's (pixels are stored as random
    symmetry equivalents with 0.5° noise)."""
    labels = textured_map["labels"]
    q = textured_map["pixel_q"].reshape(labels.shape + (4,))
    found, mean_q = ebsd.segment_grains(q, np.ones(labels.shape, bool))
    assert len(mean_q) == 36
    # One-to-one correspondence of the partitions.
    pairs = np.unique(np.stack([found.ravel(), labels.ravel()], 1), axis=0)
    assert len(pairs) == 36
    truth = textured_map["grain_q"][pairs[np.argsort(pairs[:, 0]), 1]]
    error = Orientation(mean_q, symmetry=Oh).angle_with(Orientation(truth, symmetry=Oh), degrees=True)
    assert np.max(error) < 0.3


def test_small_grains_and_unindexed_pixels_are_left_out():
    """Grains below the minimum size get −1, unindexed pixels split nothing they do not cut."""
    q = np.zeros((4, 6, 4))
    q[..., 0] = 1.0
    q[:, 3:] = Rotation.from_axes_angles([0, 0, 1], np.radians(30)).data  # a second grain
    q[0, 5] = Rotation.from_axes_angles([1, 0, 0], np.radians(40)).data  # a one-pixel speck
    valid = np.ones((4, 6), bool)
    valid[3, 0] = False
    labels, mean_q = ebsd.segment_grains(q, valid, threshold_deg=10, min_size_px=2)
    assert labels[0].tolist() == [0, 0, 0, 1, 1, -1]
    assert labels[3, 0] == -1 and len(mean_q) == 2
    assert (labels == 0).sum() == 11 and (labels == 1).sum() == 11
    with pytest.raises(ValueError, match="threshold"):
        ebsd.segment_grains(q, valid, threshold_deg=70)


# --- real files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".ang", ".h5", ".ctf"])
def test_synthetic_files_read_back_give_the_known_texture(textured_map, tmp_path, suffix):
    """Written with orix (.ang, .h5) or in Oxford's format (.ctf) and read back: 36 grains and the
    count and area fractions as built (5-decimal Euler angles in .ang change nothing)."""
    labels = textured_map["labels"]
    path = tmp_path / f"map{suffix}"
    if suffix == ".ctf":
        _write_ctf(path, labels.shape, textured_map["pixel_q"])
    else:
        orix_io.save(str(path), _crystal_map(labels, textured_map["pixel_q"]), overwrite=True)
    result = ebsd.analyse_ebsd(path)
    report = result.to_dict()
    assert report["grains"] == 36
    assert report["count_fraction"] == pytest.approx(textured_map["count_fraction"], abs=1e-12)
    assert report["area_fraction"] == pytest.approx(textured_map["area_fraction"], abs=1e-12)
    assert report["tolerance_deg"] == 15.0 and report["phase"] == "Li"
    assert result.labels.shape == labels.shape
    json.dumps(report)


def test_growth_direction_selects_the_sample_axis(tmp_path):
    """A map whose ⟨101⟩ grains grow along sample x is all "101" with growth_direction="x" and
    not with the default z."""
    rng = np.random.default_rng(5)
    labels = _voronoi_labels(np.array([30, 40]), 8, rng, min_distance=8.0)
    x_to_z = Rotation.from_axes_angles([0, 1, 0], -np.pi / 2)  # maps sample x onto sample z
    along_x = (ori.label_orientations(["101"] * 8, rng) * x_to_z).data
    path = tmp_path / "cross_section.h5"
    orix_io.save(str(path), _crystal_map(labels, _pixel_orientations(labels, along_x, rng, 0.2)),
                 overwrite=True)
    found = ebsd.analyse_ebsd(path, growth_direction="x", threshold_deg=2.0).to_dict()
    assert found["count_fraction"]["101"] == 1.0
    assert ebsd.analyse_ebsd(path, threshold_deg=2.0).to_dict()["count_fraction"]["101"] < 1.0
    with pytest.raises(UserInputError, match="growth_direction"):
        ebsd.analyse_ebsd(path, growth_direction="w")


def test_random_texture_map_gives_the_cap_fractions_within_sampling_error(tmp_path):
    """A 120 × 120 .h5 map of 150 randomly oriented grains: count fractions consistent with the
    analytic cap fractions (chi-square)."""
    rng = np.random.default_rng(8)
    labels = _voronoi_labels(np.array([120, 120]), 150, rng, min_distance=6.0)
    grain_q = ori.random_orientations(150, rng).data
    pairs = _neighbour_pairs(labels)
    for _ in range(50):  # neighbours closer than 15° would merge into one grain
        close = Orientation(grain_q[pairs[:, 0]], symmetry=Oh).angle_with(
            Orientation(grain_q[pairs[:, 1]], symmetry=Oh), degrees=True) < 15
        if not close.any():
            break
        grain_q[pairs[close, 1]] = ori.random_orientations(int(close.sum()), rng).data
    path = tmp_path / "random.h5"
    orix_io.save(str(path), _crystal_map(labels, _pixel_orientations(labels, grain_q, rng, 0.3)), overwrite=True)
    report = ebsd.analyse_ebsd(path).to_dict()
    assert report["grains"] == 150
    expected = np.array([ori.random_cap_fractions()[c] for c in ori.CLASSES]) * 150
    observed = np.array([report["count_fraction"][c] for c in ori.CLASSES]) * 150
    assert stats.chisquare(observed, expected).pvalue > 1e-3


# --- bad files ------------------------------------------------------------------------------------


def _one_line_error(path, match, **kwargs):
    with pytest.raises(ebsd.EBSDFileError) as caught:
        ebsd.analyse_ebsd(path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert match in message, message
    assert isinstance(caught.value, UserInputError)


def test_bad_files_give_one_line_errors_naming_the_file(textured_map, tmp_path):
    """Missing, unknown format, empty, truncated (mid-line, whole rows, HDF5), unindexed,
    wrong (hexagonal) phase, several phases without a choice → EBSDFileError, one line."""
    labels, pixel_q = textured_map["labels"], textured_map["pixel_q"]
    _one_line_error(tmp_path / "missing.ang", "no such file")
    (tmp_path / "map.txt").write_text("1 2 3\n")
    _one_line_error(tmp_path / "map.txt", "unknown EBSD format")
    (tmp_path / "empty.ang").write_text("")
    _one_line_error(tmp_path / "empty.ang", "empty file")

    good = tmp_path / "good.ang"
    orix_io.save(str(good), _crystal_map(labels, pixel_q), overwrite=True)
    text = good.read_text()
    (tmp_path / "cut.ang").write_text(text[: len(text) - 40])
    _one_line_error(tmp_path / "cut.ang", "cannot read")
    lines = text.splitlines(keepends=True)
    (tmp_path / "rows.ang").write_text("".join(lines[: len(lines) - 90]))
    _one_line_error(tmp_path / "rows.ang", "truncated")
    (tmp_path / "hex.ang").write_text(text.replace("GRID: SqrGrid", "GRID: HexGrid"))
    _one_line_error(tmp_path / "hex.ang", "hexagonal-grid")

    good_h5 = tmp_path / "good.h5"
    orix_io.save(str(good_h5), _crystal_map(labels, pixel_q), overwrite=True)
    data = good_h5.read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    _one_line_error(tmp_path / "cut.h5", "cannot read")

    ctf = tmp_path / "good.ctf"
    _write_ctf(ctf, labels.shape, pixel_q)
    ctf_lines = ctf.read_text().splitlines(keepends=True)
    (tmp_path / "rows.ctf").write_text("".join(ctf_lines[: len(ctf_lines) - 90]))
    _one_line_error(tmp_path / "rows.ctf", "truncated")

    unindexed = tmp_path / "unindexed.h5"
    orix_io.save(str(unindexed), _crystal_map(labels, pixel_q, indexed=np.zeros(labels.shape, bool)),
                 overwrite=True)
    _one_line_error(unindexed, "no indexed points")

    magnesium = dict(name="Mg", space_group=194,
                     structure=Structure(lattice=Lattice(3.21, 3.21, 5.21, 90, 90, 120)))
    hexagonal = tmp_path / "mg.h5"
    orix_io.save(str(hexagonal), _crystal_map(labels, pixel_q, phase=magnesium), overwrite=True)
    _one_line_error(hexagonal, "not cubic m-3m")

    two_phase = tmp_path / "two.h5"
    coords, size = create_coordinate_arrays(labels.shape, (0.5, 0.5))
    phase_id = (labels.ravel() % 2).astype(int)
    xmap = CrystalMap(rotations=Rotation(pixel_q), phase_id=phase_id, x=coords["x"], y=coords["y"],
                      phase_list=PhaseList([Phase(**LI_PHASE), Phase(**magnesium)]))
    orix_io.save(str(two_phase), xmap, overwrite=True)
    _one_line_error(two_phase, "several indexed phases")
    _one_line_error(two_phase, "not cubic m-3m", phase="Mg")
    assert ebsd.analyse_ebsd(two_phase, phase="Li").to_dict()["phase"] == "Li"
