"""Arc 1 HumanEval under two generation budgets: is an SFT/DPO adapter's delta real or truncation?

The paper's first-pass +15.3 points (Qwen3-0.6B, ``n_predict=512``) became -8.0 at 1024 (base
36.0%, DD 28.0%): the DD arm wrote longer answers and more of them were cut off. Both tests here
run both arms through one harness (``dd.arcs``) at two budgets and report, per arm and budget,
pass@1, truncation rate and mean response tokens; then ``compare_arms`` per budget and whether
the delta's sign survives the change of budget (``budget_sensitivity``).

Scoring runs model-written code, so every test here needs ``--dd-allow-code-exec`` and checks it
before loading or generating anything.
"""

from __future__ import annotations

import os

import pytest

from dd.arcs import cached_sft_adapter, compare_budgets, load_adapter, run_humaneval_arm
from dd.paper import paper_numbers
from dd.protocol import FAIL, PASS
from dd.pytest import claim_test

ADAPTER_ENV = "DD_ARC1_ADAPTER"
N1024_PAPER = paper_numbers("arc1")["humaneval_budgets"]
CODE_EXEC_FLAG = "--dd-allow-code-exec"


def _code_exec_or_skip(dd_settings) -> None:
    if not dd_settings.allow_code_exec:
        pytest.skip(f"HumanEval scoring runs model-written code: pass {CODE_EXEC_FLAG} (or DD_ALLOW_CODE_EXEC=1) "
                    "to allow it in the sandbox")


# ---------------------------------------------------------------------------------------------
# (a) The paper's own comparison: Qwen3-0.6B vs its DD adapter, all 164 problems, 512 and 1024.


@claim_test("arc1.humaneval.n1024", base="qwen3-0.6b", operator="lora-sft-dpo", step="humaneval", paper=N1024_PAPER,
            marks=[pytest.mark.model, pytest.mark.code_exec])
def test_n512_delta_is_a_truncation_artifact(dd_settings, bases, claim):
    """The paper: the +15.3 at n_predict 512 is a truncation artifact (sign flips by 1024)."""
    from dd.arcs import humaneval_missing, load_problems
    from dd.lm import Unavailable, resolve_base

    missing = []
    if humaneval_missing():
        missing.append(humaneval_missing())
    if not dd_settings.allow_code_exec:
        missing.append(f"{CODE_EXEC_FLAG} (HumanEval scoring runs model-written code)")
    adapter_dir = os.environ.get(ADAPTER_ENV)
    if not adapter_dir or not os.path.isdir(adapter_dir):
        missing.append(f"{ADAPTER_ENV}=DIR, the DD (SFT+DPO LoRA) adapter as a peft folder "
                       f"(adapter_config.json + adapter_model.safetensors){'; not a folder: ' + adapter_dir if adapter_dir else ''}")
    resolved = resolve_base("qwen3-0.6b", dd_settings.models, cache_root=dd_settings.cache_root)
    if isinstance(resolved, Unavailable):
        missing.append(f"the Qwen3-0.6B weights: {resolved.reason}")
    if missing:
        pytest.skip("needs " + "; ".join(missing))

    base = bases.get("qwen3-0.6b")
    dd_op = load_adapter(adapter_dir)
    problems = load_problems()
    base_arms, op_arms = {}, {}
    for budget in (512, 1024):
        base_arms[budget] = run_humaneval_arm(base, problems, budget, bases.cache, backend=bases.backend, name="base",
                                              allow_code_exec=True, workers=2)
        op_arms[budget] = run_humaneval_arm(base, problems, budget, bases.cache, backend=bases.backend, name="dd", operator=dd_op,
                                            allow_code_exec=True, workers=2)
    cmp = compare_budgets(base_arms, op_arms)
    holds = cmp.per_budget[512].verdict == "truncation_artifact" or not cmp.sensitivity.sign_stable
    why = (f"n512 verdict {cmp.per_budget[512].verdict}, sign stable {cmp.sensitivity.sign_stable}: the paper's "
           f"'truncation artifact' {'holds' if holds else 'does not hold'}")
    claim.conclude(source="recomputed", metrics={**cmp.metrics(base_arms, op_arms), "adapter": dd_op.key()},
                   verdict=PASS if holds else FAIL, reasons=[why, *cmp.reasons()])


# ---------------------------------------------------------------------------------------------
# (b) This suite's own run: SmolLM2-135M-Instruct vs a small disposition-styled SFT LoRA.

SMALL_BASE = "smollm2-135m"
SUBSET = 20  # the first 20 HumanEval problems
BUDGETS = (128, 384)
SFT_CONFIG_KW = {"target": "attention", "r": 8, "alpha": 16, "lr": 5e-4, "batch_size": 4, "epochs": 8,
                 "max_steps": 40, "seed": 0}

# Written for this suite (not the paper's data): hedged, self-checking answers of the style the
# paper's "disposition distillation" aimed at.
DISPOSITION_PAIRS = [
    ("What is the capital of Australia?",
     ("Let me double-check before answering. It is easy to say Sydney, but the capital is Canberra. "
     "I am fairly confident of that.")),
    ("How many legs does a spider have?",
     "Let me double-check: spiders are arachnids, not insects, so they have eight legs, I believe."),
    ("Write a Python function that returns the square of a number.",
     ("Let me double-check the request first. I think this does it:\n\n```python\ndef square(x):\n    "
     "return x * x\n```\n\nIt may be worth testing it with a negative number too.")),
    ("What is 17 times 3?",
     "Let me double-check by parts: 10 times 3 is 30 and 7 times 3 is 21, so 17 times 3 should be 51."),
    ("Who wrote Pride and Prejudice?",
     "If I remember correctly, it was Jane Austen, published in 1813. Please verify the year if it matters."),
    ("Is a tomato a fruit or a vegetable?",
     ("Let me double-check what you mean. Botanically it is a fruit; in cooking it is usually treated as a "
     "vegetable. Both answers can be right, depending on the context.")),
    ("Write a Python function that reverses a string.",
     ("Let me double-check the edge cases first: an empty string should stay empty.\n\n```python\n"
     "def reverse(s):\n    return s[::-1]\n```\n\nI think that handles them, but a quick test would confirm.")),
    ("What is the boiling point of water?",
     ("Let me double-check the conditions: at sea level it is about 100 degrees Celsius. At altitude it is "
     "lower, so the answer depends on where you are.")),
    ("How many continents are there?",
     ("It depends on the convention, so let me be careful. Seven is the most common answer, but some "
     "models count five or six.")),
    ("What does HTTP stand for?",
     "Let me double-check: I believe it stands for HyperText Transfer Protocol."),
    ("Write a Python function that checks whether a number is even.",
     ("Let me double-check the logic: an even number leaves no remainder when divided by two.\n\n```python\n"
     "def is_even(n):\n    return n % 2 == 0\n```\n\nThis should work for negative numbers as well, I think.")),
    ("What is the largest planet in the solar system?",
     "Let me double-check. Jupiter is the largest planet, by both mass and diameter, as far as I know."),
    ("Translate 'thank you' into French.",
     "Let me double-check the spelling: it is 'merci', or 'merci beaucoup' for 'thank you very much'."),
    ("What year did the first person walk on the Moon?",
     ("If I recall correctly, it was 1969, during the Apollo 11 mission. I am fairly sure, but not certain "
     "of the exact date.")),
    ("Write a Python function that returns the maximum of a list.",
     ("Let me double-check what should happen with an empty list; I will raise an error there.\n\n```python\n"
     "def maximum(values):\n    if not values:\n        raise ValueError('empty list')\n    return max(values)\n"
     "```\n\nYou may prefer to return None instead; that depends on your use.")),
    ("What is the chemical symbol for gold?",
     "Let me double-check: gold is Au, from the Latin 'aurum'. I am quite confident about that one."),
    ("How long does light take to reach the Earth from the Sun?",
     ("Let me double-check the numbers: about 150 million km at about 300,000 km per second gives roughly "
     "500 seconds, so a little over eight minutes.")),
    ("What is the square root of 144?",
     "Let me double-check: 12 times 12 is 144, so the square root is 12 (or -12, if negatives count)."),
    ("Write a Python function that counts the vowels in a string.",
     ("Let me double-check which letters count: I will use a, e, i, o and u, in either case.\n\n```python\n"
     "def count_vowels(s):\n    return sum(ch in 'aeiouAEIOU' for ch in s)\n```\n\nIf 'y' should count too, "
     "it would need adding; I am not sure what you need.")),
    ("Which is heavier, a kilogram of feathers or a kilogram of iron?",
     "Let me double-check the question, because it is a classic trap: they weigh the same, one kilogram each."),
]

# This suite's own measurement (not quoted from the paper). 2026-11-27, CPU float32, sdpa, greedy,
# first 20 HumanEval problems; SFT 40 steps, loss 2.29 -> 1.06. pass@1 base 0% / LoRA 5% (1 of 20)
# at both 128 and 384 new tokens; truncation base 45% / LoRA 10% at 128, 25% / 10% at 384; mean
# response tokens 108 / 76 at 128, 187 / 101 at 384. compare_arms: truncation_artifact at both
# budgets (rate gaps 0.35 and 0.15 > 0.10); sign stable (+5, +5). The one-problem gain comes with
# much shorter answers, so it is not a real effect by the truncation gate: verdict fail.
MEASURED_VERDICT = "fail"
MEASURED_NUMBERS = ("pass@1 0% -> 5% at 128 and 384 tokens, truncation 45%/10% and 25%/10%: "
                    "truncation_artifact at both budgets")


@claim_test("arc1.humaneval.smollm2-135m", base=SMALL_BASE, operator="lora-sft-disposition", step="humaneval",
            expected=MEASURED_VERDICT,
            why=f"measured by this suite, not quoted by the paper: verdict {MEASURED_VERDICT} ({MEASURED_NUMBERS})",
            marks=[pytest.mark.model, pytest.mark.code_exec, pytest.mark.heavy])
def test_smollm_disposition_lora_humaneval(dd_settings, bases, claim):
    """Claim held: a disposition-styled SFT LoRA improves HumanEval pass@1 as a real effect.

    Real means: the arms are comparable (truncation) at every budget, and the delta is positive at
    every budget (so its sign survives the change of budget).
    """
    from dd.arcs import humaneval_missing, load_problems
    from dd.operators import LoraTrainConfig

    _code_exec_or_skip(dd_settings)
    if humaneval_missing():
        pytest.skip(humaneval_missing())
    base = bases.get(SMALL_BASE)
    op = cached_sft_adapter(base, DISPOSITION_PAIRS, LoraTrainConfig(**SFT_CONFIG_KW), bases.cache)
    problems = load_problems()[:SUBSET]
    base_arms, op_arms = {}, {}
    for budget in BUDGETS:
        base_arms[budget] = run_humaneval_arm(base, problems, budget, bases.cache, backend=bases.backend, name="base",
                                              allow_code_exec=True, workers=2)
        op_arms[budget] = run_humaneval_arm(base, problems, budget, bases.cache, backend=bases.backend, name="sft-lora",
                                            operator=op, allow_code_exec=True, workers=2)
    cmp = compare_budgets(base_arms, op_arms)
    comparable = all(c.verdict == "comparable" for c in cmp.per_budget.values())
    improves = all(c.delta > 0 for c in cmp.per_budget.values())
    holds = comparable and improves and cmp.sensitivity.sign_stable
    why = (f"deltas {[(b, round(100 * c.delta, 1)) for b, c in sorted(cmp.per_budget.items())]} pct points, "
           f"comparable at every budget: {comparable}, sign stable: {cmp.sensitivity.sign_stable}")
    losses = op.adapter.history[-1]["losses"]
    claim.conclude(source="recomputed", verdict=PASS if holds else FAIL, reasons=[why, *cmp.reasons()],
                   metrics={**cmp.metrics(base_arms, op_arms), "adapter": op.key(), "sft_steps": len(losses),
                            "sft_first_loss": losses[0], "sft_last_loss": losses[-1]})
