"""`softgrain bench` prints the issue-4 measures, measured in one run (not a timed test)."""

from __future__ import annotations

import json

import pytest

from cli_helpers import invoke_main

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
