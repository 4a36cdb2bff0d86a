"""File output at the edge of the package: atomic writes, output folders, NetCDF results.

Every file is written to a temporary name in the destination folder, flushed to disk, and then
renamed over the destination (``os.replace`` is atomic on POSIX): a crash or a full disk mid-write
leaves either the old file or the new one, never a truncated mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import xarray as xr

from softgrain.errors import UserInputError

NETCDF_ENGINE = "netcdf4"


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


def save_figure(fig, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt

    target = Path(path)
    with atomic_path(target, suffix=target.suffix) as tmp:
        fig.savefig(tmp, dpi=dpi, format=target.suffix.lstrip(".") or "png", bbox_inches="tight")
    plt.close(fig)
    return target


def check_output_dir(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Raise :class:`UserInputError` if ``path`` cannot take a run's outputs; create nothing.

    Lets a command refuse a bad ``--out`` before any work (and before creating the folder).
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"--out {folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise UserInputError(
            f"--out {folder}: folder exists and is not empty; choose another or pass --overwrite")
    return folder


def prepare_output_dir(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Create ``path`` for a run's outputs; refuse a non-empty folder unless ``overwrite``."""
    folder = check_output_dir(path, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
