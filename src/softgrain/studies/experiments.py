"""The paper's EBSD experiments and their comparison with theory and phase-field ensembles.

Three conditions were measured (paper Fig. 3C–F, Fig. 5D; data in ``data/experiments.toml``,
read by :mod:`softgrain.materials.observations`): Li on bare Cu at 25 °C and at 80 °C, and Li on
an amorphous Li0.7Si0.3 seed layer at 25 °C, all at 5 MPa stack pressure. Each maps onto a preset
(``li-solid``, ``li-solid-80c``, ``li-solid-lixsi``) whose lattice strain follows from the same
conditions (:mod:`softgrain.physics.conditions`). For each, this module gives

* the thermodynamic theory's favoured orientation
  (:func:`softgrain.physics.theory.rank_orientations` at the preset's temperature and strain,
  Fig. 3A parameters);
* the phase-field texture as mean ± 95 % confidence interval over nucleation seeds
  (:func:`softgrain.studies.runner.run_ensemble`, :func:`softgrain.analysis.ensemble_statistics`);
* the measured fractions — the paper's percentages, or the count fractions of a user's own EBSD
  map of that condition (``ebsd_files``: .ang/.ctf/.h5, classified by
  :func:`softgrain.ebsd.analyse_ebsd` exactly as simulated grains are, "other" included);
* EBSD-grade grain statistics (:func:`count_statistics`, :func:`ebsd_count_comparison`): the
  EBSD fractions are grain counts over cross-sections of a 10–20 µm deposit (12/4/3 of 21 grains
  at 25 °C, 19/6 of 39 at 80 °C — softgrain's inference from the printed percentages, labelled
  INFERRED in ``data/experiments.toml``), so beside the area fractions the simulated
  grain-count fraction of the grains in the bottom ``count_window_um`` of the deposit is
  reported, with Wilson 95 % intervals for simulation and EBSD and an exact agreement p-value;

plus the width of the grains surviving at the top surface against the observed 30–50 µm
(solid) and 5–10 µm (liquid) grains. That comparison is qualitative only: the 2-D domain is
100 µm wide, which caps the width, the model's time and length scales are not calibrated, and
the pressure-driven in-plane coalescence the paper invokes for the large solid-cell grains is not
part of the model (paper, 'Pressure effects').
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from softgrain.analysis import (count_agreement_p_value, ensemble_statistics, grain_orientations,
                                mean_confidence_interval, wilson_interval, window_grain_counts)
from softgrain.config import SimulationConfig, load_config
from softgrain.ebsd import (DEFAULT_MIN_GRAIN_SIZE_PX, DEFAULT_MISORIENTATION_THRESHOLD_DEG,
                            DEFAULT_TOLERANCE_DEG, analyse_ebsd)
from softgrain.errors import ParameterError, UserInputError
from softgrain.materials.metals import ORIENTATIONS
from softgrain.materials.observations import ExperimentalCondition, load_experiments, load_grain_sizes
from softgrain.output.results import TASK_FAILED, TASK_OK, grid_step
from softgrain.physics.theory import rank_orientations
from softgrain.setup import material_inputs
from softgrain.studies.runner import dask_client, local_workers, run_ensemble

LIQUID_PRESET = "li-liquid"
"""Preset whose surface grain width is compared with the liquid-cell observation."""

COUNT_WINDOW_UM = 20.0
"""Default height (µm above the substrate) of the window whose grains are counted: the EBSD
cross-sections span a 10–20 µm deposit (2 mAh/cm² of Li is ≈ 10 µm dense; paper, Experimental
Procedures and Fig. 3C–F). The upper end is the default; ``count_window_um`` changes it."""

MIN_GRAIN_CELLS = 4
"""Default smallest grain counted, in cells inside the window (1 µm² on the paper's 0.5 µm grid):
leaves out grain tails and nuclei reduced to a few cells, as an EBSD scan leaves out grains of a
few pixels."""

COUNT_METHODS = {
    "simulated_count_fraction": (
        "pooled over seeds: the grains of each orientation in the window, summed over all "
        "successful seeds, divided by all grains counted; 95 % Wilson score interval of that "
        "proportion (scipy.stats.binomtest(...).proportion_ci(method='wilson')). It treats the "
        "pooled grains as independent; grains of one seed share its history, so where seeds "
        "differ more than binomial sampling allows, simulated_count_fraction_seed_mean (mean of "
        "the per-seed fractions, Student-t 95 % interval over seeds) is the honest spread"),
    "ebsd_count_fraction": (
        "k/n of the inferred EBSD counts, n = all grains classified (including those near none of "
        "the three orientations, as in the printed percentages); 95 % Wilson score interval"),
    "agreement_p_value": (
        "Fisher–Freeman–Halton exact test (2 × k table: pooled simulated counts vs EBSD counts, "
        "over the orientations the EBSD reports; exact enumeration with "
        "scipy.stats.multivariate_hypergeom, = scipy.stats.fisher_exact for 2 × 2). Chosen "
        "because the EBSD sample is small (expected counts below 5 in most cells make the "
        "chi-square approximation unreliable) and the simulated counts are a finite sample too, "
        "with zero cells (e.g. no (111) grain) that a goodness-of-fit test against the simulated "
        "proportions cannot handle. Small p: the EBSD counts are unlikely if simulation and "
        "experiment share one distribution. Null where the EBSD gives no count. The pooled "
        "simulated grains are treated as independent (see above), which makes p somewhat too "
        "small when seeds differ a lot"),
}
"""How each EBSD-grade statistic is computed (copied into the comparison's output)."""


def theory_verdict(config: SimulationConfig) -> dict[str, Any]:
    """The thermodynamic theory's ranking at the configuration's metal, temperature and strain.

    Uses :func:`softgrain.physics.theory.rank_orientations` with the Fig. 3A parameters of the
    metal's data (film thickness h = grain size L = 10 µm) at the configuration's strain (from
    ``[conditions]`` or ``material.strain``, :func:`softgrain.setup.material_inputs`).
    Surface-energy overrides of the configuration are not seen by the theory (it reads the
    metal's data at that strain).

    Returns
    -------
    dict
        ``favoured`` orientation, ``strain``, ``temperature_C`` and ``delta_u_J_m3``: U(o) − U(001)
        per orientation.
    """
    strain = material_inputs(config).strain
    ranking = rank_orientations(config.material.metal, config.run.temperature_C, strain)
    return {
        "favoured": ranking[0].orientation,
        "strain": strain,
        "temperature_C": config.run.temperature_C,
        "delta_u_J_m3": {r.orientation: r.delta_u_J_m3 for r in ranking},
    }


def _summary(values: Any) -> dict[str, Any]:
    mean, low, high = mean_confidence_interval(np.asarray(values, dtype=float))
    return {"mean": _finite(mean), "ci95": [_finite(low), _finite(high)]}


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def summarise_ensemble(ds: Any, name: str = "ensemble", *, count_window_um: float = COUNT_WINDOW_UM,
                       min_grain_cells: int = MIN_GRAIN_CELLS) -> dict[str, Any]:
    """Mean ± 95 % CI of an ensemble result (:func:`softgrain.studies.runner.run_ensemble` or its store).

    Only members with status ok enter, so a partly finished store can be summarised too. With the
    final grain maps (``keep_maps``) the grains in the bottom ``count_window_um`` are counted too
    (:func:`count_statistics`).

    Returns
    -------
    dict
        ``fraction`` (area fraction of the deposit) and ``surface_fraction`` (top row):
        ``{orientation: {"mean", "ci95": [lo, hi], "n"}}``; ``surface_grain_width_um`` and
        ``surface_grain_count``: ``{"mean", "ci95"}``; ``members_ok`` and ``members_failed``;
        ``grain_counts``: :func:`count_statistics` (None without grain maps).
        Intervals are ``None`` (JSON null) with fewer than two successful members.
    """
    status = ds["status"].values
    ok = status == TASK_OK
    if not ok.any():
        first_error = next((str(e) for e in ds["error"].values if str(e)), "no member finished")
        raise UserInputError(f"no successful member in the {name} ensemble: {first_error}")
    result: dict[str, Any] = {}
    for variable in ("fraction", "surface_fraction"):
        stats = ensemble_statistics(ds, variable)
        result[variable] = {o: {"mean": _finite(s["mean"]), "ci95": [_finite(v) for v in s["ci95"]],
                                "n": s["n"]} for o, s in stats.items()}
    result["surface_grain_width_um"] = _summary(ds["surface_grain_width_um"].values[ok])
    result["surface_grain_count"] = _summary(ds["surface_grain_count"].values[ok])
    result["members_ok"] = int(ok.sum())
    result["members_failed"] = int((status == TASK_FAILED).sum())
    result["grain_counts"] = count_statistics(ds, count_window_um, min_grain_cells)
    return result


def _check_count_options(count_window_um: float, min_grain_cells: int) -> None:
    if not (isinstance(count_window_um, (int, float)) and not isinstance(count_window_um, bool)
            and math.isfinite(count_window_um) and count_window_um > 0):
        raise ParameterError("count_window_um", f"must be a positive number of µm, got {count_window_um!r}")
    if isinstance(min_grain_cells, bool) or not isinstance(min_grain_cells, int) or min_grain_cells < 1:
        raise ParameterError("min_grain_cells", f"must be a positive integer, got {min_grain_cells!r}")


def _interval(mean: float | None, low: float | None, high: float | None) -> dict[str, float | None]:
    return {"mean": mean, "ci_low": low, "ci_high": high}


def count_statistics(ds: Any, count_window_um: float = COUNT_WINDOW_UM,
                     min_grain_cells: int = MIN_GRAIN_CELLS) -> dict[str, Any] | None:
    """Grain counts per orientation in the bottom of the deposit, over the members of an ensemble.

    Needs the final grain and orientation maps (an ensemble run with ``keep_maps``); returns None
    for a result without ``final_grain`` (e.g. a store made without maps or before grain maps
    were stored).

    Parameters
    ----------
    ds : xarray.Dataset
        A seed ensemble (:func:`softgrain.studies.runner.run_ensemble`) with ``final_grain`` and
        ``final_orientation``.
    count_window_um : float
        Height of the window above the substrate, µm (clipped to the domain).
    min_grain_cells : int
        Smallest grain counted, in cells inside the window
        (:func:`softgrain.analysis.window_grain_counts`).

    Returns
    -------
    dict
        ``window_um`` (asked), ``window_rows`` and ``window_height_um`` (used), ``min_grain_cells``,
        ``counts_per_seed`` ({seed: {orientation: k}}), ``pooled_counts`` ({orientation: k}),
        ``grains_per_seed`` ({"mean", "ci95"}), ``pooled`` ({orientation: {"mean", "ci_low",
        "ci_high"}}: pooled fraction, Wilson 95 %) and ``seed_mean`` (same keys: mean of the
        per-seed fractions, Student-t 95 %); the methods are :data:`COUNT_METHODS`.
    """
    _check_count_options(count_window_um, min_grain_cells)
    if "final_grain" not in ds or "final_orientation" not in ds:
        return None
    spacing = grid_step(ds["y"].values)
    ny = ds.sizes["y"]
    rows = min(ny, max(1, int(round(count_window_um / spacing))))
    ok = ds["status"].values == TASK_OK
    seeds = ds["seed"].values[ok]
    grain_maps = ds["final_grain"].values[ok]
    orientation_maps = ds["final_orientation"].values[ok]
    counts = np.array([window_grain_counts(g, grain_orientations(g, o), rows, min_grain_cells)
                       for g, o in zip(grain_maps, orientation_maps)], dtype=np.int64
                      ).reshape(-1, len(ORIENTATIONS))
    pooled = counts.sum(axis=0)
    total = int(pooled.sum())
    per_seed_total = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_seed_fraction = counts / per_seed_total[:, None]
    pooled_stats, seed_stats = {}, {}
    for k, orientation in enumerate(ORIENTATIONS):
        ci = wilson_interval(int(pooled[k]), total)
        pooled_stats[orientation] = (_interval(None, None, None) if ci is None
                                     else _interval(pooled[k] / total, *ci))
        mean, low, high = mean_confidence_interval(per_seed_fraction[:, k])
        seed_stats[orientation] = _interval(_finite(mean), _finite(low), _finite(high))
    return {
        "window_um": float(count_window_um),
        "window_rows": rows,
        "window_height_um": rows * spacing,
        "min_grain_cells": min_grain_cells,
        "counts_per_seed": {int(seed): {o: int(c[k]) for k, o in enumerate(ORIENTATIONS)}
                            for seed, c in zip(seeds, counts)},
        "pooled_counts": {o: int(pooled[k]) for k, o in enumerate(ORIENTATIONS)},
        "grains_per_seed": _summary(per_seed_total),
        "pooled": pooled_stats,
        "seed_mean": seed_stats,
    }


def ebsd_count_comparison(experiment: ExperimentalCondition,
                          counts: Mapping[str, Any] | None) -> dict[str, Any]:
    """The EBSD counts of one condition, their Wilson intervals, and the agreement p-value.

    Parameters
    ----------
    experiment : ExperimentalCondition
        The measured condition (its ``count`` is empty where no count can be inferred).
    counts : dict or None
        :func:`count_statistics` of the simulated ensemble (None: no simulation).

    Returns
    -------
    dict
        The JSON contract of a condition: ``simulated_count_fraction`` ({orientation: {"mean",
        "ci_low", "ci_high"}}, pooled, Wilson; None without a simulation), ``ebsd_count``
        ({orientation: int or None}), ``agreement_p_value`` (float or None); and
        ``simulated_count_fraction_seed_mean``, ``simulated_grain_counts``, ``ebsd_count_total``,
        ``ebsd_count_fraction`` ({orientation: {"mean", "ci_low", "ci_high"} or None}),
        ``ebsd_count_label``, ``ebsd_count_source``, ``agreement_orientations`` (the
        orientations tested), ``count_window_um``, ``count_window_height_um``,
        ``min_grain_cells``.
    """
    ebsd = {o: experiment.count.get(o) for o in ORIENTATIONS}
    total = experiment.count_total
    ebsd_fraction: dict[str, Any] = {}
    for orientation, k in ebsd.items():
        ci = None if k is None or total is None else wilson_interval(k, total)
        ebsd_fraction[orientation] = None if ci is None else _interval(k / total, *ci)
    tested = [o for o in ORIENTATIONS if ebsd[o] is not None]
    p_value = None
    if counts is not None and tested:
        p_value = count_agreement_p_value([counts["pooled_counts"][o] for o in tested],
                                          [ebsd[o] for o in tested])
    return {
        "simulated_count_fraction": None if counts is None else counts["pooled"],
        "simulated_count_fraction_seed_mean": None if counts is None else counts["seed_mean"],
        "simulated_grain_counts": None if counts is None else counts["pooled_counts"],
        "count_window_um": None if counts is None else counts["window_um"],
        "count_window_height_um": None if counts is None else counts["window_height_um"],
        "min_grain_cells": None if counts is None else counts["min_grain_cells"],
        "ebsd_count": ebsd,
        "ebsd_count_total": total,
        "ebsd_count_fraction": ebsd_fraction,
        "ebsd_count_label": experiment.count_label or None,
        "ebsd_count_source": experiment.count_source or None,
        "agreement_orientations": tested,
        "agreement_p_value": p_value,
    }


def simulate_ensemble(config: SimulationConfig, seeds: int, *, workers: int | None = None,
                      client: Any = None, progress: bool = False,
                      store: str | Path | None = None, keep_maps: bool = False,
                      count_window_um: float = COUNT_WINDOW_UM,
                      min_grain_cells: int = MIN_GRAIN_CELLS) -> dict[str, Any]:
    """Phase-field texture of ``config`` over ``seeds`` nucleation seeds (mean ± 95 % CI).

    Runs :func:`softgrain.studies.runner.run_ensemble` (Dask; ``client`` reuses an existing one;
    with ``store`` the members are also written to a resumable Zarr store) and summarises it with
    :func:`summarise_ensemble`. ``keep_maps`` keeps the final maps, which the grain counts
    (``count_window_um``, ``min_grain_cells``; :func:`count_statistics`) need.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ParameterError("seeds", f"must be a positive integer, got {seeds!r}")
    _check_count_options(count_window_um, min_grain_cells)
    ds = run_ensemble(config, seeds, workers=workers, client=client, progress=progress, store=store,
                      keep_maps=keep_maps)
    return summarise_ensemble(ds, config.name, count_window_um=count_window_um,
                              min_grain_cells=min_grain_cells)


def _grain_size_entry(kind: str, preset: str, simulated: Mapping[str, Any],
                      config: SimulationConfig) -> dict[str, Any]:
    observed = load_grain_sizes()[kind]
    domain_um = config.grid.nx * config.grid.spacing_um
    width = simulated["surface_grain_width_um"]
    return {
        "preset": preset,
        "observed_um": [observed.min_um, observed.max_um],
        "observed_source": observed.source,
        "simulated_width_um": width,
        "surface_grain_count": simulated["surface_grain_count"],
        "domain_width_um": domain_um,
        "within_observed": (None if width["mean"] is None
                            else observed.min_um <= width["mean"] <= observed.max_um),
    }


GRAIN_SIZE_CAVEATS = (
    "2-D cross-section: the surface width is the mean length of grain segments along the top "
    "fully deposited row, not a 3-D grain diameter",
    "the domain is only nx·Δx wide (100 µm for the paper's grid), which caps the width; a single "
    "surviving grain spans the whole domain",
    "the model's time and length scales are not calibrated (L_q, κ_q are normalised, the front "
    "speed is chosen to cross the domain in 400 s)",
    "the pressure-driven in-plane coalescence that the paper invokes for the larger solid-cell "
    "grains is not part of the model (paper, 'Pressure effects')",
)


def measured_from_files(ebsd_files: Mapping[str, str | Path], *, growth_direction: str = "z",
                        tolerance_deg: float = DEFAULT_TOLERANCE_DEG,
                        threshold_deg: float = DEFAULT_MISORIENTATION_THRESHOLD_DEG,
                        min_size_px: int = DEFAULT_MIN_GRAIN_SIZE_PX) -> dict[str, dict[str, Any]]:
    """Measured fractions of the conditions from EBSD files, in place of the paper's percentages.

    Parameters
    ----------
    ebsd_files : mapping
        Condition (the preset that models it: ``li-solid``, ``li-solid-80c``, ``li-solid-lixsi``)
        → .ang / .ctf / orix .h5 file of that condition.
    growth_direction, tolerance_deg, threshold_deg, min_size_px :
        As :func:`softgrain.ebsd.analyse_ebsd`.

    Returns
    -------
    dict
        Condition → ``fraction`` (count fractions of "001", "101", "111", "other"), ``report``
        (:meth:`softgrain.ebsd.EBSDAnalysis.to_dict`).

    Raises
    ------
    ParameterError
        For a condition that is not one of the experiments (``ebsd_files``).
    softgrain.ebsd.EBSDFileError
        For a file that cannot be read or analysed.
    """
    known = [e.preset for e in load_experiments()]
    out = {}
    for condition, path in ebsd_files.items():
        if condition not in known:
            raise ParameterError("ebsd_files", f"{condition}={path}: no such condition; conditions: "
                                 f"{', '.join(known)}")
        result = analyse_ebsd(path, growth_direction=growth_direction, tolerance_deg=tolerance_deg,
                              threshold_deg=threshold_deg, min_size_px=min_size_px).to_dict()
        out[condition] = {"fraction": dict(result["count_fraction"]), "report": result}
    return out


def compare_experiments(seeds: int = 8, *, workers: int | None = None, scheduler: str | None = None,
                        overrides: Mapping[str, Any] | None = None, progress: bool = False,
                        include_liquid: bool = True, store_dir: str | Path | None = None,
                        ebsd_files: Mapping[str, str | Path] | None = None,
                        ebsd_options: Mapping[str, Any] | None = None,
                        count_window_um: float = COUNT_WINDOW_UM,
                        min_grain_cells: int = MIN_GRAIN_CELLS,
                        backend: str | None = None, batch: int | None = None) -> dict[str, Any]:
    """Simulated and theoretical texture of each EBSD condition against the measurement.

    Parameters
    ----------
    seeds : int
        Nucleation seeds per condition (0: theory only, no phase-field runs).
    workers, scheduler :
        Dask local worker processes, or the address of a running scheduler
        (:func:`softgrain.studies.runner.dask_client`).
    overrides : mapping, optional
        Dotted configuration changes applied to every preset (e.g. a smaller grid).
    progress : bool
        Show progress bars.
    include_liquid : bool
        Also simulate ``li-liquid`` for the grain-size comparison with liquid cells.
    store_dir : path, optional
        Keep each preset's ensemble in ``store_dir/<preset>.zarr`` (resumable: running the same
        comparison again skips the finished members).
    ebsd_files : mapping, optional
        Condition → EBSD file whose count fractions replace the paper's percentages
        (:func:`measured_from_files`); read before any simulation runs.
    ebsd_options : mapping, optional
        ``growth_direction``, ``tolerance_deg``, ``threshold_deg``, ``min_size_px`` for the files.
    count_window_um : float
        Height of the window (µm above the substrate) whose grains are counted
        (:func:`count_statistics`; default :data:`COUNT_WINDOW_UM`).
    min_grain_cells : int
        Smallest grain counted, in cells inside the window (default :data:`MIN_GRAIN_CELLS`).
    backend, batch : optional
        ``numerics.backend`` ("numba" or "jax") and ``numerics.batch`` of every preset.

    Returns
    -------
    dict
        ``conditions``: one entry per experiment with ``preset``, ``description``,
        ``temperature_C``, ``strain``, ``conditions``, ``theory_favoured``, ``theory``,
        ``simulated`` (``{orientation: {"mean", "ci95"}}`` or ``None`` without seeds),
        ``simulated_surface``, ``simulated_favoured``, ``experiment`` (null where not measured),
        ``experiment_favoured``, ``source`` (and, for a condition measured from a file,
        ``experiment`` with "other" and ``ebsd_file``: the file's analysis), the EBSD-grade
        grain statistics of :func:`ebsd_count_comparison` (``simulated_count_fraction``,
        ``ebsd_count``, ``agreement_p_value`` …); ``count_methods``: :data:`COUNT_METHODS`; ``grain_size``:
        simulated surface widths against the observations, with ``caveats``; ``seeds``.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 0:
        raise ParameterError("seeds", f"must be a non-negative integer, got {seeds!r}")
    _check_count_options(count_window_um, min_grain_cells)
    measured = measured_from_files(ebsd_files or {}, **dict(ebsd_options or {}))
    experiments = load_experiments()
    numerics = {f"numerics.{k}": v for k, v in (("backend", backend), ("batch", batch))
                if v is not None}
    overrides = {**(overrides or {}), **numerics}
    configs = {e.preset: load_config(e.preset, overrides) for e in experiments}
    if include_liquid and seeds:
        configs[LIQUID_PRESET] = load_config(LIQUID_PRESET, overrides)
    simulated: dict[str, dict[str, Any]] = {}
    if seeds:
        workers = local_workers(next(iter(configs.values())).numerics.backend, workers, scheduler)
        # One Dask cluster for all ensembles: starting worker processes costs seconds each time.
        with dask_client(scheduler, workers) as client:
            for preset, config in configs.items():
                store = None if store_dir is None else Path(store_dir) / f"{preset}.zarr"
                simulated[preset] = simulate_ensemble(
                    config, seeds, client=client, progress=progress, store=store, keep_maps=True,
                    count_window_um=count_window_um, min_grain_cells=min_grain_cells)

    return comparison(configs, simulated, seeds, overrides, measured)


def comparison(configs: Mapping[str, SimulationConfig], simulated: Mapping[str, Mapping[str, Any]],
               seeds: int, overrides: Mapping[str, Any] | None = None,
               measured_files: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Assemble the comparison of :func:`compare_experiments` from configurations and ensembles.

    Parameters
    ----------
    configs : mapping
        Preset → configuration, for every experiment's preset (and optionally ``li-liquid``).
    simulated : mapping
        Preset → :func:`summarise_ensemble` result; presets without one get ``simulated: None``.
    seeds : int
        Seeds requested per ensemble (recorded in the output).
    overrides : mapping, optional
        The configuration changes used (recorded in the output).
    measured_files : mapping, optional
        Condition → :func:`measured_from_files` entry replacing the paper's percentages.
    """
    experiments = load_experiments()
    measured_files = measured_files or {}
    rows = []
    for experiment in experiments:
        config = configs[experiment.preset]
        verdict = theory_verdict(config)
        sim = simulated.get(experiment.preset)
        from_file = measured_files.get(experiment.preset)
        measured = dict(experiment.fraction) if from_file is None else dict(from_file["fraction"])
        known = {o: measured[o] for o in ORIENTATIONS if measured.get(o) is not None}
        rows.append({
            "preset": experiment.preset,
            "description": experiment.description,
            "temperature_C": config.run.temperature_C,
            "strain": verdict["strain"],
            "conditions": (config.conditions.model_dump(mode="json") if config.conditions is not None
                           else {"stack_pressure_MPa": experiment.stack_pressure_MPa,
                                 "substrate": experiment.substrate}),
            "theory_favoured": verdict["favoured"],
            "theory": verdict,
            "simulated": None if sim is None else {o: {"mean": s["mean"], "ci95": s["ci95"]}
                                                   for o, s in sim["fraction"].items()},
            "simulated_surface": None if sim is None else {
                o: {"mean": s["mean"], "ci95": s["ci95"]} for o, s in sim["surface_fraction"].items()},
            "simulated_favoured": None if sim is None else max(
                ORIENTATIONS, key=lambda o: sim["fraction"][o]["mean"] if sim["fraction"][o]["mean"] is not None else -1),
            "members_ok": None if sim is None else sim["members_ok"],
            "experiment": measured,
            "experiment_favoured": max(known, key=known.get) if len(known) > 1 else None,
            "source": experiment.source if from_file is None else from_file["report"]["file"],
            **ebsd_count_comparison(experiment, None if sim is None else sim.get("grain_counts")),
        })
        if from_file is not None:
            rows[-1]["ebsd_file"] = dict(from_file["report"])

    grain_size: dict[str, Any] = {"caveats": list(GRAIN_SIZE_CAVEATS), "entries": []}
    for preset, sim in simulated.items():
        kind = "liquid" if preset == LIQUID_PRESET else "solid"
        grain_size["entries"].append(_grain_size_entry(kind, preset, sim, configs[preset]))
    return {"seeds": seeds, "overrides": dict(overrides or {}), "conditions": rows,
            "count_methods": dict(COUNT_METHODS), "grain_size": grain_size}


__all__ = [
    "COUNT_METHODS",
    "COUNT_WINDOW_UM",
    "GRAIN_SIZE_CAVEATS",
    "MIN_GRAIN_CELLS",
    "compare_experiments",
    "count_statistics",
    "ebsd_count_comparison",
    "simulate_ensemble",
    "summarise_ensemble",
    "comparison",
    "measured_from_files",
    "theory_verdict",
]
