#!/usr/bin/env python
"""Kernel scaling benchmark (issue 4): prints one JSON object.

Measures on this machine, in one run: (a) sparse vs dense NumPy on the same state
(speedup_vs_dense), (b) 75 vs 750 grains on 200 × 70 (grain_scaling_750_over_75), (c) a
2000 × 700 grid with 7,500 grains (cell_step_ratio_large, peak_rss_large_MB, in a subprocess) and
(d) the full reference run through the solver (reference_run_s). The measuring functions live in
:mod:`softgrain.studies.benchmark`; this script is a thin wrapper.

Usage::

    python benchmarks/kernel_scaling.py [--quick] [--no-reference-run] [--preset li-solid] [-o out.json]
"""

from __future__ import annotations

import argparse
import sys

from softgrain.studies.benchmark import emit_json, run_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run, noisy numbers)")
    parser.add_argument("--no-reference-run", action="store_true",
                        help="skip the full reference run (the longest part)")
    parser.add_argument("--preset", default="li-solid", help="preset giving L, κ and Δt (default li-solid)")
    parser.add_argument("-o", "--output", help="also write the JSON to this file")
    args = parser.parse_args(argv)
    result = run_all(quick=args.quick, reference_run=not args.no_reference_run, preset=args.preset)
    emit_json(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
