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

from softgrain.analysis import ensemble_statistics, mean_confidence_interval
from softgrain.config import SimulationConfig, load_config
from softgrain.ebsd import (DEFAULT_MIN_GRAIN_SIZE_PX, DEFAULT_MISORIENTATION_THRESHOLD_DEG,
                            DEFAULT_TOLERANCE_DEG, analyse_ebsd)
from softgrain.errors import ParameterError, UserInputError
from softgrain.materials.metals import ORIENTATIONS
from softgrain.materials.observations import load_experiments, load_grain_sizes
from softgrain.output.results import TASK_FAILED, TASK_OK
from softgrain.physics.theory import rank_orientations
from softgrain.setup import material_inputs
from softgrain.studies.runner import dask_client, run_ensemble

LIQUID_PRESET = "li-liquid"
"""Preset whose surface grain width is compared with the liquid-cell observation."""


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


def summarise_ensemble(ds: Any, name: str = "ensemble") -> dict[str, Any]:
    """Mean ± 95 % CI of an ensemble result (:func:`softgrain.studies.runner.run_ensemble` or its store).

    Only members with status ok enter, so a partly finished store can be summarised too.

    Returns
    -------
    dict
        ``fraction`` (area fraction of the deposit) and ``surface_fraction`` (top row):
        ``{orientation: {"mean", "ci95": [lo, hi], "n"}}``; ``surface_grain_width_um`` and
        ``surface_grain_count``: ``{"mean", "ci95"}``; ``members_ok`` and ``members_failed``.
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
    return result


def simulate_ensemble(config: SimulationConfig, seeds: int, *, workers: int | None = None,
                      client: Any = None, progress: bool = False,
                      store: str | Path | None = None) -> dict[str, Any]:
    """Phase-field texture of ``config`` over ``seeds`` nucleation seeds (mean ± 95 % CI).

    Runs :func:`softgrain.studies.runner.run_ensemble` (Dask; ``client`` reuses an existing one;
    with ``store`` the members are also written to a resumable Zarr store) and summarises it with
    :func:`summarise_ensemble`.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ParameterError("seeds", f"must be a positive integer, got {seeds!r}")
    ds = run_ensemble(config, seeds, workers=workers, client=client, progress=progress, store=store)
    return summarise_ensemble(ds, config.name)


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
                        ebsd_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
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

    Returns
    -------
    dict
        ``conditions``: one entry per experiment with ``preset``, ``description``,
        ``temperature_C``, ``strain``, ``conditions``, ``theory_favoured``, ``theory``,
        ``simulated`` (``{orientation: {"mean", "ci95"}}`` or ``None`` without seeds),
        ``simulated_surface``, ``simulated_favoured``, ``experiment`` (null where not measured),
        ``experiment_favoured``, ``source`` (and, for a condition measured from a file,
        ``experiment`` with "other" and ``ebsd_file``: the file's analysis); ``grain_size``:
        simulated surface widths against the observations, with ``caveats``; ``seeds``.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 0:
        raise ParameterError("seeds", f"must be a non-negative integer, got {seeds!r}")
    measured = measured_from_files(ebsd_files or {}, **dict(ebsd_options or {}))
    experiments = load_experiments()
    configs = {e.preset: load_config(e.preset, overrides) for e in experiments}
    if include_liquid and seeds:
        configs[LIQUID_PRESET] = load_config(LIQUID_PRESET, overrides)
    simulated: dict[str, dict[str, Any]] = {}
    if seeds:
        # One Dask cluster for all ensembles: starting worker processes costs seconds each time.
        with dask_client(scheduler, workers) as client:
            for preset, config in configs.items():
                store = None if store_dir is None else Path(store_dir) / f"{preset}.zarr"
                simulated[preset] = simulate_ensemble(config, seeds, client=client, progress=progress,
                                                      store=store)

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
        })
        if from_file is not None:
            rows[-1]["ebsd_file"] = dict(from_file["report"])

    grain_size: dict[str, Any] = {"caveats": list(GRAIN_SIZE_CAVEATS), "entries": []}
    for preset, sim in simulated.items():
        kind = "liquid" if preset == LIQUID_PRESET else "solid"
        grain_size["entries"].append(_grain_size_entry(kind, preset, sim, configs[preset]))
    return {"seeds": seeds, "overrides": dict(overrides or {}), "conditions": rows,
            "grain_size": grain_size}


__all__ = [
    "GRAIN_SIZE_CAVEATS",
    "compare_experiments",
    "simulate_ensemble",
    "summarise_ensemble",
    "comparison",
    "measured_from_files",
    "theory_verdict",
]
