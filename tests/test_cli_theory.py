"""``softgrain theory``: JSON contract, multi-value options, exit code 2 on bad input, --plot."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from softgrain.cli import _expand_greedy, app
from cli_helpers import invoke_main

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["theory", *args])


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    return invoke_main(monkeypatch, capsys, "theory", *args)


def test_json_contract():
    result = run("--metal", "Li", "--electrolyte", "solid", "--pair", "001", "101",
                 "--temperature", "25", "80", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {"metal", "electrolyte", "pair", "crossover_temperature_C", "rows"} <= set(doc)
    assert doc["metal"] == "Li" and doc["electrolyte"] == "solid" and doc["pair"] == ["001", "101"]
    assert 25.0 < doc["crossover_temperature_C"] < 80.0
    assert [r["temperature_C"] for r in doc["rows"]] == [25.0, 80.0]
    assert [r["favoured"] for r in doc["rows"]] == ["001", "101"]
    for row in doc["rows"]:
        assert set(row) == {"temperature_C", "delta_gamma_J_m3", "delta_f_strain_J_m3", "delta_u_J_m3", "favoured"}
        assert row["delta_u_J_m3"] == pytest.approx(row["delta_gamma_J_m3"] + row["delta_f_strain_J_m3"])


def test_liquid_json_has_null_crossover():
    result = run("--electrolyte", "liquid", "--temperature", "-20", "25", "100", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["crossover_temperature_C"] is None
    assert [r["temperature_C"] for r in doc["rows"]] == [-20.0, 25.0, 100.0]
    assert all(r["favoured"] == "101" for r in doc["rows"])


def test_defaults_solid_li_001_101_fig3a_range():
    result = run("--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["metal"], doc["electrolyte"], doc["pair"]) == ("Li", "solid", ["001", "101"])
    np.testing.assert_allclose([r["temperature_C"] for r in doc["rows"]], np.arange(-20, 101, 5))


def test_temperature_forms_agree():
    spaced = json.loads(run("--temperature", "25", "80", "--json").stdout)
    repeated = json.loads(run("--temperature", "25", "--temperature", "80", "--json").stdout)
    inline = json.loads(run("--temperature=25", "80", "--json").stdout)
    short = json.loads(run("--json", "-T", "25", "80").stdout)
    assert spaced == repeated == inline == short


def test_strain_option_overrides_electrolyte():
    doc = json.loads(run("--strain", "-0.015", "--temperature", "25", "--json").stdout)
    assert doc["strain"] == -0.015 and doc["electrolyte"] is None
    liquid = json.loads(run("--electrolyte", "liquid", "-T", "25", "--json").stdout)
    solid = json.loads(run("--electrolyte", "solid", "-T", "25", "--json").stdout)
    mid = (liquid["rows"][0]["delta_gamma_J_m3"] + solid["rows"][0]["delta_gamma_J_m3"]) / 2
    assert doc["rows"][0]["delta_gamma_J_m3"] == pytest.approx(mid)


def test_readable_table():
    result = run("--temperature", "25", "80")
    assert result.exit_code == 0
    assert "(001)" in result.stdout and "(101)" in result.stdout
    assert "Crossover temperature" in result.stdout


def test_expand_greedy_keeps_other_tokens():
    greedy = {"--temperature"}
    assert _expand_greedy(["--temperature", "-20", "-5", "--json"], greedy) == [
        "--temperature", "-20", "--temperature", "-5", "--json"]
    assert _expand_greedy(["--pair", "001", "101"], greedy) == ["--pair", "001", "101"]
    assert _expand_greedy(["--temperature", "1", "--", "2"], greedy) == ["--temperature", "1", "--", "2"]


@pytest.mark.parametrize(
    "args, named",
    [
        (["--metal", "Xx"], "'Xx'"),
        (["--pair", "001", "123"], "'123'"),
        (["--electrolyte", "gel"], "'gel'"),
        (["--temperature", "25", "abc"], "'abc'"),
        (["--temperature", "2O"], "'2O'"),
        (["--strain", "0.1"], "+0.1000"),
        (["--strain", "lots"], "'lots'"),
        (["--temperature", "500"], "500"),
    ],
)
def test_bad_input_exit_2_one_line(monkeypatch, capsys, args, named):
    code, out, err = run_main(monkeypatch, capsys, *args)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("softgrain: error:") and named in lines[0]
    assert "Traceback" not in err


def test_bad_metal_via_python_m():
    proc = subprocess.run([sys.executable, "-m", "softgrain", "theory", "--metal", "Xx", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "'Xx'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_json_via_python_m():
    proc = subprocess.run([sys.executable, "-m", "softgrain", "theory", "--metal", "Li",
                           "--electrolyte", "solid", "--pair", "001", "101", "--temperature", "25", "80",
                           "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # exactly one JSON object on stdout
    assert [r["favoured"] for r in doc["rows"]] == ["001", "101"]


def test_plot_writes_png(tmp_path):
    target = tmp_path / "fig3a.png"
    result = run("--temperature", "25", "80", "--json", "--plot", str(target))
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # the plot does not pollute the JSON
    data = target.read_bytes()
    assert len(data) > 1000 and data.startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == ["fig3a.png"]  # no temp file left behind


def test_plot_bad_extension_exit_2(monkeypatch, capsys, tmp_path):
    code, _, err = run_main(monkeypatch, capsys, "--plot", str(tmp_path / "fig.xyz"))
    assert code == 2 and "fig.xyz" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
