"""Tables and text for people: what the commands print, built from the library's results.

Every function takes the plain results of a library call (a dataset, a dict, a dataclass) and
returns what to show — :class:`rich.table.Table` objects and lines of text — or, for documents,
Markdown. Nothing here computes physics or touches files; the command line (:mod:`softgrain.cli`)
prints what these functions return.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import xarray as xr
from rich.table import Table

from softgrain import analysis
from softgrain.materials.metals import ORIENTATIONS
from softgrain.output.results import orientation_distribution
from softgrain.phasefield.solver import Simulation
from softgrain.physics.orientations import CLASSES
from softgrain.physics.interlayer import CRITERIA
from softgrain.physics.theory import CROSSOVER_BRACKET_C, EnergyDifference
from softgrain.studies.benchmark import TARGETS, target_met
from softgrain.studies.runner import SweepReport
from softgrain.studies.sweep import SweepPlan

Shown = Table | str


# ---------------------------------------------------------------------------------------------
# Theory
# ---------------------------------------------------------------------------------------------

def theory(result: EnergyDifference, label: str, crossover: float | None) -> list[Shown]:
    """ΔΓ_surface, ΔF_strain and ΔU per temperature, and the crossover temperature."""
    first, second = result.pair
    table = Table(title=f"{result.metal}, {label} (strain {result.strain:+.3f}): "
                        f"ΔU = U({first}) − U({second})")
    for column in ("T (°C)", "ΔΓ_surface (J/m³)", "ΔF_strain (J/m³)", "ΔU (J/m³)", "favoured"):
        table.add_column(column, justify="right")
    for row in result.rows():
        table.add_row(f"{row['temperature_C']:g}", f"{row['delta_gamma_J_m3']:.4g}",
                      f"{row['delta_f_strain_J_m3']:.4g}", f"{row['delta_u_J_m3']:.4g}",
                      f"({row['favoured']})")
    low, high = CROSSOVER_BRACKET_C
    if crossover is None:
        verdict = (f"No crossover between {low:g} °C and {high:g} °C (or the melting point): "
                   "ΔU keeps its sign.")
    else:
        verdict = f"Crossover temperature: {crossover:.2f} °C (ΔU changes sign)."
    return [table, verdict]


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------

def run_summary(simulation: Simulation, ds: xr.Dataset, written: Mapping[str, Path]) -> list[str]:
    """Grains, the steps computed by this process and their wall time, the fractions per
    snapshot, the files written."""
    summary = analysis.summary(ds)
    classes = summary.get("classes")
    computed = simulation.total_steps - simulation.start_step
    resumed = (f" (resumed at step {simulation.start_step} of {simulation.total_steps})"
               if simulation.start_step else "")
    lines = [f"{simulation.inputs.name}: {simulation.n_grains} grains, {computed} steps{resumed} "
             f"in {simulation.wall_time_s - simulation.start_wall_s:.1f} s"
             + (f" ({ds.attrs['orientation_distribution']} orientations; area fractions by nearest pole)"
                if classes else "")]
    for k, (time_s, *fractions) in enumerate(zip(summary["times_s"],
                                                 *(summary["fractions"][o] for o in summary["fractions"]))):
        text = ", ".join(f"({o}) {f:.1%}" for o, f in zip(summary["fractions"], fractions))
        lines.append(f"  t = {time_s:g} s: {text}")
        if classes:
            counts = ", ".join(f"{c} {_percent(classes['count_fraction'][c][k])}" for c in classes["count_fraction"])
            lines.append(f"    grains within {classes['tolerance_deg']:g}° ({classes['grains'][k]} grains, "
                         f"count fractions): {counts}")
    lines.extend(f"  wrote {path}" for path in written.values())
    return lines


def _percent(value: float | None) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.1%}"


_PROVENANCE_KEYS = ("preset", "metal", "temperature_C", "seed", "status", "last_time_s",
                    "started_at", "finished_at", "resumed_at", "wall_time_s", "softgrain_version",
                    "git_commit", "git_dirty", "platform", "command")


def run_tables(ds: xr.Dataset, title: str = "") -> tuple[Table, ...]:
    """(texture table, provenance table) of a run result: the texture at each snapshot; a random-
    or fibre-orientation run also gets the EBSD-like classes (between the two)."""
    tex = analysis.texture(ds)
    labels = orientation_distribution(ds) == "labels" or "grain_quaternion" not in ds
    table = Table(title=(title or f"{ds.attrs.get('preset', 'run')}: texture by snapshot")
                  + ("" if labels else " (area fractions by nearest pole)"))
    for column in ("t (s)", "step", *(f"({o})" for o in ORIENTATIONS), "grains",
                   "surface grains", "surface width (µm)"):
        table.add_column(column, justify="right")
    for k, t in enumerate(tex["time"].values):
        fractions = [f"{v:.1%}" if np.isfinite(v) else "–" for v in tex["area_fraction"].values[k]]
        width = float(tex["surface_grain_width_um"].values[k])
        table.add_row(f"{float(t):g}", str(int(ds["step"].values[k])), *fractions,
                      str(int(tex["grain_count"].values[k])),
                      str(int(tex["surface_grain_count"].values[k])),
                      f"{width:.3g}" if np.isfinite(width) else "–")
    provenance = Table(title="provenance", show_header=False)
    provenance.add_column("key", style="bold")
    provenance.add_column("value")
    for key in _PROVENANCE_KEYS + ("orientation_distribution", "class_tolerance_deg"):
        if key in ds.attrs and str(ds.attrs[key]) != "":
            provenance.add_row(key, str(ds.attrs[key]))
    if labels:
        return table, provenance
    classes = analysis.class_texture(ds)
    class_table = Table(title=f"EBSD-like classes: growth direction within {classes.attrs['tolerance_deg']:g}° "
                              "of a pole (count fraction / area fraction)")
    for column in ("t (s)", *(c if c == "other" else f"({c})" for c in CLASSES), "grains"):
        class_table.add_column(column, justify="right")
    for k, t in enumerate(classes["time"].values):
        class_table.add_row(f"{float(t):g}", *(
            f"{_percent(classes['count_fraction'].values[k, i])} / {_percent(classes['area_fraction'].values[k, i])}"
            for i in range(len(CLASSES))), str(int(classes["grains"].values[k])))
    return table, class_table, provenance


# ---------------------------------------------------------------------------------------------
# EBSD files
# ---------------------------------------------------------------------------------------------

def ebsd(report: Mapping[str, Any], plots: Sequence[Path] = ()) -> list[Shown]:
    """The classes of an EBSD map (:meth:`softgrain.ebsd.EBSDAnalysis.to_dict`) as a table."""
    table = Table(title=f"{report['file']}: {report['grains']} grains of {report['phase']}, growth "
                        f"direction {report['growth_direction']}, within {report['tolerance_deg']:g}°")
    for column in ("class", "count fraction", "area fraction"):
        table.add_column(column, justify="right")
    for c in report["count_fraction"]:
        table.add_row(c if c == "other" else f"({c})", _percent(report["count_fraction"][c]),
                      _percent(report["area_fraction"][c]))
    shape = "×".join(str(n) for n in report["map_shape"])
    shown: list[Shown] = [table, (
        f"map {shape} points, {report['indexed_fraction']:.1%} indexed; grains: misorientation "
        f"< {report['misorientation_threshold_deg']:g}°, at least {report['min_grain_size_px']} points "
        f"({report['segmented_fraction']:.1%} of the indexed points)")]
    shown.extend(f"wrote {path}" for path in plots)
    return shown


# ---------------------------------------------------------------------------------------------
# Experiments
# ---------------------------------------------------------------------------------------------

def format_fraction(stats: Mapping[str, Any] | None) -> str:
    """``"55.0 % [48.0, 62.0]"`` for one orientation's mean and CI, ``"—"`` when missing."""
    if stats is None or stats.get("mean") is None:
        return "—"
    low, high = stats.get("ci95", [None, None])
    interval = f" [{100 * low:.1f}, {100 * high:.1f}]" if low is not None and high is not None else ""
    return f"{100 * stats['mean']:.1f} %{interval}"


def _measured_classes(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The orientations of a comparison row, and "other" where an EBSD file measured it."""
    return ORIENTATIONS + (("other",) if "other" in row["experiment"] else ())


def markdown_table(result: Mapping[str, Any]) -> str:
    """A comparison (:func:`softgrain.studies.experiments.compare_experiments`) as a Markdown
    table: simulated mean [95 % CI] vs measured, and the theory's verdict."""
    lines = ["| condition | strain | orientation | simulated (mean [95 % CI]) | EBSD | theory favours |",
             "|---|---|---|---|---|---|"]
    for row in result["conditions"]:
        for i, orientation in enumerate(_measured_classes(row)):
            first = i == 0
            measured = row["experiment"][orientation]
            simulated = row["simulated"].get(orientation) if row["simulated"] else None
            condition = row["description"] if first else ""
            strain = f"{row['strain']:+.4f}" if first else ""
            observed = "—" if measured is None else f"{100 * measured:.1f} %"
            verdict = f"({row['theory_favoured']})" if first else ""
            name = orientation if orientation == "other" else f"({orientation})"
            lines.append(f"| {condition} | {strain} | {name} | {format_fraction(simulated)} "
                         f"| {observed} | {verdict} |")
    return "\n".join(lines)


def format_interval(stats: Mapping[str, Any] | None) -> str:
    """``"55.0 % [48.0, 62.0]"`` for a ``{"mean", "ci_low", "ci_high"}`` entry, ``"—"`` when missing."""
    if stats is None or stats.get("mean") is None:
        return "—"
    low, high = stats.get("ci_low"), stats.get("ci_high")
    interval = f" [{100 * low:.1f}, {100 * high:.1f}]" if low is not None and high is not None else ""
    return f"{100 * stats['mean']:.1f} %{interval}"


def format_p_value(p: float | None) -> str:
    """A p-value to two significant digits (``"—"`` when not computed)."""
    return "—" if p is None else f"{p:.2g}"


def _count_cells(row: Mapping[str, Any], orientation: str) -> tuple[str, str, str, str]:
    """(simulated pooled, simulated seed mean, simulated grains, EBSD) cells of one orientation."""
    pooled = row.get("simulated_count_fraction")
    seed_mean = row.get("simulated_count_fraction_seed_mean")
    grains = row.get("simulated_grain_counts")
    k = row["ebsd_count"][orientation]
    ebsd = ("—" if k is None else
            f"{k}/{row['ebsd_count_total']} = {format_interval(row['ebsd_count_fraction'][orientation])}")
    return (format_interval(None if pooled is None else pooled[orientation]),
            format_interval(None if seed_mean is None else seed_mean[orientation]),
            "—" if grains is None else str(grains[orientation]), ebsd)


def count_caption(result: Mapping[str, Any]) -> str:
    """What the grain-count columns mean: the window, the minimum size and the methods, in one line."""
    window = next((row for row in result["conditions"] if row.get("count_window_um") is not None), None)
    where = ("" if window is None else
             f"grains with ≥ {window['min_grain_cells']} cells in the bottom "
             f"{window['count_window_height_um']:g} µm of the deposit; ")
    return (f"Grain-count fractions: {where}simulated = pooled over seeds with a Wilson 95 % "
            "interval (seed mean: Student-t over seeds); EBSD counts INFERRED from the printed "
            "percentages (Wilson 95 %); p = Fisher–Freeman–Halton exact test of simulated vs EBSD "
            "counts over the orientations the EBSD reports.")


def markdown_count_table(result: Mapping[str, Any]) -> str:
    """The EBSD-grade grain statistics of a comparison as a Markdown table."""
    lines = ["| condition | orientation | simulated count fraction (pooled, Wilson 95 %) "
             "| seed mean (t 95 %) | simulated grains | EBSD count (INFERRED, Wilson 95 %) | p |",
             "|---|---|---|---|---|---|---|"]
    for row in result["conditions"]:
        for i, orientation in enumerate(ORIENTATIONS):
            first = i == 0
            pooled, seed_mean, grains, ebsd = _count_cells(row, orientation)
            lines.append(f"| {row['description'] if first else ''} | ({orientation}) | {pooled} "
                         f"| {seed_mean} | {grains} | {ebsd} "
                         f"| {format_p_value(row.get('agreement_p_value')) if first else ''} |")
    return "\n".join(lines)


def experiments(result: Mapping[str, Any]) -> list[Shown]:
    """The comparison with the EBSD data as a table, then the grain sizes and their caveats."""
    table = Table(title=f"Li texture: phase field ({result['seeds']} seeds, mean [95 % CI]) vs EBSD vs theory")
    for column in ("condition", "strain", "orientation", "simulated", "EBSD", "theory favours"):
        table.add_column(column)
    for row in result["conditions"]:
        classes = _measured_classes(row)
        for i, orientation in enumerate(classes):
            measured = row["experiment"][orientation]
            simulated = row["simulated"].get(orientation) if row["simulated"] else None
            table.add_row(row["description"] if i == 0 else "", f"{row['strain']:+.4f}" if i == 0 else "",
                          orientation if orientation == "other" else f"({orientation})",
                          format_fraction(simulated), "—" if measured is None else f"{100 * measured:.1f} %",
                          f"({row['theory_favoured']})" if i == 0 else "",
                          end_section=i == len(classes) - 1)
    shown: list[Shown] = [table]
    if any(row.get("simulated_count_fraction") for row in result["conditions"]):
        counts = Table(title="Grain counts vs EBSD (grain-count fractions)")
        for column in ("condition", "orientation", "simulated (pooled)", "seed mean",
                       "grains", "EBSD count", "p (agreement)"):
            counts.add_column(column)
        for row in result["conditions"]:
            for i, orientation in enumerate(ORIENTATIONS):
                counts.add_row(row["description"] if i == 0 else "", f"({orientation})",
                               *_count_cells(row, orientation),
                               format_p_value(row.get("agreement_p_value")) if i == 0 else "",
                               end_section=i == len(ORIENTATIONS) - 1)
        shown += [counts, count_caption(result)]
    for row in result["conditions"]:
        if "ebsd_file" in row:
            info = row["ebsd_file"]
            shown.append(f"EBSD of {row['preset']} ({row['description']}) from {info['file']}: "
                         f"{info['grains']} grains, count fractions within {info['tolerance_deg']:g}° of "
                         f"the growth direction {info['growth_direction']} (in place of the paper's)")
    for entry in result["grain_size"]["entries"]:
        width = entry["simulated_width_um"]
        low, high = width["ci95"]
        interval = f" [{low:.1f}, {high:.1f}]" if low is not None else ""
        mean = "—" if width["mean"] is None else f"{width['mean']:.1f}{interval} µm"
        shown.append(f"surface grain width, {entry['preset']}: {mean} (observed "
                     f"{entry['observed_um'][0]:g}–{entry['observed_um'][1]:g} µm; domain "
                     f"{entry['domain_width_um']:g} µm wide)")
    if result["grain_size"]["entries"]:
        shown.append("caveats: " + "; ".join(result["grain_size"]["caveats"]))
    return shown


# ---------------------------------------------------------------------------------------------
# Interlayer
# ---------------------------------------------------------------------------------------------

def interlayer(report: Mapping[str, Any]) -> list[Shown]:
    """The candidates with their five criteria and the theory's verdict, the crossing Li
    fractions, and any simulated substrates (:func:`softgrain.physics.interlayer.interlayer_report`)."""
    conditions = report["conditions"]
    chain = {row["substrate"]: row for row in report["texture_chain"]}
    table = Table(title=f"Interlayer candidates (B < {report['threshold_GPa']:g} GPa, amorphous, stable, "
                        f"conductive, lithophilic); theory at {conditions['stack_pressure_MPa']:g} MPa, "
                        f"{conditions['temperature_C']:g} °C")
    headers = {"bulk_modulus": "B<limit", "amorphous": "amorph.", "stable": "stable",
               "conductive": "conduct.", "lithophilic": "lithoph."}
    for column in ("material", "x", "B (GPa)", *(headers[k] for k in CRITERIA), "all five",
                   "Li strain", "theory"):
        table.add_column(column, no_wrap=True)
    for candidate in report["candidates"]:
        row = chain[candidate["name"]]
        table.add_row(candidate["name"], f"{candidate['x_li']:.3g}", f"{candidate['bulk_modulus_GPa']:.1f}",
                      *("yes" if candidate["criteria"][k] else "no" for k in CRITERIA),
                      "PASS" if candidate["passes"] else "", f"{row['strain']:+.4f}",
                      f"({row['theory_favoured']})")
    shown: list[Shown] = [table]
    for family, x in report["modulus_crossing_x"].items():
        text = "never" if x is None else f"x > {x:.2f}"
        shown.append(f"{family}: B < {report['threshold_GPa']:g} GPa for {text}")
    for name, sim in report.get("simulated", {}).items():
        fractions = ", ".join(f"({o}) {100 * s['mean']:.1f} %" for o, s in sim["fraction"].items()
                              if s["mean"] is not None)
        shown.append(f"phase field on {name} (strain {sim['strain']:+.4f}, {sim['members_ok']} seeds): {fractions}")
    return shown


# ---------------------------------------------------------------------------------------------
# Sweeps and the phase map
# ---------------------------------------------------------------------------------------------

def sweep_plan(plan: SweepPlan, store: Path | str) -> str:
    """One line: the tasks of a sweep and where they go."""
    axes = " × ".join(f"{a.name} {len(a.values)}" for a in plan.axes) or "one point"
    return f"{plan.name}: {plan.task_count} tasks ({axes} × {len(plan.seeds)} seed(s)) → {store}"


def sweep_done(report: SweepReport) -> list[str]:
    """What one call of the runner did, and how to retry failed tasks."""
    lines = [f"done in {report.wall_time_s:.1f} s: {report.succeeded} ran, {report.failed} failed, "
             f"{report.skipped} already in the store"]
    if report.failed:
        lines.append("[yellow]note:[/] failed tasks have status 2 and their message in the "
                     "store's 'error' variable; run the same command again to retry them")
    return lines


def phase_map(summary: Mapping[str, Any]) -> list[str]:
    """Tasks, the dominant orientation at every point, and the files of a phase map."""
    report = summary["report"]
    lines = [f"phase map: {report['total']} tasks in {report['wall_time_s']:.1f} s "
             f"({report['succeeded']} ran, {report['failed']} failed, {report['skipped']} from the store)"]
    anisotropies = summary["surface_energy_anisotropy_J_m2"]
    for i, barrier in enumerate(summary["barrier_101_eV"]):
        row = ", ".join(f"A={a:.3f}: {summary['dominant'][i][j] or '—'}" for j, a in enumerate(anisotropies))
        lines.append(f"  E_a(101) = {barrier:.3f} eV → {row}")
    lines.extend(f"  wrote {path}" for path in summary["paths"].values())
    return lines


# ---------------------------------------------------------------------------------------------
# Reproduction
# ---------------------------------------------------------------------------------------------

def reproduction(result: Mapping[str, Any]) -> list[Shown]:
    """The stages and the verdict on every claim of :func:`softgrain.studies.reproduce.reproduce`."""
    stages = Table(title="softgrain reproduce: stages" + (" (QUICK)" if result.get("quick") else ""))
    for column in ("stage", "status", "wall (s)", "CPU (s)"):
        stages.add_column(column, justify="left" if column in ("stage", "status") else "right")
    for name, stage in result["stages"].items():
        status = stage["status"] + (f": {stage['error']}" if stage.get("error") else "")
        stages.add_row(name, status, *("—" if stage[k] is None else f"{stage[k]:.1f}"
                                       for k in ("wall_s", "cpu_s")))
    claims = Table(title="claims")
    for column in ("claim", "verdict"):
        claims.add_column(column)
    styles = {"reproduced": "green", "partly": "yellow", "not reproduced": "red", "not run": "dim"}
    for claim in result["claims"]:
        claims.add_row(claim["claim"], f"[{styles.get(claim['verdict'], '')}]{claim['verdict']}[/]")
    return [stages, claims, *(f"wrote {path}" for path in result["paths"].values())]


# ---------------------------------------------------------------------------------------------
# Benchmark
# ---------------------------------------------------------------------------------------------

BENCH_HEADLINES: Sequence[str] = ("speedup_vs_dense", "reference_run_s", "grain_scaling_750_over_75",
                                  "cell_step_ratio_large", "peak_rss_large_MB")


def bench(result: Mapping[str, Any], keys: Iterable[str] = BENCH_HEADLINES) -> Table:
    """The headline measures of :func:`softgrain.studies.benchmark.run_all` against their targets."""
    table = Table(title="softgrain bench (measured on this machine, one run)")
    for column in ("measure", "value", "target", "verdict"):
        table.add_column(column, justify="right")
    for key in keys:
        value = result.get(key)
        met = target_met(key, value)
        verdict = "not measured" if met is None else ("met" if met else "missed")
        table.add_row(key, "—" if value is None else f"{value:.4g}", str(TARGETS.get(key, "")), verdict)
    return table


def bench_throughput(result: Mapping[str, Any]) -> Table:
    """Runs per second and seconds per paper run of :func:`softgrain.studies.benchmark.run_throughput`."""
    table = Table(title=f"softgrain bench --backend jax ({result.get('device')}, one run; "
                        "see protocol in --json)")
    for column in ("kernel", "batch", "s per run", "runs per s", "2,000-run map (s)"):
        table.add_column(column, justify="right")

    def number(value: Any) -> str:
        return "—" if value is None else f"{value:.4g}"

    for label, part in (("jax float64", result), ("jax float32", result.get("float32") or {})):
        best = part.get("phase_map_projected_from_batch")
        for batch, seconds in (part.get("s_per_run") or {}).items():
            table.add_row(label, batch, number(seconds), number(part["runs_per_s"].get(batch)),
                          number(part.get("phase_map_2000_runs_s")) if batch == best else "")
    for mode, row in (result.get("numba_one_core") or {}).items():
        table.add_row(f"numba 1 core ({mode})", "1", number(row["s_per_run"]),
                      number(row["runs_per_s"]), number(row["phase_map_2000_runs_s"]))
    return table


__all__ = [
    "bench",
    "bench_throughput",
    "ebsd",
    "experiments",
    "count_caption",
    "format_fraction",
    "format_interval",
    "format_p_value",
    "interlayer",
    "markdown_count_table",
    "markdown_table",
    "phase_map",
    "reproduction",
    "run_summary",
    "run_tables",
    "sweep_done",
    "sweep_plan",
    "theory",
]
