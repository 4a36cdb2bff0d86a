"""Performance measurements of the phase-field kernels (issue 4).

Every function measures on this machine and returns a plain dict (JSON-ready); nothing here is a
pass/fail test. ``benchmarks/kernel_scaling.py`` runs :func:`run_all` and prints the JSON.

What is measured
    (a) :func:`measure_speedup_vs_dense` — the sparse kernel
        (:class:`~softgrain.phasefield.sparse.SparseField`) against the dense NumPy reference
        (:func:`~softgrain.phasefield.dense.allen_cahn_step_dense`) for the same steps from the
        same state: a Voronoi tessellation of the 200 × 70 grid into 75 grains, grown for a few
        hundred steps so that boundaries and tails have formed.
    (b) :func:`measure_grain_scaling` — the same protocol with 75 and with 750 grains on the same
        grid.
    (c) :func:`measure_large_grid` — 2000 × 700 with 7,500 grains (the grain density of (a)),
        time per cell-step relative to the 200 × 70 grid under the same protocol, and the peak
        resident memory of the process that ran it (a subprocess, so that the number is not
        polluted by the caller).
    (d) :func:`time_reference_run` — the full reference run (``softgrain.phasefield.solver``,
        preset ``li-solid``: 40,000 steps of Δt = 0.01 s, sub-stepped by the stability guard).

Grain parameters are those of the reference run: L_q and κ_q of the three orientations as
:func:`softgrain.setup.build` maps them (Eq. S14–S15) for the ``li-solid`` preset, each grain drawn
at random among the three, and the kernel time step Δt/substeps that the solver uses. The tails of grains with
large κ (κ ≈ 12.5 for (111) in this preset) reach far — |φ| ≥ 1e-8 over ≈ 18·sqrt(κ/2) cells —
so the number of grains present per cell, reported as ``mean_occupancy``, drives the cost.

Timing: wall-clock ``time.perf_counter``, best of several repeats, each repeat from the same state;
the process CPU time is reported alongside (on a loaded machine the CPU time is the more stable
number for single-thread runs). Threads: numba threads are set per measurement (default 1, "one
core"); NumPy's dense reference is single-threaded anyway.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np
from scipy.spatial import cKDTree

from softgrain.config import load_config
from softgrain.phasefield import sparse
from softgrain.phasefield.dense import allen_cahn_step_dense
from softgrain.phasefield.energy import Landau
from softgrain.phasefield.grains import GrainParameters
from softgrain.phasefield.solver import Simulation
from softgrain.phasefield.sparse import SparseField, set_num_threads
from softgrain.setup import build

REFERENCE_SHAPE = (70, 200)      # (ny, nx) of the paper's grid
REFERENCE_GRAINS = 75
LARGE_SHAPE = (700, 2000)
LARGE_GRAINS = 7500


# ----------------------------------------------------------------------------------------------
# Set-up helpers
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KernelParameters:
    """Per-orientation L and κ, the Landau coefficients and the kernel time step."""

    mobility: tuple[float, ...]
    kappa: tuple[float, ...]
    dt: float
    landau: Landau
    spacing: float
    source: str

    def grains(self, n_grains: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Random orientation per grain → (orientation, mobility, kappa) arrays."""
        rng = np.random.default_rng(seed)
        orientation = rng.integers(0, len(self.mobility), n_grains)
        return (orientation, np.asarray(self.mobility)[orientation],
                np.asarray(self.kappa)[orientation])

    def as_dict(self) -> dict:
        return {"mobility_per_orientation": list(self.mobility),
                "kappa_per_orientation": list(self.kappa), "dt_kernel": self.dt,
                "landau": [self.landau.alpha, self.landau.beta, self.landau.gamma, self.landau.w],
                "laplacian_spacing": self.spacing, "source": self.source}


def kernel_parameters(preset: str = "li-solid") -> KernelParameters:
    """L_q, κ_q per orientation and the sub-stepped Δt that the solver uses for ``preset``.

    As :func:`softgrain.setup.build` sets the run up: E0 is the mean surface energy of the
    nucleated grains, and Δt is divided into the sub-steps of the stability guard.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # the sub-stepping note: expected for li-solid
        inputs = build(load_config(preset))
    op = inputs.orientation_parameters
    return KernelParameters(tuple(float(v) for v in op.mobility), tuple(float(v) for v in op.kappa),
                            float(inputs.dt_s / inputs.substeps), inputs.landau,
                            float(inputs.laplacian_spacing),
                            f"preset {preset} as set up by softgrain.setup.build "
                            f"({inputs.substeps} sub-steps)")


def voronoi_labels(shape: tuple[int, int], n_grains: int, seed: int = 0,
                   rows: int | None = None) -> np.ndarray:
    """Voronoi tessellation of the bottom ``rows`` rows (all by default) into ``n_grains`` grains.

    Periodic in x like the model; cells above ``rows`` are −1.
    """
    ny, nx = shape
    rows = ny if rows is None else int(rows)
    rng = np.random.default_rng(seed)
    seeds = np.column_stack([rng.uniform(0, rows, n_grains), rng.uniform(0, nx, n_grains)])
    tree = cKDTree(seeds, boxsize=[10.0 * ny, float(nx)])   # periodic in x only
    labels = np.full((ny, nx), -1, dtype=np.int32)
    for start in range(0, rows, 64):                        # bounded temporary memory
        stop = min(rows, start + 64)
        yy, xx = np.mgrid[start:stop, 0:nx]
        _, nearest = tree.query(np.column_stack([yy.ravel() + 0.0, xx.ravel() + 0.0]))
        labels[start:stop] = nearest.reshape(stop - start, nx)
    return labels


def _set_threads(threads: int) -> int:
    return set_num_threads(threads)


def _warm_up(params: KernelParameters) -> None:
    """Compile (or load from the cache) the kernels outside any timed region."""
    f = sparse.SparseField.from_labels(np.zeros((4, 4), dtype=np.int32))
    saved = sparse._MIN_PARALLEL_CELLS
    sparse._MIN_PARALLEL_CELLS = 0          # make the tiny grid take the parallel path too
    try:
        for threads in (1, 2):
            f.advance(2, params.dt, 4, GrainParameters.paper(np.ones(1), np.ones(1)),
                      params.landau, params.spacing, threads=threads)
    finally:
        sparse._MIN_PARALLEL_CELLS = saved
    f.labels()


def grown_state(shape: tuple[int, int], n_grains: int, params: KernelParameters, grow_steps: int,
                seed: int = 0, prune_threshold: float = 1e-8, threads: int = 1,
                max_capacity: int = 256, headroom: int = 4):
    """Voronoi state of ``n_grains`` grown for ``grow_steps`` kernel steps → (field, mob, kappa).

    ``headroom`` slots are added after growing, so that a capacity growth (a one-off re-allocation
    and re-synchronisation) is unlikely to fall into a timed interval.
    """
    labels = voronoi_labels(shape, n_grains, seed)
    _, mob, kap = params.grains(n_grains, seed + 1)
    field = SparseField.from_labels(labels, max_capacity=max_capacity)
    field.advance(grow_steps, params.dt, shape[0], GrainParameters.paper(mob, kap, params.landau.w),
                  params.landau, params.spacing, prune_threshold=prune_threshold, threads=threads)
    if headroom:
        field.resize(min(max_capacity, field.capacity + headroom))
    return field, mob, kap


def time_sparse(field, n_steps: int, params: KernelParameters, mob: np.ndarray, kap: np.ndarray,
                active_rows: int | None = None, threads: int = 1, repeats: int = 3,
                prune_threshold: float = 1e-8, copy: bool = True) -> tuple[dict, object]:
    """Best-of-``repeats`` time of ``n_steps`` sparse steps.

    With ``copy`` every repeat starts from ``field``'s state (on a copy); without, the repeats
    continue one after the other on ``field`` itself (half the memory, for large grids).
    Returns the timing dict and the field after the last repeat.
    """
    ny, nx = field.shape
    rows = ny if active_rows is None else active_rows
    best_wall = best_cpu = float("inf")
    last = None
    growths_before = 0 if copy else field.stats["capacity_growths"]
    for _ in range(repeats):
        trial = field.copy() if copy else field
        wall, cpu = time.perf_counter(), time.process_time()
        trial.advance(n_steps, params.dt, rows, GrainParameters.paper(mob, kap, params.landau.w),
                      params.landau, params.spacing, prune_threshold=prune_threshold,
                      threads=threads)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        last = trial
    stats = last.slot_statistics(rows)
    cells = rows * nx
    return {
        "threads": threads, "steps": n_steps, "active_cells": cells,
        "wall_s": best_wall, "cpu_s": best_cpu,
        "ms_per_step": 1e3 * best_wall / n_steps,
        "ns_per_cell_step": 1e9 * best_wall / (n_steps * cells),
        "cpu_ns_per_cell_step": 1e9 * best_cpu / (n_steps * cells),
        "capacity_growths_while_timed": last.stats["capacity_growths"] - growths_before,
        "capacity": stats["capacity"], "max_occupancy": stats["max_occupancy"],
        "mean_occupancy": stats["mean_occupancy"],
        "computed_fraction": stats["computed_fraction"],
    }, last


def time_dense(phi: np.ndarray, n_steps: int, params: KernelParameters, mob: np.ndarray,
               kap: np.ndarray, active_rows: int | None = None,
               repeats: int = 1) -> tuple[dict, np.ndarray]:
    """Best-of-``repeats`` time of ``n_steps`` dense NumPy steps from ``phi`` (and the end state)."""
    rows = phi.shape[1] if active_rows is None else active_rows
    grains = GrainParameters.paper(mob, kap, params.landau.w)
    best_wall = best_cpu = float("inf")
    work = None
    for _ in range(repeats):
        work = phi.copy()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n_steps):
            allen_cahn_step_dense(work, grains, params.landau, params.dt, rows, params.spacing)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    cells = rows * phi.shape[2]
    return {"steps": n_steps, "grains": phi.shape[0], "active_cells": cells,
            "wall_s": best_wall, "cpu_s": best_cpu, "ms_per_step": 1e3 * best_wall / n_steps,
            "ns_per_cell_step": 1e9 * best_wall / (n_steps * cells),
            "cpu_ns_per_cell_step": 1e9 * best_cpu / (n_steps * cells)}, work


# ----------------------------------------------------------------------------------------------
# (a) sparse vs dense, (b) grain scaling
# ----------------------------------------------------------------------------------------------

def measure_speedup_vs_dense(shape: tuple[int, int] = REFERENCE_SHAPE,
                             n_grains: int = REFERENCE_GRAINS, grow_steps: int = 300,
                             n_steps: int = 20, seed: int = 0, prune_threshold: float = 1e-8,
                             params: KernelParameters | None = None) -> dict:
    """Sparse (1 and 2 threads) vs dense NumPy for the same ``n_steps`` from the same state."""
    params = params or kernel_parameters()
    _warm_up(params)
    field, mob, kap = grown_state(shape, n_grains, params, grow_steps, seed, prune_threshold)
    phi = field.to_dense(n_grains)
    dense, dense_end = time_dense(phi, n_steps, params, mob, kap, repeats=2)
    sparse1, end = time_sparse(field, n_steps, params, mob, kap, threads=1, repeats=5,
                               prune_threshold=prune_threshold)
    sparse2, _ = time_sparse(field, n_steps, params, mob, kap, threads=2, repeats=5,
                             prune_threshold=prune_threshold)
    return {
        "state": f"Voronoi {shape[1]}x{shape[0]}, {n_grains} grains, grown {grow_steps} steps",
        "prune_threshold": prune_threshold,
        "dense_numpy": dense, "sparse_1_thread": sparse1, "sparse_2_threads": sparse2,
        "speedup_vs_dense": dense["wall_s"] / sparse1["wall_s"],
        "speedup_vs_dense_cpu": dense["cpu_s"] / sparse1["cpu_s"],
        "speedup_vs_dense_2_threads": dense["wall_s"] / sparse2["wall_s"],
        "max_abs_difference_after_steps": float(np.abs(end.to_dense(n_grains) - dense_end).max()),
    }


def measure_grain_scaling(shape: tuple[int, int] = REFERENCE_SHAPE, counts=(75, 750),
                          grow_steps: int = 300, n_steps: int = 50, seed: int = 0,
                          prune_threshold: float = 1e-8,
                          params: KernelParameters | None = None) -> dict:
    """Time per step with ``counts`` grains (Voronoi of the whole grid), same protocol.

    The finer tessellation has proportionally more boundary per area and more tails per cell, so
    this ratio measures the structure as much as the kernel. As a control of the kernel alone,
    ``relabelled_*`` times the grown state of the first count with its grain indices scattered
    over 0 … last count − 1 (same geometry, same L and κ per grain, 10× longer per-grain arrays).
    """
    params = params or kernel_parameters()
    _warm_up(params)
    out = {"state": f"Voronoi {shape[1]}x{shape[0]}, grown {grow_steps} steps",
           "prune_threshold": prune_threshold}
    first = None
    for n in counts:
        field, mob, kap = grown_state(shape, n, params, grow_steps, seed, prune_threshold)
        out[f"grains_{n}"], _ = time_sparse(field, n_steps, params, mob, kap, threads=1,
                                            repeats=3, prune_threshold=prune_threshold)
        if first is None:
            first = (field, mob, kap)
    a, b = counts[0], counts[-1]
    out[f"ratio_{b}_over_{a}"] = out[f"grains_{b}"]["wall_s"] / out[f"grains_{a}"]["wall_s"]
    out[f"ratio_{b}_over_{a}_cpu"] = out[f"grains_{b}"]["cpu_s"] / out[f"grains_{a}"]["cpu_s"]
    # control: same geometry, grain ids scattered over 0 … b−1
    field, mob, kap = first
    ids = np.sort(np.random.default_rng(seed + 7).choice(b, size=a, replace=False))
    index = np.where(field.index >= 0, ids[np.maximum(field.index, 0)], -1)
    relabelled = SparseField(index, field.value, base_capacity=field.base_capacity)
    _, mob_b, kap_b = params.grains(b, seed + 8)
    mob_b[ids], kap_b[ids] = mob, kap
    out[f"relabelled_{a}_as_{b}_ids"], _ = time_sparse(relabelled, n_steps, params, mob_b, kap_b,
                                                       threads=1, repeats=3,
                                                       prune_threshold=prune_threshold)
    out[f"relabelled_ratio_cpu"] = (out[f"relabelled_{a}_as_{b}_ids"]["cpu_s"]
                                    / out[f"grains_{a}"]["cpu_s"])
    return out


# ----------------------------------------------------------------------------------------------
# (c) large grid in a subprocess
# ----------------------------------------------------------------------------------------------

def _large_grid_worker(args: dict) -> dict:
    """Runs in the subprocess: reference grid (several seeds) and large grid; own peak RSS.

    The 75-grain reference grid is a small sample (its orientation mix, hence its tails and slot
    occupancy, vary with the seed), so it is measured for ``reference_seeds`` seeds and the
    times and occupancies are averaged; the 7,500-grain grid is its own average.
    """
    params = kernel_parameters(args["preset"])
    _warm_up(params)
    result = {}
    runs = [("reference", tuple(args["reference_shape"]), args["reference_grains"], seed)
            for seed in range(args["seed"], args["seed"] + args["reference_seeds"])]
    runs.append(("large", tuple(args["large_shape"]), args["large_grains"], args["seed"]))
    samples: dict[str, list] = {"reference": [], "large": []}
    for name, shape, n, seed in runs:
        t0 = time.perf_counter()
        field, mob, kap = grown_state(shape, n, params, args["grow_steps"], seed,
                                      args["prune_threshold"])
        grow = time.perf_counter() - t0
        timing, _ = time_sparse(field, args["n_steps"], params, mob, kap, threads=1,
                                repeats=args["repeats"], prune_threshold=args["prune_threshold"],
                                copy=False)
        timing["grow_wall_s"] = grow
        timing["field_MB"] = field.nbytes / 2**20
        timing["seed"] = seed
        samples[name].append(timing)
        del field
    for name, items in samples.items():
        keys = [k for k, v in items[0].items() if isinstance(v, (int, float)) and k != "seed"]
        mean = {k: float(np.mean([it[k] for it in items])) for k in keys}
        mean["ns_per_slot_step"] = mean["ns_per_cell_step"] / max(mean["mean_occupancy"], 1e-9)
        mean["cpu_ns_per_slot_step"] = (mean["cpu_ns_per_cell_step"]
                                        / max(mean["mean_occupancy"], 1e-9))
        mean["samples"] = items
        result[name] = mean
    result["peak_rss_MB_self"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def measure_large_grid(large_shape: tuple[int, int] = LARGE_SHAPE, large_grains: int = LARGE_GRAINS,
                       reference_shape: tuple[int, int] = REFERENCE_SHAPE,
                       reference_grains: int = REFERENCE_GRAINS, grow_steps: int = 100,
                       n_steps: int = 10, repeats: int = 2, seed: int = 0,
                       prune_threshold: float = 1e-8, preset: str = "li-solid",
                       reference_seeds: int = 4) -> dict:
    """2000 × 700 with 7,500 grains vs 200 × 70 with 75 grains, in a fresh subprocess.

    Returns both timings, ``cell_step_ratio_large`` (time per cell-step, large over reference) and
    the subprocess's peak RSS (its own ``ru_maxrss`` and the parent's RUSAGE_CHILDREN view).
    """
    args = {"large_shape": list(large_shape), "large_grains": large_grains,
            "reference_shape": list(reference_shape), "reference_grains": reference_grains,
            "grow_steps": grow_steps, "n_steps": n_steps, "repeats": repeats, "seed": seed,
            "prune_threshold": prune_threshold, "preset": preset,
            "reference_seeds": reference_seeds}
    code = ("import json, sys; from softgrain.studies.benchmark import _large_grid_worker; "
            "print(json.dumps(_large_grid_worker(json.loads(sys.argv[1]))))")
    env = dict(os.environ, NUMBA_NUM_THREADS=os.environ.get("NUMBA_NUM_THREADS", str(os.cpu_count() or 1)))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True,
                          text=True, env=env)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else
                f"exit code {proc.returncode}", "stderr_tail": proc.stderr[-2000:]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["cell_step_ratio_large"] = (result["large"]["ns_per_cell_step"]
                                       / result["reference"]["ns_per_cell_step"])
    result["cell_step_ratio_large_cpu"] = (result["large"]["cpu_ns_per_cell_step"]
                                           / result["reference"]["cpu_ns_per_cell_step"])
    result["slot_step_ratio_large_cpu"] = (result["large"]["cpu_ns_per_slot_step"]
                                           / result["reference"]["cpu_ns_per_slot_step"])
    result["peak_rss_large_MB"] = result["peak_rss_MB_self"]
    result["peak_rss_MB_children_view"] = (children / 1024 if children > before else None)
    result["protocol"] = (f"Voronoi states grown {grow_steps} steps, then {repeats} consecutive "
                          f"timings of {n_steps} steps (best kept), 1 thread, in one subprocess; "
                          f"reference grid averaged over {reference_seeds} seeds")
    return result


# ----------------------------------------------------------------------------------------------
# (d) the full reference run
# ----------------------------------------------------------------------------------------------

def time_reference_run(preset: str = "li-solid", threads: int = 1,
                       dense_cpu_ns_per_cell_step: float | None = None) -> dict:
    """Wall time of the full reference run through the solver.

    Uses :class:`softgrain.phasefield.solver.Simulation` (what :func:`softgrain.setup.simulate`
    runs) so that the kernel's counters are available. With ``dense_ns_per_cell_step`` (from
    :func:`measure_speedup_vs_dense`, CPU time) the dense NumPy time of the same run is estimated
    as that cost times the active cell-steps of the run and compared with the run's CPU time (an
    estimate, and a low one for the dense side: with few active rows NumPy's per-call overhead
    makes the dense reference slower per cell).
    """
    cfg = load_config(preset, {"numerics.threads": threads})
    params = kernel_parameters(preset)
    _warm_up(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = Simulation(build(cfg))
    wall, cpu = time.perf_counter(), time.process_time()
    sim.run()
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    out = {"preset": preset, "threads": threads, "wall_s": wall, "cpu_s": cpu,
           "solver_loop_wall_s": sim.wall_time_s,
           "steps": sim.total_steps, "substeps": sim.substeps,
           "kernel_steps": sim.total_steps * sim.substeps,
           "kernel": cfg.numerics.kernel, "prune_threshold": cfg.numerics.prune_threshold}
    stats = getattr(sim.field, "stats", None)
    if stats:
        out["active_cell_steps"] = stats["cell_steps"]
        out["computed_fraction"] = stats["computed_cell_steps"] / max(1, stats["cell_steps"])
        out["capacity_growths"] = stats["capacity_growths"]
        out["capacity_shrinks"] = stats.get("capacity_shrinks", 0)
        out["ns_per_active_cell_step"] = 1e9 * wall / max(1, stats["cell_steps"])
        out["cpu_ns_per_active_cell_step"] = 1e9 * cpu / max(1, stats["cell_steps"])
        if dense_cpu_ns_per_cell_step:
            estimate = dense_cpu_ns_per_cell_step * 1e-9 * stats["cell_steps"]
            out["dense_numpy_cpu_estimate_s"] = estimate
            out["speedup_vs_dense_estimate_cpu"] = estimate / cpu
    return out


# ----------------------------------------------------------------------------------------------

def machine() -> dict:
    return {"python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "cpu_count": os.cpu_count(),
            "numba_threads": numba.config.NUMBA_NUM_THREADS,
            "threading_layer": numba.config.THREADING_LAYER,
            "processor": platform.processor() or platform.machine(),
            "load_average_1_5_15": list(os.getloadavg())}


TARGETS = {"speedup_vs_dense": ">= 100", "reference_run_s": "<= 10 (one core)",
           "grain_scaling_750_over_75": "<= 1.5", "cell_step_ratio_large": "<= 1.3",
           "peak_rss_large_MB": "<= 2000"}


def target_met(key: str, value: float | None) -> bool | None:
    """Whether ``value`` meets the target of ``key`` in :data:`TARGETS` (None: not measured)."""
    if value is None or key not in TARGETS:
        return None
    operator, bound = TARGETS[key].split()[:2]
    return value >= float(bound) if operator == ">=" else value <= float(bound)


def run_all(quick: bool = False, reference_run: bool = True, preset: str = "li-solid",
            progress: Callable[[str], None] | None = None) -> dict:
    """All measurements → one JSON-ready dict with the headline numbers at the top.

    ``progress(text)`` is told which measurement starts (they take seconds to minutes each).
    """
    say = progress or (lambda text: None)
    params = kernel_parameters(preset)
    started = time.perf_counter()
    result: dict = {"machine_before": machine(), "parameters": params.as_dict(), "targets": TARGETS}
    say("1/4 sparse kernel vs the dense NumPy reference, same state and steps")
    a = measure_speedup_vs_dense(grow_steps=100 if quick else 300, n_steps=5 if quick else 20,
                                 params=params)
    say("2/4 grain scaling: 75 vs 750 grains")
    b = measure_grain_scaling(grow_steps=100 if quick else 300, n_steps=10 if quick else 50,
                              params=params)
    say("3/4 large grid (2000 × 700 cells) in a subprocess, with its peak memory")
    c = measure_large_grid(grow_steps=20 if quick else 100, n_steps=2 if quick else 10,
                           repeats=1 if quick else 2, preset=preset,
                           reference_seeds=1 if quick else 4)
    say(f"4/4 the full {preset} reference run" if reference_run else "4/4 reference run skipped")
    d = (time_reference_run(preset, threads=1,
                            dense_cpu_ns_per_cell_step=a["dense_numpy"]["cpu_ns_per_cell_step"])
         if reference_run else {"skipped": True})
    headline = {
        "speedup_vs_dense": a["speedup_vs_dense"],
        "grain_scaling_750_over_75": b.get("ratio_750_over_75"),
        "cell_step_ratio_large": c.get("cell_step_ratio_large"),
        "peak_rss_large_MB": c.get("peak_rss_large_MB"),
        "reference_run_s": d.get("wall_s"),
    }
    result = {**headline, **result,
              "targets_met": {key: target_met(key, value) for key, value in headline.items()},
              "speedup_vs_dense_detail": a, "grain_scaling_detail": b,
              "large_grid_detail": c, "reference_run_detail": d,
              "machine_after": machine(), "benchmark_wall_s": time.perf_counter() - started}
    return result
