"""Performance measurements of the phase-field kernels (issues 4 and 12).

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
        preset ``li-solid``: 40,000 steps of Δt = 0.01 s, sub-stepped by the stability guard);
        :func:`measure_adaptive_substeps` — the same with fixed and with adaptive sub-steps.
    (e) :func:`run_throughput` (``softgrain bench --backend jax``) — paper runs per second of the
        batched JAX kernel for batches of 1, 16, 64 and 256 runs (float64 and float32) and of the
        numba sparse kernel on one core, and the projected time of a 20 × 20 × 5 phase map.

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

from softgrain.analysis import area_fractions
from softgrain.config import load_config
from softgrain.phasefield import sparse
from softgrain.phasefield.backends import load_batched_jax
from softgrain.phasefield.dense import allen_cahn_step_dense
from softgrain.phasefield.energy import Landau
from softgrain.phasefield.grains import GrainParameters
from softgrain.phasefield.solver import Simulation
from softgrain.phasefield.sparse import SparseField, set_num_threads
from softgrain.setup import build
from softgrain.studies.phasemap import phase_map_plan
from softgrain.output.files import write_json

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
    out["relabelled_ratio_cpu"] = (out[f"relabelled_{a}_as_{b}_ids"]["cpu_s"]
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
                       dense_cpu_ns_per_cell_step: float | None = None,
                       substeps: str = "auto") -> dict:
    """Wall time of the full reference run through the solver.

    ``substeps`` is ``run.substeps``: "auto" (the sub-step count of all grains for the whole
    run) or "adaptive" (recomputed from the grains present every 100 steps).

    Uses :class:`softgrain.phasefield.solver.Simulation` (what :func:`softgrain.setup.simulate`
    runs) so that the kernel's counters are available. With ``dense_ns_per_cell_step`` (from
    :func:`measure_speedup_vs_dense`, CPU time) the dense NumPy time of the same run is estimated
    as that cost times the active cell-steps of the run and compared with the run's CPU time (an
    estimate, and a low one for the dense side: with few active rows NumPy's per-call overhead
    makes the dense reference slower per cell).
    """
    return _timed_reference(preset, threads, dense_cpu_ns_per_cell_step, substeps)[0]


def _timed_reference(preset: str, threads: int, dense_cpu_ns_per_cell_step: float | None,
                     substeps: str, seed: int | None = None) -> tuple[dict, Simulation]:
    changes = {"numerics.threads": threads, "run.substeps": substeps}
    if seed is not None:
        changes["run.seed"] = seed
    cfg = load_config(preset, changes)
    params = kernel_parameters(preset)
    _warm_up(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = Simulation(build(cfg))
    wall, cpu = time.perf_counter(), time.process_time()
    sim.run()
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    out = {"preset": preset, "threads": threads, "substeps_mode": substeps, "wall_s": wall,
           "cpu_s": cpu, "solver_loop_wall_s": sim.wall_time_s,
           "steps": sim.total_steps, "substeps": sim.inputs.substeps, "substeps_last": sim.substeps,
           "kernel_steps": sim.kernel_steps,
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
    return out, sim


def measure_adaptive_substeps(preset: str = "li-solid", seeds=(1,), repeats: int = 2,
                              threads: int = 1) -> dict:
    """The reference run with fixed ("auto") and adaptive sub-steps, one core, interleaved.

    For each seed, ``repeats`` rounds of (fixed, adaptive) full runs; the best wall and CPU time
    of each mode, the kernel steps, and how many cells of the final grain map and which
    orientation fractions agree between the two modes.
    """
    out: dict = {"preset": preset, "threads": threads, "repeats": repeats, "seeds": {}}
    for seed in seeds:
        best: dict[str, dict] = {}
        labels, orientation = {}, None
        for _ in range(repeats):
            for mode in ("auto", "adaptive"):
                timing, sim = _timed_reference(preset, threads, None, mode, seed)
                if mode not in best or timing["wall_s"] < best[mode]["wall_s"]:
                    best[mode] = {**timing, "cpu_s": min(timing["cpu_s"],
                                                         best.get(mode, timing)["cpu_s"])}
                labels[mode] = sim.snapshots[-1].labels
                orientation = sim.nucleation.grain_orientation
        fractions = {mode: area_fractions(labels[mode], orientation).tolist() for mode in labels}
        out["seeds"][str(seed)] = {
            "fixed": best["auto"], "adaptive": best["adaptive"],
            "speedup_wall": best["auto"]["wall_s"] / best["adaptive"]["wall_s"],
            "speedup_cpu": best["auto"]["cpu_s"] / best["adaptive"]["cpu_s"],
            "final_labels_equal_fraction": float((labels["auto"] == labels["adaptive"]).mean()),
            "area_fractions_fixed": fractions["auto"], "area_fractions_adaptive": fractions["adaptive"]}
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


# ----------------------------------------------------------------------------------------------
# (e) throughput: the batched JAX kernel and the numba kernel on one core (issue 12)
# ----------------------------------------------------------------------------------------------

JAX_BATCHES = (1, 16, 64, 256)
MAP_RESOLUTION, MAP_SEEDS = 20, 5          # the 2,000-run phase map of issue 12


def full_height_steps(inputs) -> float:
    """A run's cost in full-height run-steps: Σ over its outer steps of sub-steps × the rows the
    JAX kernel computes (deposited rows rounded up to its row bucket) / all rows."""
    bucket = load_batched_jax().ROW_BUCKET
    ny = inputs.shape[0]
    front = inputs.front
    # front.active_rows for every step at once
    rows = front.initial_rows + np.searchsorted(front.activation_steps(),
                                                np.arange(inputs.total_steps), side="right")
    computed = np.minimum(ny, bucket * np.ceil(rows / bucket))
    return float(inputs.substeps * computed.sum() / ny)


def _quiet_build(config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # sub-stepping notes
        return build(config)


def phase_map_full_height_steps(resolution: int = MAP_RESOLUTION, seeds: int = MAP_SEEDS,
                                preset: str = "phase-map") -> float:
    """Σ of :func:`full_height_steps` over the runs of the ``resolution``² × ``seeds`` phase map
    (each point's sub-steps from its first seed's set-up)."""
    plan = phase_map_plan(resolution, seeds, base=load_config(preset))
    return float(len(plan.seeds) * sum(full_height_steps(_quiet_build(c.updated({"run.seed": plan.seeds[0]})))
                                       for c in plan.point_configs))


def _time_full_height(batched, runs, dtype: str, budget_s: float, min_steps: int,
                      max_steps: int) -> dict:
    """Seconds per step of a batch of ``runs`` with every row deposited and all grains carried
    (no compaction): the costliest step of a run, timed after a compiling call."""
    first = runs[0]
    ny = first.shape[0]
    n = max(r.n_grains for r in runs)
    params = batched.batch_parameters([r.grains for r in runs], n, np.full(len(runs), first.dt_s / first.substeps),
                                 first.landau, first.laplacian_spacing, first.open_front)
    field = batched.BatchedField.from_labels(np.stack([r.nucleation.labels for r in runs]), params,
                                             dtype=dtype)
    compile_started = time.perf_counter()
    field.advance(1, ny)
    field.device_phi.block_until_ready()
    compile_s = time.perf_counter() - compile_started
    wall = time.perf_counter()
    field.advance(1, ny)
    field.device_phi.block_until_ready()
    one = time.perf_counter() - wall
    steps = int(min(max_steps, max(min_steps, budget_s / max(one, 1e-9))))
    wall, cpu = time.perf_counter(), time.process_time()
    field.advance(steps, ny)
    field.device_phi.block_until_ready()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"steps_timed": steps, "s_per_step": wall / steps, "s_per_run_step": wall / steps / len(runs),
            "cpu_s_per_run_step": cpu / steps / len(runs), "first_call_s": compile_s,
            "grains": n, "failed_runs": int(field.failed.sum())}


def measure_jax_throughput(preset: str = "li-solid", batches=JAX_BATCHES,
                           dtypes=("float64", "float32"), budget_s: float = 2.0,
                           min_steps: int = 2, max_steps: int = 2000) -> dict:
    """Paper runs per second of the batched JAX kernel for each batch size and precision.

    Per batch (seeds 1 … B of ``preset``), the seconds per full-height step are timed for about
    ``budget_s`` (at least ``min_steps`` steps) and projected to a whole run:
    ``s_per_run = s_per_run_step × full_height_steps(run)`` — the run's sub-stepped outer steps,
    each priced by the rows it computes. Compaction (vanished grains dropped) and adaptive
    sub-steps would lower it: this is the cost of the run as configured, without them. A batch
    that does not fit the device memory (:func:`~softgrain.phasefield.batched_jax.plan_batches`)
    is reported as skipped.
    """
    batched = load_batched_jax()
    reference = _quiet_build(load_config(preset))
    per_run_steps = full_height_steps(reference)
    out: dict = {"device": batched.device_description()["device"], "preset": preset,
                 "full_height_steps_per_run": per_run_steps,
                 "available_bytes": batched.available_memory(), "results": {}}
    cache: dict[int, list] = {}
    for dtype in dtypes:
        for batch in batches:
            key = f"{dtype}_batch{batch}"
            per_run_bytes = batched.bytes_per_run(reference.n_grains, *reference.shape, dtype=dtype)
            try:
                batched.plan_batches(batch, per_run_bytes, batch_size=batch, split=False)
            except batched.BatchTooLargeError as exc:
                out["results"][key] = {"skipped": str(exc)}
                continue
            if batch not in cache:
                cache[batch] = [_quiet_build(load_config(preset, {"run.seed": seed}))
                                for seed in range(1, batch + 1)]
            timing = _time_full_height(batched, cache[batch], dtype, budget_s, min_steps, max_steps)
            timing["s_per_run"] = timing["s_per_run_step"] * per_run_steps
            timing["cpu_s_per_run"] = timing["cpu_s_per_run_step"] * per_run_steps
            timing["runs_per_s"] = 1.0 / timing["s_per_run"]
            out["results"][key] = timing
    return out


def measure_numba_throughput(preset: str = "li-solid", modes=("auto", "adaptive")) -> dict:
    """One full run of ``preset`` on one core with the numba sparse kernel, per sub-step mode."""
    _warm_up(kernel_parameters(preset))
    out = {}
    for mode in modes:
        timing, _ = _timed_reference(preset, 1, None, mode)
        timing["s_per_run"] = timing["wall_s"]
        timing["runs_per_s"] = 1.0 / timing["wall_s"]
        out[mode] = timing
    return out


def run_throughput(preset: str = "li-solid", quick: bool = False,
                   batches=JAX_BATCHES, dtypes=("float64", "float32")) -> dict:
    """``softgrain bench --backend jax``: the JAX backend and the numba kernel, in one run.

    Headline keys: ``device``; ``runs_per_s`` and ``s_per_run`` per batch size (float64, the
    default precision; ``float32`` holds the same in single precision); ``phase_map_2000_runs_s``
    — a 20 × 20 × 5 map projected from the fastest measured batch (per-run time × the map's
    full-height steps / the reference run's); ``numba_one_core`` — the same numbers for one full
    run on one core (fixed and adaptive sub-steps). On a CPU device each batch is timed for a
    few steps only (``quick``: fewer), which the ``protocol`` states.
    """
    started = time.perf_counter()
    batched = load_batched_jax()
    on_cpu = batched.device_description()["platform"] == "cpu"
    budget = 0.5 if (quick or on_cpu) else 2.0
    jax_part = measure_jax_throughput(preset, batches, dtypes, budget_s=budget,
                                      min_steps=1 if quick else 2)
    map_steps = phase_map_full_height_steps()
    reference_steps = jax_part["full_height_steps_per_run"]
    numba_part = measure_numba_throughput(preset, ("auto",) if quick else ("auto", "adaptive"))

    def table(dtype: str) -> dict:
        rows = {str(b): jax_part["results"].get(f"{dtype}_batch{b}", {}) for b in batches}
        measured = {b: r for b, r in rows.items() if "s_per_run" in r}
        best = min(measured.values(), key=lambda r: r["s_per_run"]) if measured else None
        return {"runs_per_s": {b: r.get("runs_per_s") for b, r in rows.items()},
                "s_per_run": {b: r.get("s_per_run") for b, r in rows.items()},
                "cpu_s_per_run": {b: r.get("cpu_s_per_run") for b, r in rows.items()},
                "phase_map_2000_runs_s": (best["s_per_run_step"] * map_steps if best else None),
                "phase_map_projected_from_batch": (next(b for b, r in measured.items() if r is best)
                                                   if best else None)}

    scale = map_steps / reference_steps / (MAP_RESOLUTION ** 2 * MAP_SEEDS)
    numba_one_core = {mode: {"s_per_run": r["s_per_run"], "runs_per_s": r["runs_per_s"],
                             "cpu_s": r["cpu_s"], "kernel_steps": r["kernel_steps"],
                             "phase_map_2000_runs_s": r["s_per_run"] * 2000 * scale}
                      for mode, r in numba_part.items()}
    float64 = table("float64")
    result = {
        "backend": "jax", "device": jax_part["device"], "dtype": "float64",
        "runs_per_s": float64["runs_per_s"], "s_per_run": float64["s_per_run"],
        "cpu_s_per_run": float64["cpu_s_per_run"],
        "phase_map_2000_runs_s": float64["phase_map_2000_runs_s"],
        "phase_map_projected_from_batch": float64["phase_map_projected_from_batch"],
        "float32": table("float32") if "float32" in dtypes else None,
        "numba_one_core": numba_one_core,
        "protocol": (
            f"reference run: preset {preset} (200 x 70, 75 nuclei, 400 s, {reference_steps:.0f} "
            "full-height run-steps with its fixed sub-steps). JAX: seconds per full-height step of "
            f"a batch of seeds 1..B, timed for ~{budget} s (at least "
            f"{1 if quick else 2} steps; {'CPU device: a reduced step count' if on_cpu else 'GPU'}) "
            "after a compiling call, all grains carried (no compaction, no adaptive sub-steps: an "
            "upper bound), times the run's full-height run-steps. phase_map_2000_runs_s: a 20 x 20 "
            f"x 5 map = {map_steps:.3g} full-height run-steps at the fastest measured batch. numba: "
            "one full run on one core (numba threads = 1) per sub-step mode; its map projection "
            "scales it by the map's mean full-height steps over the reference run's."),
        "jax_detail": jax_part, "numba_detail": numba_part,
        "machine": machine(), "benchmark_wall_s": time.perf_counter() - started,
    }
    return result


def emit_json(result: dict, output: str | os.PathLike | None = None) -> None:
    """Print a benchmark's result as indented JSON and, with ``output``, also write it there
    (atomically, so that an interrupted benchmark never leaves half a file)."""
    print(json.dumps(result, indent=2))
    if output:
        write_json(output, result)
