"""Checkpoints, resume, and runs that stop cleanly (crash, Ctrl-C, full disk, NaN).

A checkpoint holds everything :meth:`Simulation.state_dict` returns (all field arrays, step,
nucleation and seed, configuration, snapshots so far, wall time) plus how the run was being
driven (checkpoint interval). File layout::

    SOFTGRAIN-CHECKPOINT 1\\n
    sha256 <64 hex digits of the payload>\\n
    <payload: an uncompressed NumPy .npz archive, no pickled objects>

Files are named ``checkpoint-<step>.sgckpt`` in the run's output folder and written atomically
(temporary file, fsync, rename); the newest :data:`KEEP_CHECKPOINTS` are kept. On reading, the
header and the checksum are verified; a truncated or corrupt file is skipped with a warning and
the previous good one is used.

:func:`run_to_end` drives a :class:`~softgrain.phasefield.solver.Simulation` to its end time,
writing a checkpoint every ``checkpoint_every_s`` of simulated time. Ctrl-C (SIGINT) or SIGTERM
(what batch schedulers send before killing a job) only set a flag: the run stops after the
current kernel call (~0.25 s, also inside a long sub-stepped step), where the state is
consistent, writes a checkpoint and the snapshots so far, and raises :class:`RunStopped` naming
the step and time. A non-finite field (NaN) or a disk error
also leaves the snapshots so far and the earlier checkpoints in place. Resuming (checkpoint →
configuration → numbers → run) is :func:`softgrain.setup.resume`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io as _bytes_io
import json
import logging
import re
import signal
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from softgrain.errors import ParameterError, SimulationError, UserInputError
from softgrain.output.files import NETCDF_ENGINE, atomic_path, write_netcdf
from softgrain.output.results import RESULT_FILE, run_dataset
from softgrain.phasefield.solver import Simulation

logger = logging.getLogger(__name__)

MAGIC = b"SOFTGRAIN-CHECKPOINT 1\n"
SUFFIX = ".sgckpt"
KEEP_CHECKPOINTS = 2
_NAME = re.compile(r"^checkpoint-(\d+)\.sgckpt$")
_CHECKSUM_LINE = re.compile(rb"^sha256 ([0-9a-f]{64})\n$")
_RUNNER_KEY = "runner_json"

# Wall time of one advance_to call between checks for a due checkpoint (a stop request is checked
# more often, between the simulation's kernel calls).
_CHUNK_WALL_S = 0.5


class CheckpointError(UserInputError):
    """No usable checkpoint (missing, truncated, corrupt, or from an incompatible version)."""


class RunStopped(SimulationError):
    """A run stopped before its end time; the message says where and what was written.

    Attributes
    ----------
    exit_code : int
        Suggested process exit code: 130 after Ctrl-C/SIGTERM, 1 otherwise.
    resume_from : pathlib.Path or None
        The output folder whose checkpoint continues the run (:func:`softgrain.setup.resume`),
        None if there is none to continue from.
    """

    def __init__(self, message: str, exit_code: int = 1, resume_from: Path | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.resume_from = resume_from


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def checkpoint_path(folder: str | Path, step: int) -> Path:
    """The checkpoint file of ``step`` in ``folder``."""
    return Path(folder) / f"checkpoint-{int(step):012d}{SUFFIX}"


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Checkpoint files in ``folder``, newest (highest step) first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def _encode(state: dict[str, object]) -> bytes:
    buffer = _bytes_io.BytesIO()
    np.savez(buffer, **{key: np.asarray(value) for key, value in state.items()})
    return buffer.getvalue()


def _decode(payload: bytes) -> dict[str, object]:
    with np.load(_bytes_io.BytesIO(payload), allow_pickle=False) as archive:
        return {key: (archive[key].item() if archive[key].ndim == 0 else archive[key])
                for key in archive.files}


def write_checkpoint(folder: str | Path, state: dict[str, object],
                     runner: dict[str, object] | None = None) -> Path:
    """Write ``state`` (from :meth:`Simulation.state_dict`) atomically; keep the newest two.

    Parameters
    ----------
    folder : path
        The run's output folder.
    state : dict
        Arrays and scalars; must contain ``step``.
    runner : dict, optional
        How the run is driven (e.g. ``{"checkpoint_every_s": 50.0}``), restored by resume.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    payload = _encode({**state, _RUNNER_KEY: json.dumps(runner or {})})
    digest = hashlib.sha256(payload).hexdigest().encode("ascii")
    path = checkpoint_path(folder, int(state["step"]))
    with atomic_path(path, suffix=".tmp") as tmp:
        with open(tmp, "wb") as stream:
            stream.write(MAGIC)
            stream.write(b"sha256 " + digest + b"\n")
            stream.write(payload)
    logger.info("wrote checkpoint %s (step %s)", path, state["step"])
    for old in list_checkpoints(folder)[KEEP_CHECKPOINTS:]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, object], dict[str, object]]:
    """Read and verify one checkpoint; returns ``(state, runner)``.

    Raises
    ------
    CheckpointError
        If the file is unreadable, truncated, fails its checksum, or is not a checkpoint.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not data.startswith(MAGIC):
        raise CheckpointError(f"{path}: not a softgrain checkpoint (bad header)")
    line_end = data.find(b"\n", len(MAGIC))
    checksum = _CHECKSUM_LINE.match(data[len(MAGIC):line_end + 1]) if line_end > 0 else None
    if checksum is None:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint (no checksum line)")
    payload = data[line_end + 1:]
    if hashlib.sha256(payload).hexdigest().encode("ascii") != checksum.group(1):
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint (checksum mismatch)")
    try:
        state = _decode(payload)
        runner = json.loads(str(state.pop(_RUNNER_KEY, "{}")))
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint payload: {exc}") from None
    return state, runner


def load_latest(folder: str | Path) -> tuple[dict[str, object], dict[str, object], Path]:
    """The newest checkpoint in ``folder`` that passes verification.

    Corrupt or truncated files are skipped with a logged warning.

    Returns
    -------
    (state, runner, path)

    Raises
    ------
    CheckpointError
        If the folder holds no usable checkpoint; the message lists why each one was rejected.
    """
    problems = []
    for path in list_checkpoints(folder):
        try:
            state, runner = read_checkpoint(path)
        except CheckpointError as exc:
            logger.warning("%s; trying the previous checkpoint", exc)
            problems.append(str(exc))
            continue
        return state, runner, path
    detail = f": {'; '.join(problems)}" if problems else ""
    raise CheckpointError(f"{folder}: no usable checkpoint{detail}")


def interrupted_run(folder: str | Path) -> Path | None:
    """The newest checkpoint of a run in ``folder`` that has not finished, else None.

    A folder with checkpoints and no complete ``result.nc`` holds a run that stopped part-way
    (``--keep-checkpoints`` keeps them beside a complete result: that run is finished).
    """
    kept = list_checkpoints(folder)
    if not kept:
        return None
    result = Path(folder) / RESULT_FILE
    if result.is_file():
        try:
            with xr.open_dataset(result, engine=NETCDF_ENGINE) as ds:
                if ds.attrs.get("status") == "complete":
                    return None
        except (OSError, ValueError):
            pass   # unreadable: treat the run as unfinished
    return kept[0]


def remove_checkpoints(folder: str | Path) -> None:
    """Delete the checkpoints of a finished run (its outputs supersede them)."""
    for path in list_checkpoints(folder):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# ---------------------------------------------------------------------------------------------
# Driving a run
# ---------------------------------------------------------------------------------------------

@dataclass
class _StopRequest:
    """Set by the SIGINT/SIGTERM handler; checked between chunks of steps."""

    signal_name: str | None = None


@contextlib.contextmanager
def _deferred_interrupts() -> Iterator[_StopRequest]:
    """Turn the first SIGINT/SIGTERM into a stop request; a second one interrupts at once.

    Signal handlers can only be installed from the main thread; elsewhere (e.g. a Dask worker)
    signals keep their usual behaviour.
    """
    request = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame) -> None:
        request.signal_name = signal.Signals(signum).name
        for sig, old in previous.items():
            signal.signal(sig, old)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _where(sim) -> str:
    inside = f" + {sim.substep} of its {sim.substeps} sub-steps" if sim.substep else ""
    return f"step {sim.step}{inside} of {sim.total_steps} (t = {sim.time_s:g} s)"


def write_result(dataset: xr.Dataset, folder: str | Path) -> dict[str, Path]:
    """Write ``result.nc`` into ``folder`` (the default writer of :func:`run_to_end`)."""
    return {"result": write_netcdf(dataset, Path(folder) / RESULT_FILE)}


def run_to_end(sim: Simulation, folder: str | Path, checkpoint_every_s: float | None = None,
               progress: bool = False, write_outputs: Callable | None = None,
               keep_checkpoints: bool = False) -> xr.Dataset:
    """Advance ``sim`` to its end time with checkpoints; return the result dataset.

    Parameters
    ----------
    sim : softgrain.phasefield.solver.Simulation
        A new run, or one rebuilt by :func:`resume`.
    folder : path
        Output folder; checkpoints go here, and partial results if the run stops early.
    checkpoint_every_s : float, optional
        Simulated time between checkpoints (rounded to whole steps); None for none.
    progress : bool
        Show a progress bar.
    write_outputs : callable, optional
        ``write_outputs(dataset, folder)`` writes the run's outputs (default
        :func:`write_result`, ``result.nc`` only; :func:`softgrain.setup.save_run` writes the
        summary and the figures too); also used for partial results.
    keep_checkpoints : bool
        Keep the checkpoints after a successful finish (deleted by default).

    Returns
    -------
    xarray.Dataset
        The result (also written to ``folder`` by ``write_outputs``).

    Raises
    ------
    RunStopped
        After Ctrl-C/SIGTERM (a checkpoint and partial results were written), a disk error, or
        a non-finite field; the message names the step and time reached and the files left.
    """
    if write_outputs is None:
        write_outputs = write_result
    folder = Path(folder)
    dt = sim.inputs.dt_s
    every_steps = None
    if checkpoint_every_s is not None:
        if not (np.isfinite(checkpoint_every_s) and checkpoint_every_s > 0):
            raise ParameterError("checkpoint_every_s", f"{checkpoint_every_s}: must be a positive "
                                 "simulated time in s")
        every_steps = max(1, int(round(checkpoint_every_s / dt)))
    runner = {"checkpoint_every_s": checkpoint_every_s, "keep_checkpoints": keep_checkpoints}

    bar = None
    if progress:
        bar = tqdm(total=sim.total_steps, initial=sim.step, unit="step", desc=sim.inputs.name,
                   leave=False)
    chunk = 1
    try:
        with _deferred_interrupts() as stop:
            while not sim.finished:
                target = sim.total_steps
                if every_steps is not None:
                    target = min(target, (sim.step // every_steps + 1) * every_steps)
                target = min(target, sim.step + chunk)
                started = time.perf_counter()
                # The simulation asks between kernel calls of ~0.25 s, also inside a long
                # sub-stepped step, so that a stop request never waits for a whole step.
                sim.advance_to(target, bar.update if bar is not None else None,
                               should_stop=lambda: stop.signal_name is not None)
                elapsed = time.perf_counter() - started
                # Grow or shrink the chunk of steps between checks for a due checkpoint.
                chunk = max(1, min(chunk * 4, int(chunk * _CHUNK_WALL_S / max(elapsed, 1e-6))))
                saved = None
                if (every_steps is not None and sim.substep == 0 and sim.step % every_steps == 0
                        and not sim.finished):
                    saved = write_checkpoint(folder, sim.state_dict(), runner)
                if stop.signal_name is not None and not sim.finished:
                    saved = saved or write_checkpoint(folder, sim.state_dict(), runner)
                    partial = _write_partial(sim, folder, write_outputs)
                    raise RunStopped(
                        f"{stop.signal_name}: run stopped at {_where(sim)}; wrote checkpoint "
                        f"{saved} and {partial}", exit_code=130, resume_from=folder)
        dataset = run_dataset(sim)
        write_outputs(dataset, folder)
    except RunStopped:
        raise
    except SimulationError as exc:
        partial = _write_partial(sim, folder, write_outputs)
        kept = list_checkpoints(folder)
        raise RunStopped(f"{exc}; wrote {partial}"
                         + (f"; earlier checkpoint kept: {kept[0]}" if kept else "")) from None
    except KeyboardInterrupt:
        # A second Ctrl-C arrived while stepping: the field may be mid-update, so no checkpoint.
        partial = _write_partial(sim, folder, write_outputs)
        kept = list_checkpoints(folder)
        raise RunStopped(f"interrupted near {_where(sim)}; wrote {partial}"
                         + (f"; checkpoint {kept[0]} kept" if kept else ""), exit_code=130,
                         resume_from=folder if kept else None) from None
    except OSError as exc:
        partial = _write_partial(sim, folder, write_outputs)
        kept = list_checkpoints(folder)
        raise RunStopped(f"cannot write {exc.filename or 'a file'}: {exc.strerror or exc}; run stopped "
                         f"at {_where(sim)}; {partial}"
                         + (f"; last good checkpoint: {kept[0]}" if kept else "")) from None
    finally:
        if bar is not None:
            bar.close()
    if not keep_checkpoints:
        remove_checkpoints(folder)
    return dataset


def _write_partial(sim: Simulation, folder: Path, write_outputs: Callable) -> str:
    """Write the snapshots so far; return a phrase saying what was written (never raises)."""
    try:
        write_outputs(run_dataset(sim), folder)
    except OSError as exc:
        logger.warning("could not write the partial results into %s: %s", folder, exc)
        return f"no partial results ({exc.strerror or exc})"
    return f"the {len(sim.snapshots)} snapshot(s) so far to {folder}"


def remove_stale_writes(folder: str | Path) -> None:
    """Delete temporary files of checkpoint writes killed mid-way (SIGKILL, power loss)."""
    for stale in Path(folder).glob(".checkpoint-*" + SUFFIX + ".*.tmp"):
        logger.info("removing the unfinished checkpoint write %s", stale)
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


__all__ = [
    "CheckpointError",
    "KEEP_CHECKPOINTS",
    "RunStopped",
    "checkpoint_path",
    "interrupted_run",
    "list_checkpoints",
    "load_latest",
    "read_checkpoint",
    "remove_checkpoints",
    "remove_stale_writes",
    "run_to_end",
    "write_checkpoint",
    "write_result",
]
