"""The paper formulation (w_q = Landau w, g_q = 0) through the generalised update is bit-identical
to the paper-only kernel that preceded it.

``tests/data/grain_short.npz`` holds the ``grain`` arrays of result runs made with the code before
the generalisation (``/work/baseline/make_baseline.py short``: li-solid, li-liquid, na-solid;
run.seed 1, run.end_time_s 30, run.snapshot_times_s [10, 30]; keys with underscores).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from softgrain.config import load_config
from softgrain.phasefield import run

BASELINE = Path(__file__).parent / "data" / "grain_short.npz"


@pytest.mark.parametrize("preset", ["li-solid", "li-liquid", "na-solid"])
def test_grain_maps_are_bit_identical_to_the_paper_only_kernel(preset):
    expected = np.load(BASELINE)[preset.replace("-", "_")]
    cfg = load_config(preset, {"run.seed": 1, "run.end_time_s": 30.0,
                               "run.snapshot_times_s": [10.0, 30.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # li-solid sub-steps (SubsteppingWarning)
        grain = run(cfg)["grain"].values
    assert grain.shape == expected.shape
    assert np.array_equal(grain, expected)
