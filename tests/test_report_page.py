"""The reproduction report page (softgrain.studies.report_page), checked as files and in Chromium.

The report dict below is synthetic — the renderer is under test, not the physics — but it has the
shape ``softgrain reproduce`` writes: claims built by ``verdicts.build_claim`` from evidence, and
two real PNG figures drawn with matplotlib. The browser test opens report.html in headless
Chromium and fails on a missing or undecodable image or on a script error; it is skipped, with the
reason, where no Chromium binary is installed (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import copy
import functools
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from softgrain.errors import UserInputError  # noqa: E402
from softgrain.studies.report_page import (RESULTS_END, RESULTS_START, collect_provenance,  # noqa: E402
                                           format_interval, format_number, format_seconds,
                                           render_report, update_readme_results)
from softgrain.studies.verdicts import (FactorEvidence, FractionEvidence,  # noqa: E402
                                        ThresholdEvidence, WinnerEvidence, build_claim)

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _draw_figures() -> dict[str, bytes]:
    """Two small, real PNGs (a line plot and a map), keyed by their path under the report folder."""
    pngs = {}
    temperature = np.linspace(-20, 100, 61)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(temperature, 20 * (temperature - 48.7), label="ΔU (solid)")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("T (°C)")
    ax.set_ylabel("ΔU (J/m³)")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    pngs["theory/fig3a.png"] = buffer.getvalue()
    plt.close(fig)
    rng = np.random.default_rng(1)
    fig, ax = plt.subplots(figsize=(6, 2.4))
    ax.imshow(rng.integers(0, 3, size=(14, 40)), cmap="viridis", interpolation="nearest")
    ax.set_axis_off()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    pngs["presets/li_solid_grain_maps.png"] = buffer.getvalue()
    plt.close(fig)
    return pngs


@functools.lru_cache(maxsize=1)
def _figures() -> dict[str, bytes]:
    return _draw_figures()  # drawn once per session; every test writes its own copies


def synthetic_report(report_dir: Path, quick: bool = True) -> dict:
    """A small report dict of the shape softgrain reproduce hands to render_report."""
    for relative, data in _figures().items():
        (report_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (report_dir / relative).write_bytes(data)
    claims = [
        build_claim(id="fig3a-solid-25c", stage="theory",
                    claim="Solid electrolyte, 25 °C: ΔU(001 − 101) < 0, so (001) is favoured",
                    paper="(001) favoured (Fig. 3A)", unit="J/m³", figure="fig3a.png",
                    evidence=ThresholdEvidence(measured=-522.0, relation="<", bound=0.0),
                    caveat="Rests on the calibrated strained surface energies; |ΔU| is 5 % of either term."),
        build_claim(id="fig3a-crossover", stage="theory",
                    claim="Solid electrolyte: the (001) → (101) crossover lies between 25 and 80 °C",
                    paper="between 25 and 80 °C", unit="°C",
                    evidence=ThresholdEvidence(measured=48.7, relation="between", bound=(25.0, 80.0)),
                    caveat=""),
        build_claim(id="fig2-li-solid", stage="presets",
                    claim="Li under a solid electrolyte (−3 % strain) selects (001) | Fig. 2",
                    paper="(001)", unit="fraction", figure="li_solid_grain_maps.png",
                    evidence=WinnerEvidence("001", {"001": [1.0, 1.0, 1.0], "101": [0.0, 0.0, 0.0],
                                                    "111": [0.0, 0.0, 0.0]}),
                    caveat="Decided in the first rows; open deposition front."),
        build_claim(id="ebsd-25c-001", stage="presets",
                    claim="25 °C on bare Cu: (001) fraction against EBSD",
                    paper=0.571, unit="fraction",
                    evidence=FractionEvidence(measured=1.0, ci=(1.0, 1.0), seeds=3, experiment=0.571,
                                              experiment_count=21, reference=0.5,
                                              reference_meaning="the majority"),
                    caveat="EBSD grain count 21 inferred from the percentages."),
        build_claim(id="fig4-boundary", stage="phase-map",
                    claim="The (101)/(001) boundary follows the theory's ΔU = 0 line",
                    paper=0.098, unit="J/m²",
                    evidence=FactorEvidence(low=0.005, high=0.017, paper=0.098, factor=2.0,
                                            arrangement_agrees=True, seeds=2),
                    caveat="2 seeds per point; 4 × 4 grid."),
        build_claim(id="fig5a-criteria", stage="interlayer",
                    claim="Only amorphous LixSi with 0.5 < x < 0.79 meets all five criteria",
                    paper="0.50 < x < 0.79", evidence=None, caveat="Stage failed in this run."),
    ]
    return {
        "quick": quick,
        "generated_at": "2026-11-28T12:00:00Z",
        "paper": "Zhang, Tantratian et al., Grain Selection Growth of Soft Metal in Electrochemical Processes",
        "provenance": collect_provenance(),
        "stages": {
            "theory": {"status": "done", "wall_s": 1.2, "cpu_s": 1.1, "title": "Thermodynamic theory (Fig. 3A)",
                       "rerun_command": "softgrain theory --json --plot fig3a.png",
                       "summary": "Eq. S1–S11 with the Fig. 3A parameters, (001) against (101)."},
            "presets": {"status": "reused", "wall_s": 95.0, "cpu_s": 180.0,
                        "title": "Phase-field texture selection (Fig. 2, S3, S5, S6)",
                        "rerun_command": "python scripts/reproduce_presets.py --seeds 3",
                        "figures": [{"path": "li_solid_grain_maps.png",
                                     "caption": "li-solid, seed 1: orientation map at 400 s <synthetic> & co."}]},
            "phase-map": {"status": "done", "wall_s": 538.0, "cpu_s": 512.0, "title": "Texture phase map (Fig. 4)",
                          "rerun_command": "softgrain phase-map --out runs/map"},
            "interlayer": {"status": "failed", "wall_s": None, "cpu_s": None,
                           "title": "Interlayer design (Fig. 5A)", "rerun_command": "softgrain interlayer --json"},
        },
        "calibrations": [
            {"name": "E_s(001), E_s(101), unstrained Li", "value": "0.462 / 0.465", "unit": "J/m²",
             "label": "CALIBRATED", "source": "data/li.toml; literature 0.46 / 0.49",
             "note": "(101) placed 0.003 J/m² above (001)"},
            {"name": "Yield strength of Li σ_y", "value": 0.55, "unit": "MPa", "label": "PAPER",
             "source": "paper Fig. 3A parameters", "note": ""},
            {"name": "Landau w", "value": 1.0, "unit": "", "label": "ASSUMED",
             "source": "the paper prints none", "note": ""},
        ],
        "claims": claims,
    }


# --- formatting ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value, unit, text", [
    (-522.0, "J/m³", "−522 J/m³"), (48.66, "°C", "48.7 °C"), (9778.0, "J/m³", "9\u2009778 J/m³"),
    (999.7, None, "1\u2009000"), (0.098, "J/m²", "0.098 J/m²"), (1e-15, "m²/s", "1 × 10⁻¹⁵ m²/s"),
    (2.5e5, None, "2.5 × 10⁵"), (0.0, None, "0"), (0.6667, "fraction", "66.7 %"),
    ("(001) favoured", "J/m³", "(001) favoured"), (None, "°C", "—"),
])
def test_numbers_are_printed_for_readers(value, unit, text):
    assert format_number(value, unit) == text


def test_intervals_and_times():
    assert format_interval((0.58, 0.753), "fraction") == "[58.0, 75.3]"
    assert format_interval((-0.02, 0.5), "fraction") == "[−2.0, 50.0]"  # t-intervals are not clipped
    assert format_interval(None, "fraction") == ""
    assert [format_seconds(s) for s in (None, 12.34, 125, 3725)] == ["—", "12.3 s", "2 min 05 s", "1 h 02 min"]


# --- files ----------------------------------------------------------------------------------

def test_render_writes_three_files_with_the_same_numbers(tmp_path):
    report = synthetic_report(tmp_path)
    paths = render_report(report, tmp_path)
    assert sorted(p.name for p in paths.values()) == ["report.html", "report.json", "report.md"]
    stored = json.loads(paths["json"].read_text())
    assert [c["verdict"] for c in stored["claims"]] == [
        "reproduced", "reproduced", "reproduced", "partly", "partly", "not run"]
    for claim in stored["claims"]:
        assert {"claim", "paper", "measured", "ci", "seeds", "verdict", "rule", "caveat"} <= set(claim)
    assert set(stored["verdict_rules"]) >= {"winner", "fraction", "threshold", "factor"}
    # report.json is itself a valid report: rendering it again gives the same page.
    html = paths["html"].read_text()
    render_report(stored, tmp_path)
    assert paths["html"].read_text() == html


def test_html_is_self_contained(tmp_path):
    html = render_report(synthetic_report(tmp_path), tmp_path)["html"].read_text()
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(?:src|href)\s*=\s*["\']?\s*(?:https?:|//|file:)', html, re.I)
    assert "url(" not in html and "@import" not in html and "<script" not in html.lower()
    assert "QUICK RUN — reduced grid/seeds" in html
    # Text is escaped, not interpreted: the caption's "<synthetic> & co." stays text.
    assert "&lt;synthetic&gt; &amp; co." in html


def test_full_run_has_no_quick_banner(tmp_path):
    html = render_report(synthetic_report(tmp_path, quick=False), tmp_path)["html"].read_text()
    assert "QUICK RUN" not in html


def test_markdown_links_the_figures_and_escapes_table_cells(tmp_path):
    markdown = render_report(synthetic_report(tmp_path), tmp_path)["markdown"].read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert links == ["theory/fig3a.png", "presets/li_solid_grain_maps.png"]
    assert all((tmp_path / link).is_file() for link in links)
    assert "selects (001) \\| Fig. 2" in markdown  # a '|' in a claim does not split the table row
    assert "QUICK RUN — reduced grid/seeds" in markdown


def test_readme_section_between_the_markers_is_replaced(tmp_path):
    report_dir = tmp_path / "docs" / "report"
    report_dir.mkdir(parents=True)
    render_report(synthetic_report(report_dir), report_dir)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Results\n\n{RESULTS_START}\nhand-written, stale\n{RESULTS_END}\n\n## Next\n")
    update_readme_results(readme, report_dir)
    text = readme.read_text()
    assert "stale" not in text and text.startswith("# x\n\n## Results\n\n") and text.endswith("## Next\n")
    assert "### Thermodynamic theory (Fig. 3A)" in text  # headings sit under the README's ## Results
    assert "](docs/report/theory/fig3a.png)" in text
    update_readme_results(readme, report_dir)  # idempotent
    assert readme.read_text() == text


def test_readme_without_markers_is_left_untouched(tmp_path):
    render_report(synthetic_report(tmp_path), tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n## Results\nby hand\n")
    with pytest.raises(UserInputError, match="results:start"):
        update_readme_results(readme, tmp_path)
    assert readme.read_text() == "# x\n## Results\nby hand\n"


@pytest.mark.parametrize("damage, message", [
    (lambda r: r["claims"][0].update(verdict="partly"), "does not follow from its evidence"),
    (lambda r: r["claims"][2].update(figure="missing.png"), "figure = 'missing.png': no file"),
    (lambda r: r["claims"][2].update(figure="../../outside.png"), "outside the report folder"),
    (lambda r: r["claims"][1].update(stage="nowhere"), "stage = 'nowhere' is not in stages"),
    (lambda r: r["calibrations"][0].update(label="GUESSED"), "calibrations.0.label"),
    (lambda r: r["claims"][3].update(evidence=None), "without evidence"),
    (lambda r: r.update(colour="red"), "colour"),
    (lambda r: next(iter(r["stages"].values())).update(
        tables=[{"caption": "t", "header": ["a", "b"], "rows": [["1"]]}]), "every row needs 2 cells"),
])
def test_a_bad_report_is_refused_and_earlier_files_survive(tmp_path, damage, message):
    report = synthetic_report(tmp_path)
    paths = render_report(report, tmp_path)
    before = {key: path.read_bytes() for key, path in paths.items()}
    broken = copy.deepcopy(report)
    damage(broken)
    with pytest.raises(UserInputError, match=re.escape(message)):
        render_report(broken, tmp_path)
    assert {key: path.read_bytes() for key, path in paths.items()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report")]  # no temporaries left


# --- the page in a real browser ---------------------------------------------------------------

# Injected first in <head> of a copy of the page: records script errors and failed resources,
# and on "load" whether every <img> decoded (naturalWidth > 0), as attributes of <html> that
# --dump-dom prints. The page itself has no scripts.
_PROBE = """<script>(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && t.tagName) { errors.push("failed " + t.tagName + " " + (t.alt || "")); }
    else { errors.push("script error: " + e.message); }
  }, true);
  window.addEventListener("unhandledrejection", function (e) { errors.push("rejection: " + e.reason); });
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                       .map(function (i) { return i.alt; });
    var root = document.documentElement;
    root.setAttribute("data-probe-images", String(images.length));
    root.setAttribute("data-probe-broken", encodeURIComponent(JSON.stringify(broken)));
    root.setAttribute("data-probe-errors", encodeURIComponent(JSON.stringify(errors)));
    root.setAttribute("data-probe-done", "yes");
  });
})();</script>"""


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"no Chromium binary ({', '.join(CHROMIUM_NAMES)}) on PATH: install Debian's "
                f"'chromium' package to run the browser check of report.html")


def _chromium_command(binary: str, profile: Path, *args: str) -> list[str]:
    # A private profile folder per browser: other processes (and the other probe) run Chromium too.
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-extensions", "--hide-scrollbars",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]


def _probe(binary: str, pages: list[Path]) -> list[dict]:
    """Open each page with the probe injected (browsers in parallel); images, broken, errors."""
    browsers = []
    for page in pages:
        probed = page.with_name("probe-" + page.name)
        probed.write_text(page.read_text().replace("<head>", "<head>" + _PROBE, 1))
        command = _chromium_command(binary, page.with_name(f"profile-{page.stem}"),
                                    "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
        browsers.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True))
    results = []
    for browser in browsers:
        try:
            stdout, stderr = browser.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            browser.kill()
            stdout, stderr = browser.communicate()
            pytest.fail(f"Chromium did not finish within 90 s; stderr: {stderr[-2000:]}")
        assert browser.returncode == 0, stderr[-2000:]
        root = re.search(r"<html[^>]*>", stdout)
        assert root, f"Chromium printed no DOM; stderr: {stderr[-2000:]}"
        attributes = dict(re.findall(r'data-probe-(\w+)="([^"]*)"', root.group(0)))
        assert attributes.get("done") == "yes", f"the load event never fired; stderr: {stderr[-2000:]}"
        console = [line for line in stderr.splitlines() if "Uncaught" in line]
        results.append({"images": int(attributes["images"]),
                        "broken": json.loads(unquote(attributes["broken"])),
                        "errors": json.loads(unquote(attributes["errors"])) + console})
    return results


def test_report_page_renders_in_chromium(tmp_path):
    binary = _chromium()
    report_dir = tmp_path / "out"
    report_dir.mkdir()
    page = render_report(synthetic_report(report_dir), report_dir)["html"]
    # The probe must catch what it looks for: a control page with an undecodable image and a
    # throwing script, opened beside the real one.
    control = report_dir / "control.html"
    control.write_text(page.read_text()
                       .replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1)
                       .replace("</body>", "<script>undefinedFunction();</script></body>"))

    result, caught = _probe(binary, [page, control])
    assert result["images"] == 2
    assert result["broken"] == [], f"images that did not load: {result['broken']}"
    assert result["errors"] == [], f"errors in the page: {result['errors']}"
    assert len(caught["broken"]) == 1
    assert any("undefinedFunction" in error for error in caught["errors"])

    # A screenshot for a person to look at, on request (it costs another browser start):
    # SOFTGRAIN_REPORT_SCREENSHOT=/tmp/report.png pytest tests/test_report_page.py
    wanted = os.environ.get("SOFTGRAIN_REPORT_SCREENSHOT")
    if wanted:
        shot = Path(wanted).resolve()
        done = subprocess.run(_chromium_command(binary, tmp_path / "profile-shot", f"--screenshot={shot}",
                                                "--window-size=1200,2000", page.as_uri()),
                              capture_output=True, text=True, timeout=90, check=False)
        assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
        pixels = plt.imread(shot)
        assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50  # not a blank page
