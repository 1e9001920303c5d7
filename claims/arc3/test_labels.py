"""Arc 3 label counts, recomputed from the released judge files (Gemma 4 E2B's responses).

Correct = gold-checklist coverage >= 0.5; v4 axes binarized at score >= 4, judge-error items
dropped (step16 item 21, fresh item 149), which leaves n = 99 / 192.
"""

import numpy as np
import pytest

from dd.paper import CORRECT_COVERAGE, load_fresh_gold, load_judged, load_summary, paper_numbers
from dd.protocol import agree, combine
from dd.pytest import claim_param, claim_test

QUOTED = paper_numbers("arc3")
STEP16 = QUOTED["labels"]["step16"]
FRESH = QUOTED["labels"]["fresh"]
STEP3 = QUOTED["step3"]


def axis_counts(axis: str) -> dict:
    """The paper's positives on step16 and fresh for one axis, and the items left after judge errors."""
    quoted = STEP3["axes"][axis]
    return {"n_pos_step16": quoted["n_pos_step16"], "n_pos_fresh": quoted["n_pos_fresh"],
            "n_step16": STEP3["n_step16"], "n_fresh": STEP3["n_fresh"]}


@claim_test("arc3.step16.labels", base="gemma4-e2b", operator="frozen", step="labels", paper=STEP16)
def test_step16_labels(paper, claim):
    judged = paper.load(load_judged, "step16")
    derived = judged.coverage >= CORRECT_COVERAGE
    measured = {"pos_rate": float(judged.correct.mean()), "mean_coverage": float(judged.coverage.mean()),
                "n": len(judged.correct), "correct_matches_coverage_rule": bool((derived == judged.correct).all())}
    verdict = agree(measured, {**STEP16, "correct_matches_coverage_rule": True}, {"mean_coverage": 5e-4})
    claim.conclude(source="recomputed", metrics=measured, verdict=verdict)


@claim_test("arc3.step2.labels", base="gemma4-e2b", operator="frozen", step="fresh", paper=FRESH)
def test_fresh_labels(paper, claim):
    gold = paper.load(load_fresh_gold, "gemma4-e2b")
    summary = paper.load(load_summary, "eval/results/v1_full_v2.json")["evaluation"]
    y = gold.labels.y
    measured = {"n_pos": int(y.sum()), "n": len(y), "pos_rate": float(y.mean()),
                "labels_match_coverage_rule": bool(((gold.coverage >= CORRECT_COVERAGE) == (y == 1)).all()),
                "summary_n_pos": summary["n_fresh_pos"], "summary_n_neg": summary["n_fresh_neg"]}
    verdict = agree(measured, {**FRESH, "labels_match_coverage_rule": True, "summary_n_pos": FRESH["n_pos"],
                               "summary_n_neg": FRESH["n"] - FRESH["n_pos"]}, {"pos_rate": 5e-4})
    claim.conclude(source="recomputed", metrics=measured, verdict=verdict)


@pytest.mark.parametrize("axis", [
    claim_param(axis, id=axis, claim_id=f"arc3.step3.labels.{axis}", base="gemma4-e2b", operator="frozen",
                step="axes", paper=axis_counts(axis))
    for axis in STEP3["axes"]
])
def test_axis_label_counts(axis, paper, claim):
    step16 = paper.judged("step16").axis_labels(axis)
    fresh = paper.judged("fresh").axis_labels(axis)
    summary = paper.load(load_summary, "eval/results/disposition_probe_sweep.json")["axes"][axis]
    measured = {"n_pos_step16": step16.n_pos, "n_pos_fresh": fresh.n_pos, "n_step16": step16.n, "n_fresh": fresh.n,
                "dropped_step16": np.flatnonzero(~step16.mask).tolist(), "dropped_fresh": np.flatnonzero(~fresh.mask).tolist()}
    stored = {"n_pos_step16": summary["n_pos_step16"], "n_pos_fresh": summary["n_pos_fresh"],
              "n_step16": summary["n_pos_step16"] + summary["n_neg_step16"],
              "n_fresh": summary["n_pos_fresh"] + summary["n_neg_fresh"]}
    verdict = combine(paper=agree(measured, axis_counts(axis)), stored_summary=agree(measured, stored))
    claim.conclude(source="recomputed", metrics=measured, verdict=verdict,
                   reasons=[f"labels from the {paper.judge_source}"])
