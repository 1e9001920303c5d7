"""Arc 3 baselines: the disposition 2x2 (correct/wrong x assert/hedge) of each frozen base.

Recomputed from the released per-sample labels. The 800-sample profile is an earlier run whose
prompts and checklists were misaligned; it must not back any claim, and the suite shows why.
"""

import re

import numpy as np
import pytest

from dd.paper import load_profile, load_samples, paper_numbers, profile_from_judged
from dd.protocol import agree, bars, two_by_two
from dd.pytest import claim_param, claim_test

QUOTED = paper_numbers("arc3")
PAPER = {base: QUOTED["baseline"][base] for base in ("gemma4-e2b", "smollm2-1.7b", "qwen3.5-0.8b")}
RETRACTED = QUOTED["baseline"]["retracted-800"]
# What the paper's Gemma baseline says, against which the retracted profile is held.
GEMMA_BASELINE = {"asym": PAPER["gemma4-e2b"]["asym"], "accuracy": QUOTED["labels"]["step16"]["pos_rate"]}
TOPIC_SHARE_MIN = bars("alignment")["topic_share_min"]
# Rounding of the quoted figures: percentages to 0.1 point, asymmetries to the digits quoted.
TOL = {"p_assert_correct": 5e-4, "p_assert_wrong": 5e-4, "asym": 5e-5}
CLAIM_IDS = {"gemma4-e2b": "arc3.baseline.gemma", "smollm2-1.7b": "arc3.baseline.smollm", "qwen3.5-0.8b": "arc3.baseline.qwen35"}


@pytest.mark.parametrize("base", [
    claim_param(base, id=base, claim_id=CLAIM_IDS[base], base=base, operator="frozen", step="baseline",
                paper=PAPER[base])
    for base in PAPER
])
def test_baseline_two_by_two(base, paper, claim):
    """Gemma's verbal labels come through `paper.judged`, so a configured judge re-derives them."""
    if base == "gemma4-e2b":
        profile = profile_from_judged(base, paper.judged("step16"))
    else:
        profile = paper.load(load_profile, base)
    measured = two_by_two(profile.correct, profile.asserted)
    claim.conclude(source="recomputed", metrics={**measured, "n": len(profile.correct)},
                   verdict=agree(measured, PAPER[base], TOL))


def topic_alignment(samples) -> float:
    """Share of samples whose text names a word (4+ letters) of the prompt's topic."""
    hits = []
    for sample in samples:
        words = [w for w in re.findall(r"[a-zà-ÿ]+", sample["topic"].lower()) if len(w) > 3]
        hits.append(any(w in sample["text"].lower() for w in words))
    return float(np.mean(hits))


@claim_test("arc3.baseline.retracted", base="gemma4-e2b", operator="frozen", step="baseline", paper=RETRACTED)
def test_retracted_profile_recomputes(paper, claim):
    """The 800-sample profile's own asymmetry recomputes from its samples."""
    profile = paper.load(load_profile, "retracted-800")
    measured = two_by_two(profile.correct, profile.asserted)
    claim.conclude(source="recomputed", metrics={**measured, "n": len(profile.correct)},
                   verdict=agree(measured, RETRACTED, {"asym": 5e-5}))


@claim_test("arc3.baseline.retracted.alignment", base="gemma4-e2b", operator="frozen", step="baseline")
def test_retracted_profile_is_misaligned(paper, claim):
    """Its responses mostly do not address their prompts' topics, unlike the v2 profiles."""
    samples = {base: paper.load(load_samples, base) for base in ("retracted-800", "smollm2-1.7b", "qwen3.5-0.8b")}
    rate = topic_alignment(samples.pop("retracted-800"))
    aligned = {base: topic_alignment(s) for base, s in samples.items()}
    ok = rate < TOPIC_SHARE_MIN and all(v > TOPIC_SHARE_MIN for v in aligned.values())
    claim.conclude(
        source="recomputed",
        metrics={"topic_alignment": rate, **{f"topic_alignment_{k}": v for k, v in aligned.items()}},
        verdict="pass" if ok else "fail",
        reasons=[f"{rate:.1%} of the 800 samples name their prompt's topic, against "
                 + ", ".join(f"{v:.1%} ({k})" for k, v in aligned.items()) + " in the aligned v2 profiles"],
    )


@claim_test("arc3.baseline.retracted.vs_paper", base="gemma4-e2b", operator="frozen", step="baseline",
            paper=GEMMA_BASELINE, expected="fail",
            why=f"the retracted 800-sample profile (asym {RETRACTED['asym']}, accuracy 0.2225) disagrees with the "
                f"paper's Gemma baseline (asym {GEMMA_BASELINE['asym']:.3f}, accuracy {GEMMA_BASELINE['accuracy']})")
def test_retracted_profile_matches_paper_baseline(paper, claim):
    """Had the paper used the 800-sample profile, its Gemma baseline would read differently."""
    profile = paper.load(load_profile, "retracted-800")
    measured = {**two_by_two(profile.correct, profile.asserted), "accuracy": float(profile.correct.mean())}
    claim.conclude(source="recomputed", metrics=measured,
                   verdict=agree(measured, GEMMA_BASELINE, {"asym": 5e-5, "accuracy": 5e-3}))
