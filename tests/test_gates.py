"""Verdicts of the pre-registered gates and their guards."""

import pytest

from dd.protocol import judge_gate, thresholds, gates_version


def test_bars_come_from_the_versioned_file():
    assert thresholds("cv") == {"auc_min": 0.65, "asym_max": -0.20}
    assert thresholds("fresh") == {"auc_min": 0.63, "asym_max": -0.15}
    assert gates_version()


def test_clear_pass():
    v = judge_gate("fresh", 0.70, -0.30, n_pos=60, n_neg=60)
    assert v.verdict == "pass" and v.gate["auc_min"] == 0.63


@pytest.mark.parametrize("auc, asym, why", [(0.60, -0.30, "AUC 0.6000 < 0.63"), (0.70, -0.10, "balanced asym"),
                                            (0.70, None, "undefined")])
def test_fail_names_the_component(auc, asym, why):
    v = judge_gate("fresh", auc, asym, n_pos=60, n_neg=60)
    assert v.verdict == "fail" and any(why in r for r in v.reasons)


def test_imbalanced_set_is_inconclusive_never_pass():
    v = judge_gate("fresh", 0.70, -0.30, n_pos=9, n_neg=184)
    assert v.verdict == "inconclusive"
    assert any("class imbalance" in r and "9 positive" in r for r in v.reasons)


def test_imbalance_is_named_even_when_another_component_fails():
    v = judge_gate("fresh", 0.519, -0.161, n_pos=9, n_neg=184)
    assert v.verdict == "fail"
    assert any("asym cleared with only 9" in r for r in v.reasons)


def test_a_bar_the_null_clears_often_is_not_evidence():
    null = {"asym_null_clear_rate": 0.4, "asym_null_p": 0.2, "auc_null_clear_rate": 0.0, "auc_null_p": 0.001}
    v = judge_gate("fresh", 0.70, -0.30, n_pos=60, n_neg=60, null=null)
    assert v.verdict == "inconclusive" and any("40.0% of permutations" in r for r in v.reasons)


def test_a_value_far_beyond_chance_counts_even_where_the_bar_is_weak():
    null = {"asym_null_clear_rate": 0.4, "asym_null_p": 0.001, "auc_null_clear_rate": 0.0, "auc_null_p": 0.001}
    assert judge_gate("fresh", 0.70, -0.30, n_pos=60, n_neg=60, null=null).verdict == "pass"


def test_strict_mode_holds_the_lower_bound():
    v = judge_gate("fresh", 0.70, -0.30, n_pos=60, n_neg=60, auc_lower=0.58)
    assert v.verdict == "fail" and any("CI lower bound" in r for r in v.reasons)
