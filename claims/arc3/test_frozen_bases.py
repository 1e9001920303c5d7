"""Arc 3 Steps 1-4 recomputed through frozen bases, from the paper's released (prompt, response) pairs.

Gemma 4 E2B's hidden states were never released, so these steps can only be re-checked by
teacher-forcing its released step16 and fresh responses through a base. With
`--dd-model gemma4-e2b=PATH` this recomputes the paper's own numbers; on the small bases this
suite can install (`smollm2-135m`, `gemma3-270m`) it is a real experiment of its own: a small
base reading Gemma's responses, reported as such. Every step goes through the protocol's gates
and guards (`dd.protocol`); the labels come through `paper.judged` (a configured judge or the files).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dd.paper import JudgedSet, V4_AXES, content_hash, load_fresh_gold
from dd.protocol import combine

PAPER_BASE = "gemma4-e2b"
SMALL_BASES = ("smollm2-135m", "gemma3-270m")
OTHER_PAPER_BASES = ("smollm2-1.7b", "qwen3-0.6b", "qwen3-1.7b", "qwen3.5-0.8b")
# 293 pairs of about 600 tokens: about 5 minutes cold on 2 quiet cores for smollm2-135m (20 under
# load; under a minute warm): 'heavy', which the CI command deselects. gemma3-270m costs about
# twice that and needs a 238 MB install: 'slow', run with --dd-slow.
HEAVY_BASES = {"smollm2-135m"}
SLOW_BASES = {"gemma3-270m"}
CS = (1.0, 0.1)
STEP3_C = 0.1  # the authors' per-axis sweep used C=0.1

PAPER = {  # Gemma 4 E2B, quoted
    "cv": {1.0: {"cv_mean_fold_auc": 0.683}, 0.1: {"balanced_asym": -0.341}},
    "fresh": {1.0: {"auc": 0.509, "balanced_asym": 0.008}, 0.1: {"auc": 0.516, "balanced_asym": -0.043}},
    "multilayer": {1.0: {}, 0.1: {"auc": 0.557, "balanced_asym": -0.130}},
    "axes": {"factual_accuracy": (0.533, 0.480), "hedging_appropriateness": (0.599, 0.515),
             "pedagogical_framing": (0.481, 0.439), "self_verification": (0.594, 0.518),
             "completeness": (0.510, 0.442)},
}
PAPER_VERDICT = {"cv": "pass", "fresh": "fail", "multilayer": "fail", "axes": "fail"}
# Verdicts this suite measured on bases the paper did not run (2026-11-27, CPU, float32, sdpa); a
# change of verdict turns the suite red, like a change of the paper's. smollm2-135m: CV AUC
# 0.553 / 0.539 (C=1.0 / 0.1), fresh AUC 0.445 / 0.453, last-4 fresh AUC 0.473 / 0.481; per axis
# CV/fresh AUC 0.432/0.524 factual, 0.511/0.512 hedging, 0.551/0.522 pedagogical,
# 0.762/0.557 self-verification, 0.624/0.539 completeness. gemma3-270m: CV AUC 0.643 / 0.638
# (balanced asym -0.187 / -0.157), fresh AUC 0.551 / 0.552, last-4 fresh AUC 0.570 / 0.567; per
# axis CV/fresh AUC 0.529/0.495 factual, 0.549/0.504 hedging, 0.575/0.471 pedagogical,
# 0.545/0.503 self-verification, 0.610/0.424 completeness.
MEASURED_VERDICT = {
    ("smollm2-135m", "cv"): "fail",
    ("smollm2-135m", "fresh"): "fail",
    ("smollm2-135m", "multilayer"): "fail",
    ("smollm2-135m", "axes"): "fail",
    ("gemma3-270m", "cv"): "fail",
    ("gemma3-270m", "fresh"): "fail",
    ("gemma3-270m", "multilayer"): "fail",
    ("gemma3-270m", "axes"): "fail",
}


def expected(base: str, step: str) -> tuple[str, str]:
    """(verdict, why) the claim holds this base to."""
    if base == PAPER_BASE:
        return PAPER_VERDICT[step], "paper"
    if (base, step) in MEASURED_VERDICT:
        return MEASURED_VERDICT[(base, step)], "measured by this suite, not quoted by the paper"
    return "pass", "the paper's sidecar claim, never run on this base"


def params(step: str, variants) -> list:
    out = []
    for base in (PAPER_BASE, *SMALL_BASES, *OTHER_PAPER_BASES):
        verdict, why = expected(base, step)
        for variant in variants:
            quoted = paper_values(step, variant) if base == PAPER_BASE else {}
            marks = [pytest.mark.claim(f"arc3.{STEP_IDS[step]}", base=base, operator=operator(step, variant),
                                       step=step, paper=quoted), pytest.mark.model]
            if verdict != "pass":
                marks.append(pytest.mark.xfail(strict=True, reason=f"{why}: {step} gate verdict is {verdict}"
                                                                   + (f" ({quoted})" if quoted else "")))
            if base in SLOW_BASES:
                marks.append(pytest.mark.slow)
            if base in HEAVY_BASES:
                marks.append(pytest.mark.heavy)
            out.append(pytest.param(base, variant, id=f"{base}-{variant}", marks=marks))
    return out


STEP_IDS = {"cv": "step1.cv", "fresh": "step2.fresh", "axes": "step3.axes", "multilayer": "step4.multilayer"}


def operator(step: str, variant) -> str:
    if step == "axes":
        return f"sidecar-logreg-C{STEP3_C}"
    return f"sidecar-logreg-C{variant}" + ("-last4" if step == "multilayer" else "")


def paper_values(step: str, variant) -> dict:
    if step == "axes":
        cv, fresh = PAPER["axes"][variant]
        return {"cv_auc": cv, "fresh_auc": fresh}
    return PAPER[step][variant]


def surface_facts(judged: JudgedSet, feats) -> dict[str, np.ndarray]:
    """Per-item facts about where and how the text stops, for the surface-confound guard."""
    texts = judged.responses.texts
    return {
        "response_tokens": feats.n_response_tokens.astype(float),
        "ends_with_punctuation": np.array([t.rstrip()[-1:] in ".!?)" for t in texts], dtype=float),
    }


_SOURCES: dict = {}


def feature_source(base, paper, bases, *, view: str = "h_last", axis: str | None = None):
    """The protocol's input for one base, view and label axis, built once per session."""
    key = (base, view, axis)
    if key not in _SOURCES:
        _SOURCES[key] = _build_source(base, paper, bases, view=view, axis=axis)
    return _SOURCES[key]


def _build_source(base, paper, bases, *, view: str, axis: str | None):
    from dd.protocol import FeatureSource

    step16, fresh = paper.judged("step16"), paper.judged("fresh")
    f16, ffr = bases.features(base, step16), bases.features(base, fresh)
    if axis is None:
        y16 = step16.correct.astype(int)
        yfr = paper.load(load_fresh_gold, PAPER_BASE).labels.y
        keep16, keepfr = np.ones(len(y16), bool), np.ones(len(yfr), bool)
    else:
        l16, lfr = step16.axis_labels(axis), fresh.axis_labels(axis)
        y16, yfr, keep16, keepfr = l16.y, lfr.y, l16.mask, lfr.mask
    s16, sfr = surface_facts(step16, f16), surface_facts(fresh, ffr)
    return FeatureSource(
        name=base,
        X_train=getattr(f16, view)[keep16], y_train=y16[keep16],
        X_fresh=getattr(ffr, view)[keepfr], y_fresh=yfr[keepfr],
        surface_train={k: v[keep16] for k, v in s16.items()},
        surface_fresh={k: v[keepfr] for k, v in sfr.items()},
        hashes_train=tuple(np.array([content_hash([p]) for p in step16.responses.prompt_set.prompts])[keep16]),
        hashes_fresh=tuple(np.array([content_hash([p]) for p in fresh.responses.prompt_set.prompts])[keepfr]),
    )


def record_and_assert(claim, base, result, extra_metrics=None):
    claim.record(source="recomputed", metrics={**result.metrics, **(extra_metrics or {})}, verdict=result.verdict,
                 reasons=[f"features of {base} over Gemma 4 E2B's released responses"])
    assert result.verdict.passed, result.verdict.reasons


@pytest.mark.parametrize("base, C", params("cv", CS))
def test_step1_cv(base, C, paper, bases, claim):
    from dd.protocol import cv_step, fresh_step, second_base_step
    from dd.protocol import cross_validate

    source = feature_source(base, paper, bases)
    result = cv_step(source, C)
    folds = cross_validate(source.X_train, source.y_train, C)
    record_and_assert(claim, base, result, {"cv_auc": folds.pooled_auc, "cv_mean_fold_auc": folds.mean_fold_auc})


@pytest.mark.parametrize("base, C", params("fresh", CS))
def test_step2_fresh(base, C, paper, bases, claim):
    from dd.protocol import cv_step, fresh_step, second_base_step

    record_and_assert(claim, base, fresh_step(feature_source(base, paper, bases), C))


@pytest.mark.parametrize("base, axis", params("axes", V4_AXES))
def test_step3_axis(base, axis, paper, bases, claim):
    """Both gates on one v4 axis (binarized at >= 4): CV on step16, transfer to fresh."""
    from dd.protocol import cv_step, fresh_step, second_base_step

    source = feature_source(base, paper, bases, axis=axis)
    cv, fresh = cv_step(source, STEP3_C), fresh_step(source, STEP3_C)
    verdict = combine(cv=cv.verdict, fresh=fresh.verdict)
    metrics = {"cv_auc": cv.metrics["auc"], "fresh_auc": fresh.metrics["auc"],
               **{f"cv.{k}": v for k, v in cv.metrics.items()}, **{f"fresh.{k}": v for k, v in fresh.metrics.items()}}
    claim.record(source="recomputed", metrics=metrics, verdict=verdict, gate={"cv": cv.verdict.gate,
                                                                               "fresh": fresh.verdict.gate})
    assert verdict.passed, verdict.reasons


@pytest.mark.parametrize("base, C", params("multilayer", CS))
def test_step4_multilayer(base, C, paper, bases, claim):
    from dd.protocol import cv_step, fresh_step, second_base_step

    record_and_assert(claim, base, fresh_step(feature_source(base, paper, bases, view="last_n_mean"), C))


STEP5_PAIRS = {  # (first base, second base of another family): expected verdict, why
    (PAPER_BASE, "smollm2-1.7b"): ("fail", "paper: the SmolLM2-1.7B replication fails (fresh AUC 0.519 / 0.505)"),
    ("smollm2-135m", "gemma3-270m"): ("fail", "measured by this suite, not quoted by the paper: gemma3-270m CV AUC "
                                              "0.643 / 0.638 < 0.65, fresh AUC 0.551 / 0.552 < 0.63"),
}


def step5_params() -> list:
    out = []
    for (first, second), (verdict, why) in STEP5_PAIRS.items():
        for C in CS:
            marks = [pytest.mark.claim("arc3.step5.second_base", base=first, operator=f"sidecar-logreg-C{C}",
                                       step="second-base"), pytest.mark.model]
            if verdict != "pass":
                marks.append(pytest.mark.xfail(strict=True, reason=why))
            if {first, second} & SLOW_BASES:
                marks.append(pytest.mark.slow)
            out.append(pytest.param(first, second, C, id=f"{first}+{second}-{C}", marks=marks))
    return out


@pytest.mark.parametrize("base, second, C", step5_params())
def test_step5_second_base(base, second, C, paper, bases, claim):
    """Steps 1 and 2 replicated on a second base of another family, over the same released pairs."""
    from dd.protocol import cv_step, fresh_step, second_base_step

    source = dataclasses.replace(feature_source(base, paper, bases), second=feature_source(second, paper, bases))
    result = second_base_step(source, C)
    record_and_assert(claim, base, result, {"second_base": second})
