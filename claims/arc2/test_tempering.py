"""Arc 2 on bases this suite can run: head tempering's content damage, and directional attribution.

The paper tempered the top magnitude-attribution heads of Gemma 4 E2B and Qwen3.5-0.8B in five
variants and found 0 of 5 clean positives: "tempering damaged content without moving
disposition". Neither the tempered models nor their outputs were released, so here the same
procedure runs on `smollm2-135m` and `gemma3-270m`, reading Gemma's released step16 responses:

1. magnitude attribution, wrong vs correct cohorts (the released ``correct`` labels), teacher-forced
   through the base; the top 5 heads are tempered;
2. lambda in {1.0, 0.9, 0.8, 0.5}; content damage = perplexity of the released reference answers
   (Gemma's step16 responses, first 30) and, with ``--dd-allow-code-exec``, HumanEval pass@1 on the
   first 20 problems; lambda = 1 must reproduce the base exactly;
3. with a judge (``--dd-judge-base-url``), the base and each tempered arm answer the first 50
   step16 prompts in up to 512 new tokens (the length of the paper's own released answers: 537
   SmolLM2 tokens at the median), the v4 rubric labels every answer, and the paired shift of the
   Humble and Adversarial-self axes is the disposition (factual accuracy joins content damage).
   Without a judge, disposition is recorded as not measured and an undamaged lambda stays
   undecided.

The bars are `gates.toml`'s ``[tempering]``; `dd.arcs` classifies each lambda. The
claim held is "at least one clean positive"; the paper's 0 of 5 makes it xfail(strict=True).

Directional attribution (``arc2.attr.directional``): the paper's "top heads d > 1.3 with cos ~1"
came from a direction fitted to the very items it was scored on; here the held-out d is the one
held to the bar (`gates.toml`'s ``[attribution]``, 1.3).
"""

from __future__ import annotations

import pytest

from dd.arcs import (
    CLEAN,
    UNDECIDED,
    DispositionProbe,
    Sweep,
    cached_head_inputs,
    directional_attribution,
    humaneval_missing,
    load_problems,
    magnitude_attribution,
    sweep_verdict,
    sweep_verdicts,
    tempering_sweep,
)
from dd.paper import load_judged, paper_numbers
from dd.protocol import FAIL, PASS, bars
from dd.pytest import claim_param, claim_test

QUOTED = paper_numbers("arc2")
LAMS = (1.0, 0.9, 0.8, 0.5)
TOP_K = 5
N_REFERENCE = 30
HUMANEVAL_SUBSET = 20
HUMANEVAL_BUDGET = 256
N_DISPOSITION = 50
DISPOSITION_BUDGET = 512
D_BAR = bars("attribution")["cohen_d_min"]
SWEEP_PAPER = QUOTED["tempering"]
DIRECTIONAL_PAPER = QUOTED["attribution"]["directional"]


def _wrong_and_pairs(paper):
    step16 = paper.load(load_judged, "step16")
    return ~step16.correct.astype(bool), step16.responses.pairs()


def _disposition_probe(paper, pairs) -> DispositionProbe | None:
    judge = paper.judge()
    if judge is None:
        return None
    config, cache = judge
    return DispositionProbe(tuple(p for p, _ in pairs[:N_DISPOSITION]), DISPOSITION_BUDGET, config, cache)


def _sweep_metrics(sweep: Sweep, heads) -> dict:
    base = sweep.base
    metrics = {"heads": [f"L{layer}H{h}" for layer, h in heads], "n_reference": N_REFERENCE,
               "base_perplexity": base.perplexity}
    if base.humaneval:
        metrics.update({f"base.{k}": v for k, v in base.humaneval.metrics().items()})
    if base.judged:
        metrics.update({f"base.{axis}_pct": 100 * r for axis, r in base.judged.rates().items()})
    for p in sweep.points:
        metrics[f"lambda{p.lam}.perplexity"] = p.perplexity
        metrics[f"lambda{p.lam}.ppl_rise_pct"] = 100 * (p.perplexity / base.perplexity - 1)
        if p.humaneval:
            metrics.update({f"lambda{p.lam}.{k}": v for k, v in p.humaneval.metrics().items()})
    return metrics


@pytest.mark.parametrize("base_name", [
    claim_param(b, id=b, claim_id="arc2.tempering.sweep", base=b, operator="tempering", step="sweep",
                paper=SWEEP_PAPER, expected="fail",
                why=f"paper: {SWEEP_PAPER['clean_positives']} of {SWEEP_PAPER['variants']} tempering variants were "
                    "clean positives (content damaged, disposition not moved)",
                marks=[pytest.mark.model, pytest.mark.slow])
    for b in ("smollm2-135m", "gemma3-270m")
])
def test_tempering_sweep(base_name, paper, bases, dd_settings, claim):
    if dd_settings.allow_code_exec and humaneval_missing():
        pytest.skip(f"{humaneval_missing()} (the sweep's HumanEval leg runs with --dd-allow-code-exec)")

    wrong, pairs = _wrong_and_pairs(paper)
    base = bases.get(base_name)
    inputs = cached_head_inputs(base, pairs, bases.cache)
    heads = magnitude_attribution(inputs, wrong).top(TOP_K)
    problems = load_problems()[:HUMANEVAL_SUBSET] if dd_settings.allow_code_exec else ()
    sweep = tempering_sweep(base, heads, LAMS, pairs[:N_REFERENCE], cache=bases.cache, problems=problems,
                            n_predict=HUMANEVAL_BUDGET, allow_code_exec=dd_settings.allow_code_exec,
                            disposition=_disposition_probe(paper, pairs), workers=2)
    # a plumbing check, not the claim: an error, never a verdict (so never the paper's xfail)
    identity = next(p for p in sweep.points if p.lam == 1.0)
    if identity.perplexity != sweep.base.perplexity or (
            identity.humaneval and identity.humaneval.passed != sweep.base.humaneval.passed):
        raise RuntimeError(f"lambda=1 does not reproduce the base: perplexity {identity.perplexity!r} "
                           f"vs {sweep.base.perplexity!r}")

    metrics = _sweep_metrics(sweep, heads)
    verdicts = sweep_verdicts(sweep)
    for lam_verdict, disposition in verdicts:
        metrics[f"lambda{lam_verdict.lam}.outcome"] = lam_verdict.outcome
        if disposition is not None:
            metrics.update({f"lambda{lam_verdict.lam}.{k}": v for k, v in disposition.metrics().items()})
            metrics["judging"] = dict(disposition.judging)
    reasons = []  # beside each lambda's own, which the sweep's verdict carries
    if not dd_settings.allow_code_exec:
        reasons.append("HumanEval not run: pass --dd-allow-code-exec to add pass@1 to content damage")
    if sweep.base.judged is None:
        reasons.append("disposition not measured: no judge endpoint (--dd-judge-base-url, --dd-judge-model)")
    outcomes = [v.outcome for v, _ in verdicts]
    metrics["clean_positives"] = outcomes.count(CLEAN)
    metrics["undecided_lambdas"] = outcomes.count(UNDECIDED)
    claim.conclude(source="recomputed", metrics=metrics, verdict=sweep_verdict([v for v, _ in verdicts]),
                   reasons=reasons)


# This suite's own measurement (not the paper's), 2026-11-27, CPU float32, sdpa, 100 step16 pairs
# (42 wrong / 58 correct), last 32 response tokens: top-5 in-sample d 1.28, 1.26, 1.16, 1.10, 1.09
# (L23H2, L23H1, L23H0, L23H8, L11H3; no head clears 1.3 even in-sample), their held-out d 0.16,
# 0.24, -0.25, 0.87, -0.32; cos(mu_cr, mu_cw) 0.95-0.996 on the top five; best held-out d 0.87.
# Sweep (same day, no judge, --dd-allow-code-exec): top-5 magnitude heads L1H1 L15H3 L5H7 L2H6
# L21H6; reference perplexity 10.414 base, +0.07% / +0.19% / +0.97% at lambda 0.9 / 0.8 / 0.5;
# HumanEval pass@1 (20 problems, 256 tokens) 0% base and at 0.9 / 0.8, 5% at 0.5, truncation 30% /
# 25% / 30% / 25%. gemma3-270m: heads L16H0 L3H1 L17H1 L1H3 L11H0, perplexity 11.839 base,
# -0.14% / -0.09% / +1.84%; pass@1 0% in every arm, and every completion is cut at 256 tokens (a
# pretrained base with no chat template never stops), so its HumanEval delta is a truncation
# artifact. Content undamaged by the bars, disposition unmeasured: inconclusive (xfailed) on both.
DIRECTIONAL_MEASURED = "measured here: in-sample top d 1.28, best held-out d 0.87"


@claim_test("arc2.attr.directional", base="smollm2-135m", operator="frozen", step="attribution",
            paper=DIRECTIONAL_PAPER, expected="fail",
            why=f"paper: top heads d > {DIRECTIONAL_PAPER['top_d_min']} with cos ~1, from in-sample directions; the "
                f"held-out d does not clear {D_BAR} ({DIRECTIONAL_MEASURED})",
            marks=[pytest.mark.model, pytest.mark.slow])
def test_directional_heldout(paper, bases, claim):
    wrong, pairs = _wrong_and_pairs(paper)
    inputs = cached_head_inputs(bases.get("smollm2-135m"), pairs, bases.cache)
    rows = directional_attribution(inputs, wrong).rows
    top = rows[:5]
    best_heldout = max(rows, key=lambda r: r.cohen_d_heldout)
    metrics = {
        "cohorts": {"cw": int(wrong.sum()), "cr": int((~wrong).sum())},
        "top5": [f"L{r.layer}H{r.head}" for r in top],
        "top5_d_insample": [r.cohen_d for r in top],
        "top5_d_heldout": [r.cohen_d_heldout for r in top],
        "top5_cos": [r.cos_cr_cw for r in top],
        "n_heads_insample_over_bar": sum(r.cohen_d > D_BAR for r in rows),
        "n_heads_heldout_over_bar": sum(r.cohen_d_heldout > D_BAR for r in rows),
        "best_heldout_head": f"L{best_heldout.layer}H{best_heldout.head}",
        "best_heldout_d": best_heldout.cohen_d_heldout,
    }
    holds = best_heldout.cohen_d_heldout > D_BAR
    why = (f"in-sample top d {top[0].cohen_d:.2f}; best held-out d {best_heldout.cohen_d_heldout:.2f} "
           f"({'clears' if holds else 'does not clear'} {D_BAR})")
    claim.conclude(source="recomputed", metrics=metrics, verdict=PASS if holds else FAIL, reasons=[why])
