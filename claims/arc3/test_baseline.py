"""Arc 3 baselines: the disposition 2x2 (correct/wrong x assert/hedge) of each frozen base.

Recomputed from the released per-sample labels. The 800-sample profile is an earlier run whose
prompts and checklists were misaligned; it must not back any claim, and the suite shows why.
"""

import re

import numpy as np
import pytest

from dd.paper import load_profile, load_samples, profile_from_judged
from dd.protocol import two_by_two
from dd.protocol import agree

CELLS = ("correct_assert", "correct_hedge", "wrong_assert", "wrong_hedge")
PAPER = {
    "gemma4-e2b": {"correct_assert": 53, "correct_hedge": 5, "wrong_assert": 38, "wrong_hedge": 4,
                   "p_assert_correct": 0.914, "p_assert_wrong": 0.905, "asym": -0.0090312},
    "smollm2-1.7b": {"correct_assert": 45, "correct_hedge": 11, "wrong_assert": 33, "wrong_hedge": 11, "asym": -0.0536},
    "qwen3.5-0.8b": {"correct_assert": 64, "correct_hedge": 11, "wrong_assert": 18, "wrong_hedge": 7, "asym": -0.1333},
}
# Rounding of the quoted figures: percentages to 0.1 point, asymmetries to the digits quoted.
TOL = {"p_assert_correct": 5e-4, "p_assert_wrong": 5e-4, "asym": 5e-5}
CLAIM_IDS = {"gemma4-e2b": "arc3.baseline.gemma", "smollm2-1.7b": "arc3.baseline.smollm", "qwen3.5-0.8b": "arc3.baseline.qwen35"}


@pytest.mark.parametrize("base", [
    pytest.param(base, id=base, marks=pytest.mark.claim(CLAIM_IDS[base], base=base, operator="frozen", step="baseline",
                                                        paper=PAPER[base]))
    for base in PAPER
])
def test_baseline_two_by_two(base, paper, claim):
    """Gemma's verbal labels come through `paper.judged`, so a configured judge re-derives them."""
    if base == "gemma4-e2b":
        profile = profile_from_judged(base, paper.judged("step16"))
    else:
        profile = paper.load(load_profile, base)
    measured = two_by_two(profile.correct, profile.asserted)
    verdict = agree(measured, PAPER[base], TOL)
    claim.record(source="recomputed", metrics={**measured, "n": len(profile.correct)}, verdict=verdict)
    assert verdict.passed, verdict.reasons


def topic_alignment(samples) -> float:
    """Share of samples whose text names a word (4+ letters) of the prompt's topic."""
    hits = []
    for sample in samples:
        words = [w for w in re.findall(r"[a-zà-ÿ]+", sample["topic"].lower()) if len(w) > 3]
        hits.append(any(w in sample["text"].lower() for w in words))
    return float(np.mean(hits))


@pytest.mark.claim("arc3.baseline.retracted", base="gemma4-e2b", operator="frozen", step="baseline",
                   paper={"asym": -0.0225})
def test_retracted_profile_recomputes(paper, claim):
    """The 800-sample profile's own asymmetry recomputes from its samples."""
    profile = paper.load(load_profile, "retracted-800")
    measured = two_by_two(profile.correct, profile.asserted)
    verdict = agree(measured, {"asym": -0.0225}, {"asym": 5e-5})
    claim.record(source="recomputed", metrics={**measured, "n": len(profile.correct)}, verdict=verdict)
    assert verdict.passed, verdict.reasons


@pytest.mark.claim("arc3.baseline.retracted.alignment", base="gemma4-e2b", operator="frozen", step="baseline")
def test_retracted_profile_is_misaligned(paper, claim):
    """Its responses mostly do not address their prompts' topics, unlike the v2 profiles."""
    samples = {base: paper.load(load_samples, base) for base in ("retracted-800", "smollm2-1.7b", "qwen3.5-0.8b")}
    rate = topic_alignment(samples.pop("retracted-800"))
    aligned = {base: topic_alignment(s) for base, s in samples.items()}
    ok = rate < 0.5 and all(v > 0.5 for v in aligned.values())
    claim.record(
        source="recomputed",
        metrics={"topic_alignment": rate, **{f"topic_alignment_{k}": v for k, v in aligned.items()}},
        verdict="pass" if ok else "fail",
        reasons=[f"{rate:.1%} of the 800 samples name their prompt's topic, against "
                 + ", ".join(f"{v:.1%} ({k})" for k, v in aligned.items()) + " in the aligned v2 profiles"],
    )
    assert ok


@pytest.mark.claim("arc3.baseline.retracted.vs_paper", base="gemma4-e2b", operator="frozen", step="baseline",
                   paper={"asym": -0.0090312, "accuracy": 0.58})
@pytest.mark.xfail(strict=True, reason="the retracted 800-sample profile (asym -0.0225, accuracy 0.2225) "
                                       "disagrees with the paper's Gemma baseline (asym -0.009, accuracy 0.58)")
def test_retracted_profile_matches_paper_baseline(paper, claim):
    """Had the paper used the 800-sample profile, its Gemma baseline would read differently."""
    profile = paper.load(load_profile, "retracted-800")
    measured = {**two_by_two(profile.correct, profile.asserted), "accuracy": float(profile.correct.mean())}
    verdict = agree(measured, {"asym": -0.0090312, "accuracy": 0.58}, {"asym": 5e-5, "accuracy": 5e-3})
    claim.record(source="recomputed", metrics=measured, verdict=verdict)
    assert verdict.passed, verdict.reasons
