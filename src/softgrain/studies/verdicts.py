"""Verdicts on the paper's claims: one stated rule per kind of claim, applied by one function.

A reproduction report puts each of the paper's claims beside what softgrain measures and says
whether the claim is *reproduced*, *partly* reproduced or *not reproduced*. The verdict must never
be a judgement call made while writing the report, so every claim carries its evidence — the
numbers the rule needs — and :func:`judge` turns evidence into a verdict by the rule for its kind.
The rules are stated in :data:`RULES` (the report prints them verbatim) and are:

``winner``
    The paper says orientation X is selected (the largest share of the deposit). Per seed, the
    *margin* is X's fraction minus the largest fraction of any other orientation. **reproduced**:
    X has the largest mean fraction and the 95 % Student-t interval of the margin lies above 0.
    **partly**: X has the largest mean fraction but the margin's interval reaches 0 (or there is
    a single seed, so no interval). **not reproduced**: another orientation has an equal or larger
    mean fraction.
``fraction``
    A simulated fraction against an experimental one. The experiment's 95 % interval is the
    Wilson score interval of ``experiment × count`` grains out of ``count`` when the number of
    grains counted is known, else the bare value. **reproduced**: the simulated 95 % interval
    (the mean alone with one seed) and the experiment's interval overlap — the two are
    statistically compatible. **partly**: they do not overlap, but the simulated mean and the
    experimental value lie on the same side of the reference the claim states (e.g. 1/2, "the
    majority"; or the value under other conditions, "a rise") — the direction holds, the size does
    not. **not reproduced**: otherwise (and always when no reference is stated and the intervals
    do not overlap).
``threshold``
    A sign or threshold statement, e.g. ΔU < 0, or a value between two bounds (theory).
    **reproduced**: the measured value satisfies the relation — its whole 95 % interval, when it
    has one — and, when the paper prints a number and the claim a relative tolerance, lies within
    that tolerance of the paper's number. **partly**: the value satisfies the relation but its
    interval crosses the bound, or the magnitude is outside the tolerance. **not reproduced**:
    the value does not satisfy the relation.
``factor``
    A boundary located by a sweep (the phase map): the measured boundary is known to lie in a
    bracket between two sampled points. **reproduced**: the regions lie on the sides the paper
    shows and the bracket overlaps [paper / F, paper × F] for the claim's factor F. **partly**: the
    regions lie on the paper's sides, but the bracket is outside that band. **not reproduced**:
    the arrangement of the regions differs from the paper's, or no boundary was found.

A claim whose stage did not finish gets the verdict ``not run`` (:data:`NOT_RUN`).

Examples
--------
>>> judge(ThresholdEvidence(measured=-522.0, relation="<", bound=0.0)).verdict
'reproduced'
>>> judge(FactorEvidence(low=0.005, high=0.017, paper=0.098, factor=2.0,
...                      arrangement_agrees=True)).verdict
'partly'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from scipy import special

from softgrain.analysis import mean_confidence_interval
from softgrain.errors import UserInputError

REPRODUCED = "reproduced"
PARTLY = "partly"
NOT_REPRODUCED = "not reproduced"
NOT_RUN = "not run"
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_RUN)

CONFIDENCE = 0.95

RULES: dict[str, str] = {
    "winner": (
        "The paper's orientation X must be selected. Per seed, margin = fraction of X − largest "
        "fraction of any other orientation. Reproduced: X has the largest mean fraction and the "
        "95 % Student-t interval of the margin lies above 0. Partly: X has the largest mean "
        "fraction but the margin's interval reaches 0 (or one seed only: no interval). Not "
        "reproduced: another orientation has an equal or larger mean fraction."),
    "fraction": (
        "Simulated fraction vs the experiment's. The experiment's 95 % interval is the Wilson "
        "score interval when the number of grains counted is known, else its bare value. "
        "Reproduced: the simulated 95 % interval (the mean, with one seed) overlaps the "
        "experiment's interval. Partly: no overlap, but the simulated mean and the experimental "
        "value lie on the same side of the reference the claim states (direction right, size "
        "not). Not reproduced: otherwise, and always when no reference is stated."),
    "threshold": (
        "A sign, threshold or range statement. Reproduced: the measured value (its whole 95 % "
        "interval, if it has one) satisfies the relation and, where the paper prints a number "
        "and the claim a relative tolerance, lies within that tolerance of it. Partly: the value "
        "satisfies the relation but its interval crosses the bound, or its size is outside the "
        "tolerance. Not reproduced: the value does not satisfy the relation."),
    "factor": (
        "A boundary located by a sweep, known to lie between two sampled points (a bracket). "
        "Reproduced: the regions lie on the sides the paper shows and the bracket overlaps "
        "[paper / F, paper × F]. Partly: the regions lie on the paper's sides but the bracket is "
        "outside that band. Not reproduced: the regions are arranged otherwise, or no boundary "
        "was found."),
    "not run": "The stage that measures the claim did not finish; nothing is judged.",
}


def _finite(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{what} = {value!r}: not a number") from None
    if not math.isfinite(number):
        raise UserInputError(f"{what} = {value!r}: not a finite number")
    return number


def _interval(ci: Sequence[float] | None, what: str) -> tuple[float, float] | None:
    """A validated (low, high) pair, or None for "no interval" (None or NaN bounds)."""
    if ci is None:
        return None
    if len(ci) != 2:
        raise UserInputError(f"{what} = {list(ci)!r}: an interval needs exactly [low, high]")
    low, high = (float(bound) for bound in ci)
    if math.isnan(low) or math.isnan(high):
        return None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise UserInputError(f"{what} = [{low}, {high}]: needs finite low ≤ high")
    return low, high


@dataclass(frozen=True)
class WinnerEvidence:
    """Which orientation wins a seed ensemble.

    Parameters
    ----------
    orientation : str
        The orientation the paper says is selected, e.g. ``"001"``.
    per_seed : mapping of str to sequence of float
        Area fraction of every orientation present, one value per seed (same seeds, same order).
    """

    orientation: str
    per_seed: Mapping[str, Sequence[float]]
    kind: Literal["winner"] = field(default="winner", init=False)

    def __post_init__(self) -> None:
        if self.orientation not in self.per_seed:
            raise UserInputError(f"winner evidence: orientation {self.orientation!r} has no fractions; "
                                 f"given: {', '.join(self.per_seed) or 'none'}")
        if len(self.per_seed) < 2:
            raise UserInputError("winner evidence: needs the fractions of at least two orientations")
        lengths = {len(values) for values in self.per_seed.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise UserInputError(f"winner evidence: every orientation needs one fraction per seed "
                                 f"(same count, at least one); got counts {sorted(lengths)}")
        for name, values in self.per_seed.items():
            for value in values:
                _finite(value, f"winner evidence: fraction of {name}")
        # Stored as plain lists so that the evidence round-trips through JSON unchanged.
        object.__setattr__(self, "per_seed", {str(k): [float(v) for v in vals]
                                              for k, vals in self.per_seed.items()})

    @property
    def seeds(self) -> int:
        return len(next(iter(self.per_seed.values())))


@dataclass(frozen=True)
class FractionEvidence:
    """A simulated fraction against an experimental fraction.

    Parameters
    ----------
    measured : float
        Mean simulated fraction (0–1) over the seeds.
    ci : [low, high] or None
        Its 95 % interval; None (or NaN bounds) with a single seed.
    seeds : int
        Number of seeds behind ``measured``.
    experiment : float
        The experimental fraction (0–1).
    experiment_count : int or None
        Number of grains the experimental fraction was counted over, when known.
    reference : float or None
        The value whose side decides "partly" (e.g. 0.5 for a majority statement).
    reference_meaning : str
        What the reference stands for, printed with the verdict ("the majority").
    """

    measured: float
    ci: tuple[float, float] | None
    seeds: int
    experiment: float
    experiment_count: int | None = None
    reference: float | None = None
    reference_meaning: str = ""
    kind: Literal["fraction"] = field(default="fraction", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "measured", _finite(self.measured, "fraction evidence: measured"))
        object.__setattr__(self, "ci", _interval(self.ci, "fraction evidence: ci"))
        object.__setattr__(self, "experiment",
                           _finite(self.experiment, "fraction evidence: experiment"))
        if not 0.0 <= self.experiment <= 1.0:
            raise UserInputError(f"fraction evidence: experiment = {self.experiment}: a fraction "
                                 f"must lie in [0, 1]")
        if int(self.seeds) < 1:
            raise UserInputError(f"fraction evidence: seeds = {self.seeds}: needs at least 1")
        if self.experiment_count is not None:
            count = int(self.experiment_count)
            if count < 1:
                raise UserInputError(f"fraction evidence: experiment_count = {count}: needs at least 1")
            # A fraction counted over n grains is a multiple of 1/n (up to the paper's rounding
            # to 0.1 %); anything else means the count is wrong.
            if abs(round(self.experiment * count) / count - self.experiment) > 0.0051:
                raise UserInputError(f"fraction evidence: experiment = {self.experiment} is not a "
                                     f"multiple of 1/{count}; experiment_count is inconsistent")
        if self.reference is not None:
            object.__setattr__(self, "reference",
                               _finite(self.reference, "fraction evidence: reference"))
            if not self.reference_meaning:
                raise UserInputError("fraction evidence: a reference needs its reference_meaning")

    def experiment_interval(self) -> tuple[float, float]:
        """Wilson 95 % score interval of the experiment (the bare value without a count)."""
        if self.experiment_count is None:
            return self.experiment, self.experiment
        count = int(self.experiment_count)
        p = round(self.experiment * count) / count
        # Wilson score interval (no continuity correction; what scipy.stats.binomtest(...)
        # .proportion_ci(method="wilson") gives), written out so that the command line does not
        # pay the second-long import of scipy.stats.
        z = float(special.ndtri(0.5 + CONFIDENCE / 2))
        centre = (p + z * z / (2 * count)) / (1 + z * z / count)
        half = z / (1 + z * z / count) * math.sqrt(p * (1 - p) / count + z * z / (4 * count * count))
        return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class ThresholdEvidence:
    """A measured value against a sign, threshold or range statement.

    Parameters
    ----------
    measured : float
        The measured value (deterministic for the theory; a mean over seeds otherwise).
    relation : {"<", ">", "between"}
        ``measured < bound``, ``measured > bound`` or ``bound[0] ≤ measured ≤ bound[1]``.
    bound : float or [low, high]
        The threshold, or the range for ``"between"``.
    ci : [low, high] or None
        95 % interval of ``measured``, if it has one.
    seeds : int or None
        Seeds behind ``measured`` (None for a deterministic value).
    paper_value : float or None
        The paper's number, when it prints one.
    tolerance : float or None
        Relative tolerance on ``paper_value`` (e.g. 0.1 for ±10 %).
    """

    measured: float
    relation: Literal["<", ">", "between"]
    bound: float | tuple[float, float]
    ci: tuple[float, float] | None = None
    seeds: int | None = None
    paper_value: float | None = None
    tolerance: float | None = None
    kind: Literal["threshold"] = field(default="threshold", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "measured", _finite(self.measured, "threshold evidence: measured"))
        object.__setattr__(self, "ci", _interval(self.ci, "threshold evidence: ci"))
        if self.relation == "between":
            object.__setattr__(self, "bound", _interval(self.bound, "threshold evidence: bound"))
            if self.bound is None:
                raise UserInputError("threshold evidence: 'between' needs a [low, high] bound")
        elif self.relation in ("<", ">"):
            object.__setattr__(self, "bound", _finite(self.bound, "threshold evidence: bound"))
        else:
            raise UserInputError(f"threshold evidence: relation = {self.relation!r}; "
                                 f"allowed: '<', '>', 'between'")
        if (self.paper_value is None) != (self.tolerance is None):
            raise UserInputError("threshold evidence: paper_value and tolerance go together")
        if self.tolerance is not None and _finite(self.tolerance, "threshold evidence: tolerance") <= 0:
            raise UserInputError(f"threshold evidence: tolerance = {self.tolerance}: must be > 0")

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the relation."""
        if self.relation == "<":
            return value < self.bound
        if self.relation == ">":
            return value > self.bound
        low, high = self.bound
        return low <= value <= high

    def statement(self) -> str:
        if self.relation == "between":
            return f"between {self.bound[0]:.4g} and {self.bound[1]:.4g}"
        return f"{self.relation} {self.bound:.4g}"


@dataclass(frozen=True)
class FactorEvidence:
    """A boundary located by a sweep against the paper's boundary.

    Parameters
    ----------
    low, high : float or None
        The sampled points between which the measured boundary lies (equal for a located point;
        None when the sweep found no boundary).
    paper : float
        The paper's (or its theory's) boundary.
    factor : float
        The accepted factor F (> 1).
    arrangement_agrees : bool
        Whether the regions lie on the sides the paper shows.
    seeds : int or None
        Seeds per sampled point.
    """

    low: float | None
    high: float | None
    paper: float
    factor: float
    arrangement_agrees: bool
    seeds: int | None = None
    kind: Literal["factor"] = field(default="factor", init=False)

    def __post_init__(self) -> None:
        if (self.low is None) != (self.high is None):
            raise UserInputError("factor evidence: low and high are both numbers or both None")
        if self.low is not None:
            bracket = _interval((self.low, self.high), "factor evidence: [low, high]")
            if bracket is None or bracket[0] <= 0:
                raise UserInputError(f"factor evidence: [low, high] = [{self.low}, {self.high}]: "
                                     f"needs 0 < low ≤ high")
        if _finite(self.paper, "factor evidence: paper") <= 0:
            raise UserInputError(f"factor evidence: paper = {self.paper}: must be > 0")
        if _finite(self.factor, "factor evidence: factor") <= 1:
            raise UserInputError(f"factor evidence: factor = {self.factor}: must be > 1")


Evidence = WinnerEvidence | FractionEvidence | ThresholdEvidence | FactorEvidence

_EVIDENCE_CLASSES: dict[str, type] = {
    "winner": WinnerEvidence, "fraction": FractionEvidence,
    "threshold": ThresholdEvidence, "factor": FactorEvidence,
}


@dataclass(frozen=True)
class Judgement:
    """A verdict and the rule, with the numbers that decided it (``rule``)."""

    verdict: str
    kind: str
    rule: str
    measured: float | str | None
    ci: tuple[float, float] | None
    seeds: int | None


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _side(value: float, reference: float) -> int:
    return (value > reference) - (value < reference)


def judge(evidence: Evidence | None) -> Judgement:
    """Apply the rule of the evidence's kind (see :data:`RULES`); None means "not run".

    Parameters
    ----------
    evidence : WinnerEvidence, FractionEvidence, ThresholdEvidence, FactorEvidence or None
        The numbers the claim's rule needs.

    Returns
    -------
    Judgement
        The verdict, the rule's name with the comparison that decided it, and the measured value,
        95 % interval and seed count to print beside the claim.
    """
    if evidence is None:
        return Judgement(NOT_RUN, "not run", "not run: the stage did not finish", None, None, None)

    if isinstance(evidence, WinnerEvidence):
        target = evidence.orientation
        means = {name: sum(vals) / len(vals) for name, vals in evidence.per_seed.items()}
        rival = max((name for name in means if name != target), key=lambda name: means[name])
        margins = [evidence.per_seed[target][i] - max(vals[i] for name, vals in evidence.per_seed.items()
                                                      if name != target)
                   for i in range(evidence.seeds)]
        margin, margin_low, margin_high = mean_confidence_interval(margins, CONFIDENCE)
        _, low, high = mean_confidence_interval(evidence.per_seed[target], CONFIDENCE)
        # A fraction lies in [0, 1]: a t-interval over few seeds can reach past it; clipped, it keeps
        # its coverage and reads correctly.
        ci = None if math.isnan(low) else (max(low, 0.0), min(high, 1.0))
        head = (f"winner: mean fraction ({target}) {means[target]:.3f} vs ({rival}) "
                f"{means[rival]:.3f}; margin {margin:+.3f}")
        if means[target] <= means[rival]:
            verdict, why = NOT_REPRODUCED, f"({rival}) is at least as large"
        elif math.isnan(margin_low):
            verdict, why = PARTLY, "one seed: no interval on the margin"
        elif margin_low > 0:
            verdict, why = REPRODUCED, f"margin 95 % CI [{margin_low:.3f}, {margin_high:.3f}] > 0"
        else:
            verdict, why = PARTLY, f"margin 95 % CI [{margin_low:.3f}, {margin_high:.3f}] reaches 0"
        return Judgement(verdict, "winner", f"{head}; {why}", means[target], ci, evidence.seeds)

    if isinstance(evidence, FractionEvidence):
        simulated = evidence.ci or (evidence.measured, evidence.measured)
        experiment = evidence.experiment_interval()
        exp_text = (f"experiment {evidence.experiment:.3f}"
                    + (f" (Wilson 95 % [{experiment[0]:.3f}, {experiment[1]:.3f}], "
                       f"{round(evidence.experiment * evidence.experiment_count)}/"
                       f"{evidence.experiment_count} grains)"
                       if evidence.experiment_count is not None else " (no count: bare value)"))
        sim_text = (f"simulated {evidence.measured:.3f}"
                    + (f" [{simulated[0]:.3f}, {simulated[1]:.3f}]" if evidence.ci else " (no interval)"))
        if _overlap(simulated, experiment):
            verdict, why = REPRODUCED, "the intervals overlap"
        elif evidence.reference is None:
            verdict, why = NOT_REPRODUCED, "the intervals do not overlap (no reference stated)"
        else:
            ref = evidence.reference
            sim_side, exp_side = _side(evidence.measured, ref), _side(evidence.experiment, ref)
            where = {1: "above", -1: "below", 0: "on"}
            sides = (f"simulated {where[sim_side]}, experiment {where[exp_side]} "
                     f"{evidence.reference_meaning} ({ref:.3f})")
            if sim_side == exp_side != 0:
                verdict, why = PARTLY, f"no overlap; both {where[sim_side]} {evidence.reference_meaning} ({ref:.3f})"
            else:
                verdict, why = NOT_REPRODUCED, f"no overlap; {sides}"
        return Judgement(verdict, "fraction", f"fraction: {sim_text} vs {exp_text}; {why}",
                         evidence.measured, evidence.ci, int(evidence.seeds))

    if isinstance(evidence, ThresholdEvidence):
        value = evidence.measured
        head = f"threshold: measured {value:.4g}, claim {evidence.statement()}"
        if not evidence.holds(value):
            verdict, why = NOT_REPRODUCED, "the relation fails"
        elif evidence.ci is not None and not (evidence.holds(evidence.ci[0])
                                              and evidence.holds(evidence.ci[1])):
            verdict, why = PARTLY, (f"holds for the value, but its 95 % CI "
                                    f"[{evidence.ci[0]:.4g}, {evidence.ci[1]:.4g}] crosses the bound")
        elif evidence.paper_value is not None:
            paper, tolerance = float(evidence.paper_value), float(evidence.tolerance)
            deviation = abs(value - paper) / abs(paper) if paper != 0 else math.inf
            if deviation <= tolerance:
                verdict, why = REPRODUCED, (f"holds; {deviation:.1%} from the paper's {paper:.4g} "
                                            f"(tolerance {tolerance:.0%})")
            else:
                verdict, why = PARTLY, (f"holds, but {deviation:.1%} from the paper's {paper:.4g} "
                                        f"(tolerance {tolerance:.0%})")
        else:
            verdict, why = REPRODUCED, "the relation holds"
        return Judgement(verdict, "threshold", f"{head}; {why}", value, evidence.ci, evidence.seeds)

    if isinstance(evidence, FactorEvidence):
        band = (evidence.paper / evidence.factor, evidence.paper * evidence.factor)
        band_text = f"band [{band[0]:.3g}, {band[1]:.3g}] (paper {evidence.paper:.3g}, F = {evidence.factor:g})"
        if evidence.low is None:
            return Judgement(NOT_REPRODUCED, "factor", f"factor: no boundary found; {band_text}",
                             None, None, evidence.seeds)
        bracket = (float(evidence.low), float(evidence.high))
        measured = (f"{bracket[0]:.3g}" if bracket[0] == bracket[1]
                    else f"{bracket[0]:.3g}–{bracket[1]:.3g}")
        head = f"factor: boundary in [{bracket[0]:.3g}, {bracket[1]:.3g}], {band_text}"
        if not evidence.arrangement_agrees:
            verdict, why = NOT_REPRODUCED, "the regions are not arranged as in the paper"
        elif _overlap(bracket, band):
            verdict, why = REPRODUCED, "regions as in the paper; the bracket overlaps the band"
        else:
            ratio = math.sqrt(bracket[0] * bracket[1]) / evidence.paper
            verdict, why = PARTLY, (f"regions as in the paper, but the bracket is outside the band "
                                    f"(geometric mean {ratio:.2g} × the paper's)")
        return Judgement(verdict, "factor", f"{head}; {why}", measured, None, evidence.seeds)

    raise UserInputError(f"no verdict rule for evidence of type {type(evidence).__name__}")


def evidence_to_dict(evidence: Evidence | None) -> dict[str, Any] | None:
    """The evidence as a JSON-ready dict (with its ``kind``), None for "not run"."""
    if evidence is None:
        return None
    data = dataclasses.asdict(evidence)
    return {key: (list(value) if isinstance(value, tuple) else value) for key, value in data.items()}


def evidence_from_dict(data: Mapping[str, Any] | None) -> Evidence | None:
    """Rebuild evidence written by :func:`evidence_to_dict` (so a stored verdict can be checked)."""
    if data is None:
        return None
    fields = dict(data)
    kind = fields.pop("kind", None)
    if kind not in _EVIDENCE_CLASSES:
        raise UserInputError(f"evidence kind = {kind!r}; allowed: {', '.join(_EVIDENCE_CLASSES)}")
    cls = _EVIDENCE_CLASSES[kind]
    allowed = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise UserInputError(f"{kind} evidence: unknown field(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(sorted(allowed))}")
    try:
        return cls(**fields)
    except TypeError as exc:
        raise UserInputError(f"{kind} evidence: {exc}") from None


def build_claim(*, id: str, stage: str, claim: str, paper: float | str,
                evidence: Evidence | None, caveat: str, unit: str | None = None,
                figure: str | None = None) -> dict[str, Any]:
    """One entry of report.json's ``claims``, with the verdict computed by :func:`judge`.

    Parameters
    ----------
    id : str
        Short stable identifier, e.g. ``"fig2-li-solid"``.
    stage : str
        Name of the stage that measures the claim (a key of report.json's ``stages``).
    claim : str
        The paper's claim in one line.
    paper : float or str
        The paper's number, or its statement.
    evidence : evidence or None
        What softgrain measured (None: the stage did not finish → ``not run``).
    caveat : str
        What limits the comparison.
    unit : str, optional
        Unit of ``paper``/``measured``; ``"fraction"`` values (0–1) are printed as percent
        (the default for winner and fraction evidence).
    figure : str, optional
        PNG path relative to the stage's folder.
    """
    judgement = judge(evidence)
    if unit is None and isinstance(evidence, (WinnerEvidence, FractionEvidence)):
        unit = "fraction"  # both rules compare area or grain fractions (0–1)
    measured = judgement.measured
    if isinstance(measured, str) and unit and unit != "fraction":
        measured = f"{measured} {unit}"  # a text value (a bracket) carries its unit itself
    return {
        "id": id, "stage": stage, "claim": claim, "paper": paper,
        "measured": measured,
        "ci": list(judgement.ci) if judgement.ci is not None else None,
        "seeds": judgement.seeds, "unit": unit,
        "verdict": judgement.verdict, "kind": judgement.kind, "rule": judgement.rule,
        "caveat": caveat, "figure": figure, "evidence": evidence_to_dict(evidence),
    }
