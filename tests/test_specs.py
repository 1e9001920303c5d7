"""Specification curves on synthetic data: a real signal survives every specification, a forking path does not."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from test_pipeline import D, source

from dd.protocol import (
    FORKING_PATHS,
    FeatureSource,
    Spec,
    SpecCurve,
    bars,
    cv_step,
    fit_predict,
    fresh_step,
    max_auc_null,
    pooled_step,
    roc_auc,
    score_null,
    spec_curve,
    spec_grid,
)
from dd.pytest import draw_figures


def noise_views(seed: int = 7, n_views: int = 25, d: int = 5) -> FeatureSource:
    """The issue's trap: 25 noise views, the claimed X the one that looks best on a small fresh set (25/25)."""
    rng = np.random.default_rng(seed)
    y_train = rng.permutation(np.r_[np.ones(60, int), np.zeros(60, int)])
    y_fresh = rng.permutation(np.r_[np.ones(25, int), np.zeros(25, int)])
    views = {f"v{i}": (rng.normal(size=(120, d)), rng.normal(size=(50, d))) for i in range(n_views)}
    best = max(views, key=lambda v: roc_auc(y_fresh, fit_predict(views[v][0], y_train, views[v][1])))
    X_train, X_fresh = views.pop(best)
    return FeatureSource("noise-views", X_train, y_train, X_fresh, y_fresh, views=views)


def test_the_grids_come_from_gates_toml_and_the_full_one_holds_the_small_one():
    small, full = spec_grid(), spec_grid(full=True)
    assert small.C == (1.0, 0.1) and 42 in small.fold_seeds
    assert set(small.C) <= set(full.C) and set(small.fold_seeds) <= set(full.fold_seeds)
    assert len(full.fold_seeds) * len(full.C) > 5 * len(small.fold_seeds) * len(small.C)


def test_the_view_grid_of_model_run_sources_is_pre_registered_with_its_caps():
    """Positions x layers x response caps; the small grid reads the claimed pass only (no cap of its own).

    The full grid's layers are the two pools and each of the last four layers on its own.
    """
    small, full = spec_grid(), spec_grid(full=True)
    for grid in (small, full):
        assert grid.positions == ("last_rendered", "last_response", "mean_response")
    assert small.layers == ("last", "last_n_mean")
    assert full.layers == ("last", "last_n_mean", "layer-2", "layer-3", "layer-4")
    assert small.response_caps == () and full.response_caps == (None, 512)


def test_a_real_signal_present_in_every_specification_still_passes():
    rng = np.random.default_rng(1)
    src = source()
    views = {"scaled": (src.X_train * 3, src.X_fresh * 3),
             "padded": (np.c_[src.X_train, rng.normal(size=(240, 10))], np.c_[src.X_fresh, rng.normal(size=(320, 10))])}
    src = replace(src, views=views)
    cv, fresh = cv_step(src), fresh_step(src)
    for step, n in ((cv, 3 * 2 * 5), (fresh, 3 * 2)):
        assert step.verdict.verdict == "pass" and step.verdict.code is None, step.reasons
        m = step.metrics
        assert m["specs.n"] == n and m["specs.share_pass"] == 1.0
        assert m["specs.fw_p"] == pytest.approx(1 / (bars("specs")["permutations"] + 1))
        assert m["specs.auc_q25"] <= m["specs.auc_median"] <= m["specs.auc_q75"]
        assert step.curve.auc[step.curve.claimed] == pytest.approx(m["auc"])  # the claimed spec is the gate's own run
    assert cv.metrics["seeds.n"] == 5 and cv.metrics["seeds.auc_min"] <= cv.metrics["seeds.auc_median"]
    assert cv.metrics["specs.claimed"] == "X C=1 seed=42" and fresh.metrics["specs.claimed"] == "X C=1"


def test_the_best_of_25_noise_views_on_a_small_fresh_set_is_a_forking_path_not_a_pass():
    src = noise_views()
    alone = fresh_step(replace(src, views={}))  # what the suite said before the curve: a pass
    assert alone.verdict.verdict == "pass", alone.reasons
    fresh = fresh_step(src)
    assert fresh.verdict.verdict == "inconclusive" and fresh.verdict.code == FORKING_PATHS
    assert fresh.metrics["specs.n"] == 25 * 2 and fresh.metrics["specs.fw_p"] > bars("specs")["alpha"]
    assert fresh.metrics["specs.share_pass"] < 0.25
    assert any(r.startswith("forking paths:") and "family-wise" in r for r in fresh.reasons)


def test_step_4_counts_the_other_views_as_alternatives_of_each():
    src = noise_views(n_views=4)
    step = pooled_step(replace(src, views=dict(list(src.views.items())[:2])))
    assert step.metrics["v0.fresh.specs.n"] == 3 * 2 and step.metrics["v0.fresh.specs.claimed"] == "v0 C=1"


def test_a_lucky_fold_seed_is_a_forking_path_and_a_typical_one_is_not():
    def curve(seed_aucs, fw_p=0.001):
        specs = tuple(Spec("X", 1.0, s) for s in range(len(seed_aucs)))
        auc = np.array(seed_aucs)
        return SpecCurve("cv", specs, auc, auc - 0.05, auc + 0.05, auc >= 0.65, np.full(len(auc), fw_p), 0)

    lucky = curve([0.67, 0.58, 0.6, 0.62, 0.55])
    assert len(lucky.doubts()) == 1 and "lucky" in lucky.doubts()[0] and "median AUC over 5 fold seeds" in lucky.doubts()[0]
    assert curve([0.67, 0.66, 0.7, 0.64, 0.68]).doubts() == []
    assert "family-wise" in curve([0.67, 0.66, 0.7, 0.64, 0.68], fw_p=0.2).doubts()[0]


def test_a_failed_gate_gets_no_forking_path_reason():
    cv = cv_step(source(train_signal=0.0))
    assert cv.verdict.verdict == "fail" and cv.verdict.code is None
    assert not any("forking paths" in r for r in cv.reasons) and cv.metrics["specs.share_pass"] == 0.0


def test_one_permutation_is_applied_to_every_specification():
    rng = np.random.default_rng(3)
    y = rng.permutation(np.r_[np.ones(30, int), np.zeros(40, int)])
    p = y + rng.normal(size=70)
    # identical rows: the max is the single null, the same permutations as score_null's
    single, doubled = max_auc_null(y, p[None, :], 500, seed=5), max_auc_null(y, np.stack([p, p]), 500, seed=5)
    assert np.array_equal(single, doubled)
    observed = score_null(y, p, auc_min=0.63, asym_max=-0.15, n_permutations=500, seed=5)["auc_null_p"]
    assert ((single >= roc_auc(y, p) - 1e-12).sum() + 1) / 501 == pytest.approx(observed)


def test_the_family_wise_null_holds_its_error_rate_over_many_noise_specifications():
    """Under no signal, the best of 20 specifications survives alpha in about alpha of the data sets."""
    rng = np.random.default_rng(0)
    alpha, hits, trials = 0.05, 0, 300
    for _ in range(trials):
        y = rng.permutation(np.r_[np.ones(25, int), np.zeros(25, int)])
        scores = rng.normal(size=(20, 50))
        best = max(roc_auc(y, s) for s in scores)
        null = max_auc_null(y, scores, 200, seed=int(rng.integers(1 << 30)))
        hits += ((null >= best - 1e-12).sum() + 1) / 201 <= alpha
    assert hits / trials < 2 * alpha


def test_the_claimed_C_joins_the_grid_and_a_read_out_operator_brings_its_own_probe():
    src = source()
    family = {"X": (src.X_train, src.X_fresh)}
    curve = spec_curve("fresh", family, src.y_train, src.y_fresh, C=0.5)
    assert [s.C for s in curve.specs] == [0.5, 1.0, 0.1]
    own = spec_curve("cv", family, src.y_train, estimator=LogisticRegression(C=0.3))
    assert {s.C for s in own.specs} == {None} and own.specs[0].label == "X own probe seed=42"
    assert len(own.specs) == len(spec_grid().fold_seeds)


def test_the_curve_is_drawn_sorted_with_the_claimed_spec_and_the_gate_line():
    src = replace(source(), views={"half": (source().X_train[:, : D // 2], source().X_fresh[:, : D // 2])})
    payload = fresh_step(src).curve.payload("synthetic fresh")
    assert payload["kind"] == "spec_curve" and payload["auc"] == sorted(payload["auc"]) and payload["bar"] == 0.63
    assert payload["labels"][payload["claimed"]] == "X C=1"
    drawn = draw_figures([], {"spec_curve_synthetic": payload})
    assert drawn["spec_curve_synthetic"][:4] == b"\x89PNG"
