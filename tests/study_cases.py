"""The tiny phase-field case of the study tests (sweeps, ensembles, the JAX backend), written once
as configuration changes and, for sweep files, as the same changes in TOML ``[config.*]`` tables."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Mapping

TINY: dict[str, Any] = {"grid.nx": 40, "grid.ny": 16, "nucleation.count": 10, "run.end_time_s": 10.0,
                        "run.snapshot_times_s": [10.0], "numerics.kernel": "dense"}
"""40 × 16 cells, 10 nuclei, 10 s, dense kernel: a run takes well under a second."""


def config_tables(changes: Mapping[str, Any]) -> str:
    """``{"grid.nx": 40, …}`` as the ``[config.grid]`` … tables of a sweep file (numbers, strings
    and lists of them, which JSON and TOML write alike)."""
    sections: dict[str, list[str]] = defaultdict(list)
    for key, value in changes.items():
        section, _, leaf = key.rpartition(".")
        sections[section].append(f"{leaf} = {json.dumps(value)}")
    return "".join(f"[config.{section}]\n" + "\n".join(lines) + "\n" for section, lines in sections.items())


TINY_TOML = "\n" + config_tables(TINY)
