"""Groups on synthetic data: memorised groups are caught, a real signal across groups is not doubted."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dd.protocol import (
    GROUP_LEAK,
    FeatureSource,
    control_labels,
    cross_validate,
    cv_step,
    duplicate_structure,
    fresh_step,
    group_cv_guard,
)

D = 20


def grouped(*, centroid: float, signal: float, labels_follow_groups: bool, seed: int = 0) -> FeatureSource:
    """30 groups of 8 items in both splits; features hold a group centroid and, with `signal`, the label.

    Labels follow the groups (a group is 90% or 10% positive) or not (each item a coin flip).
    """
    rng = np.random.default_rng(seed)
    centroids = centroid * rng.normal(size=(30, D))
    rates = np.where(rng.random(30) < 0.5, 0.9, 0.1) if labels_follow_groups else np.full(30, 0.5)
    g = np.repeat(np.arange(30), 8)

    def split():
        y = (rng.random(len(g)) < rates[g]).astype(int)
        return rng.normal(size=(len(g), D)) + centroids[g] + signal * y[:, None] * np.eye(D)[0], y

    (X_train, y_train), (X_fresh, y_fresh) = split(), split()
    return FeatureSource("grouped", X_train, y_train, X_fresh, y_fresh, groups=(g, g.copy()))


@pytest.fixture(scope="module")
def memorised():
    return grouped(centroid=2.0, signal=0.0, labels_follow_groups=True)


@pytest.fixture(scope="module")
def real():
    return grouped(centroid=0.0, signal=2.0, labels_follow_groups=False)


def test_control_labels_keep_the_class_balance_and_one_label_per_group():
    rng = np.random.default_rng(0)
    g = rng.integers(0, 40, 400)
    y = (rng.random(400) < 0.3).astype(int)
    c = control_labels(y, g, seed=1)
    assert all(len(set(c[g == k])) == 1 for k in np.unique(g))
    assert abs(c.sum() - y.sum()) <= np.bincount(g).max()
    singletons = np.arange(50)
    assert control_labels(np.r_[np.ones(20, int), np.zeros(30, int)], singletons, seed=2).sum() == 20
    assert not np.array_equal(control_labels(y, g, seed=1), control_labels(y, g, seed=2))


def test_group_aware_cv_keeps_groups_on_one_side_and_needs_enough_of_them(memorised):
    cv = cross_validate(memorised.X_train, memorised.y_train, groups=memorised.groups[0])
    assert cv.pooled_auc < cross_validate(memorised.X_train, memorised.y_train).pooled_auc - 0.1
    with pytest.raises(ValueError, match="at least 5 groups, got 3"):
        cross_validate(memorised.X_train, memorised.y_train, groups=memorised.groups[0] % 3)


def test_memorised_groups_pass_random_fold_cv_and_are_caught_with_groups(memorised):
    blind = cv_step(replace(memorised, groups=(None, None)))
    assert blind.verdict.verdict == "pass", blind.reasons  # the trap: random folds reward memorising
    cv = cv_step(memorised)
    assert cv.verdict.verdict != "pass" and cv.metrics["folds"] == "stratified-group"
    assert cv.metrics["groups.gap"] > 0.1 and cv.metrics["groups.selectivity"] < 0.1
    doubts = [r for r in cv.reasons if r.startswith("groups:")]
    assert len(doubts) == 2 and all("8 items" in r and "positive" in r for r in doubts)  # the groups are named
    assert any("below random-fold CV" in r for r in doubts) and any("control task" in r for r in doubts)


def test_memorised_groups_that_transfer_as_groups_are_inconclusive_at_fresh(memorised):
    assert fresh_step(replace(memorised, groups=(None, None))).verdict.verdict == "pass"
    fresh = fresh_step(memorised)
    assert fresh.verdict.verdict == "inconclusive" and fresh.verdict.code == GROUP_LEAK
    assert fresh.metrics["groups.shared"] == 30 and fresh.metrics["groups.selectivity"] < 0.1
    assert any("transfers to fresh" in r for r in fresh.reasons)


def test_a_real_signal_across_groups_passes_with_high_selectivity(real):
    cv, fresh = cv_step(real), fresh_step(real)
    assert cv.verdict.verdict == "pass" and fresh.verdict.verdict == "pass", cv.reasons + fresh.reasons
    assert cv.metrics["groups.selectivity"] > 0.25 and abs(cv.metrics["groups.gap"]) < 0.1
    assert fresh.metrics["groups.selectivity"] > 0.25 and 0.4 < cv.metrics["groups.control_auc"] < 0.6


def test_the_guard_alone_trips_on_memorised_groups_and_not_on_a_real_signal(memorised, real):
    _, doubts = group_cv_guard(memorised.X_train, memorised.y_train, memorised.groups[0], 1.0, 0.5)
    metrics, clean = group_cv_guard(real.X_train, real.y_train, real.groups[0], 1.0, 0.87)
    assert len(doubts) == 2 and clean == [] and metrics["groups.n"] == 30 and metrics["groups.largest"] == 8


def test_without_groups_the_near_duplicate_structure_is_reported(real):
    rng = np.random.default_rng(5)
    X = real.X_train.copy()
    X[10:14] = X[3] + 1e-4 * rng.normal(size=(4, D))  # a template repeated five times
    hashes = tuple(f"h{i % 200}" for i in range(240))
    m = duplicate_structure(X, hashes)
    assert (m["dupes.hash_repeats"], m["dupes.clusters"], m["dupes.largest_cluster"], m["dupes.near_items"]) == (40, 1, 5, 5)
    clean = cv_step(replace(real, groups=(None, None))).metrics
    assert clean["dupes.clusters"] == 0 and clean["dupes.near_pairs"] == 0 and clean["dupes.hash_repeats"] is None
    assert 0 < clean["dupes.nn_cosine_median"] < clean["dupes.nn_cosine_max"] < 0.995
