"""Files: atomic writes, output folders and their locks, NetCDF results and figures.

Every file is written to a temporary name in the destination folder, flushed to disk, and then
renamed over the destination (``os.replace`` is atomic on POSIX): a crash or a full disk mid-write
leaves either the old file or the new one, never a truncated mix. A command working in a run
folder holds an OS lock on it (:func:`folder_lock`), so that a second command cannot compute and
write there at the same time.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

try:  # POSIX advisory locks; absent on Windows, where run folders are then not locked.
    import fcntl
except ImportError:  # pragma: no cover - not on the POSIX systems softgrain runs on
    fcntl = None

import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from softgrain import provenance
from softgrain.errors import ParameterError, UserInputError

NETCDF_ENGINE = "netcdf4"

LOCK_FILE = ".softgrain.lock"
"""Lock file of a run folder while a command works in it (removed when it ends)."""


class FolderInUseError(UserInputError):
    """Another process holds the run folder's lock; the message says who (pid, host, since)."""


_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); silently skipped where unsupported."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp",
                                        dir=target.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as stream:
            os.fsync(stream.fileno())
        # mkstemp creates owner-only files; results get the usual umask mode (shared machines).
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, target)
        _fsync_folder(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a dataset to NetCDF-4 (via netCDF4), atomically."""
    with atomic_path(path, suffix=".nc") as tmp:
        ds.to_netcdf(tmp, engine=NETCDF_ENGINE)
    return Path(path)


def read_netcdf(path: str | os.PathLike) -> xr.Dataset:
    """Load a result file fully into memory (the file is closed on return)."""
    with xr.open_dataset(path, engine=NETCDF_ENGINE) as ds:
        return ds.load()


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 150) -> Path:
    """Save ``fig`` to ``path`` atomically; the format follows the file extension.

    The figure is rendered by the Agg canvas (no pyplot, no GUI backend), so this is safe in
    headless runs and threads.

    Raises
    ------
    UserInputError
        If the directory does not exist or the extension is not an image format matplotlib
        can write; the message names the path.
    """
    target = Path(path)
    suffix = target.suffix.lower().lstrip(".")
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    supported = canvas.get_supported_filetypes()
    if suffix not in supported:
        raise UserInputError(
            f"cannot write figure {str(target)!r}: unknown extension {target.suffix!r}; "
            f"use one of {', '.join('.' + s for s in sorted(supported))}"
        )
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise UserInputError(f"cannot write figure {str(target)!r}: no directory {str(directory)!r}")
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format=suffix, dpi=dpi, bbox_inches="tight")
    return target


def check_writable(path: str | os.PathLike, parameter: str) -> Path:
    """Raise :class:`~softgrain.errors.ParameterError` unless files can be created at ``path``.

    ``path`` is a folder that exists or is to be created: its nearest existing ancestor (itself
    if it exists) must be a folder in which a file can be created — probed by creating and
    removing an empty temporary file, the one test that also holds for root, read-only file
    systems and pseudo-file systems such as /proc. Nothing is left behind.

    Parameters
    ----------
    path : path
        The folder (existing or not).
    parameter : str
        The caller's name of the path in messages (``out_dir``, ``store`` …).
    """
    target = Path(path)
    probe = target.absolute()
    while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        where = "exists and is not a folder" if probe == target.absolute() else f"{probe} is a file, not a folder"
        raise ParameterError(parameter, f"{target}: {where}")
    try:
        handle, name = tempfile.mkstemp(prefix=".softgrain-write-test-", dir=probe)
    except OSError as exc:
        verb = "write into" if probe == target.absolute() else f"create {target} in"
        raise ParameterError(parameter, f"{target}: cannot {verb} {probe} "
                             f"({exc.strerror or exc})") from None
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return target


def check_output_dir(out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Raise :class:`~softgrain.errors.ParameterError` if ``out_dir`` cannot take a run's outputs.

    Creates nothing: lets a command refuse a bad output folder before any work (and before
    creating the folder) — a path below a file, a folder that cannot be created or written, a
    non-empty folder without ``overwrite``.
    """
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise ParameterError("out_dir", f"{folder}: exists and is not a folder")
    try:
        occupied = folder.is_dir() and any(folder.iterdir())
    except OSError as exc:
        raise ParameterError("out_dir", f"{folder}: cannot read the folder ({exc.strerror or exc})") from None
    if occupied and not overwrite:
        raise ParameterError("out_dir", f"{folder}: folder exists and is not empty; choose another "
                             "or pass {overwrite}", related=["overwrite"])
    check_writable(folder, "out_dir")
    return folder


def prepare_output_dir(out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Create ``out_dir`` for a run's outputs; refuse a non-empty folder unless ``overwrite``."""
    folder = check_output_dir(out_dir, overwrite)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError("out_dir", f"{folder}: cannot create it ({exc.strerror or exc})") from None
    return folder


def _holder(descriptor: int) -> str:
    """Who holds a lock, from what the holder wrote into the lock file."""
    for _ in range(20):   # the holder writes its details right after locking: wait a moment
        os.lseek(descriptor, 0, os.SEEK_SET)
        text = os.read(descriptor, 65536).decode("utf-8", "replace")
        try:
            info = json.loads(text)
            return (f"softgrain pid {info['pid']} on {info['host']} since {info['since']} "
                    f"({info['command']})")
        except (ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "another softgrain process"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive OS lock (``fcntl.flock``) on a run folder while working in it.

    The lock file :data:`LOCK_FILE` in ``folder`` records who holds it (pid, host, start time,
    command); it is removed when the lock is released. The kernel releases the lock of a process
    that dies, so a crashed run never blocks its folder.

    Raises
    ------
    FolderInUseError
        At once (no waiting) if another process holds the lock; the message names it.
    """
    folder = Path(folder)
    path = folder / LOCK_FILE
    if fcntl is None:  # pragma: no cover - Windows
        yield path
        return
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(descriptor) if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN) else None
            os.close(descriptor)
            if holder is None:
                raise
            raise FolderInUseError(f"{folder}: in use by {holder}; wait for it to finish, or stop "
                                   "it (Ctrl-C) first") from None
        # The previous holder removes the file as it releases the lock: if the file we locked is
        # no longer the one at ``path``, the lock protects nothing — open the new one.
        try:
            current = os.stat(path).st_ino == os.fstat(descriptor).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(descriptor)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": provenance.utc_now(),
            "command": " ".join(["softgrain", *sys.argv[1:]])}
    os.ftruncate(descriptor, 0)
    os.write(descriptor, json.dumps(info).encode("utf-8"))
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()   # while locked: a process that opened it meanwhile sees it gone (inode check)
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)
