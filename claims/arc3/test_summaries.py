"""Arc 3 Steps 2-4 for Gemma 4 E2B, from the authors' stored summaries (source: summary).

Gemma's hidden-state features were not released, so these AUCs and asymmetries cannot be
recomputed from files (the frozen-base claims recompute them where weights are available).
Here each summary is checked for internal consistency and against the paper's text, and the
pre-registered gate is applied to the stored numbers.
"""

import re

import pytest

from dd.paper import load_summary
from dd.protocol import judge_gate, thresholds, gates_version
from dd.protocol import agree, combine
from dd.paper import auc_problems, sweep_point_problems
from dd.protocol import FAIL, PASS, Verdict

STEP2 = "eval/results/v1_full_v2.json"
SWEEP = "eval/results/disposition_probe_sweep.json"
MULTILAYER = "eval/results/probe_multilayer.json"
STEP2_PAPER = {"C=1.0": {"auc": 0.509, "balanced_asym": 0.008}, "C=0.1": {"auc": 0.516, "balanced_asym": -0.043}}
STEP3_PAPER = {  # CV AUC on step16 / transfer AUC on fresh, LogReg C=0.1
    "factual_accuracy": (0.533, 0.480),
    "hedging_appropriateness": (0.599, 0.515),
    "pedagogical_framing": (0.481, 0.439),
    "self_verification": (0.594, 0.518),
    "completeness": (0.510, 0.442),
}
ROUNDING = 5e-4


def verdict_of(problems: list[str]) -> Verdict:
    return Verdict(FAIL, tuple(problems), {}) if problems else Verdict(PASS, ("internally consistent",), {})


def step2_config(paper, config):
    evaluation = paper.load(load_summary, STEP2)["evaluation"]
    return evaluation, evaluation["configs"][config]


@pytest.mark.parametrize("config", [
    pytest.param(c, id=c, marks=pytest.mark.claim("arc3.step2.fresh.summary", base="gemma4-e2b",
                                                  operator=f"sidecar-logreg-{c.replace('=', '')}", step="fresh",
                                                  paper=STEP2_PAPER[c]))
    for c in STEP2_PAPER
])
def test_step2_summary(config, paper, claim):
    evaluation, cfg = step2_config(paper, config)
    n_pos, n_neg = evaluation["n_fresh_pos"], evaluation["n_fresh_neg"]
    problems = auc_problems("auc", cfg["auc"], n_pos, n_neg)
    for name in ("min", "thr_0.5", "balanced_pc_0.70"):
        problems += sweep_point_problems(name, cfg[name], n_pos, n_neg, balanced=name.startswith("balanced"))
    if cfg["min"]["asym"] > cfg["balanced_pc_0.70"]["asym"] + 1e-12:
        problems.append("the unconstrained minimum is above the constrained one")
    best = min(evaluation["configs"].items(), key=lambda kv: kv[1]["balanced_pc_0.70"]["asym"])
    if evaluation["best_balanced"]["config"] != best[0]:
        problems.append(f"best_balanced names {evaluation['best_balanced']['config']}, the minimum is {best[0]}")
    measured = {"auc": cfg["auc"], "balanced_asym": cfg["balanced_pc_0.70"]["asym"],
                "balanced_thr": cfg["balanced_pc_0.70"]["thr"], "n_pos": n_pos, "n_neg": n_neg}
    verdict = combine(consistency=verdict_of(problems), paper=agree(measured, STEP2_PAPER[config], ROUNDING))
    claim.record(source="summary", metrics=measured, verdict=verdict)
    assert verdict.passed, verdict.reasons


@pytest.mark.parametrize("config", [
    pytest.param(c, id=c, marks=[
        pytest.mark.claim("arc3.step2.fresh.gate", base="gemma4-e2b", operator=f"sidecar-logreg-{c.replace('=', '')}",
                          step="fresh", paper=STEP2_PAPER[c]),
        pytest.mark.xfail(strict=True, reason=f"paper: fresh transfer fails the gate ({c}: AUC "
                                              f"{STEP2_PAPER[c]['auc']}, balanced asym {STEP2_PAPER[c]['balanced_asym']:+})")])
    for c in STEP2_PAPER
])
def test_step2_gate(config, paper, claim):
    evaluation, cfg = step2_config(paper, config)
    auc, asym = cfg["auc"], cfg["balanced_pc_0.70"]["asym"]
    verdict = judge_gate("fresh", auc, asym, n_pos=evaluation["n_fresh_pos"], n_neg=evaluation["n_fresh_neg"])
    claim.record(source="summary", metrics={"auc": auc, "balanced_asym": asym}, verdict=verdict)
    assert verdict.passed, verdict.reasons


def sweep_axis(paper, axis):
    return paper.load(load_summary, SWEEP)["axes"][axis]


@pytest.mark.parametrize("axis", [
    pytest.param(a, id=a, marks=pytest.mark.claim(f"arc3.step3.axes.{a}.summary", base="gemma4-e2b",
                                                  operator="sidecar-logreg-C0.1", step="axes",
                                                  paper={"cv_auc": v[0], "fresh_auc": v[1]}))
    for a, v in STEP3_PAPER.items()
])
def test_step3_axis_summary(axis, paper, claim):
    ax = sweep_axis(paper, axis)
    measured = {"cv_auc": ax["cv_auc_step16"], "fresh_auc": ax["transfer_auc_fresh"],
                "n_pos_fresh": ax["n_pos_fresh"], "n_neg_fresh": ax["n_neg_fresh"]}
    problems = auc_problems("transfer AUC", ax["transfer_auc_fresh"], ax["n_pos_fresh"], ax["n_neg_fresh"])
    verdict = combine(consistency=verdict_of(problems),
                      paper=agree(measured, dict(zip(("cv_auc", "fresh_auc"), STEP3_PAPER[axis])), ROUNDING))
    claim.record(source="summary", metrics=measured, verdict=verdict)
    assert verdict.passed, verdict.reasons


@pytest.mark.claim("arc3.step3.axes.tally", base="gemma4-e2b", operator="sidecar-logreg-C0.1", step="axes",
                   paper={"n_dispositions_passing": 0, "n_transfer_below_chance": 3})
def test_step3_tally(paper, claim):
    """'0 of 4 dispositions pass; 3 of 5 transfer AUCs below 0.5', from the stored per-axis AUCs."""
    summary = paper.load(load_summary, SWEEP)
    cv_bar, fresh_bar = thresholds("cv")["auc_min"], thresholds("fresh")["auc_min"]
    dispositions = {a: v for a, v in summary["axes"].items() if v["disposition"] != "capability_anchor"}
    measured = {
        "n_dispositions": len(dispositions),
        "n_dispositions_passing": sum(v["cv_auc_step16"] >= cv_bar and v["transfer_auc_fresh"] >= fresh_bar
                                      for v in dispositions.values()),
        "n_transfer_below_chance": sum(v["transfer_auc_fresh"] < 0.5 for v in summary["axes"].values()),
    }
    verdict = agree(measured, {"n_dispositions": 4, "n_dispositions_passing": 0, "n_transfer_below_chance": 3})
    claim.record(source="summary", metrics=measured, verdict=verdict)
    assert verdict.passed, verdict.reasons


@pytest.mark.parametrize("axis", [
    pytest.param(a, id=a, marks=[
        pytest.mark.claim(f"arc3.step3.axes.{a}.gate", base="gemma4-e2b", operator="sidecar-logreg-C0.1",
                          step="axes", paper={"fresh_auc": v[1]}),
        pytest.mark.xfail(strict=True, reason=f"paper: no axis transfers ({a} fresh AUC {v[1]})")])
    for a, v in STEP3_PAPER.items()
])
def test_step3_axis_gate(axis, paper, claim):
    """Only AUCs are stored per axis, so the gate holds the AUC bars; asym is not available."""
    ax = sweep_axis(paper, axis)
    cv_bar, fresh_bar = thresholds("cv")["auc_min"], thresholds("fresh")["auc_min"]
    failures = [f"{name} AUC {auc:.4f} < {bar}" for name, auc, bar in
                (("CV", ax["cv_auc_step16"], cv_bar), ("fresh", ax["transfer_auc_fresh"], fresh_bar)) if auc < bar]
    verdict = Verdict(FAIL if failures else PASS, tuple(failures) or ("both AUC bars cleared",),
                      {"cv_auc_min": cv_bar, "fresh_auc_min": fresh_bar, "version": gates_version()})
    claim.record(source="summary", metrics={"cv_auc": ax["cv_auc_step16"], "fresh_auc": ax["transfer_auc_fresh"]},
                 verdict=verdict)
    assert verdict.passed, verdict.reasons


MULTI_PAPER = {"auc": 0.557, "balanced_asym": -0.130, "auc_gain": 0.04, "asym_gain": -0.09}


def multilayer_numbers(paper):
    multi = paper.load(load_summary, MULTILAYER)
    single = paper.load(load_summary, STEP2)["evaluation"]["configs"]["C=0.1"]
    fresh = multi["configs"]["C=0.1"]["fresh"]
    asym = fresh["balanced_pc_0.70"]["asym"]
    return multi, {"auc": fresh["auc"], "balanced_asym": asym, "auc_gain": fresh["auc"] - single["auc"],
                   "asym_gain": asym - single["balanced_pc_0.70"]["asym"]}


@pytest.mark.claim("arc3.step4.multilayer.summary", base="gemma4-e2b", operator="sidecar-logreg-C0.1-last4",
                   step="multilayer", paper=MULTI_PAPER)
def test_step4_summary(paper, claim):
    multi, measured = multilayer_numbers(paper)
    problems = []
    for config, runs in multi["configs"].items():
        problems += auc_problems(f"{config} fresh AUC", runs["fresh"]["auc"], 55, 138)
        problems += sweep_point_problems(f"{config} fresh balanced", runs["fresh"]["balanced_pc_0.70"], 55, 138, True)
    verdict = combine(consistency=verdict_of(problems),
                      paper=agree(measured, MULTI_PAPER, {"auc": ROUNDING, "balanced_asym": ROUNDING,
                                                          "auc_gain": 5e-3, "asym_gain": 5e-3}))
    claim.record(source="summary", metrics=measured, verdict=verdict)
    assert verdict.passed, verdict.reasons


@pytest.mark.claim("arc3.step4.multilayer.gate", base="gemma4-e2b", operator="sidecar-logreg-C0.1-last4",
                   step="multilayer", paper={"auc": 0.557, "balanced_asym": -0.130})
@pytest.mark.xfail(strict=True, reason="paper: pooling the last 4 layers still fails (AUC 0.557, asym -0.130)")
def test_step4_gate(paper, claim):
    _, measured = multilayer_numbers(paper)
    verdict = judge_gate("fresh", measured["auc"], measured["balanced_asym"], n_pos=55, n_neg=138)
    claim.record(source="summary", metrics=measured, verdict=verdict)
    assert verdict.passed, verdict.reasons


def authors_bars(paper) -> dict[str, dict[str, float]]:
    """The bars the authors' scripts stored beside their results, read from the files."""
    criterion = paper.load(load_summary, SWEEP)["gate"]["criterion"]
    cv, transfer = (float(x) for x in re.search(r"cv_auc>=([\d.]+).*transfer_auc>=([\d.]+)", criterion).groups())
    multi = paper.load(load_summary, MULTILAYER)["bar"]
    return {SWEEP: {"cv_auc_min": cv, "fresh_auc_min": transfer},
            MULTILAYER: {"fresh_auc_min": multi["auc_min"], "fresh_asym_max": multi["asym_max"]}}


@pytest.mark.claim("arc3.gates.authors_scripts", base="gemma4-e2b", step="gate")
@pytest.mark.xfail(strict=True, reason="the authors' scripts used other bars than the paper's gates "
                                       "(fresh AUC >= 0.60 in the sweep and multilayer scripts, not 0.63)")
def test_authors_bars_match_preregistered(paper, claim):
    preregistered = {"cv_auc_min": thresholds("cv")["auc_min"],
                     "fresh_auc_min": thresholds("fresh")["auc_min"],
                     "fresh_asym_max": thresholds("fresh")["asym_max"]}
    bars = authors_bars(paper)
    differences = [f"{src}: {key} {value} vs pre-registered {preregistered[key]}"
                   for src, stored in bars.items() for key, value in stored.items() if value != preregistered[key]]
    metrics = {f"{src.rsplit('/', 1)[-1]}:{k}": v for src, stored in bars.items() for k, v in stored.items()}
    verdict = Verdict(FAIL if differences else PASS, tuple(differences) or ("same bars",), preregistered)
    claim.record(source="summary", metrics=metrics, verdict=verdict)
    assert verdict.passed, verdict.reasons
