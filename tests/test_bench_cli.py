"""`softgrain bench` prints the issue-4 measures, measured in one run (not a timed test)."""

from __future__ import annotations

import json

import pytest

from cli_helpers import invoke_main
from softgrain.config import load_config
from softgrain.setup import build
from softgrain.studies.benchmark import full_height_steps, measure_jax_throughput

HEADLINE = ("speedup_vs_dense", "grain_scaling_750_over_75", "cell_step_ratio_large",
            "peak_rss_large_MB", "reference_run_s")


@pytest.mark.slow  # measures a 2000 × 700 grid in a subprocess: a benchmark run, not a unit test
def test_bench_json_has_the_headline_measures(monkeypatch, capsys):
    code, out, err = invoke_main(monkeypatch, capsys, "bench", "--quick", "--no-reference-run", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(HEADLINE) <= set(result)
    assert result["speedup_vs_dense"] > 1.0      # the sparse kernel beats the dense reference
    assert result["peak_rss_large_MB"] > 0
    assert result["reference_run_s"] is None     # skipped on request


def test_bench_rejects_an_unknown_preset(monkeypatch, capsys):
    code, out, err = invoke_main(monkeypatch, capsys, "bench", "--preset", "li-plasma")
    assert code == 2
    assert len(err.splitlines()) == 1 and "li-plasma" in err


def test_bench_rejects_an_unknown_backend(monkeypatch, capsys):
    code, _, err = invoke_main(monkeypatch, capsys, "bench", "--backend", "cuda")
    assert code == 2 and len(err.splitlines()) == 1 and "cuda" in err


def test_full_height_steps_counts_computed_rows():
    """A run's cost unit of the JAX projection: Σ over outer steps of sub-steps × bucketed rows / ny."""
    pytest.importorskip("jax", reason="the JAX backend is optional")
    # batched_jax imports jax at module level: imported here, after the skip, not at the top
    from softgrain.phasefield.batched_jax import ROW_BUCKET, bucket_rows

    with pytest.warns(UserWarning):
        inputs = build(load_config("li-solid", {"run.end_time_s": 10.0}))
    ny = inputs.shape[0]
    expected = sum(inputs.substeps * bucket_rows(inputs.front.active_rows(s), ny, ROW_BUCKET) / ny
                   for s in range(inputs.total_steps))
    assert full_height_steps(inputs) == pytest.approx(expected)
    assert full_height_steps(inputs) < inputs.total_steps * inputs.substeps


def test_jax_throughput_measures_each_batch(monkeypatch):
    """measure_jax_throughput on the paper grid, batches 1 and 2, float32, one step each; a batch
    that does not fit the device memory is reported as skipped, not run."""
    pytest.importorskip("jax", reason="the JAX backend is optional")
    from softgrain.phasefield import batched_jax  # after the skip: imports jax

    per_run = batched_jax.bytes_per_run(75, 70, 200, "float32")
    monkeypatch.setattr(batched_jax, "available_memory", lambda device=None: int(1.5 * per_run / 0.8))
    result = measure_jax_throughput("li-solid", batches=(1, 2), dtypes=("float32",), budget_s=0.0,
                                    min_steps=1, max_steps=1)
    one = result["results"]["float32_batch1"]
    assert one["s_per_run"] == pytest.approx(one["s_per_run_step"] * result["full_height_steps_per_run"])
    assert one["runs_per_s"] == pytest.approx(1 / one["s_per_run"]) and one["failed_runs"] == 0
    assert "does not fit" in result["results"]["float32_batch2"]["skipped"] or \
        "at most 1" in result["results"]["float32_batch2"]["skipped"]
