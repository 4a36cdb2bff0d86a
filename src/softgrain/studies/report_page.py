"""The reproduction report: report.json → report.json, report.md and one self-contained report.html.

``softgrain reproduce`` gathers, per paper claim, what the paper says, what softgrain measured and
the verdict of the stated rule (:mod:`softgrain.studies.verdicts`), and hands that *report dict* to
:func:`render_report`, which validates it and writes, each file atomically,

- ``DIR/report.json`` — the numbers (the schema below, plus the verdict rules' text);
- ``DIR/report.md`` — the same content as Markdown, figures as relative links; its body is what
  :func:`update_readme_results` puts between the README's results markers;
- ``DIR/report.html`` — one page a reviewer can read offline and print: figures embedded as
  ``data:`` URIs, CSS inline, no scripts, no external address.

Schema of the report dict (``extra`` keys are refused, so a typo is an error)::

    quick          bool      reduced grid / seeds (a banner says so)
    generated_at   str       ISO-8601 UTC time
    title          str       optional page title
    paper          str       optional citation of the paper reproduced
    provenance     {softgrain_version, git_commit, git_dirty, python,
                    libraries: {name: version}, machine: {key: value}}   (collect_provenance())
    stages         {name: {status: done | reused | failed | not run, wall_s, cpu_s,
                           rerun_command, title?, summary?, figures?: [{path, caption}]}}
    calibrations   [{name, value, unit, label: PAPER | EXP-DATA | LIT | CALIBRATED | ASSUMED,
                     source, note}]
    claims         [{id, stage, claim, paper, measured, ci: [low, high] | null, seeds, unit,
                     verdict, kind, rule, caveat, figure, evidence}]      (verdicts.build_claim)

A stage's files live in ``DIR/<stage name>/``; figure paths (a stage's ``figures`` and a claim's
``figure``) are PNG files relative to that folder. Every verdict is re-derived from the claim's
stored ``evidence`` before anything is written, so a report.json edited by hand cannot show a
verdict its numbers do not support.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import posixpath
import re
import struct
from collections import Counter
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import jinja2
import psutil
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from softgrain.errors import UserInputError
from softgrain.output.files import atomic_write_text, write_json
from softgrain.provenance import environment
from softgrain.studies.verdicts import NOT_RUN, RULES, VERDICTS, evidence_from_dict, judge

RESULTS_START = "<!-- results:start -->"
RESULTS_END = "<!-- results:end -->"

LABELS = ("PAPER", "EXP-DATA", "LIT", "CALIBRATED", "ASSUMED")
LABEL_MEANINGS = {
    "PAPER": "stated in the paper",
    "EXP-DATA": "the paper's experimental data",
    "LIT": "from the literature (recalled values carry their uncertainty)",
    "CALIBRATED": "chosen inside the literature uncertainty so that a statement of the paper holds",
    "ASSUMED": "not given by the paper; a modelling assumption",
}

# Libraries besides the ones softgrain.provenance tracks that shape the report or its figures.
_REPORT_LIBRARIES = ("matplotlib", "dask", "zarr", "jinja2", "jax", "orix")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_STAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_CLAIM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# --- schema ---------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Figure(_Strict):
    path: str
    caption: str


class Table(_Strict):
    """Numbers of a stage as a table (all cells already formatted as text)."""

    caption: str
    header: list[str] = Field(min_length=1)
    rows: list[list[str]]

    @model_validator(mode="after")
    def _rectangular(self) -> "Table":
        if any(len(row) != len(self.header) for row in self.rows):
            raise ValueError(f"table {self.caption!r}: every row needs {len(self.header)} cells")
        return self


class Stage(_Strict):
    status: Literal["done", "reused", "failed", "not run"]
    wall_s: float | None = Field(ge=0)
    cpu_s: float | None = Field(ge=0)
    rerun_command: str = Field(min_length=1)
    git_commit: str | None = None
    formulation: str | None = None
    title: str | None = None
    summary: str | None = None
    tables: list[Table] = []
    figures: list[Figure] = []


class Calibration(_Strict):
    name: str
    value: float | str
    unit: str
    label: Literal["PAPER", "EXP-DATA", "LIT", "CALIBRATED", "ASSUMED"]
    source: str = Field(min_length=1)
    note: str = ""


class Claim(_Strict):
    id: str
    stage: str
    claim: str = Field(min_length=1)
    paper: float | str
    measured: float | str | None
    ci: tuple[float, float] | None
    seeds: int | None = Field(ge=1)
    unit: str | None = None
    verdict: Literal["reproduced", "partly", "not reproduced", "not run"]
    kind: str
    rule: str
    caveat: str
    figure: str | None
    evidence: dict[str, Any] | None

    @field_validator("id")
    @classmethod
    def _id_is_an_anchor(cls, value: str) -> str:
        if not _CLAIM_ID.match(value):
            raise ValueError("letters, digits, '.', '_' and '-' only (it becomes a page anchor)")
        return value

    @field_validator("claim")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value:
            raise ValueError("a claim is one line")
        return value


class Provenance(_Strict):
    softgrain_version: str
    git_commit: str
    git_dirty: str | None = None
    python: str
    libraries: dict[str, str]
    machine: dict[str, str | int | float]


class Report(_Strict):
    quick: bool
    generated_at: str
    title: str = "softgrain — reproduction report"
    paper: str | None = None
    provenance: Provenance
    stages: dict[str, Stage]
    calibrations: list[Calibration]
    claims: list[Claim]
    verdict_rules: dict[str, str] | None = None  # written by render_report from verdicts.RULES


def _one_line_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    value = repr(first.get("input"))
    value = value if len(value) <= 60 else value[:59] + "…"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    if first["type"] == "missing":
        return f"report: {where}: missing{more}"
    return f"report: {where} = {value}: {first['msg']}{more}"


def _figure_file(report_dir: Path, stage: str, relative: str, owner: str) -> Path:
    """The PNG a stage-relative figure path names, checked to exist inside the report folder."""
    if os.path.isabs(relative) or "\\" in relative:
        raise UserInputError(f"{owner}: figure = {relative!r}: must be a relative POSIX path "
                             f"inside DIR/{stage}/")
    path = (report_dir / stage / relative).resolve()
    if not path.is_relative_to(report_dir.resolve()):
        raise UserInputError(f"{owner}: figure = {relative!r}: points outside the report folder")
    if not path.is_file():
        raise UserInputError(f"{owner}: figure = {relative!r}: no file {path}")
    with open(path, "rb") as stream:
        if stream.read(len(_PNG_SIGNATURE)) != _PNG_SIGNATURE:
            raise UserInputError(f"{owner}: figure = {relative!r}: {path} is not a PNG file")
    return path


def validate_report(report: Mapping[str, Any], report_dir: str | os.PathLike) -> Report:
    """Check a report dict against the schema, its figures and its verdicts.

    Raises
    ------
    UserInputError
        One line naming the first problem: a schema error (key and value), a claim of an unknown
        stage, a duplicate claim id, a missing or non-PNG figure, or a verdict that its stored
        evidence does not give.
    """
    try:
        model = Report.model_validate(dict(report))
    except ValidationError as exc:
        raise UserInputError(_one_line_error(exc)) from None
    folder = Path(report_dir)
    for name, stage in model.stages.items():
        if not _STAGE_NAME.match(name):
            raise UserInputError(f"report: stages.{name}: a stage name is a folder name "
                                 f"(lower-case letters, digits, '-', '_')")
        for figure in stage.figures:
            _figure_file(folder, name, figure.path, f"stage {name}")
    seen: set[str] = set()
    for claim in model.claims:
        owner = f"claim {claim.id}"
        if claim.id in seen:
            raise UserInputError(f"report: claim id {claim.id!r} appears twice")
        seen.add(claim.id)
        if claim.stage not in model.stages:
            raise UserInputError(f"{owner}: stage = {claim.stage!r} is not in stages "
                                 f"({', '.join(model.stages) or 'none'})")
        if claim.ci is not None and claim.ci[0] > claim.ci[1]:
            raise UserInputError(f"{owner}: ci = {list(claim.ci)}: low > high")
        if claim.figure is not None:
            _figure_file(folder, claim.stage, claim.figure, owner)
        if claim.evidence is None and claim.verdict != NOT_RUN:
            raise UserInputError(f"{owner}: verdict {claim.verdict!r} without evidence; build claims "
                                 f"with softgrain.studies.verdicts.build_claim")
        derived = judge(evidence_from_dict(claim.evidence)).verdict
        if derived != claim.verdict:
            raise UserInputError(f"{owner}: verdict {claim.verdict!r} does not follow from its "
                                 f"evidence; the {claim.kind} rule gives {derived!r}")
    return model


# --- formatting -----------------------------------------------------------------------------

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def format_number(value: float | str | None, unit: str | None = None) -> str:
    """A number as a reader wants it: 3 significant digits, true minus, units; fractions in %.

    >>> format_number(-522.0, "J/m³"), format_number(0.6667, "fraction"), format_number(1e-15, "m²/s")
    ('−522 J/m³', '66.7 %', '1 × 10⁻¹⁵ m²/s')
    """
    if value is None:
        return "—"
    if isinstance(value, str):
        return value  # a statement or a text value is printed as written
    number = float(value)
    if unit == "fraction":
        return f"{100 * number:.1f} %".replace("-", "−")
    if number == 0:
        text = "0"
    elif 1e-3 <= abs(number) < 99999.5:
        # Three significant digits below 1000 (999.6 would print as "1e+03", so it goes on);
        # whole numbers with thin-space thousands above.
        text = (f"{number:.3g}" if abs(number) < 999.5
                else f"{number:,.0f}".replace(",", "\u2009"))
    else:
        mantissa, exponent = f"{number:.2e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        text = f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"
    text = text.replace("-", "−")
    return f"{text} {unit}" if unit else text


def format_interval(ci: tuple[float, float] | list[float] | None, unit: str | None) -> str:
    """``[low, high]`` in the value's unit (fractions in %), or an empty string."""
    if ci is None:
        return ""
    if unit == "fraction":
        return f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]".replace("-", "−")
    low, high = (format_number(bound) for bound in ci)
    return f"[{low}, {high}]"


def format_seconds(seconds: float | None) -> str:
    """``12.3 s``, ``4 min 05 s``, ``1 h 02 min``, or ``—``."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG header (IHDR follows the signature)."""
    with open(path, "rb") as stream:
        header = stream.read(24)
    return struct.unpack(">II", header[16:24])


def _measured_text(claim: Claim) -> dict[str, str]:
    seeds = f"{claim.seeds} seed{'s' if claim.seeds != 1 else ''}" if claim.seeds else ""
    return {"value": format_number(claim.measured, claim.unit),
            "ci": format_interval(claim.ci, claim.unit), "seeds": seeds}


# --- the view both templates read ---------------------------------------------------------------

def _view(model: Report, report_dir: Path, embed: bool, link_prefix: str) -> dict[str, Any]:
    """Everything the templates print, formatted; figures as data URIs or relative links."""
    figure_number = 0

    def figure(stage: str, relative: str, caption: str) -> dict[str, Any]:
        nonlocal figure_number
        figure_number += 1
        path = _figure_file(report_dir, stage, relative, f"stage {stage}")
        width, height = _png_size(path)
        link = posixpath.normpath(posixpath.join(link_prefix, stage, relative)).replace(" ", "%20")
        src = ("data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
               if embed else link)
        return {"number": figure_number, "src": src, "link": link, "caption": caption,
                "width": width, "height": height}

    claims = []
    for claim in model.claims:
        item = claim.model_dump()
        stage = model.stages.get(claim.stage)
        item.update(formulation=None if stage is None else stage.formulation,
                    paper_text=format_number(claim.paper, claim.unit),
                    measured_text=_measured_text(claim),
                    verdict_class=claim.verdict.replace(" ", "-"))
        claims.append(item)

    stages = []
    for name, stage in model.stages.items():
        own = [c for c in claims if c["stage"] == name]
        figures = [figure(name, f.path, f.caption) for f in stage.figures]
        listed = {f.path for f in stage.figures}
        for claim in own:
            if claim["figure"] and claim["figure"] not in listed:
                listed.add(claim["figure"])
                figures.append(figure(name, claim["figure"], claim["claim"]))
        stages.append({"name": name, "title": stage.title or name, "status": stage.status,
                       "wall": format_seconds(stage.wall_s), "cpu": format_seconds(stage.cpu_s),
                       "rerun_command": stage.rerun_command, "summary": stage.summary,
                       "commit": (stage.git_commit or "")[:10],
                       "tables": [t.model_dump() for t in stage.tables],
                       "claims": own, "figures": figures})

    tally = Counter(c.verdict for c in model.claims)
    walls = [s.wall_s for s in model.stages.values() if s.wall_s is not None]
    cpus = [s.cpu_s for s in model.stages.values() if s.cpu_s is not None]
    calibrations = [dict(c.model_dump(), value_text=format_number(c.value, c.unit or None))
                    for c in model.calibrations]
    commit = model.provenance.git_commit
    return {
        "report": model, "claims": claims, "stages": stages, "calibrations": calibrations,
        "tally": [(verdict, tally[verdict], verdict.replace(" ", "-"))
                  for verdict in VERDICTS if tally[verdict]],
        "rules": [(kind, text) for kind, text in RULES.items()],
        "labels": [(label, LABEL_MEANINGS[label]) for label in LABELS
                   if any(c.label == label for c in model.calibrations)],
        "total_wall": format_seconds(sum(walls)) if walls else "—",
        "total_cpu": format_seconds(sum(cpus)) if cpus else "—",
        "short_commit": commit[:10] if re.fullmatch(r"[0-9a-f]{40}", commit) else commit,
        "figure_count": figure_number,
    }


def _md_cell(text: Any) -> str:
    """Text safe inside a Markdown table cell (one line, pipes escaped)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _md_alt(text: Any) -> str:
    """Text safe as a Markdown image's alt text (brackets escaped)."""
    return _md_cell(text).replace("[", "\\[").replace("]", "\\]")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("softgrain", "templates"),
        autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    env.filters["md_cell"] = _md_cell
    env.filters["md_alt"] = _md_alt
    return env


def render_html(model: Report, report_dir: str | os.PathLike) -> str:
    """The self-contained page (figures embedded) for a validated report."""
    view = _view(model, Path(report_dir), embed=True, link_prefix="")
    return _environment().get_template("report.html.j2").render(**view)


def render_markdown(model: Report, report_dir: str | os.PathLike, *, link_prefix: str = "",
                    heading_level: int = 1, standalone: bool = True) -> str:
    """The report as Markdown.

    Parameters
    ----------
    model : Report
        A validated report (:func:`validate_report`).
    report_dir : path
        The folder holding the stage folders (figures are checked there).
    link_prefix : str
        Prefix of the figure links: ``""`` for report.md itself, the report folder relative to the
        README for the README's section.
    heading_level : int
        Level of the top heading: 1 for report.md, 3 inside the README's ``## Results``.
    standalone : bool
        Whether to print the page title (report.md) or only the body (README).
    """
    view = _view(model, Path(report_dir), embed=False, link_prefix=link_prefix)
    return _environment().get_template("report.md.j2").render(
        **view, level=heading_level, standalone=standalone)


def render_report(report: Mapping[str, Any], report_dir: str | os.PathLike) -> dict[str, Path]:
    """Validate a report dict and write report.json, report.md and report.html into ``report_dir``.

    Everything is checked and rendered before the first file is written, and each file is written
    atomically (temporary file in the same folder, then ``os.replace``), so a bad report leaves the
    previous files as they were.

    Returns
    -------
    dict
        ``{"json": path, "markdown": path, "html": path}``.
    """
    folder = Path(report_dir)
    if not folder.is_dir():
        raise UserInputError(f"report_dir = {str(folder)!r}: no such folder")
    model = validate_report(report, folder)
    model = model.model_copy(update={"verdict_rules": dict(RULES)})
    markdown = render_markdown(model, folder)
    html = render_html(model, folder)
    paths = {"json": folder / "report.json", "markdown": folder / "report.md",
             "html": folder / "report.html"}
    write_json(paths["json"], model.model_dump(mode="json"))
    atomic_write_text(paths["markdown"], markdown)
    atomic_write_text(paths["html"], html)
    return paths


def update_readme_results(readme: str | os.PathLike, report_dir: str | os.PathLike) -> Path:
    """Replace the README's text between the results markers with the report's Markdown body.

    The body is rendered from ``report_dir/report.json`` (headings from level 3, under the
    README's ``## Results``; figure links relative to the README). The README is rewritten
    atomically; without exactly one ``<!-- results:start -->`` followed by one
    ``<!-- results:end -->`` it is left untouched and a :class:`UserInputError` names the problem.
    """
    readme_path, folder = Path(readme), Path(report_dir)
    stored = folder / "report.json"
    if not stored.is_file():
        raise UserInputError(f"report_dir = {str(folder)!r}: no report.json (run softgrain reproduce)")
    model = validate_report(json.loads(stored.read_text(encoding="utf-8")), folder)
    text = readme_path.read_text(encoding="utf-8")
    starts, ends = text.count(RESULTS_START), text.count(RESULTS_END)
    if starts != 1 or ends != 1 or text.index(RESULTS_START) > text.index(RESULTS_END):
        raise UserInputError(f"readme = {str(readme_path)!r}: needs one {RESULTS_START} followed by "
                             f"one {RESULTS_END} (found {starts} and {ends})")
    prefix = Path(os.path.relpath(folder.resolve(), readme_path.resolve().parent)).as_posix()
    body = render_markdown(model, folder, link_prefix="" if prefix == "." else prefix,
                           heading_level=3, standalone=False)
    head, rest = text.split(RESULTS_START)
    _, tail = rest.split(RESULTS_END)
    atomic_write_text(readme_path, f"{head}{RESULTS_START}\n{body.strip()}\n{RESULTS_END}{tail}")
    return readme_path


def collect_provenance() -> dict[str, Any]:
    """The report's ``provenance`` block for this process and machine."""
    env = environment()
    libraries = {key[: -len("_version")]: value for key, value in env.items()
                 if key.endswith("_version") and key != "softgrain_version"}
    for name in _REPORT_LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = "not installed"
    memory = psutil.virtual_memory().total / 2**30
    return {
        "softgrain_version": env["softgrain_version"], "git_commit": env["git_commit"],
        "git_dirty": env["git_dirty"], "python": env["python"], "libraries": libraries,
        "machine": {"platform": env["platform"], "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count() or 0, "memory_GiB": round(memory, 1),
                    "node": platform.node()},
    }


__all__ = ["RESULTS_END", "RESULTS_START", "Report", "collect_provenance", "format_number",
           "render_html", "render_markdown", "render_report", "update_readme_results",
           "validate_report"]
