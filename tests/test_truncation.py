"""Truncation is measured, and a delta it can explain is never called a gain."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dd.protocol import arm_stats, budget_sensitivity, compare_arms


def test_arm_stats_counts_length_stops():
    stats = arm_stats("base", ["length", "eos", "eos", "length"], [512, 100, 200, 512])
    assert (stats.n, stats.n_truncated, stats.rate, stats.mean_len) == (4, 2, 0.5, 331.0)


@pytest.mark.parametrize(
    ("reasons", "lengths"),
    [([], []), (["eos"], [1, 2]), (["stop"], [3])],
    ids=["empty", "mismatch", "unknown-reason"],
)
def test_arm_stats_rejects_bad_input(reasons, lengths):
    with pytest.raises(ValueError):
        arm_stats("arm", reasons, lengths)


def test_paper_case_is_a_truncation_artifact_not_a_gain():
    """Base answers are long and cut at n_predict=512; the fine-tune's are short and finish."""
    n = 164
    base_cut = 90  # base: 90 of 164 hit the budget, each scored as a failure
    base = arm_stats("base", ["length"] * base_cut + ["eos"] * (n - base_cut),
                     [512] * base_cut + [300] * (n - base_cut))
    operator = arm_stats(
        "operator", ["length"] * 8 + ["eos"] * (n - 8), [512] * 8 + [200] * (n - 8)
    )
    base_scores = [0.0] * base_cut + [1.0] * 50 + [0.0] * (n - base_cut - 50)
    op_scores = [1.0] * 75 + [0.0] * (n - 75)
    result = compare_arms(base, operator, base_scores, op_scores)
    assert result.delta == pytest.approx(25 / 164)  # +15.2 points, on paper
    assert result.artifact and result.verdict.verdict == "inconclusive"
    assert (result.base_rate, result.operator_rate) == (90 / 164, 8 / 164)
    assert any("differ by 0.500" in reason for reason in result.verdict.reasons)
    assert any("base truncation rate 0.549" in reason for reason in result.verdict.reasons)


def test_equal_low_truncation_is_comparable():
    base = arm_stats("base", ["eos"] * 95 + ["length"] * 5, [100] * 100)
    operator = arm_stats("op", ["eos"] * 93 + ["length"] * 7, [100] * 100)
    result = compare_arms(base, operator, [0.0] * 100, [1.0] * 10 + [0.0] * 90)
    assert result.verdict.code == "comparable" and result.verdict.passed and result.verdict.reasons == ()
    assert result.delta == pytest.approx(0.1)


def test_high_truncation_in_both_arms_is_an_artifact_even_if_equal():
    base = arm_stats("base", ["length"] * 6 + ["eos"] * 4, [512] * 10)
    operator = arm_stats("op", ["length"] * 6 + ["eos"] * 4, [512] * 10)
    result = compare_arms(base, operator, [0.0] * 10, [1.0] * 10)
    assert result.artifact and result.verdict.verdict == "inconclusive"
    assert len(result.verdict.reasons) == 2  # both arms over max_rate; no rate gap


def test_bounds_are_parameters():
    base = arm_stats("base", ["length"] * 2 + ["eos"] * 8, [1] * 10)
    operator = arm_stats("op", ["eos"] * 10, [1] * 10)
    scores = [0.0] * 10
    assert compare_arms(base, operator, scores, scores).artifact
    assert not compare_arms(base, operator, scores, scores, max_rate_gap=0.25).artifact


def test_scores_must_match_the_arm():
    base = arm_stats("base", ["eos"] * 3, [1] * 3)
    with pytest.raises(ValueError):
        compare_arms(base, base, [1.0] * 3, [1.0] * 2)


_reasons = st.lists(st.sampled_from(["length", "eos"]), min_size=1, max_size=60)


@given(_reasons, _reasons, st.floats(0, 1), st.floats(0, 1))
def test_verdict_follows_the_bounds(base_reasons, op_reasons, max_rate_gap, max_rate):
    base = arm_stats("base", base_reasons, [1] * len(base_reasons))
    operator = arm_stats("op", op_reasons, [1] * len(op_reasons))
    result = compare_arms(
        base, operator, [1.0] * base.n, [0.0] * operator.n,
        max_rate_gap=max_rate_gap, max_rate=max_rate,
    )
    over = abs(base.rate - operator.rate) > max_rate_gap or max(base.rate, operator.rate) > max_rate
    assert result.artifact == over == bool(result.verdict.reasons)
    assert 0 <= base.rate <= 1 and base.n_truncated == base_reasons.count("length")


def test_budget_sensitivity_detects_the_sign_flip():
    result = budget_sensitivity({1024: -8.0, 512: 15.3})
    assert result.deltas == ((512, 15.3), (1024, -8.0))
    assert result.sign_stable is False


def test_budget_sensitivity_needs_two_budgets():
    with pytest.raises(ValueError):
        budget_sensitivity({512: 15.3})


@given(st.dictionaries(st.integers(1, 8192), st.floats(0.001, 100), min_size=2), st.booleans())
def test_same_sign_deltas_are_stable(deltas, negate):
    signed = {b: -d if negate else d for b, d in deltas.items()}
    assert budget_sensitivity(signed).sign_stable


@given(st.dictionaries(st.integers(1, 8192), st.floats(0.001, 100), min_size=1))
def test_a_zero_or_opposite_delta_is_unstable(deltas):
    assert not budget_sensitivity({**deltas, 0: 0.0}).sign_stable
    assert not budget_sensitivity({**deltas, 0: -1.0}).sign_stable
