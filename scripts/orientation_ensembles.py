"""Random nucleus orientations: EBSD-like class fractions over seeds, beside the paper's EBSD (issue 13).

For each preset (default li-solid and li-liquid), runs N seeds with
``nucleation.orientation_distribution = "random"`` on the preset's grid (the paper's: 200 × 70,
75 nuclei, 400 s), classifies the grains of the final snapshot along the growth direction
("001"/"101"/"111" within the tolerance of ⟨001⟩/⟨101⟩/⟨111⟩, else "other") and reports the count
and area fractions as mean [95 % Student-t CI] over seeds — of the whole deposit (the analogue of
the paper's EBSD cross-sections) and of a window at its top — beside the EBSD fractions of the
matching condition (``data/experiments.toml``) and the analytic fractions of uniformly random
orientations (what nucleation alone gives). It also draws the IPF grain map and growth texture
of one run per preset and the pooled growth texture of all seeds.

Each run is written as ``OUT/<formulation>/<preset>/seed_<N>.json`` when it finishes, so that a
rerun skips finished runs. Usage::

    python scripts/orientation_ensembles.py --formulation paper --seeds 16 --processes 2 \\
        --out runs/orientations --figures docs/figures

``--formulation`` selects the phase-field formulation: "paper" (Eq. S12–S15 as published) or any
other value of the configuration key ``model.formulation`` (e.g. "consistent") once softgrain has
that key. The JSON summary goes to stdout and to ``OUT/<formulation>/summary.json``; the Markdown
table to ``OUT/<formulation>/table.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from softgrain.analysis import class_ensemble_statistics, class_texture, window_rows
from softgrain.config import SimulationConfig, load_config
from softgrain.ebsd import grain_texture
from softgrain.materials.observations import load_experiments
from softgrain.output import orientation_plots
from softgrain.output.files import read_netcdf, write_json, write_netcdf
from softgrain.physics.orientations import CLASSES, random_cap_fractions
from softgrain.setup import simulate

DEFAULT_PRESETS = ("li-solid", "li-liquid")
TOP_WINDOW_UM = 5.0
"""Height of the window at the top of the deposit (µm): the grains a plan-view map would see."""


def formulation_overrides(formulation: str) -> dict[str, str]:
    """Configuration changes that select ``formulation``.

    Raises
    ------
    SystemExit
        For a formulation other than "paper" when this softgrain has no ``model.formulation``.
    """
    if "model" in SimulationConfig.model_fields:
        return {"model.formulation": formulation}
    if formulation != "paper":
        sys.exit(f"orientation_ensembles: error: this softgrain has no model.formulation key; "
                 f"only --formulation paper is available, not {formulation!r}")
    return {}


def run_config(preset: str, seed: int, formulation: str, end_time_s: float | None) -> SimulationConfig:
    changes: dict[str, object] = {"run.seed": seed, "nucleation.orientation_distribution": "random",
                                  "numerics.threads": 1, **formulation_overrides(formulation)}
    if end_time_s is not None:
        changes["run.end_time_s"] = end_time_s
        changes["run.snapshot_times_s"] = [end_time_s]
    return load_config(preset, changes)


def run_one(preset: str, seed: int, formulation: str, end_time_s: float | None, tolerance_deg: float,
            record: str, result: str | None) -> str:
    """One run, reduced to its final snapshot's classes; written to ``record`` (JSON)."""
    started = time.perf_counter()
    config = run_config(preset, seed, formulation, end_time_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sub-stepping notes: expected, reported by `softgrain run`
        ds = simulate(config)
    final = ds.isel(time=[-1])
    height = float(ds["y"].values[-1] + (ds["y"].values[1] - ds["y"].values[0]))
    window = [max(0.0, height - TOP_WINDOW_UM), height]
    classes = class_texture(final, tolerance_deg, window_um=window)
    grain_map = final["grain"].values[0]
    quaternions = final["grain_quaternion"].values
    area = np.bincount(grain_map[grain_map >= 0].ravel(), minlength=len(quaternions))
    present = area > 0
    nuclei = grain_texture(final["initial_grain"].values, quaternions, tolerance_deg=tolerance_deg)

    def fractions(name: str) -> dict[str, float | None]:
        values = classes[name].values[0]
        return {c: (None if not np.isfinite(v) else float(v)) for c, v in zip(CLASSES, values)}

    out = {
        "preset": preset, "seed": seed, "formulation": formulation,
        "end_time_s": float(final["time"].values[0]), "tolerance_deg": tolerance_deg,
        "count_fraction": fractions("count_fraction"), "area_fraction": fractions("area_fraction"),
        "grains": int(classes["grains"].values[0]),
        "window_um": window, "window_rows": list(window_rows(ds["y"].values, window)),
        "window_count_fraction": fractions("window_count_fraction"),
        "window_area_fraction": fractions("window_area_fraction"),
        "window_grains": int(classes["window_grains"].values[0]),
        "nuclei_count_fraction": nuclei.to_dict()["count_fraction"], "nuclei": nuclei.grains,
        "grain_quaternion": quaternions[present].tolist(), "grain_area_cells": area[present].tolist(),
        "substeps": int(ds.attrs["substeps"]), "wall_time_s": time.perf_counter() - started,
    }
    write_json(record, out)
    if result is not None:
        write_netcdf(ds, result)
    return record


def _json_ready(value):
    """NaN (an interval of fewer than two runs) as null, so that the summary is strict JSON."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _format(stats: dict | None) -> str:
    if stats is None or stats.get("mean") is None:
        return "—"
    low, high = stats["ci95"]
    interval = f" [{100 * low:.1f}, {100 * high:.1f}]" if low is not None else ""
    return f"{100 * stats['mean']:.1f} %{interval}"


def ebsd_fractions(preset: str) -> dict[str, float | None] | None:
    """The paper's EBSD fractions of the condition this preset models, with "other" as the rest."""
    for condition in load_experiments():
        if condition.preset == preset:
            fractions = dict(condition.fraction)
            known = [v for v in fractions.values() if v is not None]
            fractions["other"] = 1.0 - sum(known) if len(known) == 3 else None
            return fractions
    return None


def markdown(summary: dict) -> str:
    lines = [f"Formulation: {summary['formulation']}; {summary['tolerance_deg']:g}° classes; mean [95 % CI] "
             "over seeds of the final snapshot's fractions.", "",
             "| preset | seeds | class | count, whole deposit | count, top 5 µm | area, whole deposit "
             "| nuclei (t = 0) | random (analytic) | EBSD (paper) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for preset, entry in summary["presets"].items():
        ebsd = entry["ebsd"]
        for i, c in enumerate(CLASSES):
            measured = "—" if ebsd is None or ebsd.get(c) is None else f"{100 * ebsd[c]:.1f} %"
            lines.append(
                f"| {preset if i == 0 else ''} | {entry['seeds'] if i == 0 else ''} | {c} "
                f"| {_format(entry['count_fraction'][c])} | {_format(entry['window_count_fraction'][c])} "
                f"| {_format(entry['area_fraction'][c])} | {_format(entry['nuclei_count_fraction'][c])} "
                f"| {100 * summary['random_cap_fractions'][c]:.1f} % | {measured} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formulation", default="paper", help="paper, or a model.formulation value")
    parser.add_argument("--seeds", type=int, default=16, help="seeds 1 … N per preset")
    parser.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS))
    parser.add_argument("--processes", type=int, default=2, help="runs at once (one core each)")
    parser.add_argument("--end-time", type=float, default=None, help="s (default: the preset's, 400 s)")
    parser.add_argument("--tolerance", type=float, default=15.0, help="class tolerance (degrees)")
    parser.add_argument("--out", type=Path, default=Path("runs/orientations"))
    parser.add_argument("--figures", type=Path, default=None,
                        help="write <preset>_random_{ipf_map,growth_texture,ensemble_texture}.png here")
    parser.add_argument("--figure-seed", type=int, default=1, help="seed whose run is drawn")
    args = parser.parse_args()
    formulation_overrides(args.formulation)  # fail early on an unknown formulation
    folder = args.out / args.formulation
    jobs = []
    for preset in args.presets:
        (folder / preset).mkdir(parents=True, exist_ok=True)
        for seed in range(1, args.seeds + 1):
            record = folder / preset / f"seed_{seed}.json"
            result = folder / preset / f"seed_{seed}.nc" if seed == args.figure_seed else None
            if not record.is_file():
                jobs.append((preset, seed, args.formulation, args.end_time, args.tolerance, str(record),
                             None if result is None else str(result)))
    started = time.perf_counter()
    if jobs:
        os.environ.setdefault("NUMBA_NUM_THREADS", "1")
        with ProcessPoolExecutor(max_workers=max(1, args.processes)) as pool:
            futures = [pool.submit(run_one, *job) for job in jobs]
            for done, future in enumerate(as_completed(futures), 1):
                print(f"[{done}/{len(jobs)}] {future.result()} ({time.perf_counter() - started:.0f} s)",
                      file=sys.stderr, flush=True)
    summary = {"formulation": args.formulation, "tolerance_deg": args.tolerance,
               "random_cap_fractions": random_cap_fractions(args.tolerance), "presets": {}}
    for preset in args.presets:
        records = [json.loads((folder / preset / f"seed_{s}.json").read_text())
                   for s in range(1, args.seeds + 1)]
        entry = {"seeds": len(records), "ebsd": ebsd_fractions(preset),
                 "grains_mean": float(np.mean([r["grains"] for r in records])),
                 "window_grains_mean": float(np.mean([r["window_grains"] for r in records])),
                 "window_um": records[0]["window_um"],
                 "substeps": sorted({r["substeps"] for r in records}),
                 "wall_time_per_run_s": float(np.mean([r["wall_time_s"] for r in records]))}
        for name in ("count_fraction", "window_count_fraction", "area_fraction", "window_area_fraction",
                     "nuclei_count_fraction"):
            entry[name] = _json_ready(class_ensemble_statistics([r[name] for r in records]))
        summary["presets"][preset] = entry
        if args.figures is not None:
            args.figures.mkdir(parents=True, exist_ok=True)
            stem = preset.replace("-", "_") + "_random"
            result = folder / preset / f"seed_{args.figure_seed}.nc"
            if result.is_file():
                ds = read_netcdf(result)
                orientation_plots.plot_run_ipf_map(ds, path=args.figures / f"{stem}_ipf_map.png")
                orientation_plots.plot_run_growth_texture(ds, path=args.figures / f"{stem}_growth_texture.png")
            quaternions = np.concatenate([np.asarray(r["grain_quaternion"]).reshape(-1, 4) for r in records])
            areas = np.concatenate([np.asarray(r["grain_area_cells"], dtype=float) for r in records])
            orientation_plots.plot_growth_texture(
                quaternions, areas, tolerance_deg=args.tolerance,
                title=f"{preset}, random nucleus orientations, {args.formulation} formulation: grains of the "
                      f"final snapshot, {len(records)} seeds pooled",
                path=args.figures / f"{stem}_ensemble_texture.png")
    table = markdown(summary)
    write_json(folder / "summary.json", summary)
    (folder / "table.md").write_text(table + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2, default=float))
    print(table, file=sys.stderr)


if __name__ == "__main__":
    main()
