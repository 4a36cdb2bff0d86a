"""Provenance of a result: which code, on which machine, when, from which command.

:func:`environment` gathers everything that identifies the software and machine (softgrain
version, git commit of the source tree if it is a git checkout, Python, key library versions,
platform); :func:`utc_now` gives the ISO-8601 timestamps that runs record for their start and end.
The run's resolved configuration and seed are stored next to these in its result (see
:func:`softgrain.output.results.run_dataset`), so a figure can be re-made exactly from the
``result.nc`` it came from.
"""

from __future__ import annotations

import datetime as _dt
import logging
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from softgrain import __version__

logger = logging.getLogger(__name__)

# Libraries whose versions can change the numbers or the files of a run.
_TRACKED_LIBRARIES = ("numpy", "numba", "scipy", "xarray", "netCDF4", "pydantic")

# git must answer quickly; a hung network file system must not stall a run.
_GIT_TIMEOUT_S = 5.0


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string with seconds, e.g. ``2026-11-26T20:15:03Z``."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=_GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("git %s failed: %s", " ".join(args), exc)
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@lru_cache(maxsize=1)
def git_state() -> tuple[str, bool | None]:
    """``(commit, dirty)`` of the git checkout holding the softgrain sources.

    ``commit`` is ``"unknown"`` and ``dirty`` None when the package is not in a git checkout
    (installed from a wheel) or git is unavailable. ``dirty`` tells whether tracked files differ
    from the commit, in which case the commit alone does not reproduce the code.
    """
    source_dir = Path(__file__).resolve().parent
    commit = _git(["rev-parse", "HEAD"], source_dir)
    if not commit:
        return "unknown", None
    status = _git(["status", "--porcelain", "--untracked-files=no"], source_dir)
    return commit, (bool(status) if status is not None else None)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, str]:
    """Software and machine provenance as flat string attributes (NetCDF-safe).

    Returns
    -------
    dict
        ``softgrain_version``, ``git_commit``, ``git_dirty`` ("yes"/"no"/"unknown"),
        ``python``, ``platform``, ``command`` (the command line), and ``<library>_version``
        for the libraries that determine the numbers (numpy, numba, scipy, xarray, netCDF4,
        pydantic).
    """
    commit, dirty = git_state()
    info = {
        "softgrain_version": __version__,
        "git_commit": commit,
        "git_dirty": "unknown" if dirty is None else ("yes" if dirty else "no"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
    }
    for name in _TRACKED_LIBRARIES:
        info[f"{name.lower()}_version"] = _version(name)
    return info
