"""The paper formulation (w_q = Landau w, g_q = 0) through the generalised update is bit-identical
to the paper-only kernel that preceded it.

``tests/data/grain_short.npz`` holds the ``grain`` arrays of result runs made with the code before
the generalisation (``/work/baseline/make_baseline.py short``: li-solid, li-liquid, na-solid;
run.seed 1, run.end_time_s 30, run.snapshot_times_s [10, 30]; keys with underscores);
``grain_full.npz`` the same presets' full default runs (400 s, snapshots at 10 and 400 s).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from softgrain.config import load_config
from softgrain.phasefield import run

DATA = Path(__file__).parent / "data"
PRESETS = ["li-solid", "li-liquid", "na-solid"]


def grain_maps(preset: str, changes: dict) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # li-solid sub-steps (SubsteppingWarning)
        return run(load_config(preset, {"run.seed": 1, **changes}))["grain"].values


@pytest.mark.parametrize("preset", PRESETS)
def test_grain_maps_are_bit_identical_to_the_paper_only_kernel(preset):
    expected = np.load(DATA / "grain_short.npz")[preset.replace("-", "_")]
    grain = grain_maps(preset, {"run.end_time_s": 30.0, "run.snapshot_times_s": [10.0, 30.0]})
    assert grain.shape == expected.shape
    assert np.array_equal(grain, expected)


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_full_runs_are_bit_identical_to_the_paper_only_kernel(preset):
    expected = np.load(DATA / "grain_full.npz")[preset.replace("-", "_")]
    grain = grain_maps(preset, {})
    assert grain.shape == expected.shape
    assert np.array_equal(grain, expected)
