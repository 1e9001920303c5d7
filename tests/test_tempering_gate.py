"""A tempering lambda's outcome from synthetic evidence (dd.arcs), one case per branch."""

import pytest

from dd.protocol import FAIL, INCONCLUSIVE, PASS, Verdict, tempering_bars
from dd.arcs import DispositionComparison, Shift
from dd.arcs import CLEAN, DAMAGED, NOT_MOVED, UNDECIDED, LambdaVerdict, judge_lambda, sweep_verdict
from dd.protocol import arm_stats, compare_arms

N = 50


def _trunc(base_cut: int = 2, op_cut: int = 2):
    base = arm_stats("base", ["length"] * base_cut + ["eos"] * (N - base_cut), [100] * N)
    op = arm_stats("op", ["length"] * op_cut + ["eos"] * (N - op_cut), [100] * N)
    return compare_arms(base, op, [0.0] * N, [0.0] * N)


def disposition(humble=(0.2, 0.6, 1e-4), factual=(0.8, 0.8, 1.0), trunc=None) -> DispositionComparison:
    shifts = {"hedging_appropriateness": Shift("hedging_appropriateness", *humble, N),
              "self_verification": Shift("self_verification", 0.3, 0.3, 1.0, N)}
    return DispositionComparison(shifts, Shift("factual_accuracy", *factual, N), trunc or _trunc(), {"model": "m"})


def humaneval(base_pass: int, op_pass: int, op_cut: int = 0):
    base = arm_stats("base", ["eos"] * 20, [50] * 20)
    op = arm_stats("op", ["length"] * op_cut + ["eos"] * (20 - op_cut), [50] * 20)
    return compare_arms(base, op, [1.0] * base_pass + [0.0] * (20 - base_pass), [1.0] * op_pass + [0.0] * (20 - op_pass))


def verdict(**kw) -> LambdaVerdict:
    args = {"ppl_rise": 0.005, "humaneval": humaneval(4, 4), "disposition": disposition(), "n_tests": 6} | kw
    return judge_lambda(0.5, **args)


def test_undamaged_content_and_a_significant_rise_is_a_clean_positive():
    v = verdict()
    assert v.outcome == CLEAN and "hedging_appropriateness 20% -> 60%" in v.verdict.reasons[0]


@pytest.mark.parametrize(("kw", "needle"), [
    ({"ppl_rise": 0.05}, "reference perplexity +5.00%"),
    ({"humaneval": humaneval(4, 3)}, "HumanEval pass@1 -5.0 points"),
    ({"disposition": disposition(factual=(0.8, 0.6, 1.0))}, "factual accuracy -20.0 points"),
])
def test_any_content_damage_wins_over_a_moved_disposition(kw, needle):
    v = verdict(**kw)
    assert v.outcome == DAMAGED and any(needle in r for r in v.verdict.reasons), v.verdict.reasons


def test_a_rise_that_does_not_survive_the_correction_or_goes_the_wrong_way_is_not_moved():
    assert verdict(disposition=disposition(humble=(0.2, 0.3, 0.02))).outcome == NOT_MOVED  # 0.02 > 0.05 / 6
    assert verdict(disposition=disposition(humble=(0.2, 0.3, 0.02)), n_tests=1).outcome == CLEAN
    wrong = verdict(disposition=disposition(humble=(0.6, 0.2, 1.0)))
    assert wrong.outcome == NOT_MOVED and "wrong direction" in wrong.verdict.reasons[0]


def test_unjudged_or_truncation_explained_evidence_is_undecided_never_positive():
    assert verdict(disposition=None).outcome == UNDECIDED
    # one arm cut at the budget far more often than the other: its judged rise is an artifact
    cut = verdict(disposition=disposition(trunc=_trunc(base_cut=2, op_cut=30)))
    assert cut.outcome == UNDECIDED and any("truncation" in r and "0.600" in r for r in cut.verdict.reasons), cut.verdict.reasons
    he_cut = verdict(humaneval=humaneval(4, 9, op_cut=15))
    assert he_cut.outcome == UNDECIDED and any("HumanEval delta is a truncation artifact" in r for r in he_cut.verdict.reasons)


def test_bars_come_from_the_gates_file():
    bars = tempering_bars()
    assert verdict(ppl_rise=bars["max_ppl_rise"] + 1e-6).outcome == DAMAGED
    assert verdict(ppl_rise=bars["max_ppl_rise"]).outcome == CLEAN


def test_sweep_verdict():
    def at(lam, code, word):
        return LambdaVerdict(lam, Verdict(word, (f"{code} here",), code=code))

    clean, damaged, undecided = at(0.5, CLEAN, PASS), at(0.9, DAMAGED, FAIL), at(0.8, UNDECIDED, INCONCLUSIVE)
    assert sweep_verdict([damaged, clean]).verdict == PASS
    assert sweep_verdict([damaged, undecided]).verdict == INCONCLUSIVE
    swept = sweep_verdict([damaged, at(0.8, NOT_MOVED, FAIL)])
    assert swept.verdict == FAIL and swept.reasons == ("lambda 0.9: content_damaged here", "lambda 0.8: disposition_not_moved here")
