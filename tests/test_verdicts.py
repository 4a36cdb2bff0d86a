"""The verdict rules of the reproduction report (softgrain.studies.verdicts).

Each test states the rule it checks; the numbers are the project's measured ensembles where that
makes the case concrete (README, Results), otherwise the smallest example that sits on one side of
a rule's edge.
"""

from __future__ import annotations

import json

import pytest

from softgrain.errors import UserInputError
from softgrain.studies.verdicts import (NOT_REPRODUCED, NOT_RUN, PARTLY, REPRODUCED, RULES,
                                        FactorEvidence, FractionEvidence, ThresholdEvidence,
                                        WinnerEvidence, build_claim, evidence_from_dict,
                                        evidence_to_dict, judge)


# --- winner ---------------------------------------------------------------------------------

def test_winner_reproduced_when_every_seed_selects_the_papers_orientation():
    # li-solid, 5 seeds: 100 % (001) in every seed (README, Results).
    evidence = WinnerEvidence("001", {"001": [1.0] * 5, "101": [0.0] * 5, "111": [0.0] * 5})
    judgement = judge(evidence)
    assert judgement.verdict == REPRODUCED
    assert judgement.measured == pytest.approx(1.0)
    assert judgement.ci == pytest.approx((1.0, 1.0))
    assert judgement.seeds == 5


def test_winner_margin_is_taken_per_seed_against_the_strongest_rival():
    # (101) leads on average, but in seed 3 (001) beats it: the margin interval must reach 0.
    per_seed = {"101": [0.70, 0.68, 0.40, 0.72], "001": [0.30, 0.32, 0.60, 0.28],
                "111": [0.0, 0.0, 0.0, 0.0]}
    judgement = judge(WinnerEvidence("101", per_seed))
    assert judgement.verdict == PARTLY
    assert "reaches 0" in judgement.rule


def test_winner_not_reproduced_when_another_orientation_leads():
    # li-solid-80c against the EBSD's (101) at 80 °C: the model keeps 100 % (001).
    judgement = judge(WinnerEvidence("101", {"001": [1.0, 1.0], "101": [0.0, 0.0]}))
    assert judgement.verdict == NOT_REPRODUCED


def test_winner_tie_is_not_a_win():
    assert judge(WinnerEvidence("101", {"001": [0.5, 0.5], "101": [0.5, 0.5]})).verdict == NOT_REPRODUCED


def test_winner_with_one_seed_is_at_most_partly():
    judgement = judge(WinnerEvidence("001", {"001": [1.0], "101": [0.0]}))
    assert judgement.verdict == PARTLY
    assert judgement.ci is None


def test_winner_rejects_ragged_or_missing_fractions():
    with pytest.raises(UserInputError, match="one fraction per seed"):
        WinnerEvidence("001", {"001": [1.0, 1.0], "101": [0.0]})
    with pytest.raises(UserInputError, match="orientation '111' has no fractions"):
        WinnerEvidence("111", {"001": [1.0], "101": [0.0]})


# --- fraction vs experiment -----------------------------------------------------------------

def test_fraction_uses_the_wilson_interval_of_the_grain_count():
    # 12 of 21 grains (001) at 25 °C: Wilson 95 % [0.365, 0.755] (MODEL.md §7: [37, 76] %).
    evidence = FractionEvidence(measured=0.6, ci=(0.5, 0.7), seeds=5, experiment=0.571,
                                experiment_count=21)
    low, high = evidence.experiment_interval()
    assert low == pytest.approx(0.3655, abs=1e-3)
    assert high == pytest.approx(0.7553, abs=1e-3)
    assert judge(evidence).verdict == REPRODUCED


def test_fraction_partly_when_only_the_side_of_the_reference_agrees():
    # li-solid (001): 100 % simulated vs 57.1 % of 21 grains — both a majority, sizes incompatible.
    evidence = FractionEvidence(measured=1.0, ci=(1.0, 1.0), seeds=5, experiment=0.571,
                                experiment_count=21, reference=0.5, reference_meaning="the majority")
    judgement = judge(evidence)
    assert judgement.verdict == PARTLY
    assert "both above the majority" in judgement.rule


def test_fraction_not_reproduced_when_the_sides_differ():
    # 80 °C (101): 0 % simulated, 48.7 % of 39 grains; reference: the 25 °C EBSD value (a rise).
    evidence = FractionEvidence(measured=0.0, ci=(0.0, 0.0), seeds=5, experiment=0.487,
                                experiment_count=39, reference=0.190,
                                reference_meaning="the 25 °C EBSD fraction")
    assert judge(evidence).verdict == NOT_REPRODUCED


def test_fraction_without_a_reference_has_no_partly():
    evidence = FractionEvidence(measured=0.9, ci=(0.85, 0.95), seeds=5, experiment=0.6)
    assert judge(evidence).verdict == NOT_REPRODUCED


def test_fraction_without_a_count_compares_with_the_bare_value():
    inside = FractionEvidence(measured=0.262, ci=(0.099, 0.426), seeds=5, experiment=0.40)
    outside = FractionEvidence(measured=0.262, ci=(0.099, 0.426), seeds=5, experiment=0.50)
    assert judge(inside).verdict == REPRODUCED
    assert judge(outside).verdict == NOT_REPRODUCED


def test_fraction_rejects_a_count_the_percentage_cannot_come_from():
    with pytest.raises(UserInputError, match="not a multiple of 1/20"):
        FractionEvidence(measured=0.5, ci=None, seeds=1, experiment=0.571, experiment_count=20)


# --- threshold ------------------------------------------------------------------------------

def test_threshold_sign_of_the_theory():
    # Solid Li at 25 °C: ΔU(001 − 101) = −522 J/m³ < 0 → (001) (README, Fig. 3A table).
    assert judge(ThresholdEvidence(measured=-522.0, relation="<", bound=0.0)).verdict == REPRODUCED
    assert judge(ThresholdEvidence(measured=591.0, relation="<", bound=0.0)).verdict == NOT_REPRODUCED


def test_threshold_range():
    # Crossover at 48.7 °C, the paper puts it between 25 °C and 80 °C.
    assert judge(ThresholdEvidence(measured=48.7, relation="between", bound=(25, 80))).verdict == REPRODUCED
    assert judge(ThresholdEvidence(measured=90.0, relation="between", bound=(25, 80))).verdict == NOT_REPRODUCED


def test_threshold_magnitude_outside_the_tolerance_is_partly():
    close = ThresholdEvidence(measured=9778.0, relation=">", bound=0.0, paper_value=9.78e3, tolerance=0.05)
    far = ThresholdEvidence(measured=9778.0, relation=">", bound=0.0, paper_value=2.0e4, tolerance=0.05)
    assert judge(close).verdict == REPRODUCED
    assert judge(far).verdict == PARTLY


def test_threshold_interval_crossing_the_bound_is_partly():
    evidence = ThresholdEvidence(measured=0.26, relation=">", bound=0.0, ci=(-0.02, 0.54), seeds=5)
    assert judge(evidence).verdict == PARTLY


# --- factor ---------------------------------------------------------------------------------

def test_factor_rules():
    # Phase map: the boundary lies in [0.005, 0.017] J/m², the theory's line at 0.098 J/m².
    far = FactorEvidence(low=0.005, high=0.017, paper=0.098, factor=2.0, arrangement_agrees=True)
    near = FactorEvidence(low=0.03, high=0.10, paper=0.098, factor=2.0, arrangement_agrees=True)
    flipped = FactorEvidence(low=0.03, high=0.10, paper=0.098, factor=2.0, arrangement_agrees=False)
    none = FactorEvidence(low=None, high=None, paper=0.098, factor=2.0, arrangement_agrees=True)
    assert judge(far).verdict == PARTLY
    assert judge(near).verdict == REPRODUCED
    assert judge(flipped).verdict == NOT_REPRODUCED
    assert judge(none).verdict == NOT_REPRODUCED
    assert judge(far).measured == "0.005–0.017"
    assert judge(none).measured is None


def test_factor_needs_a_factor_above_one():
    with pytest.raises(UserInputError, match="factor = 1"):
        FactorEvidence(low=0.1, high=0.2, paper=0.1, factor=1.0, arrangement_agrees=True)


# --- claims and their stored evidence ---------------------------------------------------------

def test_every_kind_has_a_stated_rule():
    assert set(RULES) == {"winner", "fraction", "threshold", "factor", "not run"}


@pytest.mark.parametrize("evidence", [
    WinnerEvidence("101", {"001": [0.3, 0.35], "101": [0.7, 0.65]}),
    FractionEvidence(measured=0.262, ci=(0.099, 0.426), seeds=5, experiment=0.5,
                     reference=0.19, reference_meaning="bare Cu"),
    ThresholdEvidence(measured=48.7, relation="between", bound=(25.0, 80.0)),
    FactorEvidence(low=0.005, high=0.017, paper=0.098, factor=2.0, arrangement_agrees=True, seeds=2),
])
def test_claim_evidence_round_trips_through_json(evidence):
    claim = build_claim(id="x", stage="s", claim="c", paper="p", evidence=evidence, caveat="")
    stored = json.loads(json.dumps(claim))
    assert judge(evidence_from_dict(stored["evidence"])).verdict == claim["verdict"]
    assert evidence_from_dict(stored["evidence"]) == evidence


def test_fraction_claims_default_to_the_fraction_unit():
    claim = build_claim(id="x", stage="s", claim="c", paper="(001)", caveat="",
                        evidence=WinnerEvidence("001", {"001": [1.0, 1.0], "101": [0.0, 0.0]}))
    assert claim["unit"] == "fraction" and claim["measured"] == 1.0 and claim["seeds"] == 2


def test_claim_of_a_stage_that_did_not_finish():
    claim = build_claim(id="x", stage="s", claim="c", paper="p", evidence=None, caveat="")
    assert claim["verdict"] == NOT_RUN and claim["measured"] is None and claim["evidence"] is None
    assert evidence_to_dict(None) is None


def test_unknown_evidence_fields_are_named():
    with pytest.raises(UserInputError, match="unknown field"):
        evidence_from_dict({"kind": "threshold", "measured": 1.0, "relation": "<", "bound": 2.0,
                            "colour": "red"})
