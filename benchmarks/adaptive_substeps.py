#!/usr/bin/env python
"""The paper's li-solid run on one core: fixed ("auto", 3 sub-steps for the whole run) against
adaptive sub-steps (recomputed every 100 steps from the grains present), in one run of this script.

Prints one JSON object (:func:`softgrain.studies.benchmark.measure_adaptive_substeps`): best-of-
``--repeats`` wall and CPU time of each mode for each seed (runs interleaved, so that a change in
the machine's load hits both), the kernel steps, and the agreement of the final grain maps. The
target of issue 12 is ≤ 10 s on one core (numba threads = 1).

Usage::

    python benchmarks/adaptive_substeps.py [--seeds 1 2] [--repeats 2] [-o out.json]
"""

from __future__ import annotations

import argparse
import sys
import time

from softgrain.studies.benchmark import _warm_up, emit_json, kernel_parameters, machine, measure_adaptive_substeps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--preset", default="li-solid")
    parser.add_argument("-o", "--output")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    _warm_up(kernel_parameters(args.preset))
    result = {"machine_before": machine(),
              **measure_adaptive_substeps(args.preset, args.seeds, args.repeats, threads=1),
              "machine_after": machine(), "benchmark_wall_s": time.perf_counter() - started}
    emit_json(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
