"""The ``softgrain`` command line.

Thin: every command maps its flags to the parameters of a library call, calls it, and prints what
:mod:`softgrain.report` makes of the result. The library names its parameters (``out_dir``,
``workers`` …); :func:`flags` turns them into the command's flags in error messages. Bad input
(unknown metal or orientation, malformed numbers, invalid configs) ends with exit code 2 and a
one-line message naming the bad value; nothing in the package imports this module.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import sys
import tomllib
import warnings
from enum import Enum
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import typer
from rich.console import Console
from typer.core import TyperCommand

import softgrain
from softgrain import ebsd, report, setup
from softgrain.config import load_config, preset_names
from softgrain.errors import ConfigError, ParameterError, SimulationError, UserInputError
from softgrain.materials.metals import load_metal
from softgrain.output import checkpoint, orientation_plots, plots, viewers
from softgrain.output.checkpoint import RunStopped
from softgrain.output.files import (check_output_dir, check_writable, folder_lock, prepare_output_dir,
                                     save_figure)
from softgrain.output.results import load_result
from softgrain.phasefield.mapping import SubsteppingWarning
from softgrain.physics import theory
from softgrain.physics.interlayer import interlayer_report
from softgrain.studies import benchmark, experiments, phasemap, reproduce, runner, sweep
from softgrain.studies.interlayer import simulate_substrates

try:  # Typer ≥ 0.20 vendors Click as typer._click; older Typer uses Click itself.
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click import exceptions as click_exceptions

app = typer.Typer(
    name="softgrain",
    help="Grain selection growth of electrodeposited soft metals (Li, Na, K).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain Click help: Typer's rich tables show every on/off flag as ``--json <bool>``, as if it
    # took a value (``--json true`` fails); plain help shows flags bare and values as <int> etc.
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"softgrain {softgrain.__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                       help="Show the version and exit.")) -> None:
    # A callback keeps ``softgrain`` a command group even while it has a single subcommand;
    # without it Typer would run that command directly and reject ``softgrain theory``.
    pass


def fail(message: str) -> None:
    """Print a one-line error to stderr and exit with code 2."""
    typer.echo(f"softgrain: error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(code=2)


@contextlib.contextmanager
def flags(**names: str) -> Iterator[None]:
    """Report the library's parameter errors with this command's flags (``out_dir="--out"``)."""
    try:
        yield
    except ParameterError as exc:
        raise UserInputError(exc.render(names)) from None


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """Let SIGTERM stop a Dask command the way Ctrl-C does.

    By default SIGTERM kills the process at once: the local cluster's worker processes and
    semaphores are left for the resource tracker to complain about, and the shell sees 143.
    Raised as KeyboardInterrupt, it unwinds through the cluster's shutdown like Ctrl-C.
    """
    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def show(console: Console, items) -> None:
    """Print the tables and lines that :mod:`softgrain.report` returns."""
    for item in items:
        console.print(item)


class GreedyListCommand(TyperCommand):
    """A command whose list options take several values after one flag.

    Click options have a fixed number of values; a list option is normally repeated
    (``--temperature 25 --temperature 80``). This command also accepts ``--temperature 25 80``
    (and negative numbers, ``--temperature -20 -10``) by rewriting the arguments into the
    repeated form before Click parses them. A value run ends at the next token that starts with
    ``-`` and is not a number, or at ``--``.
    """

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        greedy = {
            opt
            for param in self.params
            if param.param_type_name == "option" and getattr(param, "multiple", False)
            for opt in param.opts
        }
        return super().parse_args(ctx, _expand_greedy(args, greedy))


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _expand_greedy(args: list[str], greedy: set[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            out.extend(args[i:])
            break
        flag, eq, inline = token.partition("=")
        if flag not in greedy or not flag.startswith("--") and eq:
            out.append(token)
            i += 1
            continue
        values = [inline] if eq else []
        if not eq and i + 1 < len(args):
            values.append(args[i + 1])  # the first value belongs to the flag, whatever it looks like
            i += 1
        while i + 1 < len(args) and (not args[i + 1].startswith("-") or _is_number(args[i + 1])):
            values.append(args[i + 1])
            i += 1
        if values:
            for value in values:
                out += [flag, value]
        else:
            out.append(token)  # let Click report the missing value
        i += 1
    return out


def _parse_number(text: str, what: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        fail(f"invalid {what} {text!r}: not a number")
    if not math.isfinite(value):
        fail(f"invalid {what} {text!r}: must be finite")
    return value


@app.command("theory", cls=GreedyListCommand,
             short_help="Thermodynamic theory (Fig. 3A): ΔΓ, ΔF_strain, ΔU vs T.")
def theory_command(
    metal: str = typer.Option("Li", "--metal", "-m", help="Li, Na or K."),
    electrolyte: Optional[str] = typer.Option(
        None, "--electrolyte", "-e",
        help="liquid (unstrained surface energies) or solid (3 % compression). "
             "Default: solid, unless --strain is given.",
    ),
    pair: Tuple[str, str] = typer.Option(
        ("001", "101"), "--pair", help="Two orientations; ΔU = U(first) − U(second)."
    ),
    temperature: Optional[List[str]] = typer.Option(
        None, "--temperature", "-T", metavar="CELSIUS...",
        help="One or more temperatures in °C (e.g. --temperature 25 80). Default: −20 … 100 in 5 °C steps.",
    ),
    strain: Optional[str] = typer.Option(
        None, "--strain", metavar="STRAIN",
        help="Biaxial lattice strain (negative = compression), overriding the electrolyte's.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object to stdout."),
    plot: Optional[Path] = typer.Option(
        None, "--plot", help="Write the Fig. 3A figure (liquid and solid) to this file (.png, .pdf, .svg)."
    ),
) -> None:
    """Thermodynamic theory (paper Eq. S1–S11, Fig. 3A): ΔΓ_surface, ΔF_strain and ΔU vs temperature."""
    temps = [_parse_number(t, "temperature") for t in temperature] if temperature else None
    strain_value = _parse_number(strain, "strain") if strain is not None else None
    try:
        if electrolyte is None and strain_value is None:
            electrolyte = "solid"
        if electrolyte is not None:
            if electrolyte.strip().lower() not in theory.ELECTROLYTE_STRAIN:
                fail(f"unknown electrolyte {electrolyte!r}; known: {', '.join(theory.ELECTROLYTE_STRAIN)}")
            electrolyte = electrolyte.strip().lower()
        eps = strain_value if strain_value is not None else theory.resolve_strain(electrolyte)
        data = load_metal(metal)
        params = theory.TheoryParameters.from_data(data)
        if temps is None:
            temps = theory.default_temperatures_C(data).tolist()
        result = theory.energy_difference(data, pair, temps, eps, params)
        crossover = theory.crossover_temperature(data, result.pair, eps, params)
        if plot is not None:
            cases: dict[str, float | str] = {name: name for name in theory.ELECTROLYTE_STRAIN}
            if eps not in theory.ELECTROLYTE_STRAIN.values():
                cases["--strain"] = eps
            save_figure(plots.plot_theory_fig3a(data, result.pair, temps, cases, params), plot)
    except UserInputError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {str(plot)!r}: {exc.strerror or exc}")

    if as_json:
        typer.echo(json.dumps({
            "metal": data.symbol,
            "electrolyte": electrolyte,
            "strain": eps,
            "pair": list(result.pair),
            "crossover_temperature_C": crossover,
            "rows": result.rows(),
        }))
        return
    console = Console()
    show(console, report.theory(result, electrolyte if electrolyte is not None else "custom strain",
                                crossover))
    if plot is not None:
        console.print(f"Wrote {plot}")


def _parse_set(items: list[str]) -> dict[str, object]:
    """``--set run.seed=3`` style overrides; values are parsed as TOML scalars."""
    changes: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"--set {item!r}: expected KEY=VALUE, e.g. run.seed=3")
        try:
            changes[key.strip()] = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            changes[key.strip()] = raw.strip()
    return changes


@app.command("run")
def run_command(
    preset_or_config: str = typer.Argument(..., metavar="PRESET_OR_CONFIG",
                                           help="preset name (li-solid, li-liquid, na-solid, k-solid, …) or a TOML file"),
    out: Path = typer.Option(..., "--out", help="output folder (result.nc, summary.json, figures)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="nucleation seed (overrides run.seed)"),
    end_time: Optional[float] = typer.Option(None, "--end-time", help="simulated time in s (overrides run.end_time_s)"),
    set_: List[str] = typer.Option([], "--set", help="override any key, e.g. --set grid.nx=100 (repeatable)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="allow writing into a non-empty folder"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
    checkpoint_every: Optional[float] = typer.Option(
        None, "--checkpoint-every", metavar="S",
        help="write a checkpoint into --out every S seconds of simulated time; "
             "continue an interrupted run with `softgrain resume DIR`"),
    keep_checkpoints: bool = typer.Option(False, "--keep-checkpoints",
                                          help="keep the checkpoints after the run finishes"),
    backend: Optional[str] = typer.Option(None, "--backend", metavar="numba|jax",
                                          help="numba: the CPU kernel (numerics.kernel); jax: the JAX kernel (pip install -e '.[jax]')"),
) -> None:
    """Run a phase-field simulation of grain selection growth and write its outputs.

    Ctrl-C (or SIGTERM) stops the run cleanly: it writes a checkpoint and the snapshots so far,
    and `softgrain resume DIR` finishes it.
    """
    changes = _parse_set(set_)
    from_flags: dict[str, tuple[str, object]] = {}
    if seed is not None:
        changes["run.seed"] = seed
        from_flags["run.seed"] = ("--seed", seed)
    if end_time is not None:
        changes["run.end_time_s"] = end_time
        from_flags["run.end_time_s"] = ("--end-time", end_time)
    if backend is not None:
        changes["numerics.backend"] = backend
        from_flags["numerics.backend"] = ("--backend", backend)
    if checkpoint_every is not None and not (math.isfinite(checkpoint_every) and checkpoint_every > 0):
        fail(f"--checkpoint-every {checkpoint_every}: allowed: a simulated time S > 0 (s)")
    names = {"out_dir": "--out", "overwrite": "--overwrite", "overrides": "--set",
             "checkpoint_every_s": "--checkpoint-every"}
    with flags(**names):
        config = _load_config(preset_or_config, changes, from_flags)
        _refuse_interrupted_run(out, overwrite)
        check_output_dir(out, overwrite)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            simulation = setup.simulation(config)
        except UserInputError as exc:
            raise type(exc)(f"{preset_or_config}: {exc}") from None
    console = Console(stderr=True)
    for warning in caught:
        typer.echo(f"softgrain: note: {' '.join(str(warning.message).split())}", err=True)
    with flags(**names):
        folder = prepare_output_dir(out, overwrite)
    written = _RecordingWriter()
    with flags(**names), folder_lock(folder):
        checkpoint.remove_checkpoints(folder)  # stale ones of an overwritten run must not be resumed
        ds = checkpoint.run_to_end(simulation, folder, checkpoint_every, progress=not quiet,
                                   write_outputs=written, keep_checkpoints=keep_checkpoints)
    show(console, report.run_summary(simulation, ds, written.paths))


def _load_config(source: str, changes: dict[str, object],
                 from_flags: dict[str, tuple[str, object]]):
    """:func:`load_config`, with a bad value that came from a flag blamed on that flag."""
    try:
        return load_config(source, changes)
    except ConfigError as exc:
        if exc.key not in from_flags or exc.problem is None:
            raise
        flag, value = from_flags[exc.key]
        detail = exc.problem.split(": ", 1)[-1].replace(exc.key, flag)
        raise UserInputError(f"{flag} {value} ({exc.key}): {detail}") from None


def _refuse_interrupted_run(out: Path, overwrite: bool) -> None:
    """An interrupted run in ``out`` is resumed, not overwritten by accident."""
    latest = checkpoint.interrupted_run(out)
    if latest is not None and not overwrite:
        raise UserInputError(
            f"--out {out}: holds an interrupted run (checkpoint {latest.name}); continue it with: "
            f"softgrain resume {out} — or pass --overwrite to discard it and start over")


class _RecordingWriter:
    """:func:`softgrain.setup.save_run` that remembers the paths it wrote (for the report)."""

    def __init__(self) -> None:
        self.paths: dict[str, Path] = {}

    def __call__(self, ds, folder) -> None:
        self.paths.update(setup.save_run(ds, folder))


@app.command("resume")
def resume_command(
    folder: Path = typer.Argument(..., metavar="DIR", help="output folder of an interrupted run"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Continue an interrupted run from the newest good checkpoint in DIR and finish it.

    Writes the same outputs as `softgrain run`; the result is bit-identical to an uninterrupted
    run. A corrupt or truncated checkpoint is skipped in favour of the previous one.
    """
    console = Console(stderr=True)
    written = _RecordingWriter()
    with warnings.catch_warnings():
        # The notes on sub-steps and on the time grid were shown when the run started.
        warnings.simplefilter("ignore", SubsteppingWarning)
        warnings.simplefilter("ignore", setup.TimeGridWarning)
        try:
            simulation, ds = setup.resume(folder, progress=not quiet, write_outputs=written)
        except checkpoint.CheckpointError as exc:
            if not checkpoint.list_checkpoints(folder):
                raise
            # Checkpoints there, none usable: say how to start the run again.
            raise UserInputError(f"{exc}; to start over: softgrain run {_source_of(folder)} --out "
                                 f"{folder} --overwrite") from None
    show(console, report.run_summary(simulation, ds, written.paths))


def _source_of(folder: Path) -> str:
    """The preset of the run in ``folder`` if its partial result names one, else a placeholder."""
    try:
        preset = str(load_result(folder).attrs.get("preset", ""))
    except UserInputError:
        preset = ""
    return preset if preset in preset_names() else "PRESET_OR_CONFIG"


class _OneLineHandler(logging.Handler):
    """Library warnings as single ``softgrain: warning: …`` lines on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        level = record.levelname.lower()
        typer.echo(f"softgrain: {level}: {' '.join(self.format(record).split())}", err=True)


def _configure_logging() -> None:
    logger = logging.getLogger("softgrain")
    if not any(isinstance(h, _OneLineHandler) for h in logger.handlers):
        logger.addHandler(_OneLineHandler(logging.WARNING))
        logger.setLevel(logging.INFO)


class GrowthAxis(str, Enum):
    z = "z"
    x = "x"
    y = "y"


def texture_plot_path(path: Path) -> Path:
    """Where ``--plot FILE`` puts the growth texture beside the IPF map: FILE_texture.EXT."""
    return path.with_name(f"{path.stem}_texture{path.suffix}")


@app.command("compare-experiments", short_help="Simulated texture vs the paper's EBSD (Fig. 3, 5D).")
def compare_experiments_command(
    seeds: int = typer.Option(8, "--seeds", help="nucleation seeds per condition (0: theory only)"),
    workers: Optional[int] = typer.Option(None, "--workers", help="local Dask worker processes (default: all cores)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="address of a running Dask scheduler"),
    set_: List[str] = typer.Option([], "--set", help="override a key in every preset, e.g. --set grid.nx=100 (repeatable)"),
    liquid: bool = typer.Option(True, "--liquid/--no-liquid",
                                help="also simulate li-liquid for the grain-size comparison with liquid cells"),
    store_dir: Optional[Path] = typer.Option(
        None, "--store-dir", help="keep each preset's ensemble in DIR/<preset>.zarr; rerunning resumes"),
    ebsd_files: List[str] = typer.Option(
        [], "--ebsd", metavar="COND=FILE",
        help="use your EBSD map of a condition (li-solid, li-solid-80c, li-solid-lixsi) instead of the "
             "paper's percentages: .ang, .ctf or orix .h5 (repeatable)"),
    ebsd_growth_direction: GrowthAxis = typer.Option(
        GrowthAxis.z, "--ebsd-growth-direction", case_sensitive=False,
        help="sample axis of growth in the --ebsd maps: z (plan view) or x / y (cross-sections)"),
    ebsd_tolerance: float = typer.Option(ebsd.DEFAULT_TOLERANCE_DEG, "--ebsd-tolerance", metavar="DEG",
                                         help="class tolerance for the --ebsd maps (degrees)"),
    count_window: float = typer.Option(
        experiments.COUNT_WINDOW_UM, "--count-window-um",
        help="count the grains in this many µm above the substrate (EBSD: a 10–20 µm deposit)"),
    min_grain_cells: int = typer.Option(
        experiments.MIN_GRAIN_CELLS, "--min-grain-cells",
        help="smallest grain counted, in cells inside the window"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object to stdout"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
    backend: Optional[str] = typer.Option(None, "--backend", metavar="numba|jax",
                                          help="numba: the CPU kernel (numerics.kernel); jax: batches of runs per Dask task on a CPU/GPU device (pip install -e '.[jax]')"),
    batch: Optional[int] = typer.Option(None, "--batch", metavar="N",
                                        help="runs per JAX batch (default: spread over the workers, at most 256, cut to the device memory)"),
) -> None:
    """Simulated texture (area and grain-count fractions, 95 % CIs over seeds) and the theory's verdict vs the paper's EBSD (Fig. 3, 5D)."""
    files: dict[str, Path] = {}
    for item in ebsd_files:
        condition, sep, path = item.partition("=")
        if not sep or not condition.strip() or not path.strip():
            fail(f"--ebsd {item!r}: expected COND=FILE, e.g. --ebsd li-solid=map.ang")
        files[condition.strip()] = Path(path.strip())
    with flags(seeds="--seeds", workers="--workers", scheduler="--scheduler", overrides="--set",
               ebsd_files="--ebsd", growth_direction="--ebsd-growth-direction", tolerance_deg="--ebsd-tolerance",
               count_window_um="--count-window-um", min_grain_cells="--min-grain-cells"), \
            _sigterm_as_ctrl_c():
        result = experiments.compare_experiments(
            seeds, workers=workers, scheduler=scheduler, overrides=_parse_set(set_),
            progress=not (quiet or as_json), include_liquid=liquid, store_dir=store_dir, ebsd_files=files,
            ebsd_options={"growth_direction": ebsd_growth_direction.value, "tolerance_deg": ebsd_tolerance},
            count_window_um=count_window, min_grain_cells=min_grain_cells,
            backend=backend, batch=batch)
    if as_json:
        typer.echo(json.dumps(result))
        return
    show(Console(width=max(Console().width, 120)), report.experiments(result))


@app.command("ebsd", short_help="Classify a real EBSD map (.ang/.ctf/.h5) like a simulation.")
def ebsd_command(
    file: Path = typer.Argument(..., metavar="FILE", help="EBSD map: .ang (EDAX/TSL), .ctf (Oxford/HKL) or orix .h5"),
    growth_direction: GrowthAxis = typer.Option(
        GrowthAxis.z, "--growth-direction", case_sensitive=False,
        help="sample axis along which the metal grew: z (map normal, plan view) or x / y (cross-sections)"),
    tolerance: float = typer.Option(ebsd.DEFAULT_TOLERANCE_DEG, "--tolerance", metavar="DEG",
                                    help="class tolerance around <001>, <101>, <111> (degrees)"),
    threshold: float = typer.Option(ebsd.DEFAULT_MISORIENTATION_THRESHOLD_DEG, "--threshold", metavar="DEG",
                                    help="grain boundary misorientation (degrees): neighbours below it form one grain"),
    min_size: int = typer.Option(ebsd.DEFAULT_MIN_GRAIN_SIZE_PX, "--min-size", metavar="POINTS",
                                 help="smallest grain counted (map points)"),
    phase: Optional[str] = typer.Option(None, "--phase", help="phase to analyse when the map indexes several"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object to stdout"),
    plot: Optional[Path] = typer.Option(
        None, "--plot", metavar="FILE.png",
        help="write the IPF grain map to FILE.png and the growth texture (IPF densities, pole figures) "
             "to FILE_texture.png"),
) -> None:
    """Classify the grains of a real EBSD map like a simulation's: count and area fractions of
    (001), (101), (111) within --tolerance of the growth direction, and "other"."""
    names = {"growth_direction": "--growth-direction", "tolerance_deg": "--tolerance",
             "threshold_deg": "--threshold", "min_size_px": "--min-size", "phase": "--phase"}
    with flags(**names):
        result = ebsd.analyse_ebsd(file, growth_direction=growth_direction.value, tolerance_deg=tolerance,
                                   threshold_deg=threshold, min_size_px=min_size, phase=phase)
    written: list[Path] = []
    if plot is not None:
        step_y, step_x = result.ebsd.step
        title = f"{file.name}: {result.texture.grains} grains"
        try:
            written.append(save_figure(orientation_plots.plot_ipf_grain_map(
                result.labels, result.grain_quaternions, sample_axis=growth_direction.value,
                spacing=(step_y, step_x), unit=result.ebsd.scan_unit, origin="upper", title=title), plot))
            area = result.texture.grain_area * result.texture.counted
            written.append(save_figure(orientation_plots.plot_growth_texture(
                result.grain_quaternions, area, sample_axis=growth_direction.value, tolerance_deg=tolerance,
                title=title), texture_plot_path(plot)))
        except UserInputError as exc:
            fail(f"--plot: {exc}")
    report_dict = result.to_dict()
    if as_json:
        typer.echo(json.dumps({**report_dict, "plots": [str(p) for p in written]}))
        return
    show(Console(width=max(Console().width, 100)), report.ebsd(report_dict, written))


@app.command("interlayer", short_help="Interlayer design (Fig. 5A): moduli, criteria, texture.")
def interlayer_command(
    as_json: bool = typer.Option(False, "--json", help="print one JSON object to stdout"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="write the Fig. 5A figure to this file (.png, .pdf, .svg)"),
    stack_pressure: float = typer.Option(5.0, "--stack-pressure", help="stack pressure (MPa) of the texture chain"),
    temperature: float = typer.Option(25.0, "--temperature", "-T", help="temperature (°C) of the texture chain"),
    simulate: bool = typer.Option(False, "--simulate", help="also run phase-field ensembles on --substrate"),
    substrate: List[str] = typer.Option([], "--substrate", help="substrates to simulate (repeatable; default: Cu and Li0.7Si0.3)"),
    seeds: int = typer.Option(8, "--seeds", help="nucleation seeds per simulated substrate"),
    workers: Optional[int] = typer.Option(None, "--workers", help="local Dask worker processes (default: all cores)"),
    set_: List[str] = typer.Option([], "--set", help="override a configuration key of the simulations (repeatable)"),
) -> None:
    """Interlayer design (paper Fig. 5A): bulk moduli, the five criteria, modulus → strain → texture."""
    if not (math.isfinite(stack_pressure) and stack_pressure >= 0):
        fail(f"--stack-pressure {stack_pressure}: must be a non-negative number of MPa")
    result = interlayer_report(stack_pressure, temperature)
    if simulate:
        overrides = _parse_set(set_)
        overrides.update({"conditions.stack_pressure_MPa": stack_pressure, "run.temperature_C": temperature})
        with flags(seeds="--seeds", workers="--workers", overrides="--set"), _sigterm_as_ctrl_c():
            result["simulated"] = simulate_substrates(substrate or ["Cu", "Li0.7Si0.3"], seeds,
                                                      workers=workers, overrides=overrides)
    if plot is not None:
        try:
            save_figure(plots.plot_interlayer_moduli(result), plot)
        except OSError as exc:
            fail(f"cannot write {str(plot)!r}: {exc.strerror or exc}")
    if as_json:
        typer.echo(json.dumps(result))
        return
    console = Console(width=max(Console().width, 120))
    show(console, report.interlayer(result))
    if plot is not None:
        console.print(f"Wrote {plot}")


@app.command("sweep")
def sweep_command(
    sweep_file: Path = typer.Argument(..., metavar="SWEEP.toml",
                                      help="sweep definition (base config, axes, seeds, outputs)"),
    out: Path = typer.Option(..., "--out", help="results store (Zarr folder); an existing store of the same sweep is resumed"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", metavar="ADDRESS",
                                            help="address of a running Dask scheduler, e.g. tcp://host:8786 (default: a local cluster)"),
    workers: Optional[int] = typer.Option(None, "--workers", help="local worker processes (default: all cores; 1 with --backend jax)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
    backend: Optional[str] = typer.Option(None, "--backend", metavar="numba|jax",
                                          help="numba: the CPU kernel (numerics.kernel); jax: batches of runs per Dask task on a CPU/GPU device (pip install -e '.[jax]')"),
    batch: Optional[int] = typer.Option(None, "--batch", metavar="N",
                                        help="runs per JAX batch (default: spread over the workers, at most 256, cut to the device memory)"),
) -> None:
    """Run (or resume) a parameter sweep: one phase-field run per (point, seed), as Dask tasks."""
    plan = sweep.load_sweep(sweep_file).with_numerics(backend=backend, batch=batch)
    with flags(store="--out"):
        check_writable(out, "store")    # before the plan is announced
    console = Console(stderr=True)
    console.print(report.sweep_plan(plan, out))
    try:
        with flags(store="--out", workers="--workers", scheduler="--scheduler"), _sigterm_as_ctrl_c():
            _, done = runner.run_plan(plan, out, workers=workers, scheduler=scheduler, progress=not quiet)
    except KeyboardInterrupt:
        console.print(f"interrupted: finished tasks are kept in {out}; run the same command to resume")
        raise typer.Abort() from None
    show(console, report.sweep_done(done))


@app.command("phase-map", short_help="Texture phase map (Fig. 4): barrier × anisotropy.")
def phase_map_command(
    resolution: int = typer.Option(4, "--resolution", help="points per axis (N × N points)"),
    seeds: int = typer.Option(2, "--seeds", help="nucleation seeds per point"),
    out: Path = typer.Option(Path("phase-map"), "--out", help="output folder (phase_map.zarr, phase_map.png, phase_map.json)"),
    workers: Optional[int] = typer.Option(None, "--workers", help="local worker processes (default: all cores)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", metavar="ADDRESS",
                                            help="address of a running Dask scheduler (default: a local cluster)"),
    barrier_max: Optional[float] = typer.Option(None, "--barrier-max", help="upper end of the (101) barrier axis in eV (default: the (001) barrier)"),
    anisotropy_max: Optional[float] = typer.Option(None, "--anisotropy-max", help="upper end of the anisotropy axis in J/m² (default: 1.25 × the strained step)"),
    spacing: str = typer.Option("quadratic", "--spacing", help="anisotropy sampling: quadratic (dense near the liquid case) or linear"),
    keep_maps: bool = typer.Option(False, "--keep-maps", help="also store the final orientation map of every run"),
    set_: List[str] = typer.Option([], "--set", help="override a key of the base run, e.g. --set grid.nx=100 (repeatable)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
    backend: Optional[str] = typer.Option(None, "--backend", metavar="numba|jax",
                                          help="numba: the CPU kernel (numerics.kernel); jax: batches of runs per Dask task on a CPU/GPU device (pip install -e '.[jax]')"),
    batch: Optional[int] = typer.Option(None, "--batch", metavar="N",
                                        help="runs per JAX batch (default: spread over the workers, at most 256, cut to the device memory)"),
) -> None:
    """Texture phase map (paper Fig. 4): (101) diffusion barrier × surface-energy anisotropy, resumable."""
    console = Console(stderr=True)
    try:
        with flags(out="--out", store="--out", workers="--workers", scheduler="--scheduler",
                   resolution="--resolution", barrier_max="--barrier-max",
                   anisotropy_max="--anisotropy-max", spacing="--spacing", overrides="--set"), \
                _sigterm_as_ctrl_c():
            summary = phasemap.make_phase_map(
                out, resolution, seeds, workers=workers, scheduler=scheduler, progress=not quiet,
                overrides=_parse_set(set_), barrier_max=barrier_max, anisotropy_max=anisotropy_max,
                spacing=spacing, keep_maps=keep_maps, backend=backend, batch=batch)
    except KeyboardInterrupt:
        console.print(f"interrupted: finished runs are kept in {out / phasemap.STORE_NAME}; "
                      "run the same command to resume")
        raise typer.Abort() from None
    show(console, report.phase_map(summary))


@app.command("reproduce", cls=GreedyListCommand)
def reproduce_command(
    out: Path = typer.Option(reproduce.DEFAULT_OUT, "--out",
                             help="output folder: one sub-folder per stage, report.html/.md/.json"),
    quick: bool = typer.Option(False, "--quick", help="reduced grid, 2 seeds, short runs (about a "
                               "minute); the report is marked QUICK"),
    seeds: Optional[int] = typer.Option(None, "--seeds", help=f"seeds per ensemble (default "
                                        f"{reproduce.DEFAULT_SEEDS}, --quick {reproduce.QUICK_SEEDS}; at least 2)"),
    backend: str = typer.Option("numba", "--backend", help="phase-field kernel: numba, or jax (batches of "
                                "runs per Dask task; pip install -e '.[jax]')"),
    workers: Optional[int] = typer.Option(None, "--workers", help="local Dask worker processes (default: all cores)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", metavar="ADDRESS",
                                            help="address of a running Dask scheduler (default: a local cluster)"),
    stage: List[str] = typer.Option([], "--stage", help="run only these stages (repeatable); the report "
                                    "shows the others as finished before or not run"),
    redo: bool = typer.Option(False, "--redo", help="recompute the --stage stages even if finished"),
    update_readme: bool = typer.Option(False, "--update-readme",
                                       help="also write the report into --readme between its results markers"),
    readme: Path = typer.Option(Path("README.md"), "--readme", help="the README for --update-readme"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress display"),
) -> None:
    """Every computational result of the paper in one resumable run, and a report beside the paper's.

    Stages: Fig. 3A theory, Fig. 5A interlayer, Fig. 2/S3/S5/S6 ensembles, the EBSD comparison
    (Fig. 3C–F, 5D), the Fig. 4 phase map (and random orientations where available). A second call
    skips the finished stages; a killed stage resumes its runs.
    """
    console = Console(stderr=True)

    def on_stage(name: str, index: int, count: int, event: str, outcome) -> None:
        if quiet:
            return
        if event == "start":
            console.print(f"[bold][{index + 1}/{count}] {name}[/]: running")
        elif outcome.status == "reused":
            console.print(f"[{index + 1}/{count}] {name}: reused (finished before in "
                          f"{outcome.wall_s or 0:.1f} s)")
        elif outcome.status == "done":
            console.print(f"[{index + 1}/{count}] {name}: [green]done[/] in {outcome.wall_s:.1f} s")
        elif outcome.status == "failed":
            console.print(f"[{index + 1}/{count}] {name}: [red]failed[/]: {outcome.error}")

    names = {"out": "--out", "seeds": "--seeds", "backend": "--backend", "workers": "--workers",
             "scheduler": "--scheduler", "stages": "--stage", "redo": "--redo", "readme": "--readme"}
    try:
        with flags(**names):
            result = reproduce.reproduce(out, quick=quick, seeds=seeds, backend=backend, workers=workers,
                                         scheduler=scheduler, stages=stage or None, redo=redo,
                                         progress=not quiet, on_stage=on_stage,
                                         readme=readme if update_readme else None)
    except KeyboardInterrupt:
        console.print(f"interrupted: finished stages (and finished runs) are kept in {out}; "
                      "run the same command to resume")
        raise typer.Abort() from None
    show(Console(width=max(Console().width, 120)), report.reproduction(result))
    failed = [name for name, s in result["stages"].items() if s["status"] == "failed"]
    if failed:
        typer.echo(f"softgrain: error: stage(s) failed: {', '.join(failed)} (see {out}/<stage>/error.txt); "
                   "run the same command to retry them", err=True)
        raise typer.Exit(code=1)


@app.command("animate")
def animate_command(
    folder: Path = typer.Argument(..., metavar="DIR", help="output folder of a run (reads result.nc)"),
    out: Optional[Path] = typer.Option(None, "--out", help="FILE.gif (default DIR/orientation.gif) or "
                                       "FILE.mp4 (needs the imageio-ffmpeg plugin)"),
    fps: float = typer.Option(4.0, "--fps", help="frames (snapshots) per second"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing file"),
) -> None:
    """Animate the orientation map over all stored snapshots (set run.snapshot_times_s for more frames)."""
    target = out if out is not None else folder / viewers.ANIMATION_FILE
    ds = _load_run(folder)
    if target.exists() and not overwrite:
        fail(f"--out {target}: file exists; choose another or pass --overwrite")
    with flags(path="--out", fps="--fps"):
        viewers.write_animation(ds, target, fps)
    typer.echo(f"wrote {target} ({ds.sizes['time']} frames)", err=True)


@app.command("export")
def export_command(
    folder: Path = typer.Argument(..., metavar="DIR", help="output folder of a run (reads result.nc)"),
    vtk: bool = typer.Option(False, "--vtk", help="VTK for ParaView: one .vtu per snapshot and a .pvd series"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder for the files (default DIR/vtk)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="allow writing into a non-empty folder"),
) -> None:
    """Export the grain maps of a run for other tools (--vtk: ParaView, via meshio)."""
    if not vtk:
        fail("choose an export format: --vtk")
    target = out if out is not None else folder / viewers.VTK_FOLDER
    ds = _load_run(folder)
    with flags(out_dir="--out", overwrite="--overwrite"):
        check_output_dir(target, overwrite)
        written = viewers.export_vtk(ds, prepare_output_dir(target, overwrite))
    typer.echo(f"wrote {len(written) - 1} .vtu file(s) and {written[-1]} (open it in ParaView)", err=True)


@app.command("show")
def show_command(
    folder: Path = typer.Argument(..., metavar="DIR", help="output folder of a run (reads result.nc)"),
) -> None:
    """Print a run's texture at each snapshot and its provenance."""
    ds = _load_run(folder)
    show(Console(), report.run_tables(ds, title=f"{folder}: texture by snapshot"))


def _load_run(folder: Path):
    """The result of a run folder; a missing one names the command that writes it."""
    try:
        return load_result(folder)
    except UserInputError as exc:
        if Path(folder).is_dir():
            raise UserInputError(f"{exc}; write one with: softgrain run … --out {folder}") from None
        raise


@app.command("bench", cls=GreedyListCommand)
def bench_command(
    json_output: bool = typer.Option(False, "--json", help="print one JSON object to stdout"),
    quick: bool = typer.Option(False, "--quick", help="fewer steps: a smoke run with noisy numbers"),
    no_reference_run: bool = typer.Option(False, "--no-reference-run",
                                          help="skip the full 40,000-step reference run"),
    preset: str = typer.Option("li-solid", "--preset", help="preset giving L_q, κ_q and Δt"),
    backend: Optional[str] = typer.Option(None, "--backend", metavar="jax",
                                          help="jax: paper runs per second of the batched JAX kernel (batches 1, 16, 64, 256) and of the numba kernel on one core, and the projected 2,000-run phase map"),
    batches: List[int] = typer.Option([], "--batches", metavar="N",
                                      help="with --backend jax: the batch sizes to measure (repeatable; default 1 16 64 256)"),
) -> None:
    """Measure the kernel on this machine: speed-up over the dense NumPy reference, grain and
    domain scaling, peak memory, and the full reference run (issue 4 targets); with
    --backend jax the throughput of the JAX backend against the numba kernel (issue 12)."""
    if preset not in preset_names():
        raise UserInputError(f"--preset {preset!r}: unknown preset; presets: {', '.join(preset_names())}")
    if backend not in (None, "numba", "jax"):
        raise UserInputError(f"--backend {backend!r}: allowed: numba, jax")
    if batches and (backend != "jax" or min(batches) < 1):
        raise UserInputError(f"--batches {' '.join(map(str, batches))}: positive batch sizes, with --backend jax")
    if backend == "jax":
        result = benchmark.run_throughput(preset=preset, quick=quick,
                                          batches=tuple(batches) or benchmark.JAX_BATCHES)
    else:
        result = benchmark.run_all(quick=quick, reference_run=not no_reference_run, preset=preset,
                                   progress=lambda text: typer.echo(f"softgrain bench: {text} …", err=True))
    if json_output:
        typer.echo(json.dumps(result))
        return
    Console().print(report.bench_throughput(result) if backend == "jax" else report.bench(result))


def main() -> None:
    """Entry point of the console script.

    User errors → exit code 2 with one line; a run that stopped part-way (NaN, disk error) →
    exit code 1, after Ctrl-C/SIGTERM → 130, with one line saying where it stopped.
    """
    _configure_logging()
    try:
        # Not standalone: Click's usage errors come back here to be reported in one line too.
        code = app(standalone_mode=False)
    except click_exceptions.UsageError as exc:
        if isinstance(exc, getattr(click_exceptions, "NoArgsIsHelpError", ())):
            exc.show()  # bare `softgrain`: the help text
            sys.exit(2)
        command = exc.ctx.command_path if exc.ctx is not None else "softgrain"
        typer.echo(f"softgrain: error: {' '.join(exc.format_message().split())} "
                   f"(see: {command} --help)", err=True)
        sys.exit(2)
    except click_exceptions.ClickException as exc:
        typer.echo(f"softgrain: error: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("softgrain: error: interrupted", err=True)
        sys.exit(130)
    except UserInputError as exc:
        typer.echo(f"softgrain: error: {' '.join(str(exc).split())}", err=True)
        sys.exit(2)
    except SimulationError as exc:
        message = str(exc)
        if isinstance(exc, RunStopped) and exc.resume_from is not None:
            message += f"; continue with: softgrain resume {exc.resume_from}"
        typer.echo(f"softgrain: error: {' '.join(message.split())}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))
    sys.exit(code if isinstance(code, int) else 0)
