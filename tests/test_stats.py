"""Properties of the statistics every gate rests on."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import roc_auc_score

from dd.protocol import (
    OneClassError,
    SWEEP,
    auc_is_integral,
    balanced_asymmetry,
    bootstrap_auc_ci,
    cross_validate,
    fit_predict,
    permutation_null,
    roc_auc,
    score_null,
    sweep,
    two_by_two,
)


@st.composite
def labelled_scores(draw, min_size=4, max_size=60):
    n = draw(st.integers(min_size, max_size))
    y = draw(arrays(np.int64, n, elements=st.integers(0, 1)))
    if y.sum() in (0, n):
        y[0], y[-1] = 0, 1
    scores = draw(arrays(np.float64, n, elements=st.integers(0, 1000).map(lambda k: k / 1000)))
    return y, scores


@given(labelled_scores())
def test_auc_matches_sklearn(data):
    y, s = data
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@given(labelled_scores())
def test_auc_invariant_under_monotone_transform(data):
    y, s = data
    assert roc_auc(y, np.exp(3 * s) + 7) == pytest.approx(roc_auc(y, s), abs=1e-12)


@given(labelled_scores())
def test_auc_flips_with_labels(data):
    y, s = data
    assert roc_auc(1 - y, s) == pytest.approx(1 - roc_auc(y, s), abs=1e-12)


@given(labelled_scores())
def test_asymmetry_is_bounded_and_sweep_matches_brute_force(data):
    y, p = data
    points = sweep(y, p)
    assert len(points) == 91
    for pt in points[::9]:
        asserted = [pi > pt.thr for pi in p]
        wrong = [a for a, yi in zip(asserted, y) if yi == 0]
        right = [a for a, yi in zip(asserted, y) if yi == 1]
        expected = sum(wrong) / len(wrong) - sum(right) / len(right)
        assert pt.asym == pytest.approx(expected, abs=1e-12)
        assert -1 <= pt.asym <= 1


@given(labelled_scores())
def test_balanced_asymmetry_respects_the_bound(data):
    y, p = data
    point = balanced_asymmetry(y, p)
    eligible = [pt for pt in sweep(y, p) if pt.p_assert_correct >= 0.70]
    if not eligible:
        assert point is None
    else:
        assert point.p_assert_correct >= 0.70
        assert point.asym == min(pt.asym for pt in eligible)
        assert point == next(pt for pt in eligible if pt.asym == point.asym)  # first on ties


def test_assertion_is_strictly_greater():
    y = np.array([0, 1])
    p = np.array([SWEEP[45], SWEEP[45] + 0.01])  # item 0 sits exactly on the threshold
    point = sweep(y, p)[45]
    assert point.p_assert_wrong == 0.0 and point.p_assert_correct == 1.0


@pytest.mark.parametrize("fn", [
    lambda y: roc_auc(y, np.linspace(0, 1, len(y))),
    lambda y: sweep(y, np.linspace(0, 1, len(y))),
    lambda y: bootstrap_auc_ci(y, np.linspace(0, 1, len(y)), n_boot=10),
    lambda y: cross_validate(np.eye(len(y)), y, C=1.0),
])
def test_one_class_input_raises_a_clear_error(fn):
    with pytest.raises(OneClassError, match="single class"):
        fn(np.ones(12, int))


def test_nan_features_are_refused_with_their_position():
    X = np.zeros((10, 3))
    X[4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN .* first at index 4"):
        fit_predict(X, np.array([0, 1] * 5), X, C=1.0)


def test_cv_reports_pooled_and_mean_of_folds():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = (X[:, 0] + rng.normal(scale=1.0, size=60) > 0).astype(int)
    cv = cross_validate(X, y, C=1.0)
    assert len(cv.fold_aucs) == 5
    assert cv.pooled_auc == pytest.approx(roc_auc(y, cv.oof))
    assert cv.mean_fold_auc == pytest.approx(np.mean(cv.fold_aucs))


def test_bootstrap_is_seeded_and_brackets_the_auc():
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(30, int), np.zeros(30, int)]
    s = y + rng.normal(scale=1.5, size=60)
    a = bootstrap_auc_ci(y, s, n_boot=300, seed=3)
    assert a == bootstrap_auc_ci(y, s, n_boot=300, seed=3)
    assert a[0] <= roc_auc(y, s) <= a[1]


def test_permutation_null_separates_signal_from_noise():
    rng = np.random.default_rng(2)
    y = np.r_[np.ones(40, int), np.zeros(40, int)]
    signal = y * 2 + rng.normal(size=80)
    noise = rng.normal(size=80)
    clears = lambda v: v >= 0.63  # noqa: E731
    strong = permutation_null(y, lambda yy: roc_auc(yy, signal), clears, greater_is_extreme=True,
                                    n_permutations=200)
    weak = permutation_null(y, lambda yy: roc_auc(yy, noise), clears, greater_is_extreme=True,
                                  n_permutations=200)
    assert strong.p_value < 0.01 and strong.clear_rate < 0.05
    assert weak.p_value > 0.05


@given(st.integers(1, 20), st.integers(1, 20), st.integers(0, 400))
@settings(max_examples=50)
def test_auc_integrality(n_pos, n_neg, k):
    k = k % (2 * n_pos * n_neg + 1)
    assert auc_is_integral(k / (2 * n_pos * n_neg), n_pos, n_neg)


def test_two_by_two_counts():
    correct = np.array([1, 1, 1, 0, 0], bool)
    asserted = np.array([1, 1, 0, 1, 0], bool)
    t = two_by_two(correct, asserted)
    assert (t["correct_assert"], t["correct_hedge"], t["wrong_assert"], t["wrong_hedge"]) == (2, 1, 1, 1)
    assert t["asym"] == pytest.approx(0.5 - 2 / 3)


def test_score_null_equals_the_reference_permutation_loop():
    rng = np.random.default_rng(1)
    y = (rng.random(60) < 0.4).astype(int)
    p = np.clip(0.3 * y + rng.random(60) * 0.7, 0, 1)
    fast = score_null(y, p, auc_min=0.63, asym_max=-0.15, n_permutations=200, seed=5)

    def balanced(yy):
        point = balanced_asymmetry(yy, p)
        return point.asym if point else np.nan

    auc = permutation_null(y, lambda yy: roc_auc(yy, p), lambda v: v >= 0.63,
                                 greater_is_extreme=True, n_permutations=200, seed=5)
    asym = permutation_null(y, balanced, lambda v: v <= -0.15, greater_is_extreme=False,
                                  n_permutations=200, seed=5)
    assert (fast["auc_null_p"], fast["auc_null_clear_rate"]) == pytest.approx((auc.p_value, auc.clear_rate))
    assert (fast["asym_null_p"], fast["asym_null_clear_rate"]) == pytest.approx((asym.p_value, asym.clear_rate))


def test_bootstrap_equals_a_plain_resampling_loop():
    rng = np.random.default_rng(4)
    y = np.r_[np.ones(20, int), np.zeros(30, int)]
    s = y + rng.normal(size=50)
    draw = np.random.default_rng(9)
    pos, neg = s[y == 1], s[y == 0]
    aucs = []
    for _ in range(200):
        bp, bn = draw.choice(pos, len(pos)), draw.choice(neg, len(neg))
        aucs.append(roc_auc_score(np.r_[np.ones(20), np.zeros(30)], np.r_[bp, bn]))
    expected = (np.quantile(aucs, 0.05), np.quantile(aucs, 0.95))
    assert bootstrap_auc_ci(y, s, n_boot=200, level=0.9, seed=9) == pytest.approx(expected)
