"""Which computing backend runs the model, and loading the optional JAX one.

``numerics.backend = "numba"`` runs the CPU kernels (:mod:`~softgrain.phasefield.sparse`, or the
dense NumPy reference :mod:`~softgrain.phasefield.dense`); ``"jax"`` runs the batched JAX kernel
(:mod:`~softgrain.phasefield.batched_jax`) on CPU or GPU. jax is an optional extra, so nothing in
softgrain imports :mod:`~softgrain.phasefield.batched_jax` at module level: it is loaded here, on
request, and a missing jax becomes a one-line :class:`~softgrain.errors.BackendUnavailableError`
saying how to install it.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from softgrain.errors import BackendUnavailableError

BACKENDS = ("numba", "jax")

INSTALL_HINT = ('pip install -e ".[jax]" (CPU); on a CUDA machine pip install "jax[cuda12]" or '
                '"jax[cuda13]" (matching its CUDA driver)')


def jax_available() -> bool:
    """Whether jax can be imported, without importing it.

    Importing jax on a GPU machine initialises the device and reserves most of its memory, so
    a process that only plans work (the client of a Dask cluster) asks without importing.
    """
    try:
        return importlib.util.find_spec("jax") is not None
    except (ImportError, ValueError):
        return False


def require_jax() -> None:
    """Raise :class:`BackendUnavailableError` (one line, with the install command) without jax."""
    if not jax_available():
        raise BackendUnavailableError(
            f"numerics.backend = 'jax' needs jax, which is not installed: {INSTALL_HINT}")


def load_batched_jax() -> ModuleType:
    """The module :mod:`softgrain.phasefield.batched_jax`, imported on first use.

    Imported lazily because jax is an optional dependency (and heavy: it initialises the
    device); the rest of softgrain must work without it.

    Raises
    ------
    BackendUnavailableError
        If jax (or a library it needs) cannot be imported; the message says how to install it.
    """
    require_jax()
    try:
        return importlib.import_module("softgrain.phasefield.batched_jax")
    except ImportError as exc:
        raise BackendUnavailableError(
            f"numerics.backend = 'jax': jax is installed but cannot be imported ({exc}); "
            f"reinstall it: {INSTALL_HINT}") from None


__all__ = ["BACKENDS", "INSTALL_HINT", "jax_available", "load_batched_jax", "require_jax"]
