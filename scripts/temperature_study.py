"""Li on Cu under a solid electrolyte at 25 °C against 80 °C, in both formulations (issue 11, item 3).

Runs ``li-solid`` (25 °C) and ``li-solid-80c`` (80 °C) on the paper grid (200 × 70, 75 nuclei,
400 s) for N seeds each, in the paper and the consistent formulation, and reports each
orientation's deposit area fraction in the final snapshot: mean and 95 % Student-t interval over
the seeds, and the Welch t-test p-value of 25 °C against 80 °C (two-sided, unequal variances).
The paper's EBSD (Fig. 3E–F) finds more (101) at 80 °C (48.7 %) than at 25 °C (19.0 %), as the
theory's 25 → 80 °C crossover predicts (Fig. 3A).

Each finished run is appended to ``--records`` (JSON lines) at once, so an interrupted study
resumes where it stopped; ``--set KEY=VALUE`` (TOML value) changes every run, e.g.
``--set 'conditions.strain_relaxation="yield-strength"'`` for the optional strain-relaxation
mechanism (README, 'Temperature'; its factor is exactly 1 at 25 °C, so ``--conditions 80C
--borrow 25C=base`` reuses the 25 °C runs). At most ``--workers`` processes (default 2), one kernel thread
each. Usage::

    python scripts/temperature_study.py --seeds 16 --records temp.jsonl [--out temp.json]
        [--formulations paper consistent] [--set KEY=VALUE ...] [--label NAME]
"""

from __future__ import annotations

import argparse
import itertools
import json
import tomllib
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from scipy import stats

from softgrain.analysis import mean_confidence_interval
from softgrain.config import load_config
from softgrain.materials.metals import ORIENTATIONS
from softgrain.output.files import write_json
from softgrain.studies.runner import execute_task

CONDITIONS = {"25C": "li-solid", "80C": "li-solid-80c"}
FORMULATIONS = ("paper", "consistent")


def parse_set(items: list[str]) -> dict:
    changes = {}
    for item in items:
        key, _, value = item.partition("=")
        changes[key.strip()] = tomllib.loads(f"v = {value}")["v"]
    return changes


def run_one(task: tuple[str, str, str, int, str]) -> dict:
    label, condition, formulation, seed, changes_json = task
    changes = {**json.loads(changes_json), "model.formulation": formulation, "run.seed": seed,
               "run.snapshot_times_s": [400.0]}
    config = load_config(CONDITIONS[condition], changes)
    measures = execute_task(config.to_json())
    return {"label": label, "condition": condition, "formulation": formulation, "seed": seed,
            "changes": json.loads(changes_json),
            "fraction": [float(v) for v in measures["fraction"]],
            "surface_fraction": [float(v) for v in measures["surface_fraction"]],
            "grain_count": measures["grain_count"],
            "surface_grain_count": measures["surface_grain_count"],
            "wall_time_s": measures["wall_time_s"]}


def summarise(records: list[dict]) -> dict:
    """Per label and formulation: mean [95 % CI] per orientation and condition, Welch p 25 vs 80 °C."""
    out: dict = {}
    keys = sorted({(r["label"], r["formulation"]) for r in records})
    for label, formulation in keys:
        block: dict = {}
        samples = {}
        for condition in CONDITIONS:
            rows = [r for r in records if (r["label"], r["formulation"], r["condition"])
                    == (label, formulation, condition)]
            if not rows:
                continue
            values = np.array([r["fraction"] for r in rows])
            samples[condition] = values
            block[condition] = {"n": len(rows), "seeds": sorted(r["seed"] for r in rows)}
            for k, orientation in enumerate(ORIENTATIONS):
                mean, low, high = mean_confidence_interval(values[:, k])
                block[condition][orientation] = {"mean": mean, "ci95": [low, high]}
        if len(samples) == 2:
            block["welch_p"] = {}
            for k, orientation in enumerate(ORIENTATIONS):
                a, b = samples["25C"][:, k], samples["80C"][:, k]
                p = (float(stats.ttest_ind(a, b, equal_var=False).pvalue)
                     if np.ptp(np.r_[a, b]) > 0 else float("nan"))
                block["welch_p"][orientation] = p
        out[f"{label}/{formulation}"] = block
    return out


def table(summary: dict) -> str:
    lines = ["| case | formulation | (101) 25 °C | (101) 80 °C | (001) 25 °C | (001) 80 °C | "
             "Welch p (101) | n |", "|---|---|---|---|---|---|---|---|"]

    def cell(block, condition, orientation):
        if condition not in block:
            return "–"
        v = block[condition][orientation]
        return f"{100 * v['mean']:.1f} [{100 * v['ci95'][0]:.1f}, {100 * v['ci95'][1]:.1f}]"

    for key, block in summary.items():
        label, formulation = key.split("/")
        p = block.get("welch_p", {}).get("101", float("nan"))
        n = "/".join(str(block[c]["n"]) for c in CONDITIONS if c in block)
        lines.append(f"| {label} | {formulation} | {cell(block, '25C', '101')} | "
                     f"{cell(block, '80C', '101')} | {cell(block, '25C', '001')} | "
                     f"{cell(block, '80C', '001')} | {p:.2g} | {n} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--formulations", nargs="+", default=list(FORMULATIONS))
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS))
    parser.add_argument("--set", dest="set_", action="append", default=[])
    parser.add_argument("--label", default="base", help="name of this variant in the records")
    parser.add_argument("--workers", type=int, default=2, help="processes (at most 2 here)")
    parser.add_argument("--records", required=True, help="JSON-lines file of finished runs (resumable)")
    parser.add_argument("--out", default=None, help="write the summary (all labels) here as JSON")
    parser.add_argument("--summary-only", action="store_true", help="only summarise --records")
    parser.add_argument("--borrow", action="append", default=[], metavar="CONDITION=LABEL", help=(
        "summarise this label with the runs of CONDITION from LABEL (only where they are "
        "identical by construction, e.g. 25C=base for the strain relaxation, whose factor is "
        "exactly 1 at 25 °C)"))
    args = parser.parse_args()
    path = Path(args.records)
    done = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] \
        if path.exists() else []
    if not args.summary_only:
        finished = {(r["label"], r["condition"], r["formulation"], r["seed"]) for r in done}
        changes_json = json.dumps(parse_set(args.set_), sort_keys=True)
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        # Interleave conditions and formulations so that a partial study is balanced.
        tasks = [(args.label, c, f, s, changes_json)
                 for s, f, c in itertools.product(seeds, args.formulations, args.conditions)
                 if (args.label, c, f, s) not in finished]
        with Pool(max(1, min(args.workers, 2))) as pool, path.open("a") as sink:
            for record in pool.imap_unordered(run_one, tasks):
                sink.write(json.dumps(record) + "\n")
                sink.flush()
                done.append(record)
                print(f"{record['label']} {record['formulation']} {record['condition']} "
                      f"seed {record['seed']}: (001)/(101)/(111) = "
                      + "/".join(f"{100 * v:.1f}" for v in record["fraction"])
                      + f" % [{record['wall_time_s']:.0f} s]", flush=True)
    borrowed = []
    for item in args.borrow:
        condition, _, source = item.partition("=")
        borrowed += [{**r, "label": args.label, "borrowed_from": source} for r in done
                     if r["label"] == source and r["condition"] == condition
                     and r["formulation"] in args.formulations]
    summary = summarise(done + borrowed)
    print(table(summary))
    if args.out:
        write_json(args.out, summary)


if __name__ == "__main__":
    main()
