#!/usr/bin/env python
"""Batched JAX backend benchmark (issue 12): prints one JSON object.

Measures on this machine, in one run, for the paper grid (li-solid preset: 200 × 70, 75 grains,
L_q and κ_q as mapped by the solver, Δt/sub-steps of the solver, open front):

(a) ``throughput``: :func:`softgrain.studies.benchmark.measure_jax_throughput` (also run by
    ``softgrain bench --backend jax``): seconds per full-height run-step for batch sizes 1, 16
    and 64, float64 and float32, projected to one paper run (Σ over the run's steps of the
    computed rows / 70 × the full-height step) and ``runs_per_s``.
(b) ``slot_scaling``: seconds per run-step at batch 16, float64, with 75, 32, 16 and 8 order
    parameters — what compaction can buy per step.
(c) ``compaction_measured``: the first 1,500 steps (15 s) of 4 paper runs, float64, with and
    without compaction every 100 steps (times, slot counts, largest field difference).
    ``survival``: how many grains are still present (|φ| ≥ 1e-8, the sparse kernel's prune
    threshold) along real paper runs — seeds 1..``--survival-seeds`` run with the numba sparse
    kernel on one core — and from it the projected paper-run cost with compaction every 100
    steps (slots = max over the batch's runs, rounded to 4) against no compaction.
(d) ``memory``: device bytes per run, estimated (``bytes_per_run``) and from XLA's memory
    analysis of the compiled program, the memory available, and the batch plan for 2,000 runs.

Timing: ``time.perf_counter`` and ``time.process_time`` around a segment of steps after a
warm-up call that compiles; the machine is shared, so the CPU time is the steadier number.

Usage::

    python benchmarks/jax_batched.py [--quick] [--steps 300] [--survival-seeds 8] [-o out.json]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
import warnings

import numpy as np

from softgrain.config import load_config
from softgrain.phasefield import batched_jax as bj
from softgrain.phasefield.solver import Simulation
from softgrain.setup import build
from softgrain.studies.benchmark import emit_json, measure_jax_throughput


def paper_batch(batch: int, preset: str = "li-solid", first_seed: int = 1):
    """Nucleations of seeds first_seed.. and the solver's coefficients → (phi0, params, front,
    substeps, total_steps).

    The seeds of a preset share the front, but not always the sub-step count (L_q and κ_q
    depend on the nucleated grains through E0, and the stability limit on the largest L_q κ_q):
    the batch takes the largest count, i.e. the finest step of its runs."""
    sims = []
    for seed in range(first_seed, first_seed + batch):
        cfg = load_config(preset, {"run.seed": seed})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the sub-stepping warning of the preset
            sims.append(build(cfg))
    first = sims[0]
    if len({s.front for s in sims}) != 1:
        raise RuntimeError("seeds of the preset differ in their deposition front: cannot batch them")
    substeps = max(s.substeps for s in sims)
    n = max(s.n_grains for s in sims)
    ny, nx = first.shape
    labels = np.stack([s.nucleation.labels for s in sims])
    phi0 = (labels[:, None] == np.arange(n)[None, :, None, None]).astype(np.float64)
    dt_inner = first.dt_s / substeps
    params = bj.batch_parameters([s.grains for s in sims], n, np.full(batch, dt_inner), first.landau,
                                 first.laplacian_spacing, first.open_front)
    assert phi0.shape == (batch, n, ny, nx)
    return phi0, params, first.front, substeps, first.total_steps


def computed_row_fraction(front, total_steps: int, substeps: int, ny: int) -> float:
    """Mean over the run's (sub-)steps of bucketed active rows / ny."""
    steps = np.arange(total_steps)
    rows = front.initial_rows + np.searchsorted(front.activation_steps(), steps, side="right")
    bucketed = np.minimum(ny, bj.ROW_BUCKET * np.ceil(rows / bj.ROW_BUCKET))
    return float(bucketed.mean() / ny)


def measure_throughput(batches, dtypes, steps: int, repeats: int) -> dict:
    """Moved to softgrain.studies.benchmark.measure_jax_throughput (timed for ~2 s per batch)."""
    return measure_jax_throughput("li-solid", batches, tuple(np.dtype(d).name for d in dtypes))


def time_steps(field: bj.BatchedField, n_steps: int, repeats: int) -> dict:
    ny = field.shape[0]
    field.advance(1, ny)                          # compiles
    field.device_phi.block_until_ready()
    best_wall = best_cpu = math.inf
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        field.advance(n_steps, ny)
        field.device_phi.block_until_ready()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    b = field.batch_size
    return {"steps": n_steps, "s_per_step": best_wall / n_steps,
            "s_per_run_step": best_wall / n_steps / b,
            "cpu_s_per_run_step": best_cpu / n_steps / b}


def measure_slot_scaling(batch: int, slots, steps: int, repeats: int) -> dict:
    phi0, params, *_ = paper_batch(batch)
    out = {}
    for n in slots:
        keep = np.tile(np.arange(n), (batch, 1))
        field = bj.BatchedField(phi0[:, :n], params.take(keep))
        out[str(n)] = time_steps(field, steps, repeats)["s_per_run_step"]
        del field
    return out


def grains_present(sim: Simulation) -> set[int]:
    """Grain ids with a stored value (the sparse kernel keeps only |φ| ≥ its prune threshold)."""
    index = np.asarray(sim.field.index)
    return set(np.unique(index[index >= 0]).tolist())


def measure_survival(seeds: int, every_steps: int) -> dict:
    """Grains present every ``every_steps`` outer steps in full paper runs (sparse kernel, 1 core)."""
    present = []     # per seed: list of sets
    wall = time.perf_counter()
    for seed in range(1, seeds + 1):
        cfg = load_config("li-solid", {"run.seed": seed, "numerics.threads": 1})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sim = Simulation(build(cfg))
        row = [grains_present(sim)]
        for target in range(every_steps, sim.total_steps + 1, every_steps):
            sim.advance_to(target)
            row.append(grains_present(sim))
        present.append(row)
    steps = list(range(0, sim.total_steps + 1, every_steps))
    counts = np.array([[len(s) for s in row] for row in present])
    return {"seeds": seeds, "every_steps": every_steps, "steps": steps,
            "n_grains": sim.n_grains, "present_per_seed": counts.tolist(),
            "present_mean": counts.mean(axis=0).tolist(), "sparse_runs_wall_s": time.perf_counter() - wall,
            "_sets": present, "_front": sim.front, "_substeps": sim.substeps,
            "_total": sim.total_steps}


def project_compaction(survival: dict, slot_cost: dict, batch_sizes) -> dict:
    """Projected cost of a paper run with compaction every ``every_steps`` steps, relative to
    none: Σ over intervals of rows fraction × cost(slots)/cost(75), for batches of the seeds.

    Two policies: per-run packing (this module: slots = max over runs of present grains) and
    dropping only ids absent in every run (slots = size of the union)."""
    n_points = np.array(sorted(int(k) for k in slot_cost))
    costs = np.array([slot_cost[str(k)] for k in n_points])
    n_full = survival["n_grains"]

    def cost(n):
        return float(np.interp(n, n_points, costs))

    front, every = survival["_front"], survival["every_steps"]
    ny = front.ny
    steps = survival["steps"]
    result = {}
    sets = survival["_sets"]
    for batch in batch_sizes:
        if batch > len(sets):
            continue
        group = sets[:batch]
        none = packed = union = 0.0
        for i, step in enumerate(steps[:-1]):
            rows = np.array([front.active_rows(s) for s in range(step, step + every)])
            work = float((np.minimum(ny, bj.ROW_BUCKET * np.ceil(rows / bj.ROW_BUCKET)) / ny).sum())
            per_run = max(len(run[i]) for run in group)
            slots_packed = min(n_full, bj.SLOT_BUCKET * math.ceil(per_run / bj.SLOT_BUCKET))
            slots_union = min(n_full, bj.SLOT_BUCKET * math.ceil(
                len(set().union(*(run[i] for run in group))) / bj.SLOT_BUCKET))
            none += work * cost(n_full)
            packed += work * cost(slots_packed)
            union += work * cost(slots_union)
        result[f"batch{batch}"] = {"per_run_packing_speedup": none / packed,
                                   "union_only_speedup": none / union}
    return result


def measure_compaction(batch: int, stop_step: int, every: int) -> dict:
    """The first ``stop_step`` steps of ``batch`` paper runs (float64) with and without compaction
    every ``every`` steps: wall and CPU time (compilations included: compaction compiles one
    program per new slot count), slot counts, and the largest difference of the fields."""
    phi0, params, front, substeps, _ = paper_batch(batch)
    out, fields = {}, {}
    for label, compact_every in (("none", None), (f"every_{every}", every)):
        field = bj.BatchedField(phi0, params)
        slots: list[int] = []
        wall, cpu = time.perf_counter(), time.process_time()
        bj.advance_schedule(field, front, stop_step, substeps=substeps, compact_every=compact_every,
                            snapshot_steps=range(every, stop_step + 1, every),
                            on_snapshot=lambda snap: slots.append(snap.n_slots))
        out[label] = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                      "slots_every_100_steps": slots}
        fields[label] = field
    plain, compacted = fields["none"], fields[f"every_{every}"]
    rows = front.active_rows(stop_step)
    out.update(batch=batch, steps=stop_step, substeps=substeps,
               speedup_wall=out["none"]["wall_s"] / out[f"every_{every}"]["wall_s"],
               speedup_cpu=out["none"]["cpu_s"] / out[f"every_{every}"]["cpu_s"],
               max_abs_diff=float(np.abs(plain.to_dense() - compacted.to_dense()).max()),
               labels_equal=bool((plain.labels(rows) == compacted.labels(rows)).all()),
               grains_present_per_run=(plain.grain_maxima() >= bj.DEFAULT_COMPACTION_THRESHOLD)
               .sum(axis=1).tolist())
    return out


def measure_memory(n_runs: int = 2000) -> dict:
    out = {"available_bytes": bj.available_memory()}
    for dtype in (np.float64, np.float32):
        name = np.dtype(dtype).name
        estimate = bj.bytes_per_run(75, 70, 200, dtype)
        out[name] = {"bytes_per_run_estimate": estimate,
                     "bytes_per_run_xla_memory_analysis": bj.measured_bytes_per_run(75, 70, 200, dtype),
                     "largest_batch_for_2000_runs": len(bj.plan_batches(n_runs, estimate)[0])}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps, batches 1 and 4, no survival runs")
    parser.add_argument("--steps", type=int, default=300, help="steps timed per batch ≤ 16 (fewer above)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--survival-seeds", type=int, default=8,
                        help="paper runs (sparse kernel) for the survival curve; 0 to skip")
    parser.add_argument("-o", "--output", help="also write the JSON to this file")
    args = parser.parse_args(argv)
    import jax

    started = time.perf_counter()
    batches = (1, 4) if args.quick else (1, 16, 64)
    steps = 20 if args.quick else args.steps
    result = {
        "device": [str(d) for d in jax.devices()], "jax": jax.__version__,
        "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "load_average_before": list(os.getloadavg()), "row_bucket": bj.ROW_BUCKET,
        "throughput": measure_throughput(batches, (np.float64, np.float32), steps, args.repeats),
        "slot_scaling_batch16_float64_s_per_run_step": measure_slot_scaling(
            4 if args.quick else 16, (75, 32, 16, 8), 10 if args.quick else 50, args.repeats),
        "memory": measure_memory(),
        "compaction_measured": measure_compaction(2 if args.quick else 4,
                                                  300 if args.quick else 1500, 100),
    }
    seeds = 0 if args.quick else args.survival_seeds
    if seeds:
        survival = measure_survival(seeds, every_steps=100)
        result["compaction_projection"] = project_compaction(
            survival, result["slot_scaling_batch16_float64_s_per_run_step"], (1, 4, seeds))
        result["survival"] = {k: v for k, v in survival.items() if not k.startswith("_")}
    result["load_average_after"] = list(os.getloadavg())
    result["benchmark_wall_s"] = time.perf_counter() - started
    emit_json(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
