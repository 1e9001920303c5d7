"""The effect protocol on synthetic arms: each verdict and code from arrays whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dd.protocol import (
    ANTI_STEERABLE,
    BASELINE_BEATEN,
    BASELINE_NOT_BEATEN,
    CONTENT_DAMAGED,
    CONTENT_UNDECIDED,
    DOES_NOT_TRANSFER,
    DOSE_MONOTONE,
    DOSE_NOT_MONOTONE,
    EFFECT,
    FAIL,
    INCONCLUSIVE,
    NO_DOSE_TREND,
    NO_EFFECT,
    NOT_STEERABLE,
    PASS,
    STEERABLE,
    Arm,
    ArmsNotAlike,
    arm_stats,
    bars,
    beats_baselines,
    compare_arms,
    content_anchors,
    dose_response,
    effect,
    gates_version,
    item_slopes,
    paired_bootstrap_ci,
    paired_test,
    rejected,
    sign_flip_p,
    steerability,
    wilson_interval,
)

N = 40
JUDGING = {"judge": "lexical", "rubric_version": "dd-lexical-hedge-assert/1+x", "model": "lexical"}
DECODING = {"n_predict": 256, "chat": True}
RNG = np.random.default_rng(7)
BASE_SCORES = RNG.normal(0.0, 1.0, N)
NOISE = RNG.normal(0.0, 0.3, N)


def arm(name: str, hedging, *, cut: int = 0, judging=JUDGING, decoding=DECODING, **axes) -> Arm:
    n = len(hedging)
    return Arm(name, [f"item{i}" for i in range(n)], {"hedging": hedging, **axes},
               ["length"] * cut + ["eos"] * (n - cut), [100] * n, judging, decoding)


BASE = arm("base", BASE_SCORES, factual=np.ones(N))


def test_a_real_effect_passes_with_its_numbers():
    op = arm("steering x4", BASE_SCORES + 0.8 + NOISE, factual=np.ones(N))
    result = effect(BASE, [op], axes={"hedging": 1}, content_axes=["factual"])
    c = result.comparisons["steering x4"]
    assert result.verdict.verdict == PASS and result.verdict.code == EFFECT
    t = c.tests["hedging"]
    assert t.delta == pytest.approx(0.8 + NOISE.mean()) and t.ci[0] < t.delta < t.ci[1] and t.ci[0] > 0.5
    assert t.p_value < 1e-3 and c.significant["hedging"] and c.content.passed
    assert c.verdict.gate["version"] == gates_version() and c.verdict.gate["correction"] == bars("effect")["correction"]
    assert result.judging == JUDGING and result.metrics()["steering x4.hedging.p"] == t.p_value


def test_no_effect_and_the_wrong_direction_fail():
    flat = effect(BASE, [arm("op", BASE_SCORES + NOISE - NOISE.mean())], axes={"hedging": 1})
    assert flat.verdict.verdict == FAIL and flat.verdict.code == NO_EFFECT
    down = effect(BASE, [arm("op", BASE_SCORES - 0.8)], axes={"hedging": 1})
    assert down.verdict.code == NO_EFFECT and "not in the claimed direction" in down.verdict.reasons[0]
    claimed_down = effect(BASE, [arm("op", BASE_SCORES - 0.8)], axes={"hedging": -1})
    assert claimed_down.verdict.code == EFFECT


def test_a_truncation_explained_effect_is_inconclusive():
    # the operator arm is cut at the budget far more often: its rise must not be reported as an effect
    op = arm("op", BASE_SCORES + 0.8, cut=20)
    result = effect(BASE, [op], axes={"hedging": 1})
    assert result.verdict.verdict == INCONCLUSIVE and result.verdict.code == "truncation_artifact"
    assert any("truncation rates differ" in r for r in result.verdict.reasons)


@pytest.mark.parametrize(("kw", "needle"), [
    ({"judging": {**JUDGING, "model": "gpt-judge"}}, "judging model: 'lexical' (base) vs 'gpt-judge' (op)"),
    ({"judging": {**JUDGING, "rubric_version": "v4"}}, "judging rubric_version"),
    ({"decoding": {**DECODING, "n_predict": 512}}, "decoding n_predict: 256 (base) vs 512 (op)"),
])
def test_arms_judged_or_decoded_differently_are_refused(kw, needle):
    with pytest.raises(ArmsNotAlike, match="not comparable") as err:
        effect(BASE, [arm("op", BASE_SCORES + 0.8, **kw)], axes={"hedging": 1})
    assert needle in str(err.value)


def test_other_prompts_or_a_missing_axis_are_refused():
    shuffled = Arm("op", [f"item{i}" for i in reversed(range(N))], {"hedging": BASE_SCORES}, ["eos"] * N, [1] * N,
                   JUDGING, DECODING)
    with pytest.raises(ArmsNotAlike, match="not the same prompts"):
        effect(BASE, [shuffled], axes={"hedging": 1})
    with pytest.raises(ArmsNotAlike, match="axis 'factual' missing from 'op'"):
        effect(BASE, [arm("op", BASE_SCORES)], axes={"hedging": 1}, content_axes=["factual"])
    with pytest.raises(ValueError, match="needs 3 finite scores"):
        Arm("x", ["a", "b", "c"], {"hedging": [1.0, np.nan, 2.0]}, ["eos"] * 3, [1] * 3, JUDGING, DECODING)


def test_damaged_content_fails_even_when_the_axis_moved():
    op = arm("op", BASE_SCORES + 0.8, factual=np.r_[np.zeros(10), np.ones(N - 10)])
    result = effect(BASE, [op], axes={"hedging": 1}, content_axes=["factual"])
    assert result.verdict.code == CONTENT_DAMAGED and "factual share -25.0 points" in result.verdict.reasons[0]
    anchors = content_anchors(bars=bars("effect"), ppl_rise=0.05)
    ppl = effect(BASE, [arm("op", BASE_SCORES + 0.8)], axes={"hedging": 1}, anchors={"op": anchors})
    assert ppl.verdict.code == CONTENT_DAMAGED and "reference perplexity +5.00% (bar +2%)" in ppl.verdict.reasons[0]


def test_a_pass_rate_cut_by_truncation_leaves_content_undecided():
    ok = arm_stats("base", ["eos"] * 20, [50] * 20)
    cut = arm_stats("op", ["length"] * 15 + ["eos"] * 5, [50] * 20)
    humaneval = compare_arms(ok, cut, [0.0] * 20, [1.0] * 20)
    anchors = content_anchors(bars=bars("effect"), ppl_rise=0.0, humaneval=humaneval)
    result = effect(BASE, [arm("op", BASE_SCORES + 0.8)], axes={"hedging": 1}, anchors={"op": anchors})
    assert result.verdict.verdict == INCONCLUSIVE and result.verdict.code == CONTENT_UNDECIDED
    assert "HumanEval delta is a truncation artifact" in result.verdict.reasons[0]


def test_doses_are_corrected_together_and_any_dose_can_carry_the_effect():
    doses = [arm("x1", BASE_SCORES + NOISE - NOISE.mean()), arm("x4", BASE_SCORES + 0.8 + NOISE)]
    result = effect(BASE, doses, axes={"hedging": 1})
    assert result.verdict.verdict == PASS and result.comparisons["x1"].verdict.code == NO_EFFECT
    assert all("holm over 2 test(s)" in r for c in result.comparisons.values() for r in c.verdict.reasons)
    with pytest.raises(ValueError, match="unique"):
        effect(BASE, [doses[0], doses[0]], axes={"hedging": 1})


def test_not_beating_the_random_direction_is_a_fail():
    op = arm("steering", BASE_SCORES + 0.8 + NOISE)
    random = arm("random direction", BASE_SCORES + 0.8 + NOISE[::-1])  # moves as much
    system = arm("system-prompt", BASE_SCORES + 0.1)
    result = beats_baselines(op, [random, system], axes={"hedging": 1})
    assert result.verdict.verdict == FAIL and result.verdict.code == BASELINE_NOT_BEATEN
    assert result.comparisons["random direction"].verdict.code == BASELINE_NOT_BEATEN
    assert result.comparisons["system-prompt"].verdict.code == BASELINE_BEATEN
    beaten = beats_baselines(op, [arm("random direction", BASE_SCORES + NOISE), system], axes={"hedging": 1})
    assert beaten.verdict.verdict == PASS and beaten.verdict.code == BASELINE_BEATEN


def dose_arms(means, cut=(0, 0, 0, 0)):
    return {float(d): arm(f"x{d}", BASE_SCORES + m + NOISE * 0.5, cut=c)
            for d, m, c in zip((1, 2, 3, 4), means, cut, strict=True)}


def test_a_monotone_dose_response_passes():
    result = dose_response(BASE, dose_arms((0.2, 0.4, 0.6, 0.8)), axis="hedging")
    assert result.verdict.code == DOSE_MONOTONE and result.spearman == pytest.approx(1.0)
    assert result.doses == (0.0, 1.0, 2.0, 3.0, 4.0) and result.p_value < 0.01
    assert result.mean_slope == pytest.approx(0.2, abs=0.05)


def test_a_non_monotone_dose_is_flagged():
    result = dose_response(BASE, dose_arms((0.6, 1.0, 0.4, 0.0)), axis="hedging")
    assert result.verdict.verdict == FAIL and result.verdict.code == DOSE_NOT_MONOTONE
    assert "rank correlation" in result.verdict.reasons[0]


def test_a_flat_dose_has_no_trend_and_a_truncating_dose_is_inconclusive():
    flat = {float(d): arm(f"x{d}", BASE_SCORES + NOISE * (d % 2) - NOISE.mean() * (d % 2) + 1e-3 * d)
            for d in (1, 2, 3, 4)}
    assert dose_response(BASE, flat, axis="hedging").verdict.code in (NO_DOSE_TREND, DOSE_NOT_MONOTONE)
    cut = dose_response(BASE, dose_arms((0.2, 0.4, 0.6, 0.8), cut=(0, 0, 5, 20)), axis="hedging")
    assert cut.verdict.verdict == INCONCLUSIVE and cut.verdict.code == "truncation_artifact"
    assert cut.truncation_rates == (0.0, 0.0, 0.0, 0.125, 0.5)


def test_steerability_on_a_constructed_case():
    multipliers = [-2.0, -1.0, 0.0, 1.0, 2.0]
    m = np.array(multipliers)
    slopes = np.r_[np.full(16, 1.0), np.full(4, -0.5)]  # 4 of 20 items steer the wrong way
    offsets = np.linspace(-1, 1, 20)[:, None]
    scores = offsets + slopes[:, None] * m
    fresh = offsets + 0.3 * m  # every fresh item steers, at 0.3 per unit
    s = steerability(multipliers, scores, fresh)
    np.testing.assert_allclose(s.slopes, slopes)
    assert s.mean_slope == pytest.approx(0.7) and s.anti_steerable == pytest.approx(0.2)
    assert s.anti_steerable_ci == pytest.approx(wilson_interval(4, 20, 0.95))
    assert s.anti_steerable_ci[0] < 0.2 < s.anti_steerable_ci[1] < 0.5
    assert s.fresh_mean_slope == pytest.approx(0.3) and s.slope_ratio == pytest.approx(0.3 / 0.7)
    assert s.verdict.code == DOES_NOT_TRANSFER  # fresh prompts keep 43% of the slope, bar 50%
    assert steerability(multipliers, scores, offsets + 0.6 * m).verdict.code == STEERABLE
    assert steerability(multipliers, -scores, fresh).verdict.code == NOT_STEERABLE
    assert steerability(multipliers, -scores, -fresh, direction=-1).verdict.code == DOES_NOT_TRANSFER
    half = offsets + np.r_[np.full(10, 1.0), np.full(10, -0.2)][:, None] * m
    assert steerability(multipliers, half, fresh).verdict.code == ANTI_STEERABLE


def test_wilson_interval_and_slopes():
    assert wilson_interval(0, 10, 0.95)[0] == 0.0 and wilson_interval(10, 10, 0.95)[1] == 1.0
    lo, hi = wilson_interval(5, 10, 0.95)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    np.testing.assert_allclose(item_slopes([0, 1, 2], [[0, 1, 2], [4, 2, 0]]), [1.0, -2.0])
    with pytest.raises(ValueError, match="distinct doses"):
        item_slopes([1, 1], [[0, 1]])


def test_corrections():
    p = {"a": 0.01, "b": 0.02, "c": 0.04}
    assert rejected(p, alpha=0.05, method="holm") == {"a": True, "b": True, "c": True}
    assert rejected(p, alpha=0.05, method="bonferroni") == {"a": True, "b": False, "c": False}
    assert rejected(p, alpha=0.05, method="holm", family_size=6) == {"a": False, "b": False, "c": False}
    assert rejected({"a": 0.008, "b": 0.03}, alpha=0.05, method="holm", family_size=6) == {"a": True, "b": False}
    with pytest.raises(ValueError, match="Holm family of 2"):
        rejected(p, alpha=0.05, method="holm", family_size=2)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=30), st.floats(0.0, 2.0))
def test_sign_flip_p_is_a_probability_and_falls_as_the_change_grows(diff, shift):
    diff = np.array(diff, dtype=float)
    p = sign_flip_p(diff, n_permutations=500)
    assert 0.0 < p <= 1.0
    assert sign_flip_p(diff + shift, n_permutations=500) <= p + 1e-12
    base = np.zeros(len(diff))
    up, down = paired_test("a", base, diff), paired_test("a", base, -diff, direction=-1)
    assert up.p_value == down.p_value and up.delta == -down.delta


def test_paired_bootstrap_ci_of_a_constant_change_is_that_change():
    assert paired_bootstrap_ci(np.full(12, 0.5), n_resamples=200, level=0.9) == pytest.approx((0.5, 0.5))
    with pytest.raises(ValueError, match="equal non-empty"):
        paired_test("a", np.ones(3), np.ones(4))
