"""A run can stop between kernel calls — also inside a sub-stepped step — and resume bit-identically.

Issue 15: a step of many sub-steps ran as one kernel call, deaf to Ctrl-C and SIGTERM. The
simulation now cuts its segments into calls of ~0.25 s when the caller may ask it to stop, and a
checkpoint records how many sub-steps of the current step were taken.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from softgrain import setup
from softgrain.config import load_config
from softgrain.output import checkpoint

# Δt = 0.5 s on li-solid's constants: ~100 sub-steps per step, 4 steps.
SUBSTEPPED = {"grid.nx": 24, "grid.ny": 12, "nucleation.count": 6, "run.dt_s": 0.5,
              "run.end_time_s": 2.0, "run.snapshot_times_s": [1.0, 2.0]}


@pytest.mark.parametrize("kernel", ["dense", "sparse"])
def test_a_run_stopped_inside_a_step_resumes_bit_identically(tmp_path, recwarn, kernel):
    config = load_config("li-solid", {**SUBSTEPPED, "numerics.kernel": kernel})
    reference = setup.simulate(config)

    sim = setup.simulation(config)
    calls = itertools.count(1)
    finished = sim.advance_to(sim.total_steps, should_stop=lambda: next(calls) >= 3)
    assert not finished and sim.step == 0 and 0 < sim.substep < sim.substeps, (sim.step, sim.substep)
    assert 0 < sim.time_s < config.run.dt_s
    checkpoint.write_checkpoint(tmp_path, sim.state_dict(), {})

    resumed_sim, resumed = setup.resume(tmp_path)
    assert resumed_sim.start_step == 0 and resumed_sim.finished
    for name in ("grain", "free_energy", "step", "active_rows"):
        assert np.array_equal(resumed[name].values, reference[name].values), name
    assert np.array_equal(resumed["time"].values, reference["time"].values)
