"""Arc 1 training variants: attention-only vs all modules, r and alpha, SFT then DPO, think-block masking.

The paper trained the same teacher data into Qwen3-1.7B several ways and every way regressed
HumanEval (83.5% base; 67.7% attention-only, 62.8% all-modules r = 32, 51.2% think-block-masked;
"a subsequent DPO pass ... produced the same pattern"). Each variant here is a `dd.arcs.Variant`
trained through the ``lora`` operator on the teacher pipeline's data and measured the way Arc 1
from scratch measures its DD arm:

- ``arc1.variants.<variant>``: the DD claim through that variant: against the base it recovers
  from corrections more often (paired, truncation-gated, at two budgets) *and* its HumanEval
  pass@1 falls at neither budget (`dd.arcs.compare_variant`).
- ``arc1.variants.<b>_vs_<a>``: variant b against variant a on the same data: b's HumanEval pass@1
  is higher at both budgets, paired, truncation-gated (`dd.arcs.compare_humaneval`).

All variants train on one teacher run whose synthesizer reasons in a ``<think>`` block before its
answer (recorded replies, or the teachers of ``DD_ARC1_TEACHERS``), so the masked variant has spans
to mask; ``sft_think_pct`` in each entry says how many SFT targets had one. Recorded teachers this
small measure the plumbing, not disposition distillation.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from dd.arcs import (
    Variant,
    arc1_missing,
    audit_responses,
    compare_humaneval,
    compare_variant,
    humaneval_arms,
    recovery_arms,
    teacher_run,
    train_variant,
)
from dd.paper import paper_numbers
from dd.protocol import FAIL
from dd.pytest import claim_param

QUOTED = paper_numbers("arc1")
TEACHERS_ENV = "DD_ARC1_TEACHERS"
PLUMBING = ("recorded teachers this small measure the plumbing, not disposition distillation; set "
            f"{TEACHERS_ENV}=teachers.toml to run real teacher endpoints")

# Sizes per base: the tiny base runs in seconds (plumbing); smollm2-135m is the CPU run of the README.
RUNS = {
    "tiny-llama": {"problems": 2, "budgets": (4, 8), "sft": {"r": 4, "alpha": 8, "max_steps": 2, "batch_size": 2},
                   "dpo": {"max_steps": 2, "batch_size": 2, "beta": 0.1}},
    "smollm2-135m": {"problems": 8, "budgets": (128, 256),
                     "sft": {"r": 8, "alpha": 16, "lr": 5e-4, "batch_size": 2, "epochs": 8, "max_steps": 40},
                     "dpo": {"lr": 5e-4, "batch_size": 2, "epochs": 4, "max_steps": 8, "beta": 0.1}},
}


def variants(base_name: str) -> dict[str, Variant]:
    """The variants of one base, all shaped from its SFT settings (same data, same steps)."""
    from dd.operators import LoraTrainConfig

    size = RUNS[base_name]
    attention = LoraTrainConfig(target="attention", **size["sft"])
    r, alpha = 4 * attention.r, 4 * attention.alpha
    return {
        "attention": Variant("attention", attention),
        "all_linear": Variant("all-linear", replace(attention, target="all-linear")),
        "rank": Variant(f"attention-r{r}-alpha{alpha}", replace(attention, r=r, alpha=alpha)),
        "sft_dpo": Variant("sft+dpo", attention, LoraTrainConfig(target="attention", r=attention.r,
                                                                 alpha=attention.alpha, **size["dpo"])),
        "think_masked": Variant("think-masked", replace(attention, mask_think=True)),
    }


@pytest.fixture(scope="module")
def measured(bases):
    """``measured(base_name, arm)``: one arm's recovery arms per budget, its adapter and its data.

    ``arm`` None is the base. Memoised for the module, so a comparison and a variant claim share the
    arms they both need (generations and adapters are cached on disk besides: a re-run trains nothing).
    """
    from dd.arcs import load_problems

    memo: dict = {}

    def measure(base_name: str, arm: str | None):
        if (base_name, arm) not in memo:
            size = RUNS[base_name]
            base = bases.get(base_name)
            run = teacher_run(os.environ.get(TEACHERS_ENV), bases.cache, think=True)
            variant = None if arm is None else variants(base_name)[arm]
            op = None if variant is None else train_variant(base, variant, run, bases.cache)
            arms = recovery_arms(base, load_problems()[: size["problems"]], size["budgets"], bases.cache,
                                 name="base" if variant is None else variant.name, operator=op)
            memo[base_name, arm] = arms, op, run
        return memo[base_name, arm]

    return measure


def _data_metrics(run) -> dict:
    responses = [r for _, r in run.sft_pairs()]
    audit = audit_responses(responses, name="teachers", domain="code")
    think = 100 * sum("<think>" in r for r in responses) / max(1, len(responses))
    return {**audit.metrics(), "sft_think_pct": think, "teacher_examples": len(run.examples),
            "teacher_failures": len(run.failures)}


def _needs(dd_settings) -> None:
    missing = arc1_missing(dd_settings)
    if missing:
        pytest.skip(missing)


Q = QUOTED["qwen17"]
PAPER = {
    "attention": {"base_pass_pct": Q["base_pass_pct"], "variant_pass_pct": Q["attn_pass_pct"],
                  "delta": Q["delta.attn"], "lora_r": Q["lora_r"]},
    "all_linear": {"base_pass_pct": Q["base_pass_pct"], "variant_pass_pct": Q["all_modules_pass_pct"],
                   "lora_r": Q["lora_r"]},
    "rank": {"lora_r": Q["lora_r"]},
    "sft_dpo": {"base_pass_pct.n1024": QUOTED["humaneval_budgets"]["base_pass_pct.n1024"],
                "variant_pass_pct.n1024": QUOTED["humaneval_budgets"]["dd_pass_pct.n1024"],
                "base_recovery_pct": QUOTED["recovery"]["base_recovery_pct"],
                "variant_recovery_pct": QUOTED["recovery"]["dd_recovery_pct"]},
    "think_masked": {"base_pass_pct": Q["base_pass_pct"], "variant_pass_pct": Q["think_masked_pass_pct"]},
}
WHY = {
    "attention": "the paper: Qwen3-1.7B attention-only LoRA (r = 32) 83.5% -> 67.7% HumanEval (-15.8)",
    "all_linear": "the paper: Qwen3-1.7B all-modules LoRA r = 32 83.5% -> 62.8% HumanEval",
    "rank": ("the paper: neither attention-only LoRA (r = 32) nor all-modules LoRA recovered the baseline "
             "(it reports no run that varies r or alpha alone)"),
    "sft_dpo": ("the paper: Qwen3-0.6B SFT+DPO LoRA 36.0% -> 28.0% HumanEval at n_predict 1024 and correction "
                "recovery 10.5% -> 7.5%; on Qwen3-1.7B 'a subsequent DPO pass ... produced the same pattern'"),
    "think_masked": "the paper: Qwen3-1.7B v3 think-block-masked variant 83.5% -> 51.2% HumanEval",
}
TINY_WHY = "; a tiny base truncates every answer at its budgets: inconclusive"
# This suite's own measurement (not quoted from the paper). 2026-12-03, CPU float32, greedy, the first 8
# HumanEval problems at 128 and 256 tokens, recorded teachers with think blocks (4 SFT pairs, 16 SFT steps,
# 8 DPO steps): base pass@1 0% at both budgets, first answers cut 38% / 25%; every variant but the rank
# one 12.5% at both budgets (rank 0%); recovery 0 of 8 (base) vs 0 of 7 (0 of 8 for rank) at both budgets;
# the arms are cut at the budget at rates 12.5-57 points apart: truncation_artifact for every variant, and
# every comparison against attention-only 12.5% vs 12.5% at 256 tokens: no gain.
SMOLLM_WHY = ("; measured here on smollm2-135m (8 problems, 128/256 tokens): recovery 0 of 8 vs 0 of 7 or 8, "
              "truncation rates 12.5-57 points apart from the base's: truncation_artifact (vs attention-only: "
              "12.5% vs 12.5% at 256 tokens)")


def _variant_params(base_name: str, extra: str, marks: list) -> list:
    return [claim_param(base_name, key, claim_id=f"arc1.variants.{key}", id=f"{key}-{base_name}", base=base_name,
                        operator=f"lora-{variants(base_name)[key].name}", step="variant", paper=PAPER[key],
                        expected=FAIL, why=WHY[key] + extra, marks=marks) for key in PAPER]


TINY_MARKS = [pytest.mark.model, pytest.mark.code_exec]
SLOW_MARKS = [pytest.mark.model, pytest.mark.code_exec, pytest.mark.slow]


@pytest.mark.parametrize(("base_name", "key"), [*_variant_params("tiny-llama", TINY_WHY, TINY_MARKS),
                                                *_variant_params("smollm2-135m", SMOLLM_WHY, SLOW_MARKS)])
def test_variant(base_name, key, dd_settings, measured, claim):
    """Claim held: the variant recovers from corrections more often than the base and keeps HumanEval, at both budgets."""
    _needs(dd_settings)
    base_arms, _, _ = measured(base_name, None)
    arms, op, run = measured(base_name, key)
    cmp = compare_variant(base_arms, arms)
    claim.conclude(source="recomputed", verdict=cmp.verdict, reasons=[PLUMBING],
                   metrics={**cmp.metrics(base_arms, arms), **_data_metrics(run), "adapter": op.key(),
                            "stages": op.spec.stages})


# Variant b against variant a on the same data: (b, a, the paper's values, why it is expected to fail).
COMPARISONS = {
    "all_linear_vs_attention": ("all_linear", "attention",
                                {"attn_pass_pct": Q["attn_pass_pct"], "all_modules_pass_pct": Q["all_modules_pass_pct"]},
                                "the paper: all-modules r = 32 62.8% vs attention-only 67.7%: no capability recovered"),
    "think_masked_vs_attention": ("think_masked", "attention",
                                  {"attn_pass_pct": Q["attn_pass_pct"],
                                   "think_masked_pass_pct": Q["think_masked_pass_pct"]},
                                  "the paper: think-block-masked 51.2% vs attention-only 67.7%"),
    "sft_dpo_vs_attention": ("sft_dpo", "attention", {},
                             "the paper (prose): a DPO pass after SFT 'produced the same pattern', no numbers"),
}


def _comparison_params(base_name: str, extra: str, marks: list) -> list:
    return [claim_param(base_name, key, claim_id=f"arc1.variants.{key}", id=f"{key}-{base_name}", base=base_name,
                        operator=f"lora-{variants(base_name)[b].name}-vs-{variants(base_name)[a].name}",
                        step="variant-comparison", paper=paper, expected=FAIL, why=why + extra, marks=marks)
            for key, (b, a, paper, why) in COMPARISONS.items()]


@pytest.mark.parametrize(("base_name", "key"), [*_comparison_params("tiny-llama", TINY_WHY, TINY_MARKS),
                                                *_comparison_params("smollm2-135m", SMOLLM_WHY, SLOW_MARKS)])
def test_variant_comparison(base_name, key, dd_settings, measured, claim):
    """Claim held: on the same data, variant b's HumanEval pass@1 is above variant a's at both budgets."""
    _needs(dd_settings)
    b, a, _, _ = COMPARISONS[key]
    ref, _, run = measured(base_name, a)
    arms, op, _ = measured(base_name, b)
    cmp, verdict = compare_humaneval(ref, arms)
    claim.conclude(source="recomputed", verdict=verdict, reasons=[PLUMBING],
                   metrics={**cmp.metrics(humaneval_arms(ref), humaneval_arms(arms)), **_data_metrics(run),
                            "adapter": op.key(), "stages": op.spec.stages})
