"""EBSD-grade grain statistics: Wilson intervals, the exact agreement test, grain counts in a window,
the inferred EBSD counts and their comparison with an ensemble (softgrain.analysis,
softgrain.studies.experiments)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from rich.console import Console
from scipy import stats

from softgrain.analysis import (count_agreement_p_value, grain_orientations, wilson_interval,
                                window_grain_counts)
from softgrain.errors import UserInputError
from softgrain.materials.metals import ORIENTATIONS
from softgrain.materials.observations import _counts, load_experiments
from softgrain.materials.records import LABELS, MaterialDataError
from softgrain.output.results import TASK_FAILED, TASK_OK
from softgrain.report import experiments as experiments_report, markdown_count_table
from softgrain.studies.experiments import count_statistics, ebsd_count_comparison


# --- Wilson score interval ---------------------------------------------------------------------

@pytest.mark.parametrize("k, n, low, high", [
    # Newcombe (1998), Stat. Med. 17:857, Table I, method 3 (score interval without correction).
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
    # The inferred EBSD counts (MODEL.md §7 quotes [37, 76] % and [8, 40] %).
    (12, 21, 0.3655, 0.7553),
    (4, 21, 0.0767, 0.4000),
])
def test_wilson_interval_matches_published_values(k, n, low, high):
    got = wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_closed_form_and_edge_cases():
    # Closed form of the score interval, z = 1.959964.
    k, n, z = 7, 30, stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert wilson_interval(k, n) == pytest.approx((centre - half, centre + half), rel=1e-9)
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(10, 10)
    assert high == pytest.approx(1.0) and 0.69 < low < 0.73
    with pytest.raises(UserInputError):
        wilson_interval(5, 4)


# --- agreement test ----------------------------------------------------------------------------

def test_identical_distributions_agree():
    # Same proportions (the simulated sample ten times larger): the observed table is the most
    # probable one, p = 1.
    assert count_agreement_p_value([120, 40, 30], [12, 4, 3]) == pytest.approx(1.0)
    assert count_agreement_p_value([50, 50], [10, 10]) == pytest.approx(1.0)


def test_disjoint_distributions_disagree():
    assert count_agreement_p_value([300, 0, 0], [0, 19, 0]) < 1e-20
    assert count_agreement_p_value([0, 100], [25, 0]) < 1e-20


def test_p_value_falls_as_the_samples_move_apart():
    p = [count_agreement_p_value([100, 100], [10 + d, 10 - d]) for d in (0, 3, 6, 9)]
    assert p[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(p, p[1:])) and p[-1] < 1e-3


@pytest.mark.parametrize("table", [[[600, 10], [6, 19]], [[30, 10], [6, 9]], [[5, 0], [1, 4]],
                                   [[3, 7], [8, 2]]])
def test_two_by_two_is_fishers_exact_test(table):
    assert count_agreement_p_value(*table) == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-9)


def test_exact_p_value_is_a_probability_over_all_tables():
    # Under the null the p-value of every possible EBSD row is a valid p-value: P(p ≤ α) ≤ α.
    column = np.array([20, 10, 5])
    n = 8
    dist = stats.multivariate_hypergeom(m=column, n=n)
    rows = [(a, b, n - a - b) for a in range(n + 1) for b in range(n + 1 - a) if n - a - b <= 5]
    prob = np.array([dist.pmf(r) for r in rows])
    assert prob.sum() == pytest.approx(1.0)
    pvals = np.array([count_agreement_p_value(column - np.array(r), r) for r in rows])
    for alpha in (0.01, 0.05, 0.2):
        assert prob[pvals <= alpha].sum() <= alpha + 1e-12


def test_agreement_edge_cases():
    assert count_agreement_p_value([10, 0, 0], [4, 0, 0]) == 1.0   # one category left
    assert count_agreement_p_value([0, 0], [3, 1]) is None          # empty simulated sample
    with pytest.raises(UserInputError):
        count_agreement_p_value([1, 2], [1, 2, 3])


# --- grain counts in a window ------------------------------------------------------------------

def hand_made_map() -> tuple[np.ndarray, np.ndarray]:
    """8 rows × 10 columns, row 0 at the substrate.

    Grains 0 and 1 are both (001) and touch: two grains, not one. Grain 2 (101) fills rows 0–5 on
    the right. Grain 3 (111) is a 2-cell sliver at the bottom. Grain 4 (101) starts at row 4.
    """
    g = np.full((8, 10), -1)
    g[:6, 0:3] = 0
    g[:6, 3:5] = 1
    g[:6, 5:10] = 2
    g[0, 8:10] = 3
    g[4:6, 0:2] = 4
    g[6:, :] = 4
    orientation = np.array([0, 0, 1, 2, 1])
    return g, orientation


def test_window_counts_on_a_hand_made_map():
    g, orientation = hand_made_map()
    assert window_grain_counts(g, orientation, window_rows=4).tolist() == [2, 1, 1]
    # The 2-cell (111) sliver is below a 4-cell minimum; grain 4 is above a 4-row window.
    assert window_grain_counts(g, orientation, window_rows=4, min_cells=4).tolist() == [2, 1, 0]
    assert window_grain_counts(g, orientation, window_rows=6, min_cells=4).tolist() == [2, 2, 0]
    # A window higher than the map is the whole map.
    assert window_grain_counts(g, orientation, window_rows=100, min_cells=4).tolist() == [2, 2, 0]
    with pytest.raises(UserInputError):
        window_grain_counts(g, orientation, window_rows=0)


def test_grain_orientations_from_the_two_maps():
    g, orientation = hand_made_map()
    omap = np.where(g >= 0, orientation[np.maximum(g, 0)], -1)
    assert grain_orientations(g, omap).tolist() == orientation.tolist()


def ensemble_with_maps(maps: list[np.ndarray], orientation: np.ndarray, spacing: float = 0.5,
                       status: list[int] | None = None) -> xr.Dataset:
    grains = np.stack(maps)
    omap = np.where(grains >= 0, orientation[np.maximum(grains, 0)], -1)
    ny, nx = grains.shape[1:]
    return xr.Dataset(
        {"final_grain": (("seed", "y", "x"), grains.astype(np.int32)),
         "final_orientation": (("seed", "y", "x"), omap.astype(np.int8)),
         "status": (("seed",), np.array(status or [TASK_OK] * len(maps), dtype=np.int8))},
        coords={"seed": np.arange(1, len(maps) + 1), "y": np.arange(ny) * spacing,
                "x": np.arange(nx) * spacing, "orientation": list(ORIENTATIONS)})


def test_count_statistics_pool_seeds_and_give_both_intervals():
    g, orientation = hand_made_map()
    flipped = g.copy()
    flipped[flipped == 1] = 2          # seed 2: grain 1's columns taken over by the (101) grain
    ds = ensemble_with_maps([g, flipped, g], orientation, status=[TASK_OK, TASK_OK, TASK_FAILED])
    stats_ = count_statistics(ds, count_window_um=2.0, min_grain_cells=4)   # 4 rows at 0.5 µm
    assert stats_["window_rows"] == 4 and stats_["window_height_um"] == 2.0
    assert stats_["counts_per_seed"] == {1: {"001": 2, "101": 1, "111": 0},
                                         2: {"001": 1, "101": 1, "111": 0}}
    assert stats_["pooled_counts"] == {"001": 3, "101": 2, "111": 0}
    pooled = stats_["pooled"]["001"]
    assert pooled["mean"] == pytest.approx(3 / 5)
    assert (pooled["ci_low"], pooled["ci_high"]) == pytest.approx(wilson_interval(3, 5))
    seed_mean = stats_["seed_mean"]["001"]
    assert seed_mean["mean"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert seed_mean["ci_low"] < seed_mean["mean"] < seed_mean["ci_high"]
    # Without grain maps there is nothing to count.
    assert count_statistics(ds.drop_vars("final_grain")) is None


# --- the inferred EBSD counts ------------------------------------------------------------------

def test_ebsd_counts_are_inferred_from_the_printed_percentages():
    by_preset = {e.preset: e for e in load_experiments()}
    cu25, cu80, lixsi = by_preset["li-solid"], by_preset["li-solid-80c"], by_preset["li-solid-lixsi"]
    assert (cu25.count, cu25.count_total) == ({"001": 12, "101": 4, "111": 3}, 21)
    assert (cu80.count, cu80.count_total) == ({"001": 6, "101": 19, "111": None}, 39)
    assert (lixsi.count, lixsi.count_total) == ({}, None)
    for e in (cu25, cu80):
        assert e.count_label == "INFERRED" and e.count_label in LABELS and "inference" in e.count_source
        for o, k in e.count.items():
            if k is not None:
                assert round(100 * k / e.count_total, 1) == round(100 * e.fraction[o], 1)


def test_a_count_that_does_not_reproduce_the_fraction_is_refused():
    raw = {"total": 21, "001": 13, "label": "INFERRED", "source": "test"}
    with pytest.raises(MaterialDataError, match=r"count\.001.*13/21"):
        _counts(raw, {"001": 0.571, "101": None, "111": None}, "experiments.toml", "condition[0]")
    with pytest.raises(MaterialDataError, match="non-negative integer"):
        _counts({**raw, "001": 12.0}, {"001": 0.571, "101": None, "111": None}, "f", "c")


def test_comparison_fields_of_a_condition():
    cu25 = next(e for e in load_experiments() if e.preset == "li-solid")
    g, orientation = hand_made_map()
    counts = count_statistics(ensemble_with_maps([g, g], orientation), count_window_um=2.0,
                              min_grain_cells=1)
    row = ebsd_count_comparison(cu25, counts)
    assert row["ebsd_count"] == {"001": 12, "101": 4, "111": 3}
    assert row["ebsd_count_fraction"]["001"]["mean"] == pytest.approx(12 / 21)
    assert row["agreement_orientations"] == list(ORIENTATIONS)
    # Simulated 4/2/2 against EBSD 12/4/3: the same shape, no evidence of disagreement.
    assert row["simulated_grain_counts"] == {"001": 4, "101": 2, "111": 2}
    assert row["agreement_p_value"] == pytest.approx(count_agreement_p_value([4, 2, 2], [12, 4, 3]))
    assert row["agreement_p_value"] > 0.5
    empty = ebsd_count_comparison(cu25, None)
    assert empty["simulated_count_fraction"] is None and empty["agreement_p_value"] is None


def test_tables_show_the_counts_and_say_they_are_inferred():
    cu25 = next(e for e in load_experiments() if e.preset == "li-solid")
    g, orientation = hand_made_map()
    counts = count_statistics(ensemble_with_maps([g, g], orientation), count_window_um=2.0,
                              min_grain_cells=1)
    row = {"description": cu25.description, "strain": -0.03, "theory_favoured": "001",
           "simulated": None, "experiment": dict(cu25.fraction), **ebsd_count_comparison(cu25, counts)}
    result = {"seeds": 2, "conditions": [row], "grain_size": {"entries": [], "caveats": []}}
    table = markdown_count_table(result)
    assert "| 25 °C, bare Cu | (001) | 50.0 % [" in table and "| 12/21 = 57.1 % [36.5, 75.5] |" in table
    assert "INFERRED" in table and table.count("\n") == 4
    console = Console(width=160, record=True)
    for shown in experiments_report(result):
        console.print(shown)
    text = console.export_text()
    assert "Grain counts vs EBSD" in text and "INFERRED" in text and "bottom 2 µm" in text
