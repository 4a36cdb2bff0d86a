"""Figures of softgrain, one function per figure of the paper, plus an atomic figure writer.

Each ``plot_*`` function returns a :class:`matplotlib.figure.Figure` built without
:mod:`matplotlib.pyplot`, so no GUI backend, global figure registry or display is involved: the
figures are rendered by the Agg canvas when saved and are safe in headless runs and threads.
:func:`save_figure` writes a figure atomically (temporary file in the target directory, then
:func:`os.replace`), so an interrupted run never leaves a truncated image behind.

Figures:

* :func:`plot_theory_fig3a` — paper Fig. 3A: ΔΓ_surface, ΔF_strain and ΔU against temperature.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from softgrain.errors import UserInputError
from softgrain.materials import Metal, load_metal
from softgrain.theory import (
    ELECTROLYTE_STRAIN,
    FIG3A_PAIR,
    TheoryParameters,
    crossover_temperatures,
    default_temperatures_C,
    energy_difference,
    resolve_strain,
)

# mkstemp creates files readable by the owner only; published figures get the usual umask mode.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK

# Plotting in kJ/m³ keeps the tick labels short; Fig. 3A's terms are ~1e3–1e4 J/m³.
_J_PER_KJ = 1e3


def plot_theory_fig3a(metal: str | Metal = "Li", pair: Sequence[str] = FIG3A_PAIR,
                      temperatures_C: Any = None,
                      strains: Mapping[str, float | str] | None = None,
                      params: TheoryParameters | None = None,
                      points: int = 241) -> Figure:
    """Paper Fig. 3A: ΔΓ_surface, ΔF_strain and ΔU = U(pair[0]) − U(pair[1]) vs temperature.

    One panel per strain case (default: the liquid and the solid electrolyte of
    :data:`softgrain.theory.ELECTROLYTE_STRAIN`), with the ΔU = 0 line and every crossover
    temperature in the plotted range marked.

    Parameters
    ----------
    metal : str or Metal
        Metal symbol or loaded data.
    pair : two str
        Orientations compared (default (001), (101) as in the paper).
    temperatures_C : array_like, optional
        The plotted range is ``min(temperatures_C)`` … ``max(temperatures_C)``; default −20 … 100 °C
        (below the melting point). A single temperature also uses the default range.
    strains : mapping, optional
        Panel title → strain (number, or electrolyte name). Default: liquid and solid.
    params : TheoryParameters, optional
        Default: :meth:`TheoryParameters.from_data` for ``metal``.
    points : int
        Number of temperatures sampled per curve.

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = load_metal(metal) if isinstance(metal, str) else metal
    p = params if params is not None else TheoryParameters.from_data(data)
    cases = dict(strains) if strains else {name: name for name in ELECTROLYTE_STRAIN}
    span = np.atleast_1d(np.asarray(temperatures_C if temperatures_C is not None
                                    else default_temperatures_C(data), dtype=float))
    if span.size == 0 or span.min() == span.max():
        span = default_temperatures_C(data)
    grid = np.linspace(span.min(), span.max(), points)

    fig = Figure(figsize=(4.2 * len(cases), 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(cases), sharey=True, squeeze=False)[0]
    for ax, (title, strain) in zip(axes, cases.items()):
        eps = resolve_strain(strain)
        d = energy_difference(data, pair, grid, eps, p)
        first, second = d.pair
        ax.plot(grid, d.delta_gamma_J_m3 / _J_PER_KJ, color="tab:blue", ls="--",
                label=r"$\Delta\Gamma_\mathrm{surface}$")
        ax.plot(grid, d.delta_f_strain_J_m3 / _J_PER_KJ, color="tab:orange", ls="-.",
                label=r"$\Delta F_\mathrm{strain}$")
        ax.plot(grid, d.delta_u_J_m3 / _J_PER_KJ, color="black", lw=2, label=r"$\Delta U$")
        ax.axhline(0.0, color="grey", lw=0.8)
        for t_cross in crossover_temperatures(data, d.pair, eps, p, (grid[0], grid[-1])):
            ax.axvline(t_cross, color="tab:red", lw=1, ls=":")
            ax.plot([t_cross], [0.0], "o", color="tab:red", zorder=3)
            ax.annotate(f"{t_cross:.1f} °C", (t_cross, 0.0), textcoords="offset points",
                        xytext=(4, 6), color="tab:red", fontsize=8)
        ax.set_title(f"{data.symbol}, {title} (strain {eps:+.3f})", fontsize=10)
        ax.set_xlabel("temperature (°C)")
    axes[0].set_ylabel(f"U({first}) − U({second}) terms (kJ/m³)")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"{data.symbol} ({first}) vs ({second}), paper Eq. S3 + S10: "
                 f"ΔU > 0 favours ({second}), ΔU < 0 favours ({first})", fontsize=10)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 150) -> Path:
    """Save ``fig`` to ``path`` atomically; the format follows the file extension.

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
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format=suffix, dpi=dpi)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target
