"""Do isolated nuclei survive the nucleation layer? (issue 11, item 2: fair nucleation)

Runs every preset with 4 nuclei at least 20 cells apart (``nucleation.count = 4``,
``nucleation.min_spacing_cells = 20``) on the paper grid, for both formulations and the chosen
nucleation rule, and counts the nuclei still present (≥ 1 cell of the grain map) at each snapshot
time. Isolated nuclei have no neighbour to lose to in the first tens of seconds, so a nucleus
that disappears by 30 s died of the nucleation layer itself. Prints a Markdown table (dead /
total nuclei per preset, formulation and time, and the orientations that died) and, with
``--out``, writes the per-run records as JSON. Usage::

    python scripts/nucleation_survival.py --seeds 16 [--times 30 60 100] [--rule fair|legacy]
        [--workers 2] [--out survival.json]

``--rule legacy`` runs softgrain's nucleation up to issue 10 (``nucleation.layer = "discs"``,
``deposition.open_front_from = "start"``) for comparison.
"""

from __future__ import annotations

import argparse
import itertools
import warnings
from collections import defaultdict
from multiprocessing import Pool

from softgrain.config import load_config
from softgrain.output.files import write_json
from softgrain.setup import simulate

PRESETS = ("li-solid", "li-liquid", "na-solid", "k-solid", "li-solid-80c", "li-solid-lixsi")
FORMULATIONS = ("paper", "consistent")
RULES = {"fair": {"nucleation.layer": "columns", "deposition.open_front_from": "resolved"},
         "legacy": {"nucleation.layer": "discs", "deposition.open_front_from": "start"}}
ISOLATED = {"nucleation.count": 4, "nucleation.min_spacing_cells": 20.0}


def survival(task: tuple[str, str, str, int, tuple[float, ...]]) -> dict:
    """Cells of every nucleus at each snapshot time of one run."""
    preset, formulation, rule, seed, times = task
    config = load_config(preset, {**ISOLATED, **RULES[rule], "model.formulation": formulation,
                                  "run.seed": seed, "run.end_time_s": max(times),
                                  "run.snapshot_times_s": list(times), "numerics.threads": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # sub-stepping warnings: expected
        ds = simulate(config)
    n = ds.sizes["grain_id"]
    cells = {f"{t:g}": [int((ds["grain"].values[i] == q).sum()) for q in range(n)]
             for i, t in enumerate(ds["time"].values)}
    return {"preset": preset, "formulation": formulation, "rule": rule, "seed": seed,
            "orientation": [str(o) for o in ds["grain_orientation"].values],
            "kappa": [round(float(k), 3) for k in ds["grain_kappa"].values],
            "open_front_from_rows": int(ds.attrs["open_front_from_rows"]), "cells": cells}


def table(records: list[dict], times: tuple[float, ...]) -> str:
    """Markdown: dead / total nuclei per preset × formulation × time, and which orientations died."""
    dead: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    died: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in records:
        for t, cells in r["cells"].items():
            key = (r["preset"], r["formulation"], t)
            dead[key][1] += len(cells)
            for orientation, c in zip(r["orientation"], cells):
                if c == 0:
                    dead[key][0] += 1
                    died[key][orientation] += 1
    header = "| preset | formulation | " + " | ".join(f"dead at {t:g} s" for t in times) + " |"
    lines = [header, "|" + "---|" * (2 + len(times))]
    presets = sorted({r["preset"] for r in records}, key=PRESETS.index)
    for preset, formulation in itertools.product(presets, FORMULATIONS):
        cells = []
        for t in times:
            key = (preset, formulation, f"{t:g}")
            if key not in dead:
                cells.append("–")
                continue
            d, total = dead[key]
            which = ", ".join(f"{k} {o}" for o, k in sorted(died[key].items()))
            cells.append(f"{d}/{total}" + (f" ({which})" if which else ""))
        lines.append(f"| {preset} | {formulation} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--times", type=float, nargs="+", default=[30.0])
    parser.add_argument("--rule", choices=sorted(RULES), default="fair")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--formulations", nargs="+", default=list(FORMULATIONS))
    parser.add_argument("--workers", type=int, default=2, help="processes (at most 2 here)")
    parser.add_argument("--out", default=None, help="also write the per-run records here (JSON)")
    args = parser.parse_args()
    times = tuple(sorted(set(args.times)))
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    tasks = [(p, f, args.rule, s, times)
             for p, f, s in itertools.product(args.presets, args.formulations, seeds)]
    with Pool(max(1, args.workers)) as pool:
        records = pool.map(survival, tasks, chunksize=4)
    print(f"rule = {args.rule}, {args.seeds} seeds from {args.first_seed}, 4 nuclei ≥ 20 cells apart")
    print(table(records, times))
    if args.out:
        write_json(args.out, {"rule": args.rule, "times_s": list(times), "runs": records})


if __name__ == "__main__":
    main()
