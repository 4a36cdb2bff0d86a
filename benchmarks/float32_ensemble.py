#!/usr/bin/env python
"""What float32 changes in the JAX backend: a 16-seed ensemble in float32 against float64 (issue 12).

A full paper-grid ensemble is too slow for the JAX backend on a CPU (XLA:CPU steps one run in
~36 ms per full-height step, ≈ 40 min per paper run), so this measures a reduced grid: li-liquid
(the mixed-texture case: both (001) and (101) survive) on 100 × 35 cells with 38 nuclei (the
paper's nucleus density), the front at the paper's speed (0.0875 µm/s: it crosses the 35 rows in
200 s) and 200 s of deposition. Seeds 1–16 run through :func:`softgrain.setup.simulate_batch`
in float64 and in float32 (batches of ``--batch``), and — as a check of the float64 side — with
the numba sparse kernel. Printed (one JSON object): per seed the area fractions and the share of
cells whose final grain label agrees with float64; per precision the ensemble mean and 95 %
Student-t CI per orientation; and whether the float32 means lie within the float64 CIs.

Usage::

    python benchmarks/float32_ensemble.py [--seeds 16] [--batch 4] [-o out.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

from softgrain.analysis import final_snapshot_measures, mean_confidence_interval
from softgrain.config import load_config
from softgrain.materials.metals import ORIENTATIONS
from softgrain.setup import simulate, simulate_batch
from softgrain.studies.benchmark import emit_json

REDUCED = {"grid.nx": 100, "grid.ny": 35, "nucleation.count": 38,
           "deposition.front_speed_um_s": 0.0875, "run.end_time_s": 200.0,
           "run.snapshot_times_s": [200.0]}


def ensemble(datasets) -> dict:
    fractions = np.array([final_snapshot_measures(ds)["fraction"] for ds in datasets])
    stats = {}
    for k, orientation in enumerate(ORIENTATIONS):
        mean, low, high = mean_confidence_interval(fractions[:, k])
        stats[orientation] = {"mean": mean, "ci95": [low, high]}
    return {"per_seed_fraction": fractions.round(6).tolist(), "statistics": stats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--preset", default="li-liquid")
    parser.add_argument("-o", "--output")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    seeds = list(range(1, args.seeds + 1))
    result: dict = {"preset": args.preset, "changes": REDUCED, "seeds": seeds,
                    "load_average_before": list(os.getloadavg())}
    maps = {}
    for dtype in ("float64", "float32"):
        configs = [load_config(args.preset, {**REDUCED, "run.seed": s, "numerics.backend": "jax",
                                             "numerics.dtype": dtype}) for s in seeds]
        started = time.perf_counter()
        datasets = simulate_batch(configs, batch_size=args.batch)
        failed = [str(d) for d in datasets if isinstance(d, Exception)]
        if failed:
            raise SystemExit(f"{dtype}: {failed[0]}")
        result[dtype] = {**ensemble(datasets), "wall_s": time.perf_counter() - started}
        maps[dtype] = [ds["grain"].values[-1] for ds in datasets]
    started = time.perf_counter()
    numba = [simulate(load_config(args.preset, {**REDUCED, "run.seed": s, "numerics.threads": 1}))
             for s in seeds]
    result["numba_sparse_float64"] = {**ensemble(numba), "wall_s": time.perf_counter() - started}
    maps["numba"] = [ds["grain"].values[-1] for ds in numba]
    result["labels_equal_to_float64"] = {
        name: [float((a == b).mean()) for a, b in zip(maps[name], maps["float64"])]
        for name in ("float32", "numba")}
    result["float32_mean_within_float64_ci"] = {
        o: result["float64"]["statistics"][o]["ci95"][0] - 1e-12
        <= result["float32"]["statistics"][o]["mean"]
        <= result["float64"]["statistics"][o]["ci95"][1] + 1e-12 for o in ORIENTATIONS}
    result["largest_seed_fraction_change_float32"] = float(np.abs(
        np.array(result["float32"]["per_seed_fraction"])
        - np.array(result["float64"]["per_seed_fraction"])).max())
    result["load_average_after"] = list(os.getloadavg())
    emit_json(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
