"""Issue 15, "figures": what a materials scientist needs to read them, checked on the figure objects.

- grain maps: a legend entry for the black "not deposited / no grain" cells, labelled colourbars,
  the orientation legend clear of the axis labels, and a panel that is one flat colour says so;
- texture: every curve visible (axis margins, distinct styles), one legend, a title naming the winner;
- phase map: axes start at zero barrier and zero anisotropy, the case markers hide no cell label,
  the title says when the runs ended;
- the animation draws grain boundaries; no matplotlib deprecation warnings.

The figures are built by the public plotting functions from the ``result.nc`` that ``softgrain
run`` writes (and, for the phase map, from a store-shaped dataset).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from softgrain.analysis import texture
from softgrain.config import load_config

TINY = ["--set", 'numerics.kernel="dense"', "--set", "grid.nx=24", "--set", "grid.ny=12",
        "--set", "nucleation.count=6", "--set", "run.snapshot_times_s=[1.0, 2.0]", "--end-time", "2",
        "--quiet"]


def _plots():
    """The plotting module, wherever the package keeps it."""
    for name in ("softgrain.output.plots", "softgrain.plots"):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    raise ModuleNotFoundError("softgrain's plotting module")


def _run(folder: Path, *extra: str) -> xr.Dataset:
    from softgrain import cli

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["softgrain", "run", "li-solid", "--out", str(folder), *TINY, *extra])
        with pytest.raises(SystemExit) as info:
            cli.main()
    assert info.value.code in (0, None)
    with xr.open_dataset(folder / "result.nc") as ds:
        return ds.load()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Path, xr.Dataset]:
    """A tiny li-solid run with all three orientations nucleated."""
    folder = tmp_path_factory.mktemp("mixed")
    return folder, _run(folder)


@pytest.fixture(scope="module")
def uniform(tmp_path_factory) -> tuple[Path, xr.Dataset]:
    """A tiny run in which every grain is (001): the energy and barrier maps are one value.

    With (001) alone E0 = E_s(001) and κ = κ1·e^κ2 ≈ 2 would dissolve the small nuclei; κ1 is
    lowered to give κ ≈ 0.1, about κ(001) of the mixed li-solid run.
    """
    folder = tmp_path_factory.mktemp("uniform")
    return folder, _run(folder, "--set", 'nucleation.orientations=["001"]', "--set", "mapping.kappa1=2e-10")


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def _legend_texts(fig) -> list[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [text.get_text() for legend in legends for text in legend.get_texts()]


def _all_axes(fig):
    """Every axes of the figure, inset ones (e.g. inset colourbars) included."""
    return list(fig.axes) + [child for ax in fig.axes for child in ax.child_axes]


def _is_colourbar(ax) -> bool:
    return ax.get_label() == "<colorbar>" or getattr(ax, "_colorbar", None) is not None


def _colourbars(fig):
    return [ax for ax in _all_axes(fig) if _is_colourbar(ax)]


def _panels(fig):
    return [ax for ax in fig.axes if not _is_colourbar(ax)]


# --- grain maps ------------------------------------------------------------------------------------

def test_grain_maps_explain_black_and_label_every_colourbar(mixed):
    fig = _plots().plot_grain_maps(mixed[1])
    try:
        assert any("not deposited" in text for text in _legend_texts(fig)), _legend_texts(fig)
        bars = _colourbars(fig)
        assert bars
        for bar in bars:
            assert (bar.get_ylabel() or bar.get_xlabel()).strip(), "a colourbar without a label"
    finally:
        _close(fig)


def test_grain_map_legend_clears_the_axis_labels(mixed):
    fig = _plots().plot_grain_maps(mixed[1])
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        for legend in legends:
            box = legend.get_window_extent(renderer)
            for ax in _panels(fig):
                for label in (ax.xaxis.label, ax.yaxis.label):
                    if label.get_text():
                        assert not box.overlaps(label.get_window_extent(renderer)), label.get_text()
    finally:
        _close(fig)


def test_a_flat_map_panel_says_so(uniform):
    """Every grain (001): the surface-energy and barrier panels are one colour — say so."""
    fig = _plots().plot_grain_maps(uniform[1])
    try:
        flat = 0
        for ax in _panels(fig):
            images = ax.get_images()
            if not images or "orientation" in ax.get_title():
                continue
            values = np.ma.masked_invalid(np.ma.asarray(images[0].get_array())).compressed()
            if values.size and np.ptp(values) == 0:
                flat += 1
                words = " ".join([ax.get_title()] + [t.get_text() for t in ax.texts]).lower()
                assert "uniform" in words, f"flat panel {ax.get_title()!r} does not say so"
        assert flat >= 2
    finally:
        _close(fig)


def test_plotting_raises_no_matplotlib_deprecation_warning(mixed):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plots = _plots()
        for fig in (plots.plot_grain_maps(mixed[1]), plots.plot_texture_evolution(texture(mixed[1]))):
            _close(fig)
    bad = [w for w in caught if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]
    assert not bad, [str(w.message) for w in bad]


# --- texture -----------------------------------------------------------------------------------

def _winner(ds: xr.Dataset) -> str:
    grain = ds["grain"].isel(time=-1).values
    orientation = ds["grain_orientation"].values
    names, counts = np.unique(orientation[grain[grain >= 0]], return_counts=True)
    return str(names[np.argmax(counts)])


def test_texture_figure_keeps_every_curve_visible_with_one_legend_and_names_the_winner(mixed):
    ds = mixed[1]
    fig = _plots().plot_texture_evolution(texture(ds))
    try:
        assert len(_legend_texts(fig)) >= 3
        legends = len(fig.legends) + sum(ax.get_legend() is not None for ax in fig.axes)
        assert legends == 1, f"{legends} legends"
        for ax in _panels(fig):
            if "fraction" in ax.get_xlabel():
                low, high = ax.get_xlim()
            elif "fraction" in ax.get_ylabel():
                low, high = ax.get_ylim()
            else:
                continue
            assert low < 0 and high > 1, "a fraction of 0 or 1 sits on the axis line"
            styles = [(line.get_linestyle(), line.get_marker()) for line in ax.get_lines()
                      if len(line.get_xdata()) > 0]
            assert len(styles) >= 3 and len(set(styles)) == len(styles), f"curves share a style: {styles}"
        title = fig._suptitle.get_text() if fig._suptitle is not None else ""
        assert f"({_winner(ds)})" in title, title
    finally:
        _close(fig)


# --- phase map ----------------------------------------------------------------------------------

@pytest.fixture
def phase_map_store() -> xr.Dataset:
    """A 4 × 4 phase-map store as ``softgrain phase-map`` writes it (runs ended at 123 s)."""
    barriers = np.array([0.02, 0.06, 0.10, 0.14])
    anisotropy = np.array([0.003, 0.017, 0.059, 0.128])
    share_001 = np.clip((anisotropy[None, :] - 0.01) / 0.02 + barriers[:, None] * 2, 0, 1)
    fraction = np.stack([share_001, 1 - share_001, np.zeros_like(share_001)], axis=-1)
    fraction = np.repeat(fraction[:, :, None, :], 2, axis=2)
    dims = ("barrier_101_eV", "surface_energy_anisotropy", "seed", "orientation")
    return xr.Dataset(
        {"fraction": (dims, fraction), "status": (dims[:3], np.ones(fraction.shape[:3], dtype=np.int8))},
        coords={"barrier_101_eV": barriers, "surface_energy_anisotropy": anisotropy, "seed": [1, 2],
                "orientation": ["001", "101", "111"]},
        attrs={"base_config_json": load_config("li-solid", {"run.end_time_s": 123.0}).to_json()})


MARKERS = {"liquid Li (unstrained)": (0.02, 0.003), "solid Li (−3 %)": (0.02, 0.103)}


def test_phase_map_axes_start_at_zero_and_the_title_says_when_runs_ended(phase_map_store):
    fig = _plots().plot_phase_map(phase_map_store, markers=MARKERS)
    try:
        for ax in _panels(fig):
            if not ax.get_images() and not ax.collections:
                continue
            assert ax.get_xlim()[0] >= 0, f"negative barrier on {ax.get_title()!r}: {ax.get_xlim()}"
            assert ax.get_ylim()[0] >= 0, f"negative anisotropy on {ax.get_title()!r}: {ax.get_ylim()}"
        title = fig._suptitle.get_text() if fig._suptitle is not None else ""
        assert "123 s" in title, title
    finally:
        _close(fig)


def test_phase_map_markers_hide_no_cell_label(phase_map_store):
    fig = _plots().plot_phase_map(phase_map_store, markers=MARKERS)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        labelled = [ax for ax in _panels(fig) if ax.texts]
        assert labelled
        for ax in labelled:
            markers = [line for line in ax.get_lines()
                       if line.get_marker() not in (None, "", "None") and len(line.get_xdata()) == 1]
            assert markers
            for text in ax.texts:
                box = text.get_window_extent(renderer)
                for marker in markers:
                    assert not box.overlaps(marker.get_window_extent(renderer)), \
                        f"marker at {marker.get_xydata()[0]} covers the label {text.get_text()!r}"
    finally:
        _close(fig)


# --- animation --------------------------------------------------------------------------------

def test_animation_draws_grain_boundaries(uniform, monkeypatch, capsys):
    """Every grain (001): without boundaries the deposit is one flat blue."""
    import imageio.v3 as iio

    from cli_helpers import invoke_main

    folder, ds = uniform
    assert len(np.unique(ds["grain"].isel(time=-1).values)) >= 3   # at least two grains and empty
    code, _, err = invoke_main(monkeypatch, capsys, "animate", str(folder), "--overwrite")
    assert code == 0, err
    frame = np.asarray(iio.imread(folder / "orientation.gif"))[-1, ..., :3].astype(int)
    # Without boundaries the frame is white paper, black empty space and (001) blue (#0072B2),
    # plus a little text and legend; boundaries add whole cells of another colour.
    colours, counts = np.unique(frame.reshape(-1, 3), axis=0, return_counts=True)
    plain = np.array([(0, 114, 178), (0, 0, 0), (255, 255, 255)])
    other = [count for colour, count in zip(colours, counts)
             if np.abs(plain - colour).max(axis=1).min() > 12]
    largest = max(other, default=0) / counts.sum()
    assert largest > 0.02, f"no colour besides blue, black and white covers more than {largest:.1%}"
