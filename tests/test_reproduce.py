"""`softgrain reproduce`: the quick run end to end, killed and resumed, and its report.

Requirement (issue 14): ``softgrain reproduce --quick --out DIR`` exits 0 and writes report.html,
report.json and report.md, report.json listing every claim with ``claim``, ``paper``,
``measured``, ``ci``, ``seeds``, ``verdict``, ``caveat``; killing the command midway and running
it again finishes without recomputing the finished stages.

Design covered: one quick reproduction per test session (module fixture) is started as a user
would start it, SIGKILLed (with its Dask workers: the whole process group) as soon as the first
stage's completion marker appears, and run again to the end. The tests read that folder; the
ones that change it work on a copy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_helpers import invoke_main
from softgrain.config import load_config
from softgrain.errors import ParameterError
from softgrain.phasefield import backends
from softgrain.studies import reproduce as rp
from softgrain.studies.report_page import RESULTS_END, RESULTS_START, render_report

REQUIRED_CLAIM_KEYS = ("claim", "paper", "measured", "ci", "seeds", "verdict", "caveat")
RUN_TIMEOUT_S = 600


def _command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "softgrain", "reproduce", "--quick", "--out", str(out), "--quiet", *extra]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """A quick reproduction killed after its first stage and then finished by a second call."""
    out = tmp_path_factory.mktemp("reproduce") / "quick"
    first_marker = out / rp.stage_names(quick=True)[0] / rp.MARKER_FILE
    # A session of its own, so that the kill also takes the Dask workers this run started.
    process = subprocess.Popen(_command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    started = time.monotonic()
    while not first_marker.is_file():
        if process.poll() is not None:
            pytest.fail(f"reproduce ended (code {process.returncode}) before the first stage finished: "
                        f"{process.stderr.read().decode()[-2000:]}")
        if time.monotonic() - started > RUN_TIMEOUT_S:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("the first stage did not finish in time")
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    at_kill = {name: (out / name / rp.MARKER_FILE).read_bytes() for name in rp.stage_names(quick=True)
               if (out / name / rp.MARKER_FILE).is_file()}
    second = subprocess.run(_command(out), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    return {"out": out, "killed_code": process.returncode, "at_kill": at_kill, "second": second}


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_quick_run_exits_0_and_writes_the_three_files(quick_run):
    second = quick_run["second"]
    assert second.returncode == 0, second.stderr[-3000:]
    out = quick_run["out"]
    for name in ("report.html", "report.json", "report.md"):
        assert (out / name).stat().st_size > 1000, name
    report = _report(out)
    assert report["quick"] is True
    assert "QUICK" in (out / "report.md").read_text(encoding="utf-8")
    assert set(report["stages"]) == set(rp.stage_names(quick=True))
    assert all(stage["status"] in ("done", "reused") for stage in report["stages"].values())


def test_every_claim_has_the_required_fields_and_a_judged_verdict(quick_run):
    report = _report(quick_run["out"])
    claims = report["claims"]
    assert len(claims) >= 20
    for claim in claims:
        missing = [key for key in REQUIRED_CLAIM_KEYS if key not in claim]
        assert not missing, (claim["id"], missing)
        assert claim["verdict"] in ("reproduced", "partly", "not reproduced"), claim["id"]
        assert claim["caveat"], claim["id"]
        if claim["ci"] is not None:
            low, high = claim["ci"]
            assert low <= high
            if claim["unit"] == "fraction":  # intervals are clipped to what a fraction can be
                assert 0.0 <= low and high <= 1.0, claim["id"]
    by_id = {c["id"]: c for c in claims}
    # Ensemble claims carry their seed count; the theory is deterministic (no seeds, no interval).
    assert by_id["presets-paper-li-solid"]["seeds"] == rp.QUICK_SEEDS
    assert by_id["fig3a-crossover"]["seeds"] is None and by_id["fig3a-crossover"]["ci"] is None
    assert by_id["fig3a-crossover"]["measured"] == pytest.approx(48.7, abs=0.05)


def test_killed_run_resumes_without_recomputing_finished_stages(quick_run):
    assert quick_run["killed_code"] == -signal.SIGKILL
    at_kill = quick_run["at_kill"]
    names = rp.stage_names(quick=True)
    assert names[0] in at_kill
    assert len(at_kill) < len(names), "the kill came after the last stage: nothing was left to resume"
    out = quick_run["out"]
    report = _report(out)
    for name in names:
        marker = out / name / rp.MARKER_FILE
        stage = report["stages"][name]
        if name in at_kill:
            # Not recomputed: the marker is byte-for-byte the one written before the kill, and the
            # report keeps that stage's original times.
            assert marker.read_bytes() == at_kill[name], name
            stored = json.loads(at_kill[name])
            assert stage["status"] == "reused", name
            assert stage["wall_s"] == pytest.approx(stored["wall_s"], abs=1e-3)
            assert stage["cpu_s"] == pytest.approx(stored["cpu_s"], abs=1e-3)
        else:
            assert stage["status"] == "done", name
            assert marker.is_file(), name


def test_the_real_report_renders_in_chromium(quick_run):
    from test_report_page import _chromium, _probe

    binary = _chromium()
    out = quick_run["out"]
    page = out / "report.html"
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html and "https://" not in html
    figures = sum(len(stage["figures"]) for stage in _report(out)["stages"].values())
    copy = out.parent / "browser"
    copy.mkdir(exist_ok=True)
    shutil.copy(page, copy / "report.html")  # the probe writes beside the page it opens
    (result,) = _probe(binary, [copy / "report.html"])
    assert result["errors"] == []
    assert result["broken"] == []
    assert result["images"] == figures


def test_a_stage_reruns_alone_and_the_readme_section_follows(quick_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "copy"
    shutil.copytree(quick_run["out"], out)
    before = {name: (out / name / rp.MARKER_FILE).read_bytes() for name in rp.stage_names(quick=True)}
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Results\n\n{RESULTS_START}\nold text\n{RESULTS_END}\n\n## After\n",
                      encoding="utf-8")
    code, stdout, stderr = invoke_main(monkeypatch, capsys, "reproduce", "--quick", "--out", str(out),
                                       "--quiet", "--stage", "theory", "--redo", "--update-readme",
                                       "--readme", str(readme))
    assert code == 0, stderr
    report = _report(out)
    assert report["stages"]["theory"]["status"] == "done"
    assert (out / "theory" / rp.MARKER_FILE).read_bytes() != before["theory"]
    assert not (out / "theory.previous").exists()
    for name in rp.stage_names(quick=True)[1:]:
        assert report["stages"][name]["status"] == "reused"
        assert (out / name / rp.MARKER_FILE).read_bytes() == before[name]
    text = readme.read_text(encoding="utf-8")
    assert "old text" not in text and text.endswith(f"{RESULTS_END}\n\n## After\n")
    assert "QUICK RUN" in text and "copy/theory/fig3a.png" in text


def test_other_settings_are_refused_before_anything_is_written(quick_run):
    out = quick_run["out"]
    settings = (out / rp.SETTINGS_FILE).read_bytes()
    with pytest.raises(ParameterError, match="seeds 2 .now 3."):
        rp.reproduce(out, quick=True, seeds=3)
    with pytest.raises(ParameterError, match="quick True .now False."):
        rp.reproduce(out)
    assert (out / rp.SETTINGS_FILE).read_bytes() == settings


@pytest.mark.parametrize("args, message", [
    (("--seeds", "1"), "--seeds = 1: need at least 2"),
    (("--backend", "cuda"), "--backend = 'cuda'; allowed: numba, jax"),
    (("--stage", "fig9"), "--stage = 'fig9': no such stage; stages: theory, interlayer"),
    (("--redo",), "--redo needs --stage"),
    (("--workers", "2", "--scheduler", "tcp://127.0.0.1:1"), "--workers applies to the local cluster only"),
])
def test_bad_flags_exit_2_with_one_line(tmp_path, monkeypatch, capsys, args, message):
    out = tmp_path / "never"
    code, stdout, stderr = invoke_main(monkeypatch, capsys, "reproduce", "--quick", "--out", str(out), *args)
    assert code == 2
    assert stderr.count("\n") == 1 and message in stderr, stderr
    assert not out.exists()


def test_a_folder_of_other_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ParameterError, match="not a softgrain reproduction"):
        rp.reproduce(tmp_path, quick=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_stages_that_did_not_finish_give_not_run_claims(tmp_path):
    settings = rp.Settings.make(True, None, "numba")
    stages = rp.plan_stages(("paper", "consistent"), orientations=True)
    outcomes = {s.name: rp.StageOutcome("failed", 1.0, 0.5, None, "RuntimeError: boom") for s in stages}
    report = rp.build_report(tmp_path, settings, stages, outcomes)
    render_report(report, tmp_path)
    stored = _report(tmp_path)
    assert {c["verdict"] for c in stored["claims"]} == {"not run"}
    assert {c["stage"] for c in stored["claims"]} == {s.name for s in stages}
    assert all("FAILED: RuntimeError: boom" in s["summary"] for s in stored["stages"].values())


def test_stage_plan_has_a_slot_for_every_optional_feature():
    names = [s.name for s in rp.plan_stages(("paper", "consistent"), orientations=True)]
    assert names == ["theory", "interlayer", "presets-paper", "presets-consistent", "experiments-paper",
                     "experiments-consistent", "phase-map-paper", "phase-map-consistent",
                     "orientations-paper", "orientations-consistent"]
    quick = [s.name for s in rp.plan_stages(("paper", "consistent"), orientations=True, quick=True)]
    assert quick == ["theory", "interlayer", "presets-paper", "presets-consistent", "experiments-paper",
                     "phase-map-paper", "orientations-paper"]
    assert rp.available_formulations()[0] == "paper"
    assert "numba" in rp.backends_available()


@pytest.mark.parametrize("f101, f001, expected", [
    ([0.9, 0.6, 0.1, 0.0], [0.1, 0.4, 0.9, 1.0], (0.2, 0.3, True)),   # (101) → (001) between 2nd and 3rd
    ([0.2, 0.1, 0.0, 0.0], [0.8, 0.9, 1.0, 1.0], (None, None, False)),  # (001) everywhere: no boundary
    ([0.1, 0.9, 0.9, 0.9], [0.9, 0.1, 0.1, 0.1], (None, None, False)),  # reversed arrangement
])
def test_phase_map_boundary_bracket(f101, f001, expected):
    assert rp._boundary_bracket([0.1, 0.2, 0.3, 0.4], f101, f001) == expected


def test_calibrations_carry_labels_and_sources():
    rows = rp.collect_calibrations()
    assert all(row["label"] in ("PAPER", "EXP-DATA", "LIT", "CALIBRATED", "ASSUMED") for row in rows)
    assert all(row["source"] for row in rows)
    names = {row["name"]: row for row in rows}
    strained = names["Li: surface_energy.101 (strain −3 %)"]
    assert (strained["value"], strained["unit"], strained["label"]) == (0.545, "J/m²", "CALIBRATED")
    assert names["phase field: landau.w"]["label"] == "ASSUMED"
    assert any(row["name"] == "EBSD grain counts" and "inferred" in row["source"] for row in rows)


def test_jax_backend_is_accepted_where_jax_is_installed(tmp_path, monkeypatch, capsys):
    assert ("jax" in rp.backends_available()) == backends.jax_available()
    if backends.jax_available():
        settings = rp.Settings.make(True, None, "jax")
        changes = settings.overrides("paper")
        assert changes["numerics.backend"] == "jax" and "--backend jax" in settings.flags()
        assert load_config("li-solid", changes).numerics.backend == "jax"
    # Without jax: one line naming the install command, exit 2, nothing written.
    monkeypatch.setattr(backends, "jax_available", lambda: False)
    monkeypatch.setattr(rp, "jax_available", lambda: False)
    assert rp.backends_available() == ("numba",)
    out = tmp_path / "never"
    code, stdout, stderr = invoke_main(monkeypatch, capsys, "reproduce", "--quick", "--out", str(out),
                                       "--backend", "jax")
    assert code == 2
    assert stderr.count("\n") == 1 and "needs jax" in stderr and "pip install" in stderr, stderr
    assert not out.exists()


def test_stage_tables_match_the_stored_results(quick_run):
    """The number tables of the report are built from each stage's result.json: every preset and
    every random-orientation class appears, with the stored mean as the first number of its cell."""
    out = quick_run["out"]
    report = _report(out)
    presets = json.loads((out / "presets-paper" / rp.RESULT_FILE).read_text(encoding="utf-8"))["presets"]
    (table,) = report["stages"]["presets-paper"]["tables"]
    assert [row[0] for row in table["rows"]] == list(presets)
    for row in table["rows"]:
        stored = presets[row[0]]["summary"]["fraction"]
        for k, orientation in enumerate(("001", "101", "111")):
            cell = row[table["header"].index(f"({orientation})")]
            assert float(cell.split()[0]) == pytest.approx(100 * stored[orientation]["mean"], abs=0.05)
    orientation_stages = [name for name in report["stages"] if name.startswith("orientations-")]
    for name in orientation_stages:
        (table,) = report["stages"][name]["tables"]
        assert table["header"][1:5] == ["(001)", "(101)", "(111)", "other"]
        assert any(row[0].startswith("random orientations") for row in table["rows"])
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "| preset | case | paper | (001) | (101) | (111) | seeds |" in markdown
