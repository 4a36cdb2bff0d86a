"""Everything a phase-field run needs, as numbers: :class:`ModelInputs`.

The engine never sees a configuration. :func:`softgrain.setup.build` turns a validated
configuration into these numbers (strain from the cell conditions, E_s and E_a per orientation,
L_q and κ_q per grain, the Landau coefficients, the nuclei, the deposition front, the time step and
its sub-steps), as MOOSE's ``GBEvolution`` material maps σ, Q and T to L and κ so that kernels
never see units; the :class:`~softgrain.phasefield.solver.Simulation` only runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import numpy as np

from softgrain.phasefield.deposition import DepositionFront
from softgrain.phasefield.energy import Landau
from softgrain.phasefield.grains import GrainParameters
from softgrain.phasefield.initial import Nucleation
from softgrain.phasefield.mapping import OrientationParameters


@dataclass(frozen=True)
class ModelInputs:
    """The numbers of one phase-field run.

    Attributes
    ----------
    name : str
        Label of the run (progress bar, result title).
    shape : (int, int)
        (ny, nx) cells; row 0 is the substrate, x is periodic.
    spacing_um : float
        Physical grid spacing Δx (µm), for lengths in the results.
    laplacian_spacing : float
        Grid spacing h in the Laplacian's units (1 = grid units).
    dt_s : float
        Outer time step Δt (s); snapshots and the front count in these steps.
    substeps : int
        Explicit-Euler sub-steps per outer step (Δt / substeps is below the stability limit).
    stability_limit_s : float
        The explicit-Euler stability limit (s) of these L_q and κ_q.
    total_steps : int
        Outer steps of the run.
    snapshot_steps : tuple of int
        Outer steps at which the grain map is stored (the last one included).
    landau : Landau
        Coefficients of the Landau polynomial and its weight w (Eq. S13).
    orientation_parameters : OrientationParameters
        E_s, E_a, L and κ of each orientation, and E0 and T of the mapping (Eq. S14–S15).
    nucleation : Nucleation
        Initial grain map and the orientation index of every grain.
    custom_initial_labels : bool
        Whether the initial map was given (analytic states) rather than nucleated.
    front : DepositionFront
        Row activation schedule.
    open_front : bool
        The front faces empty space (φ = 0) rather than a zero-flux wall, once the deposit is
        ``open_front_from_rows`` thick (:meth:`front_is_open`).
    grains : GrainParameters
        L_q, κ_q, w_q and g_q of every grain (the paper formulation: w_q = Landau w, g_q = 0).
    open_front_from_rows : int
        An open front stays zero-flux while fewer rows are deposited (0: open from the start);
        W of :func:`~softgrain.phasefield.deposition.resolved_front_rows` for
        ``deposition.open_front_from = "resolved"``.
    formulation : {"paper", "consistent"}
        How the per-grain constants were mapped (``model.formulation``).
    strain_coupling_m3_J : float
        λ (m³/J) of the consistent formulation's strain term; 0 for the paper formulation.
    orientation_strain_energy_J_m3 : numpy.ndarray or None
        F_strain = σ_y ε (theory Eq. S9–S11) of each orientation (consistent formulation only).
    kernel : {"sparse", "dense"}
        Compiled sparse kernel or the dense NumPy reference.
    prune_threshold : float
        Order-parameter values below this are dropped by the sparse kernel.
    capacity : int
        Order-parameter slots per cell of the sparse kernel.
    threads : int or None
        Kernel threads (None: leave numba's setting).
    config_json : str
        The configuration these numbers were built from, as JSON; the engine does not read it but
        keeps it with its checkpoints, so that a run can be rebuilt and traced.
    attrs : mapping
        Descriptive attributes of the run (preset, metal, temperature, seed) for the results.
    grain_quaternion : numpy.ndarray or None
        (n, 4) unit quaternion (w, x, y, z) of each grain's crystal orientation (orix's convention:
        sample → crystal, cubic m-3m symmetry); None where inputs were made without one. The
        engine does not read it: the orientation acts only through ``mobility`` and ``kappa``.
    grain_surface_energy_J_m2, grain_barrier_eV : numpy.ndarray or None
        E_s (J/m²) and E_a (eV) of each grain, from which ``mobility`` and ``kappa`` were mapped
        (the pole values for labelled grains, interpolated for any other growth direction); None:
        the per-orientation values of ``orientation_parameters`` apply.
    """

    name: str
    shape: tuple[int, int]
    spacing_um: float
    laplacian_spacing: float
    dt_s: float
    substeps: int
    stability_limit_s: float
    total_steps: int
    snapshot_steps: tuple[int, ...]
    landau: Landau
    orientation_parameters: OrientationParameters
    nucleation: Nucleation
    custom_initial_labels: bool
    front: DepositionFront
    open_front: bool
    grains: GrainParameters
    open_front_from_rows: int = 0
    formulation: Literal["paper", "consistent"] = "paper"
    strain_coupling_m3_J: float = 0.0
    orientation_strain_energy_J_m3: np.ndarray | None = None
    kernel: Literal["sparse", "dense"] = "sparse"
    prune_threshold: float = 1e-8
    capacity: int = 8
    threads: int | None = None
    config_json: str = ""
    attrs: Mapping[str, Any] = field(default_factory=dict)
    grain_quaternion: np.ndarray | None = None
    grain_surface_energy_J_m2: np.ndarray | None = None
    grain_barrier_eV: np.ndarray | None = None

    @property
    def mobility(self) -> np.ndarray:
        """L_q of every grain."""
        return self.grains.mobility

    @property
    def kappa(self) -> np.ndarray:
        """κ_q of every grain."""
        return self.grains.kappa

    def front_is_open(self, active_rows: int) -> bool:
        """Whether the deposition front faces empty space (φ = 0) while ``active_rows`` are deposited.

        Every kernel and the free energy take this flag per segment (segments break at row
        activations, so it switches exactly when the deposit reaches ``open_front_from_rows``).
        """
        return self.open_front and active_rows >= self.open_front_from_rows

    @property
    def n_grains(self) -> int:
        return int(len(self.nucleation.grain_orientation))


__all__ = ["ModelInputs"]
