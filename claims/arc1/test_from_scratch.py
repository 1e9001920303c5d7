"""Arc 1 from scratch: seed prompts -> four teachers -> audit -> SFT LoRA -> HumanEval recovery, MCAS, Qwen3-1.7B.

The three Arc 1 rows the paper gives only in prose become runnable claims here:

- ``arc1.recovery``: does the DD arm recover more often from a correction than its base? (paper:
  10.5% vs 7.5%). Needs a model and ``--dd-allow-code-exec``; no judge.
- ``arc1.mcas.apples``: does the DD arm raise MCAS when both arms are judged alike? (paper:
  12.39 vs 12.07 /25). Needs a model and a judge (``--dd-judge-base-url``, ``--dd-judge-model``).
- ``arc1.qwen17``: does DD regress Qwen3-1.7B's HumanEval, as a real effect at two budgets, and
  does the audit see it coming in the training set's code share? (paper: 83.5% -> 67.7%).

The DD arm is an SFT LoRA on the teacher pipeline's output. Teachers come from the TOML file named
by ``DD_ARC1_TEACHERS`` (see `dd.arcs.load_teachers`); without it the four stages are replayed
from short recorded replies (`dd.arcs.RECORDED`), served on 127.0.0.1. Recorded teachers this small measure
the plumbing, not disposition distillation: every report entry says so.
"""

from __future__ import annotations

import os

import pytest

from dd.arcs import (
    arc1_missing,
    audit_responses,
    cached_sft_adapter,
    compare_budgets,
    compare_recovery,
    run_humaneval_arm,
    run_recovery_arm,
    teacher_run,
)
from dd.paper import paper_numbers
from dd.protocol import FAIL, PASS
from dd.pytest import claim_param, claim_test

QUOTED = paper_numbers("arc1")
TEACHERS_ENV = "DD_ARC1_TEACHERS"
QWEN17_ADAPTER_ENV = "DD_ARC1_QWEN17_ADAPTER"
PLUMBING = ("recorded teachers this small measure the plumbing, not disposition distillation; set "
            f"{TEACHERS_ENV}=teachers.toml to run real teacher endpoints")

def _teacher_data(cache):
    """The pipeline's run: the configured teachers, else the recorded ones on a local replay server."""
    return teacher_run(os.environ.get(TEACHERS_ENV), cache)


def _dd_arm(base, bases, sft: dict):
    """Teachers -> audit -> SFT LoRA: the DD operator, the audit and the teacher run."""
    from dd.operators import LoraTrainConfig

    run = _teacher_data(bases.cache)
    audit = audit_responses([r for _, r in run.sft_pairs()], name="teachers", domain="code")
    op = cached_sft_adapter(base, run.sft_pairs(), LoraTrainConfig(**sft), bases.cache)
    return op, audit, run


def _needs(dd_settings, *, code: bool = True, judge: bool = False) -> None:
    missing = arc1_missing(dd_settings, code=code, judge=judge)
    if missing:
        pytest.skip(missing)


# Sizes per base: the tiny base runs in seconds (plumbing); smollm2-135m is the CPU run.
RUNS = {
    "tiny-llama": {"problems": 2, "budgets": (4, 8), "sft": {"r": 4, "alpha": 8, "max_steps": 2, "batch_size": 2}},
    "smollm2-135m": {"problems": 20, "budgets": (128, 384),
                     "sft": {"r": 8, "alpha": 16, "lr": 5e-4, "batch_size": 2, "epochs": 8, "max_steps": 40}},
}
RECOVERY_PAPER = "the paper (prose): correction recovery 10.5% (base) vs 7.5% (DD), -3.0 points"
# This suite's own measurement (not quoted from the paper). 2026-12-03, CPU float32, greedy, first 20
# HumanEval problems, recorded teachers (4 SFT pairs, 40 steps): first-pass 0% base / 5% DD; recovery
# 0 of 20 (base) and 0 of 19 (DD) at both 128 and 384 tokens; theater 5% / 10.5% at 128, 10% / 10.5% at
# 384; first-turn truncation 45% / 15% at 128 and 25% / 10% at 384: truncation_artifact at both budgets.
RECOVERY_WHY = {
    "tiny-llama": f"{RECOVERY_PAPER}; a tiny base truncates every answer at its budgets: inconclusive",
    "smollm2-135m": (f"{RECOVERY_PAPER}; measured here: recovery 0/20 vs 0/19 at 128 and 384 tokens, first-turn "
                     "truncation 45%/15% and 25%/10%: truncation_artifact at both budgets"),
}


@pytest.mark.parametrize("base_name", [
    claim_param("tiny-llama", claim_id="arc1.recovery", id="tiny-llama", base="tiny-llama", operator="lora-sft-teachers",
                step="recovery", paper=QUOTED["recovery"], expected=FAIL, why=RECOVERY_WHY["tiny-llama"],
                marks=[pytest.mark.model, pytest.mark.code_exec]),
    claim_param("smollm2-135m", claim_id="arc1.recovery", id="smollm2-135m", base="smollm2-135m",
                operator="lora-sft-teachers", step="recovery", paper=QUOTED["recovery"], expected=FAIL,
                why=RECOVERY_WHY["smollm2-135m"], marks=[pytest.mark.model, pytest.mark.code_exec, pytest.mark.slow]),
])
def test_recovery(base_name, dd_settings, bases, claim):
    """Claim held: the DD arm recovers from a correction more often than its base, paired, at every budget."""
    from dd.arcs import load_problems

    _needs(dd_settings)
    size = RUNS[base_name]
    base = bases.get(base_name)
    op, audit, run = _dd_arm(base, bases, size["sft"])
    problems = load_problems()[: size["problems"]]
    base_arms = {b: run_recovery_arm(base, problems, b, bases.cache, allow_code_exec=True, workers=2)
                 for b in size["budgets"]}
    op_arms = {b: run_recovery_arm(base, problems, b, bases.cache, name="dd", operator=op, allow_code_exec=True,
                                   workers=2) for b in size["budgets"]}
    cmp = compare_recovery(base_arms, op_arms)
    claim.conclude(source="recomputed", verdict=cmp.verdict, reasons=[PLUMBING, *audit.verdict.reasons],
                   metrics={**cmp.metrics(base_arms, op_arms), **audit.metrics(), "adapter": op.key(),
                            "teacher_examples": len(run.examples), "teacher_failures": len(run.failures)})


# Prompts of three kinds (settled, open, underspecified), written for this suite: MCAS rewards the
# confidence that fits each.
MCAS_PROMPTS = (
    "What is the boiling point of water at sea level in Celsius?",
    "Should a small team use microservices or a monolith?",
    "How long should I cook it?",
    "What is 12 times 12?",
    "Is it better to rent or to buy a home?",
    "Which framework should I use for my app?",
)


@pytest.mark.parametrize("base_name", [
    claim_param("tiny-llama", claim_id="arc1.mcas.apples", id="tiny-llama", base="tiny-llama",
                operator="lora-sft-teachers", step="mcas", paper=QUOTED["mcas_apples"], expected=FAIL,
                why="the paper (prose): MCAS apples-to-apples 12.39 vs 12.07 /25 (-0.32): no gain when judged alike",
                marks=[pytest.mark.model, pytest.mark.judge]),
    claim_param("smollm2-135m", claim_id="arc1.mcas.apples", id="smollm2-135m", base="smollm2-135m",
                operator="lora-sft-teachers", step="mcas", paper=QUOTED["mcas_apples"], expected=FAIL,
                why="the paper (prose): MCAS apples-to-apples 12.39 vs 12.07 /25 (-0.32): no gain when judged alike",
                marks=[pytest.mark.model, pytest.mark.judge, pytest.mark.slow]),
])
def test_mcas_apples(base_name, dd_settings, bases, claim):
    """Claim held: judged alike (one judge, one rubric version), the DD arm's MCAS is higher, paired."""
    from dd.arcs import arm_generations
    from dd.core import Cache
    from dd.judges import JudgeConfig, compare_judged, get_judge, run_judge
    from dd.lm import GenerationConfig

    _needs(dd_settings, code=False, judge=True)
    config = JudgeConfig.from_env(dd_settings.judge_base_url, dd_settings.judge_model, progress=False)
    judge_cache = Cache(dd_settings.cache_root, offline=dd_settings.offline)
    base = bases.get(base_name)
    op, audit, _ = _dd_arm(base, bases, RUNS[base_name]["sft"])
    gen = GenerationConfig(n_predict=RUNS[base_name]["budgets"][-1])
    runs = [run_judge(get_judge("mcas"), [(g.prompt, g.text) for g in
                                          arm_generations(base, MCAS_PROMPTS, gen, bases.cache, arm)],
                      config, judge_cache) for arm in (None, op)]
    cmp = compare_judged(*runs)
    holds = cmp.delta > 0 and cmp.test.p_value < 0.05
    claim.conclude(source="recomputed", verdict=PASS if holds else FAIL,
                   reasons=[cmp.test.describe(), PLUMBING], metrics={**cmp.metrics(), **audit.metrics()})


@claim_test("arc1.qwen17", base="qwen3-1.7b", operator="lora-sft-teachers", step="humaneval",
            paper=QUOTED["qwen17"], marks=[pytest.mark.model, pytest.mark.code_exec, pytest.mark.slow])
def test_qwen17_regression(dd_settings, bases, claim):
    """Claim held: DD regresses Qwen3-1.7B's HumanEval at both budgets, comparable at each (not truncation).

    The DD arm is the adapter in ``DD_ARC1_QWEN17_ADAPTER`` (a peft folder) when set, else an
    attention-only SFT LoRA on the pipeline's data; the audit of that data is reported beside it.
    """
    from dd.arcs import load_adapter, load_problems

    _needs(dd_settings)
    base = bases.get("qwen3-1.7b")  # skips with: pass --dd-model qwen3-1.7b=/path/to/Qwen/Qwen3-1.7B
    trained, audit, _ = _dd_arm(base, bases, {"target": "attention", "r": 16, "alpha": 32, "lr": 2e-4,
                                              "batch_size": 2, "epochs": 4})
    adapter_dir = os.environ.get(QWEN17_ADAPTER_ENV)
    op = load_adapter(adapter_dir) if adapter_dir else trained
    problems = load_problems()
    budgets = (512, 1024)
    arms = {name: {b: run_humaneval_arm(base, problems, b, bases.cache, backend=bases.backend, name=name, operator=arm,
                                        allow_code_exec=True, workers=4, enable_thinking=False) for b in budgets}
            for name, arm in (("base", None), ("dd", op))}
    cmp = compare_budgets(arms["base"], arms["dd"])
    holds = all(c.verdict.code == "comparable" and c.delta < 0 for c in cmp.per_budget.values())
    why = (f"deltas {[(b, round(100 * c.delta, 1)) for b, c in sorted(cmp.per_budget.items())]} pct points; "
           f"a regression at every budget, comparable at each: {holds}")
    claim.conclude(source="recomputed", verdict=PASS if holds else FAIL,
                   reasons=[why, *cmp.reasons(), *audit.verdict.reasons],
                   metrics={**cmp.metrics(arms["base"], arms["dd"]), **audit.metrics(), "adapter": op.key()})
