"""Arc 3 Steps 2-4 for Gemma 4 E2B, from the authors' stored summaries (source: summary).

Gemma's hidden-state features were not released, so these AUCs and asymmetries cannot be
recomputed from files (the frozen-base claims recompute them where weights are available).
Here each summary is checked for internal consistency and against the paper's text, and the
pre-registered gate is applied to the stored numbers.
"""

import re

import pytest

from dd.paper import auc_problems, load_summary, paper_numbers, sweep_point_problems
from dd.protocol import FAIL, PASS, Verdict, agree, combine, gates_version, judge_gate, thresholds
from dd.pytest import claim_param, claim_test

QUOTED = paper_numbers("arc3")
STEP2 = "eval/results/v1_full_v2.json"
SWEEP = "eval/results/disposition_probe_sweep.json"
MULTILAYER = "eval/results/probe_multilayer.json"
STEP2_PAPER = QUOTED["step2"]
STEP3_PAPER = QUOTED["step3"]["axes"]  # LogReg C=0.1
STEP4_PAPER = QUOTED["step4"]["C=0.1"]
FRESH_POS = QUOTED["labels"]["fresh"]["n_pos"]
FRESH_NEG = QUOTED["labels"]["fresh"]["n"] - FRESH_POS
ROUNDING = 5e-4


def aucs(axis: str) -> dict:
    """The paper's CV and transfer AUC of one axis."""
    return {k: STEP3_PAPER[axis][k] for k in ("cv_auc", "fresh_auc")}


def verdict_of(problems: list[str]) -> Verdict:
    return Verdict(FAIL, tuple(problems), {}) if problems else Verdict(PASS, ("internally consistent",), {})


def step2_config(paper, config):
    evaluation = paper.load(load_summary, STEP2)["evaluation"]
    return evaluation, evaluation["configs"][config]


def step2_params(claim_id: str, expected: str = "pass") -> list:
    return [claim_param(c, id=c, claim_id=claim_id, base="gemma4-e2b", operator=f"sidecar-logreg-{c.replace('=', '')}",
                        step="fresh", paper=q, expected=expected,
                        why=f"paper: fresh transfer fails the gate ({c}: AUC {q['auc']}, balanced asym "
                            f"{q['balanced_asym']:+})")
            for c, q in STEP2_PAPER.items()]


@pytest.mark.parametrize("config", step2_params("arc3.step2.fresh.summary"))
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
    claim.conclude(source="summary", metrics=measured, verdict=verdict)


@pytest.mark.parametrize("config", step2_params("arc3.step2.fresh.gate", "fail"))
def test_step2_gate(config, paper, claim):
    evaluation, cfg = step2_config(paper, config)
    auc, asym = cfg["auc"], cfg["balanced_pc_0.70"]["asym"]
    verdict = judge_gate("fresh", auc, asym, n_pos=evaluation["n_fresh_pos"], n_neg=evaluation["n_fresh_neg"])
    claim.conclude(source="summary", metrics={"auc": auc, "balanced_asym": asym}, verdict=verdict)


def sweep_axis(paper, axis):
    return paper.load(load_summary, SWEEP)["axes"][axis]


@pytest.mark.parametrize("axis", [
    claim_param(a, id=a, claim_id=f"arc3.step3.axes.{a}.summary", base="gemma4-e2b", operator="sidecar-logreg-C0.1",
                step="axes", paper=aucs(a))
    for a in STEP3_PAPER
])
def test_step3_axis_summary(axis, paper, claim):
    ax = sweep_axis(paper, axis)
    measured = {"cv_auc": ax["cv_auc_step16"], "fresh_auc": ax["transfer_auc_fresh"],
                "n_pos_fresh": ax["n_pos_fresh"], "n_neg_fresh": ax["n_neg_fresh"]}
    problems = auc_problems("transfer AUC", ax["transfer_auc_fresh"], ax["n_pos_fresh"], ax["n_neg_fresh"])
    verdict = combine(consistency=verdict_of(problems), paper=agree(measured, aucs(axis), ROUNDING))
    claim.conclude(source="summary", metrics=measured, verdict=verdict)


@claim_test("arc3.step3.axes.tally", base="gemma4-e2b", operator="sidecar-logreg-C0.1", step="axes",
            paper=QUOTED["step3"]["tally"])
def test_step3_tally(paper, claim):
    """'0 of 4 dispositions pass; 3 of 5 transfer AUCs below 0.5', from the stored per-axis AUCs."""
    summary = paper.load(load_summary, SWEEP)
    cv_bar, fresh_bar = thresholds("cv")["auc_min"], thresholds("fresh")["auc_min"]
    dispositions = {a: v for a, v in summary["axes"].items() if v["disposition"] != "capability_anchor"}
    measured = {
        "n_dispositions": len(dispositions),
        "n_dispositions_passing": sum(v["cv_auc_step16"] >= cv_bar and v["transfer_auc_fresh"] >= fresh_bar
                                      for v in dispositions.values()),
        # below chance, as the paper counts it
        "n_transfer_below_chance": sum(v["transfer_auc_fresh"] < 0.5 for v in summary["axes"].values()),
    }
    verdict = agree(measured, {"n_dispositions": QUOTED["step3"]["n_dispositions"], **QUOTED["step3"]["tally"]})
    claim.conclude(source="summary", metrics=measured, verdict=verdict)


@pytest.mark.parametrize("axis", [
    claim_param(a, id=a, claim_id=f"arc3.step3.axes.{a}.gate", base="gemma4-e2b", operator="sidecar-logreg-C0.1",
                step="axes", paper={"fresh_auc": v["fresh_auc"]}, expected="fail",
                why=f"paper: no axis transfers ({a} fresh AUC {v['fresh_auc']})")
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
    claim.conclude(source="summary", metrics={"cv_auc": ax["cv_auc_step16"], "fresh_auc": ax["transfer_auc_fresh"]},
                   verdict=verdict)


def multilayer_numbers(paper):
    multi = paper.load(load_summary, MULTILAYER)
    single = paper.load(load_summary, STEP2)["evaluation"]["configs"]["C=0.1"]
    fresh = multi["configs"]["C=0.1"]["fresh"]
    asym = fresh["balanced_pc_0.70"]["asym"]
    return multi, {"auc": fresh["auc"], "balanced_asym": asym, "auc_gain": fresh["auc"] - single["auc"],
                   "asym_gain": asym - single["balanced_pc_0.70"]["asym"]}


@claim_test("arc3.step4.multilayer.summary", base="gemma4-e2b", operator="sidecar-logreg-C0.1-last4",
            step="multilayer", paper={**STEP4_PAPER, **QUOTED["step4"]["gain"]})
def test_step4_summary(paper, claim):
    multi, measured = multilayer_numbers(paper)
    problems = []
    for config, runs in multi["configs"].items():
        problems += auc_problems(f"{config} fresh AUC", runs["fresh"]["auc"], FRESH_POS, FRESH_NEG)
        problems += sweep_point_problems(f"{config} fresh balanced", runs["fresh"]["balanced_pc_0.70"], FRESH_POS,
                                         FRESH_NEG, True)
    verdict = combine(consistency=verdict_of(problems),
                      paper=agree(measured, {**STEP4_PAPER, **QUOTED["step4"]["gain"]},
                                  {"auc": ROUNDING, "balanced_asym": ROUNDING, "auc_gain": 5e-3, "asym_gain": 5e-3}))
    claim.conclude(source="summary", metrics=measured, verdict=verdict)


@claim_test("arc3.step4.multilayer.gate", base="gemma4-e2b", operator="sidecar-logreg-C0.1-last4",
            step="multilayer", paper=STEP4_PAPER, expected="fail",
            why=f"paper: pooling the last 4 layers still fails (AUC {STEP4_PAPER['auc']}, asym "
                f"{STEP4_PAPER['balanced_asym']:.3f})")
def test_step4_gate(paper, claim):
    _, measured = multilayer_numbers(paper)
    verdict = judge_gate("fresh", measured["auc"], measured["balanced_asym"], n_pos=FRESH_POS, n_neg=FRESH_NEG)
    claim.conclude(source="summary", metrics=measured, verdict=verdict)


def authors_bars(paper) -> dict[str, dict[str, float]]:
    """The bars the authors' scripts stored beside their results, read from the files."""
    criterion = paper.load(load_summary, SWEEP)["gate"]["criterion"]
    cv, transfer = (float(x) for x in re.search(r"cv_auc>=([\d.]+).*transfer_auc>=([\d.]+)", criterion).groups())
    multi = paper.load(load_summary, MULTILAYER)["bar"]
    return {SWEEP: {"cv_auc_min": cv, "fresh_auc_min": transfer},
            MULTILAYER: {"fresh_auc_min": multi["auc_min"], "fresh_asym_max": multi["asym_max"]}}


@claim_test("arc3.gates.authors_scripts", base="gemma4-e2b", step="gate", expected="fail",
            why="the authors' scripts used other bars than the paper's gates (fresh AUC >= 0.60 in the sweep and "
                "multilayer scripts, not 0.63)")
def test_authors_bars_match_preregistered(paper, claim):
    preregistered = {"cv_auc_min": thresholds("cv")["auc_min"],
                     "fresh_auc_min": thresholds("fresh")["auc_min"],
                     "fresh_asym_max": thresholds("fresh")["asym_max"]}
    bars = authors_bars(paper)
    differences = [f"{src}: {key} {value} vs pre-registered {preregistered[key]}"
                   for src, stored in bars.items() for key, value in stored.items() if value != preregistered[key]]
    metrics = {f"{src.rsplit('/', 1)[-1]}:{k}": v for src, stored in bars.items() for k, v in stored.items()}
    verdict = Verdict(FAIL if differences else PASS, tuple(differences) or ("same bars",), preregistered)
    claim.conclude(source="summary", metrics=metrics, verdict=verdict)
