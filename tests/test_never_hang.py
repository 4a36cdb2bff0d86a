"""Property (issue 15): any configuration the schema allows either runs a few steps or exits with
code 2 and one line, within a time bound — never a hang, never a traceback.

Hypothesis draws configuration files over the schema's keys and ranges (extreme floats included:
1e-300, 1e300) and ``softgrain run`` runs each one in a long-lived child process (one import for all
examples), killed if an example takes longer than :data:`EXAMPLE_LIMIT_S`. Two concessions keep
the test within seconds: the end time is one to three time steps, and grids are either small
(≤ 32 × 32 cells, ≤ 16 nuclei) or the largest the schema allows (100000 × 100000, which must be
refused for its memory).
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from process_helpers import child_environment

EXAMPLE_LIMIT_S = 60.0
"""Longest a single example may take (a loaded 2-core machine; figures are written too)."""

WORKER = r"""
import contextlib, io, json, sys, traceback
from softgrain import cli

reply = sys.stdout
for request in sys.stdin:
    out, err = io.StringIO(), io.StringIO()
    code, crash = None, ""
    sys.argv = ["softgrain", *json.loads(request)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        crash = traceback.format_exc()
    reply.write(json.dumps({"code": code, "err": err.getvalue()[-4000:], "crash": crash[-4000:]}) + "\n")
    reply.flush()
"""


class Worker:
    """A child process that runs ``softgrain`` command lines sent to it, one at a time."""

    def __init__(self) -> None:
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env=child_environment(), bufsize=1)

    def call(self, args: list[str], timeout: float) -> dict | None:
        """The reply to ``softgrain ARGS``; None (and the worker killed) after ``timeout`` s."""
        self.proc.stdin.write(json.dumps(args) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.close()
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"code": None, "err": "", "crash": "worker died"}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def worker():
    """One worker for all examples, warmed up (imports, compiled kernels) outside the bound."""
    state = {"worker": Worker()}
    with tempfile.TemporaryDirectory() as folder:
        for kernel in ("sparse", "dense"):
            reply = state["worker"].call(
                ["run", "li-solid", "--out", str(Path(folder) / kernel), "--quiet", "--set",
                 f'numerics.kernel="{kernel}"', "--set", "grid.nx=16", "--set", "grid.ny=8", "--set",
                 "nucleation.count=4", "--end-time", "0.02"], timeout=900)
            assert reply is not None and reply["code"] == 0, reply
    yield state
    state["worker"].close()


ORIENTATION = st.sampled_from(["001", "101", "111"])
# Positive floats: ordinary ones, and anything up to the largest double (gt=0 keys without a bound).
POSITIVE = st.one_of(st.floats(1e-3, 1e3),
                     st.floats(min_value=0.0, max_value=1e308, exclude_min=True, allow_subnormal=False))
NON_NEGATIVE = st.one_of(st.floats(0.0, 1e3), st.floats(0.0, 1e308, allow_subnormal=False))

OPTIONAL_KEYS = {
    "material.surface_energy_J_m2": st.dictionaries(ORIENTATION, st.floats(1e-6, 4.999999)),
    "material.diffusion_barrier_eV": st.dictionaries(ORIENTATION, st.floats(0.0, 3.0)),
    "run.temperature_C": st.floats(-150.0, 300.0),
    "run.seed": st.integers(0, 2**63 - 1),
    "run.substeps": st.sampled_from(["auto", "refuse"]),
    "grid.spacing_um": POSITIVE,
    "grid.laplacian_spacing": POSITIVE,
    "nucleation.rows": st.integers(1, 4),
    "nucleation.radius_cells": st.floats(1e-3, 50.0),
    "nucleation.orientations": st.lists(ORIENTATION, min_size=1, max_size=3),
    "deposition.enabled": st.booleans(),
    "deposition.crossing_time_s": POSITIVE,
    "deposition.front_speed_um_s": POSITIVE,
    "deposition.front_boundary": st.sampled_from(["empty", "zero-flux"]),
    "landau.alpha": POSITIVE,
    "landau.beta": POSITIVE,
    "landau.gamma": POSITIVE,
    "landau.w": POSITIVE,
    "mapping.L1": POSITIVE,
    "mapping.L2": NON_NEGATIVE,
    "mapping.kappa1": POSITIVE,
    "mapping.kappa2": NON_NEGATIVE,
    "numerics.kernel": st.sampled_from(["sparse", "dense"]),
    "numerics.prune_threshold": st.floats(0.0, 0.01, exclude_max=True),
    "numerics.capacity": st.integers(2, 64),
    "numerics.threads": st.integers(1, 1024),
}
SMALL_GRID = st.tuples(st.integers(4, 32), st.integers(4, 32))
GRID = st.one_of(SMALL_GRID, SMALL_GRID, SMALL_GRID, st.just((100_000, 100_000)))   # ~1 in 4 huge


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"


@st.composite
def configurations(draw) -> str:
    """A TOML configuration file within the schema, ending after one to three steps."""
    keys = draw(st.fixed_dictionaries({}, optional=OPTIONAL_KEYS))
    nx, ny = draw(GRID)
    dt = draw(st.one_of(st.floats(1e-4, 10.0), st.floats(min_value=0.0, max_value=10.0, exclude_min=True,
                                                          allow_subnormal=False)))
    keys.update({"grid.nx": nx, "grid.ny": ny, "nucleation.count": draw(st.integers(1, 16)),
                 "run.dt_s": dt, "run.end_time_s": dt * draw(st.integers(1, 3)),
                 "run.snapshot_times_s": []})
    sections: dict[str, dict] = {}
    for dotted, value in keys.items():
        section, key = dotted.split(".", 1)
        sections.setdefault(section, {})[key] = value
    base = draw(st.sampled_from(["li-solid", "li-liquid", "na-solid", "k-solid", "li-solid-80c",
                                 "li-solid-lixsi"]))
    lines = [f'base = "{base}"']
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


# No shrinking: a hanging example would be re-run many times at up to a minute each.
@settings(max_examples=16, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=configurations())
def test_any_schema_configuration_runs_or_is_refused_in_time(worker, text):
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "random.toml"
        config.write_text(text)
        out = Path(folder) / "out"
        if worker["worker"].proc.poll() is not None:
            worker["worker"] = Worker()
        reply = worker["worker"].call(["run", str(config), "--out", str(out), "--quiet"], EXAMPLE_LIMIT_S)
        assert reply is not None, f"no answer within {EXAMPLE_LIMIT_S:g} s for:\n{text}"
        assert not reply["crash"], f"{reply['crash']}\nfor:\n{text}"
        err = reply["err"]
        assert "Traceback" not in err, f"{err}\nfor:\n{text}"
        assert reply["code"] in (0, 2), f"exit {reply['code']}: {err}\nfor:\n{text}"
        if reply["code"] == 2:
            lines = [line for line in err.splitlines() if line.strip()]
            assert all(line.startswith("softgrain: ") for line in lines), f"{err}\nfor:\n{text}"
            assert sum(line.startswith("softgrain: error: ") for line in lines) == 1, f"{err}\nfor:\n{text}"
        else:
            assert (out / "result.nc").is_file(), f"{err}\nfor:\n{text}"
