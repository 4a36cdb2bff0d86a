"""The paper's EBSD experiments and their comparison with theory and phase-field ensembles.

Three conditions were measured (paper Fig. 3C–F, Fig. 5D; data in ``data/experiments.toml``):
Li on bare Cu at 25 °C and at 80 °C, and Li on an amorphous Li0.7Si0.3 seed layer at 25 °C, all
at 5 MPa stack pressure. Each maps onto a preset (``li-solid``, ``li-solid-80c``,
``li-solid-lixsi``) whose lattice strain follows from the same conditions
(:mod:`softgrain.conditions`). For each, this module gives

* the thermodynamic theory's favoured orientation (:func:`softgrain.theory.rank_orientations`
  at the preset's temperature and strain, Fig. 3A parameters);
* the phase-field texture as mean ± 95 % confidence interval over nucleation seeds
  (:func:`softgrain.sweep.run_ensemble`, :func:`softgrain.sweep.ensemble_statistics`);
* the measured fractions;

plus the width of the grains surviving at the top surface against the observed 30–50 µm
(solid) and 5–10 µm (liquid) grains. That comparison is qualitative only: the 2-D domain is
100 µm wide, which caps the width, the model's time and length scales are not calibrated, and
the pressure-driven in-plane coalescence the paper invokes for the large solid-cell grains is not
part of the model (paper, 'Pressure effects').
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from softgrain.analysis import mean_confidence_interval
from softgrain.config import SimulationConfig, load_config
from softgrain.errors import UserInputError
from softgrain.materials.metals import ORIENTATIONS
from softgrain.materials.records import LABELS, MaterialDataError

LIQUID_PRESET = "li-liquid"
"""Preset whose surface grain width is compared with the liquid-cell observation."""


@dataclass(frozen=True)
class ExperimentalCondition:
    """One EBSD measurement of the paper and the preset that models it.

    Attributes
    ----------
    preset : str
        Preset with the same metal, temperature and conditions.
    description : str
    temperature_C, stack_pressure_MPa : float
    substrate : str
    fraction : dict
        Orientation → measured fraction (0–1), ``None`` where the paper gives no number.
    label, source : str
    """

    preset: str
    description: str
    temperature_C: float
    stack_pressure_MPa: float
    substrate: str
    fraction: Mapping[str, float | None]
    label: str
    source: str


@dataclass(frozen=True)
class GrainSizeObservation:
    """Observed range of Li grain diameters (µm) in one kind of cell."""

    min_um: float
    max_um: float
    stack_pressure_MPa: float
    label: str
    source: str


def _path() -> Path:
    return Path(str(resources.files("softgrain") / "data" / "experiments.toml"))


def _fail(where: str, message: str) -> MaterialDataError:
    return MaterialDataError(f"{_path()}: {where}: {message}")


def _number(entry: Mapping[str, Any], key: str, where: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(f"{where}.{key}", f"expected a number, got {value!r}")
    return float(value)


def _provenance(entry: Mapping[str, Any], where: str) -> tuple[str, str]:
    label, source = entry.get("label"), entry.get("source")
    if label not in LABELS:
        raise _fail(f"{where}.label", f"must be one of {sorted(LABELS)}, got {label!r}")
    if not isinstance(source, str) or not source.strip():
        raise _fail(f"{where}.source", "every number needs a source")
    return label, source


@lru_cache(maxsize=None)
def _document() -> dict[str, Any]:
    try:
        return tomllib.loads(_path().read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MaterialDataError(f"{_path()}: malformed TOML: {exc}") from None


@lru_cache(maxsize=None)
def load_experiments() -> tuple[ExperimentalCondition, ...]:
    """The paper's EBSD conditions from ``data/experiments.toml``, validated."""
    entries = _document().get("condition")
    if not isinstance(entries, list) or not entries:
        raise _fail("condition", "expected [[condition]] tables")
    out = []
    for i, entry in enumerate(entries):
        where = f"condition[{i}]"
        label, source = _provenance(entry, where)
        raw = entry.get("fraction")
        if not isinstance(raw, Mapping) or not raw:
            raise _fail(f"{where}.fraction", "expected a table orientation = fraction")
        unknown = set(raw) - set(ORIENTATIONS)
        if unknown:
            raise _fail(f"{where}.fraction", f"unknown orientation(s) {sorted(unknown)}")
        fraction: dict[str, float | None] = {}
        for orientation in ORIENTATIONS:
            if orientation in raw:
                value = _number(raw, orientation, f"{where}.fraction")
                if not 0 <= value <= 1:
                    raise _fail(f"{where}.fraction.{orientation}", f"must be a fraction in [0, 1], got {value}")
                fraction[orientation] = value
            else:
                fraction[orientation] = None
        if sum(v for v in fraction.values() if v is not None) > 1 + 1e-9:
            raise _fail(f"{where}.fraction", "fractions add up to more than 1")
        for key in ("preset", "description", "substrate"):
            if not isinstance(entry.get(key), str):
                raise _fail(f"{where}.{key}", "missing text field")
        out.append(ExperimentalCondition(
            preset=entry["preset"], description=entry["description"],
            temperature_C=_number(entry, "temperature_C", where),
            stack_pressure_MPa=_number(entry, "stack_pressure_MPa", where),
            substrate=entry["substrate"], fraction=fraction, label=label, source=source))
    return tuple(out)


@lru_cache(maxsize=None)
def load_grain_sizes() -> dict[str, GrainSizeObservation]:
    """Observed grain sizes: ``{"solid": …, "liquid": …}``."""
    table = _document().get("grain_size")
    if not isinstance(table, Mapping):
        raise _fail("grain_size", "missing table")
    out = {}
    for kind in ("solid", "liquid"):
        entry = table.get(kind)
        where = f"grain_size.{kind}"
        if not isinstance(entry, Mapping):
            raise _fail(where, "missing table")
        label, source = _provenance(entry, where)
        low, high = _number(entry, "min_um", where), _number(entry, "max_um", where)
        if not 0 < low <= high:
            raise _fail(where, f"need 0 < min_um ≤ max_um, got {low}, {high}")
        out[kind] = GrainSizeObservation(low, high, _number(entry, "stack_pressure_MPa", where),
                                         label, source)
    return out


def theory_verdict(config: SimulationConfig) -> dict[str, Any]:
    """The thermodynamic theory's ranking at the configuration's metal, temperature and strain.

    Uses :func:`softgrain.theory.rank_orientations` with the Fig. 3A parameters of the metal's
    data (film thickness h = grain size L = 10 µm). Surface-energy overrides of the
    configuration are not seen by the theory (it reads the metal's data at ``material.strain``).

    Returns
    -------
    dict
        ``favoured`` orientation, ``strain``, ``temperature_C`` and ``delta_u_J_m3``: U(o) − U(001)
        per orientation.
    """
    from softgrain.physics.theory import rank_orientations

    ranking = rank_orientations(config.material.metal, config.run.temperature_C, config.material.strain)
    return {
        "favoured": ranking[0].orientation,
        "strain": config.material.strain,
        "temperature_C": config.run.temperature_C,
        "delta_u_J_m3": {r.orientation: r.delta_u_J_m3 for r in ranking},
    }


def _summary(values: Any) -> dict[str, Any]:
    mean, low, high = mean_confidence_interval(np.asarray(values, dtype=float))
    return {"mean": _finite(mean), "ci95": [_finite(low), _finite(high)]}


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def summarise_ensemble(ds: Any, name: str = "ensemble") -> dict[str, Any]:
    """Mean ± 95 % CI of an ensemble result (:func:`softgrain.sweep.run_ensemble` or its store).

    Only members with status ok enter, so a partly finished store can be summarised too.

    Returns
    -------
    dict
        ``fraction`` (area fraction of the deposit) and ``surface_fraction`` (top row):
        ``{orientation: {"mean", "ci95": [lo, hi], "n"}}``; ``surface_grain_width_um`` and
        ``surface_grain_count``: ``{"mean", "ci95"}``; ``members_ok`` and ``members_failed``.
        Intervals are ``None`` (JSON null) with fewer than two successful members.
    """
    from softgrain.sweep import TASK_FAILED, TASK_OK, ensemble_statistics

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

    Runs :func:`softgrain.sweep.run_ensemble` (Dask; ``client`` reuses an existing one; with
    ``store`` the members are also written to a resumable Zarr store) and summarises it with
    :func:`summarise_ensemble`.
    """
    from softgrain.sweep import run_ensemble

    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise UserInputError(f"--seeds must be a positive integer, got {seeds!r}")
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


def compare_experiments(seeds: int = 8, *, workers: int | None = None, scheduler: str | None = None,
                        overrides: Mapping[str, Any] | None = None, progress: bool = False,
                        include_liquid: bool = True, store_dir: str | Path | None = None) -> dict[str, Any]:
    """Simulated and theoretical texture of each EBSD condition against the measurement.

    Parameters
    ----------
    seeds : int
        Nucleation seeds per condition (0: theory only, no phase-field runs).
    workers, scheduler :
        Dask local worker processes, or the address of a running scheduler
        (:func:`softgrain.sweep.dask_client`).
    overrides : mapping, optional
        Dotted configuration changes applied to every preset (e.g. a smaller grid).
    progress : bool
        Show progress bars.
    include_liquid : bool
        Also simulate ``li-liquid`` for the grain-size comparison with liquid cells.
    store_dir : path, optional
        Keep each preset's ensemble in ``store_dir/<preset>.zarr`` (resumable: running the same
        comparison again skips the finished members).

    Returns
    -------
    dict
        ``conditions``: one entry per experiment with ``preset``, ``description``,
        ``temperature_C``, ``strain``, ``conditions``, ``theory_favoured``, ``theory``,
        ``simulated`` (``{orientation: {"mean", "ci95"}}`` or ``None`` without seeds),
        ``simulated_surface``, ``simulated_favoured``, ``experiment`` (null where not measured),
        ``experiment_favoured``, ``source``; ``grain_size``: simulated surface widths against the
        observations, with ``caveats``; ``seeds``.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 0:
        raise UserInputError(f"--seeds must be a non-negative integer, got {seeds!r}")
    experiments = load_experiments()
    configs = {e.preset: load_config(e.preset, overrides) for e in experiments}
    if include_liquid and seeds:
        configs[LIQUID_PRESET] = load_config(LIQUID_PRESET, overrides)
    simulated: dict[str, dict[str, Any]] = {}
    if seeds:
        from softgrain.sweep import dask_client

        # One Dask cluster for all ensembles: starting worker processes costs seconds each time.
        with dask_client(scheduler, workers) as client:
            for preset, config in configs.items():
                store = None if store_dir is None else Path(store_dir) / f"{preset}.zarr"
                simulated[preset] = simulate_ensemble(config, seeds, client=client, progress=progress,
                                                      store=store)

    return comparison(configs, simulated, seeds, overrides)


def comparison(configs: Mapping[str, SimulationConfig], simulated: Mapping[str, Mapping[str, Any]],
               seeds: int, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
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
    """
    experiments = load_experiments()
    rows = []
    for experiment in experiments:
        config = configs[experiment.preset]
        verdict = theory_verdict(config)
        sim = simulated.get(experiment.preset)
        measured = dict(experiment.fraction)
        known = {o: v for o, v in measured.items() if v is not None}
        rows.append({
            "preset": experiment.preset,
            "description": experiment.description,
            "temperature_C": config.run.temperature_C,
            "strain": config.material.strain,
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
            "source": experiment.source,
        })

    grain_size: dict[str, Any] = {"caveats": list(GRAIN_SIZE_CAVEATS), "entries": []}
    for preset, sim in simulated.items():
        kind = "liquid" if preset == LIQUID_PRESET else "solid"
        grain_size["entries"].append(_grain_size_entry(kind, preset, sim, configs[preset]))
    return {"seeds": seeds, "overrides": dict(overrides or {}), "conditions": rows,
            "grain_size": grain_size}


def format_fraction(stats: Mapping[str, Any] | None) -> str:
    """``"55.0 % [48.0, 62.0]"`` for one orientation's mean and CI, ``"—"`` when missing."""
    if stats is None or stats.get("mean") is None:
        return "—"
    low, high = stats.get("ci95", [None, None])
    interval = f" [{100 * low:.1f}, {100 * high:.1f}]" if low is not None and high is not None else ""
    return f"{100 * stats['mean']:.1f} %{interval}"


def markdown_table(result: Mapping[str, Any]) -> str:
    """The comparison as a Markdown table (simulated mean [95 % CI] vs measured, theory verdict)."""
    lines = ["| condition | strain | orientation | simulated (mean [95 % CI]) | EBSD | theory favours |",
             "|---|---|---|---|---|---|"]
    for row in result["conditions"]:
        for i, orientation in enumerate(ORIENTATIONS):
            first = i == 0
            measured = row["experiment"][orientation]
            simulated = row["simulated"][orientation] if row["simulated"] else None
            condition = row["description"] if first else ""
            strain = f"{row['strain']:+.4f}" if first else ""
            observed = "—" if measured is None else f"{100 * measured:.1f} %"
            verdict = f"({row['theory_favoured']})" if first else ""
            lines.append(f"| {condition} | {strain} | ({orientation}) | {format_fraction(simulated)} "
                         f"| {observed} | {verdict} |")
    return "\n".join(lines)


__all__ = [
    "ExperimentalCondition",
    "GRAIN_SIZE_CAVEATS",
    "GrainSizeObservation",
    "compare_experiments",
    "format_fraction",
    "load_experiments",
    "load_grain_sizes",
    "markdown_table",
    "simulate_ensemble",
    "summarise_ensemble",
    "comparison",
    "theory_verdict",
]
