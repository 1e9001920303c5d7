"""Arc 3 label counts, recomputed from the released judge files (Gemma 4 E2B's responses).

Correct = gold-checklist coverage >= 0.5; v4 axes binarized at score >= 4, judge-error items
dropped (step16 item 21, fresh item 149), which leaves n = 99 / 192.
"""

import numpy as np
import pytest

from dd.paper import CORRECT_COVERAGE, load_fresh_gold, load_judged, load_summary
from dd.protocol import agree, combine

AXES_PAPER = {  # positives step16 / fresh
    "factual_accuracy": (49, 101),
    "hedging_appropriateness": (79, 123),
    "pedagogical_framing": (81, 147),
    "self_verification": (26, 76),
    "completeness": (47, 130),
}


@pytest.mark.claim("arc3.step16.labels", base="gemma4-e2b", operator="frozen", step="labels",
                   paper={"pos_rate": 0.58, "mean_coverage": 0.452})
def test_step16_labels(paper, claim):
    judged = paper.load(load_judged, "step16")
    derived = judged.coverage >= CORRECT_COVERAGE
    measured = {"pos_rate": float(judged.correct.mean()), "mean_coverage": float(judged.coverage.mean()),
                "n": len(judged.correct), "correct_matches_coverage_rule": bool((derived == judged.correct).all())}
    verdict = agree(measured, {"pos_rate": 0.58, "mean_coverage": 0.452, "correct_matches_coverage_rule": True},
                    {"mean_coverage": 5e-4})
    claim.record(source="recomputed", metrics=measured, verdict=verdict)
    assert verdict.passed, verdict.reasons


@pytest.mark.claim("arc3.step2.labels", base="gemma4-e2b", operator="frozen", step="fresh",
                   paper={"n_pos": 55, "n": 193, "pos_rate": 0.285})
def test_fresh_labels(paper, claim):
    gold = paper.load(load_fresh_gold, "gemma4-e2b")
    summary = paper.load(load_summary, "eval/results/v1_full_v2.json")["evaluation"]
    y = gold.labels.y
    measured = {"n_pos": int(y.sum()), "n": len(y), "pos_rate": float(y.mean()),
                "labels_match_coverage_rule": bool(((gold.coverage >= CORRECT_COVERAGE) == (y == 1)).all()),
                "summary_n_pos": summary["n_fresh_pos"], "summary_n_neg": summary["n_fresh_neg"]}
    verdict = agree(measured, {"n_pos": 55, "n": 193, "pos_rate": 0.285, "labels_match_coverage_rule": True,
                               "summary_n_pos": 55, "summary_n_neg": 138}, {"pos_rate": 5e-4})
    claim.record(source="recomputed", metrics=measured, verdict=verdict,
                 paper={"n_pos": 55, "n": 193, "pos_rate": 0.285})
    assert verdict.passed, verdict.reasons


@pytest.mark.parametrize("axis", [
    pytest.param(axis, id=axis, marks=pytest.mark.claim(
        f"arc3.step3.labels.{axis}", base="gemma4-e2b", operator="frozen", step="axes",
        paper={"n_pos_step16": pos[0], "n_pos_fresh": pos[1], "n_step16": 99, "n_fresh": 192}))
    for axis, pos in AXES_PAPER.items()
])
def test_axis_label_counts(axis, paper, claim):
    step16 = paper.judged("step16").axis_labels(axis)
    fresh = paper.judged("fresh").axis_labels(axis)
    summary = paper.load(load_summary, "eval/results/disposition_probe_sweep.json")["axes"][axis]
    measured = {"n_pos_step16": step16.n_pos, "n_pos_fresh": fresh.n_pos, "n_step16": step16.n, "n_fresh": fresh.n,
                "dropped_step16": np.flatnonzero(~step16.mask).tolist(), "dropped_fresh": np.flatnonzero(~fresh.mask).tolist()}
    quoted = {"n_pos_step16": AXES_PAPER[axis][0], "n_pos_fresh": AXES_PAPER[axis][1], "n_step16": 99, "n_fresh": 192}
    stored = {"n_pos_step16": summary["n_pos_step16"], "n_pos_fresh": summary["n_pos_fresh"],
              "n_step16": summary["n_pos_step16"] + summary["n_neg_step16"],
              "n_fresh": summary["n_pos_fresh"] + summary["n_neg_fresh"]}
    verdict = combine(paper=agree(measured, quoted), stored_summary=agree(measured, stored))
    claim.record(source="recomputed", metrics=measured, verdict=verdict, reasons=[f"labels from the {paper.judge_source}"])
    assert verdict.passed, verdict.reasons
