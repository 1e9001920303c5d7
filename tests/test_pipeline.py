"""The protocol on synthetic features whose truth is known: what passes, what fails, what is doubted."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest

from dd.lm import FeatureDirError, expected_verdicts, load_feature_dir
from dd.protocol import (
    FORKING_PATHS,
    FeatureSource,
    StepResult,
    Verdict,
    _gates,
    _pipeline,
    axes_step,
    bars,
    cv_step,
    fresh_step,
    member_verdict,
    split_ledger,
    surface_guard,
    thresholds,
)
from helpers import read_report, run_pytest

D = 20


def split(rng, n: int, n_pos: int, signal: float, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """n items, n_pos positives, positives shifted by `signal` along `direction`."""
    y = np.zeros(n, int)
    y[rng.choice(n, n_pos, replace=False)] = 1
    return rng.normal(size=(n, D)) + signal * y[:, None] * direction, y


def source(*, seed=0, train_signal=2.0, fresh_signal=2.0, n_fresh=320, fresh_pos=160, **extra):
    """240 training items (half positive) and a fresh split; 320 items keep the asym null below 5%."""
    rng = np.random.default_rng(seed)
    w = np.eye(D)[0]
    X_train, y_train = split(rng, 240, 120, train_signal, w)
    X_fresh, y_fresh = split(rng, n_fresh, fresh_pos, fresh_signal, w)
    return FeatureSource("synthetic", X_train, y_train, X_fresh, y_fresh, **extra)


@pytest.fixture(scope="module")
def transfers():
    return source()


def test_a_direction_that_transfers_passes_steps_1_and_2(transfers):
    cv, fresh = cv_step(transfers), fresh_step(transfers)
    assert cv.verdict.verdict == "pass", cv.reasons
    assert fresh.verdict.verdict == "pass", fresh.reasons
    for key in ("auc", "balanced_asym", "auc_ci_low", "auc_ci_high", "auc_null_p", "auc_null_clear_rate",
                "asym_null_clear_rate", "n_pos", "n_neg"):
        assert key in fresh.metrics
    assert fresh.metrics["auc_ci_low"] < fresh.metrics["auc"] < fresh.metrics["auc_ci_high"]


def test_a_training_only_direction_passes_cv_and_fails_fresh():
    src = source(fresh_signal=0.0)
    assert cv_step(src).verdict.verdict == "pass"
    fresh = fresh_step(src)
    assert fresh.verdict.verdict == "fail"
    assert any("AUC" in r and "< 0.63" in r for r in fresh.reasons)


def test_an_imbalanced_fresh_set_is_inconclusive_never_pass():
    fresh = fresh_step(source(fresh_pos=8, fresh_signal=3.0))
    assert fresh.metrics["n_pos"] == 8 and fresh.metrics["auc"] > 0.9
    assert fresh.verdict.verdict == "inconclusive"
    assert any("class imbalance" in r for r in fresh.reasons)


def test_strict_mode_holds_the_bootstrap_lower_bound_to_the_bar():
    src = source(fresh_signal=0.9, n_fresh=60, fresh_pos=30, seed=3)
    loose, strict = fresh_step(src), fresh_step(src, strict=True)
    assert loose.metrics["auc_ci_low"] < thresholds("fresh")["auc_min"] <= loose.metrics["auc"]
    assert strict.metrics["strict"] and strict.verdict.verdict == "fail"
    assert any("AUC CI lower bound" in r for r in strict.reasons)


def test_a_training_only_surface_confound_is_flagged():
    """Train: features encode length, and length decides the label. Fresh: longer, and unrelated."""
    rng = np.random.default_rng(7)
    length_train, length_fresh = rng.normal(300, 50, 160), rng.normal(420, 50, 160)
    y_train = (length_train > np.median(length_train)).astype(int)
    y_fresh = (rng.random(160) < 0.5).astype(int)
    encode = lambda L: rng.normal(size=(len(L), D)) + np.outer((L - 300) / 50, np.eye(D)[0])  # noqa: E731
    src = FeatureSource("confounded", encode(length_train), y_train, encode(length_fresh), y_fresh,
                                 surface_train={"length": length_train}, surface_fresh={"length": length_fresh})
    cv = cv_step(src)
    assert cv.verdict.verdict == "inconclusive", cv.reasons  # CV clears, on length alone
    assert cv.metrics["surface.length.features_auc_train"] >= 0.75 and cv.metrics["surface_flags"] == 2
    assert any("surface confound 'length'" in r and "distributed differently" in r for r in cv.reasons)
    assert any("predicts the train label alone" in r for r in cv.reasons)


def test_a_harmless_surface_fact_is_not_flagged(transfers):
    rng = np.random.default_rng(2)
    src = replace(transfers, surface_train={"length": rng.normal(300, 50, 240)},
                  surface_fresh={"length": rng.normal(300, 50, 320)})
    metrics, doubts = surface_guard(src, 1.0)
    assert doubts == [] and metrics["surface_flags"] == 0 and "surface.length.shift_p" in metrics


def test_the_split_ledger_catches_overlap_duplicates_and_a_shared_generator(transfers):
    hashes = tuple(f"item{i}" for i in range(240))
    leaky = replace(transfers, X_fresh=np.r_[transfers.X_train[:5], transfers.X_fresh[5:]],
                    hashes_train=hashes, hashes_fresh=hashes[:3] + tuple(f"new{i}" for i in range(317)),
                    generator_train="gemma", generator_fresh="gemma")
    metrics, doubts = split_ledger(leaky)
    assert metrics["ledger_hash_overlap"] == 3 and metrics["ledger_near_duplicates"] == 5
    assert len(doubts) == 3 and "independent generator" in doubts[2]
    fresh = fresh_step(leaky)
    assert fresh.verdict.verdict == "inconclusive" and fresh.metrics["ledger_hash_overlap"] == 3
    clean, _ = split_ledger(replace(transfers, generator_train="gemma", generator_fresh="qwen"))
    assert clean["ledger_near_duplicates"] == 0


def test_guards_never_lift_a_fail():
    src = source(fresh_signal=0.0, generator_train="g", generator_fresh="g")
    fresh = fresh_step(src)
    assert fresh.verdict.verdict == "fail" and any("independent generator" in r for r in fresh.reasons)


def test_step_3_passes_when_one_axis_carries_the_signal(transfers):
    rng = np.random.default_rng(4)
    noise = (rng.integers(0, 2, 240), rng.integers(0, 2, 320))
    axes = axes_step(replace(transfers, axes={"factual": (transfers.y_train, transfers.y_fresh),
                                                       "noise": noise}))
    assert axes.verdict.verdict == "pass" and axes.metrics["n_pass"] == 1 and axes.metrics["noise.verdict"] == "fail"
    assert "factual.fresh.auc_null_clear_rate" in axes.metrics
    with pytest.raises(ValueError, match="single label column"):
        axes_step(transfers)


def gate_result(step: str, fw_p: float, word: str = "pass") -> StepResult:
    return StepResult(step, {"specs.fw_p": fw_p}, Verdict(word, () if word == "pass" else ("bars",), {}))


def test_a_pass_on_one_of_several_axes_must_survive_bonferroni_across_them():
    assert member_verdict(gate_result("cv", 0.001), gate_result("fresh", 0.007), 7).passed  # 0.007 <= 0.05 / 7
    doubted = member_verdict(gate_result("cv", 0.001), gate_result("fresh", 0.02), 7, "v4 axes")
    assert doubted.verdict == "inconclusive" and doubted.code == FORKING_PATHS
    assert "across 7 v4 axes" in doubted.reasons[0] and "0.0200 > 0.05/7" in doubted.reasons[0]
    assert member_verdict(gate_result("cv", 0.001), gate_result("fresh", 0.02), 1).passed  # one axis: no family
    failed = member_verdict(gate_result("cv", 0.9, "fail"), gate_result("fresh", 0.02), 7)
    assert failed.verdict == "fail" and failed.code is None  # a fail needs no correction


def test_step_3_corrects_a_pass_across_the_axes(transfers, monkeypatch):
    """At alpha 0.0015 each axis's curve p (1/1001) clears alone, but not alpha / 2: the same pass is doubted."""
    real = _gates.registry()
    strict = {**real, "specs": {**real["specs"], "alpha": 0.0015}}
    monkeypatch.setattr(_gates, "registry", lambda: strict)
    one = {"factual": (transfers.y_train, transfers.y_fresh)}
    twin = {**one, "again": (transfers.y_train, transfers.y_fresh)}
    alone = axes_step(replace(transfers, axes=one))
    assert alone.verdict.verdict == "pass", alone.reasons
    both = axes_step(replace(transfers, axes=twin))
    assert both.verdict.verdict == "inconclusive" and both.verdict.code == FORKING_PATHS
    assert both.metrics["factual.verdict"] == both.metrics["again.verdict"] == "inconclusive"
    assert any("forking paths across 2 axes" in r for r in both.reasons)


def write_dir(root, src: FeatureSource, claims: dict | None = None, **arrays):
    root.mkdir(parents=True, exist_ok=True)
    np.savez(root / "train.npz", X=src.X_train, y=src.y_train, **{k: v[0] for k, v in arrays.items()})
    np.savez(root / "fresh.npz", X=src.X_fresh, y=src.y_fresh, **{k: v[1] for k, v in arrays.items()})
    if claims is not None:
        (root / "claims.json").write_text(json.dumps(claims))
    return root


def test_a_feature_dir_loads_with_its_extras(tmp_path, transfers):
    lengths = (np.arange(240.0), np.arange(320.0))
    root = write_dir(tmp_path / "mine", transfers, surface_length=lengths, y_hedging=(transfers.y_train,
                     transfers.y_fresh), generator=(np.array("a"), np.array("b")))
    src = load_feature_dir(root)
    assert src.name == "features:mine" and set(src.surface_train) == {"length"} and set(src.axes) == {"hedging"}
    assert (src.generator_train, src.generator_fresh, src.second) == ("a", "b", None)
    assert src.groups == (None, None) and src.views == {}  # an older directory: no groups, no views
    assert expected_verdicts(root)["fresh"] == "pass"


def test_a_feature_dir_with_groups_and_views_feeds_group_aware_cv_and_the_specification_curve(tmp_path, transfers):
    groups = (np.arange(240) % 24, np.array([f"topic{i % 8}" for i in range(320)]))
    root = write_dir(tmp_path / "grouped", transfers, group=groups,
                     X_half=(transfers.X_train[:, :10], transfers.X_fresh[:, :10]))
    src = load_feature_dir(root)
    assert np.array_equal(src.groups[0], groups[0]) and src.groups[1][3] == "topic3" and set(src.views) == {"half"}
    cv = cv_step(src)
    assert cv.metrics["folds"] == "stratified-group" and cv.metrics["specs.n"] == 2 * 2 * 5
    assert "groups.selectivity" in cv.metrics and "dupes.clusters" not in cv.metrics
    assert fresh_step(src).metrics["groups.shared"] == 0  # integer train groups, string fresh topics


def test_the_guards_bars_live_in_gates_toml():
    assert bars("surface") == {"auc_bar": 0.75, "shift_p": 0.01}
    assert bars("ledger") == {"near_duplicate_cosine": 0.995}
    assert not any(hasattr(_pipeline, name) for name in ("SURFACE_AUC_BAR", "SHIFT_P", "NEAR_DUPLICATE_COSINE"))


@pytest.mark.parametrize("break_it, message", [
    (lambda r: (r / "fresh.npz").unlink(), r"fresh.npz not found"),
    (lambda r: np.savez(r / "train.npz", X=np.zeros((4, D))), r"train.npz has no array 'y'"),
    (lambda r: np.savez(r / "train.npz", X=np.zeros((4, D)), y=np.array([0, 1, 0])), r"train.npz: y has shape \(3,\)"),
    (lambda r: np.savez(r / "fresh.npz", X=np.where(np.arange(6)[:, None] == 4, np.nan, 1.0) * np.ones((6, D)),
                        y=np.array([0, 1] * 3)), r"fresh.npz: X has NaN .* first at row 4"),
    (lambda r: np.savez(r / "fresh.npz", X=np.ones((6, D)), y=np.zeros(6)), r"fresh.npz: y holds a single class"),
    (lambda r: np.savez(r / "fresh.npz", X=np.ones((6, 3)), y=np.array([0, 1] * 3)), r"20 columns .* has 3"),
    (lambda r: np.savez(r / "fresh.npz", X=np.ones((6, D)), y=np.array([0, 1] * 3), group=np.zeros(6)),
     r"fresh.npz: group must hold \(6,\) ints or strings"),
])
def test_a_malformed_feature_dir_is_a_clear_error(tmp_path, transfers, break_it, message):
    root = write_dir(tmp_path / "bad", transfers)
    break_it(root)
    with pytest.raises(FeatureDirError, match=message):
        load_feature_dir(root)


def test_pytest_runs_the_protocol_on_feature_dirs_and_holds_them_to_their_claims(tmp_path, transfers, artifact_root):
    """Two user runs side by side: an honest directory reports and passes; an overclaiming one is red."""
    honest = write_dir(tmp_path / "synth", transfers, claims={"cv": "pass", "fresh": "pass"},
                       X_pooled=(transfers.X_train * 2, transfers.X_fresh * 2))
    write_dir(honest / "second", source(seed=9))
    overclaim = write_dir(tmp_path / "overclaim", source(fresh_signal=0.0), claims={"cv": "pass"})
    report_path = tmp_path / "report.json"
    runs = [("-k", "features", "--dd-features", str(honest), "--dd-report", str(report_path)),
            ("-k", "features and fresh", "--dd-features", str(overclaim))]
    with ThreadPoolExecutor(2) as pool:
        (code, out), (red_code, red_out) = pool.map(
            lambda args: run_pytest("claims/pipeline", "-p", "no:randomly", *args, artifacts_dir=artifact_root), runs)
    assert code == 0, out
    entries = {e["step"]: e for e in read_report(report_path)["results"]}
    assert set(entries) == {"cv", "fresh", "axes", "pooled", "second-base"}
    assert {e["base"] for e in entries.values()} == {"features:synth"}
    for step in ("cv", "fresh", "pooled", "second-base"):
        e = entries[step]
        assert (e["source"], e["verdict"], e["outcome"]) == ("recomputed", "pass", "passed")
    guards = {"auc", "auc_ci_low", "auc_ci_high", "auc_null_p", "auc_null_clear_rate", "asym_null_clear_rate", "n_pos"}
    assert guards <= set(entries["cv"]["metrics"])
    assert guards | {"ledger_near_duplicates", "surface_flags"} <= set(entries["fresh"]["metrics"])
    cv = entries["cv"]["metrics"]  # X_pooled is X's alternative in the specification curve
    assert cv["specs.n"] == 2 * 2 * 5 and cv["seeds.n"] == 5 and cv["dupes.clusters"] == 0 and cv["mdl.compression"] > 1
    assert entries["second-base"]["metrics"]["n_pass"] == 1
    assert entries["fresh"]["gate"]["auc_min"] == thresholds("fresh")["auc_min"]
    assert entries["axes"]["outcome"] == "skipped" and "single label column" in entries["axes"]["reasons"][0]
    assert red_code == 1 and "test_step2_fresh[features-overclaim]" in red_out
    assert "VerdictFailed: verdict fail; AUC" in red_out  # claimed pass, measured fail: red, with the reasons
