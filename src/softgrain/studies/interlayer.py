"""Phase-field ensembles of a preset on interlayer substrates (paper Fig. 5A → 5D).

The catalogue of substrates is data (:mod:`softgrain.materials.substrates`); the criteria and the
theory's chain modulus → strain → orientation are physics (:mod:`softgrain.physics.interlayer`).
This module runs the phase-field model on chosen substrates: each substrate sets
``conditions.substrate`` of a preset, whose lattice strain then follows from the conditions.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from softgrain.config import load_config
from softgrain.materials.substrates import find_material
from softgrain.setup import material_inputs
from softgrain.studies.experiments import simulate_ensemble
from softgrain.studies.runner import dask_client


def simulate_substrates(substrates: Sequence[str], seeds: int, preset: str = "li-solid-lixsi",
                        workers: int | None = None,
                        overrides: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Phase-field ensemble of ``preset`` with its ``conditions.substrate`` set to each substrate.

    Returns, per substrate, the resolved strain and each orientation's fraction as
    ``{"mean", "ci95": [lo, hi]}`` over ``seeds`` nucleation seeds
    (:func:`softgrain.studies.runner.run_ensemble` and
    :func:`softgrain.analysis.ensemble_statistics`).
    """
    configs = {}
    for name in substrates:
        material = find_material(name)
        changes = dict(overrides or {})
        changes["conditions.substrate"] = material.name
        configs[material.name] = load_config(preset, changes)
    out: dict[str, dict[str, Any]] = {}
    # One Dask cluster for all substrates: starting worker processes costs seconds each time.
    with dask_client(None, workers) as client:
        for name, config in configs.items():
            result = simulate_ensemble(config, seeds, client=client)
            out[name] = {"strain": material_inputs(config).strain, **result}
    return out


__all__ = ["simulate_substrates"]
