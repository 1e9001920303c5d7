"""Correction recovery (dd.arcs._recovery): scripted completions through the sandbox, the paired
truncation-gated comparison, the opt-in, and a cached run on a tiny base."""

from __future__ import annotations

import pytest

from dd.arcs import (
    CodeExecutionNotAllowed,
    Problem,
    RecoveryArm,
    RecoveryItem,
    compare_recovery,
    recovery_arm,
    run_recovery_arm,
    self_correction,
)
from dd.core import Cache
from dd.lm import Generation
from helpers import tiny_loader

tiny = tiny_loader()


def _problem(k: int, body: str, test: str) -> Problem:
    return Problem(f"Toy/{k}", f'def f(x):\n    """{body}"""\n', "", f"def check(candidate):\n{test}", "f")


PROBLEMS = [
    _problem(0, "Return x plus one.", "    assert candidate(1) == 2\n    assert candidate(5) == 6\n"),
    _problem(1, "Return twice x.", "    assert candidate(2) == 4\n"),
    _problem(2, "Return x squared.", "    assert candidate(3) == 9\n"),
    _problem(3, "Return minus x.", "    assert candidate(3) == -3\n"),
]


def _code(expr: str) -> str:
    return f"```python\ndef f(x):\n    return {expr}\n```"


# first answers: 0 right; 1, 2, 3 wrong. Second answers: 1 fixed quietly, 2 apologises over the same code,
# 3 apologises and changes the code but still fails.
FIRST = {0: _code("x + 1"), 1: _code("x + 3"), 2: _code("x * 2"), 3: _code("x")}
SECOND = {1: _code("2 * x"), 2: "You're right, let me reconsider.\n" + _code("x * 2"),
          3: "I apologize for the mistake. Here is the corrected version:\n" + _code("abs(x)")}


def scripted(prompts):
    """Answer each prompt by the problem it names; a prompt with the correction turn gets the second answer."""
    out = []
    for prompt in prompts:
        k = next(k for k, p in enumerate(PROBLEMS) if p.prompt in prompt)
        second = "your answer is wrong" in prompt
        text = SECOND[k] if second else FIRST[k]
        out.append(Generation(prompt, tuple(range(len(text) // 4)), text, "eos", 64, 10))
    return out


def test_two_turns_through_the_sandbox():
    prompts_seen = []

    def answer(prompts):
        prompts_seen.extend(prompts)
        return scripted(prompts)

    arm = recovery_arm(PROBLEMS, answer, name="base", n_predict=64, allow_code_exec=True)
    assert [i.first_passed for i in arm.items] == [True, False, False, False]
    assert [i.recovered for i in arm.corrected] == [True, False, False]
    assert [i.unchanged for i in arm.corrected] == [False, True, False]
    assert [i.theater for i in arm.corrected] == [False, True, True]
    assert arm.recovery_rate == pytest.approx(1 / 3) and arm.theater_rate == pytest.approx(2 / 3)
    corrections = prompts_seen[len(PROBLEMS):]
    assert len(corrections) == 3  # only failing first answers get a second turn
    assert "assert candidate(2) == 4" in corrections[0] and "driver.py" not in corrections[0]
    assert FIRST[1] in corrections[0]
    metrics = arm.metrics()
    assert metrics["first_pass_pct"] == 25 and metrics["n_corrected"] == 3


def test_refuses_before_answering():
    def answer(prompts):
        raise AssertionError("must not be called")

    with pytest.raises(CodeExecutionNotAllowed, match="--dd-allow-code-exec"):
        recovery_arm(PROBLEMS, answer, name="base", n_predict=64, allow_code_exec=False)


def test_self_correction_phrases():
    assert self_correction("You\u2019re  RIGHT, sorry")
    assert self_correction("On second\nthought, the loop is off by one.")
    assert not self_correction("```python\ndef f(x):\n    return x\n```")


def _arm(name: str, recovered: list[bool], *, second_finish: str = "eos", first_passed: int = 0) -> RecoveryArm:
    items = [RecoveryItem(f"T/{k}", True, "eos", 10) for k in range(first_passed)]
    items += [RecoveryItem(f"T/{first_passed + k}", False, "eos", 10, r, second_finish, 20, not r, True)
              for k, r in enumerate(recovered)]
    return RecoveryArm(name, 64, tuple(items))


def test_paired_comparison_passes_only_a_real_gain_at_every_budget():
    base = {b: _arm("base", [False] * 30) for b in (64, 128)}
    op = {b: _arm("dd", [True] * 12 + [False] * 18) for b in (64, 128)}
    cmp = compare_recovery(base, op)
    assert cmp.verdict.verdict == "pass", cmp.verdict.reasons
    at = cmp.per_budget[64]
    assert len(at.task_ids) == 30 and at.recovery.delta == pytest.approx(0.4)
    assert at.theater.delta == pytest.approx(-0.4)  # base apologised over unchanged code everywhere
    metrics = cmp.metrics(base, op)
    assert metrics["recovery_delta_pct.n64"] == pytest.approx(40) and metrics["sign_stable"] is True
    assert metrics["base.n128.theater_pct"] == 100 and metrics["phrases_version"]

    # the same gain, but the operator's second answers are all cut at the budget: not an effect
    cut = {b: _arm("dd", [True] * 12 + [False] * 18, second_finish="length") for b in (64, 128)}
    gated = compare_recovery(base, cut)
    assert gated.verdict.verdict == "inconclusive" and gated.verdict.code == "truncation_artifact"
    assert any("second turn" in r for r in gated.verdict.reasons)

    # a gain at one budget and a loss at the other: fails on the budget check
    flip = {64: op[64], 128: _arm("dd", [False] * 30)}
    flipped = compare_recovery({64: base[64], 128: _arm("base", [True] * 12 + [False] * 18)}, flip)
    assert flipped.verdict.verdict == "fail" and flipped.sensitivity.sign_stable is False


def test_no_common_failures_is_inconclusive_and_one_budget_is_refused():
    solved = {b: _arm("dd", [], first_passed=3) for b in (64, 128)}
    base = {b: _arm("base", [False] * 3) for b in (64, 128)}
    cmp = compare_recovery(base, solved)
    assert cmp.verdict.verdict == "inconclusive" and cmp.verdict.code == "no_common_failures"
    assert cmp.sensitivity is None
    with pytest.raises(ValueError, match="two or more budgets"):
        compare_recovery({64: base[64]}, {64: solved[64]})


def test_tiny_base_run_is_cached(root, tmp_path):
    """Model -> two turns -> sandbox, both turns cached: a re-run generates nothing new."""
    base = tiny("tiny-llama", root)
    cache = Cache(tmp_path)
    arms = {b: run_recovery_arm(base, PROBLEMS[:2], b, cache, allow_code_exec=True) for b in (4, 8)}
    for arm in arms.values():
        assert len(arm.corrected) == 2  # a random tiny base solves nothing
        assert all(i.second_finish == "length" for i in arm.corrected)
    assert len(list(cache.entries("generations"))) == 4  # two turns at two budgets
    assert run_recovery_arm(base, PROBLEMS[:2], 4, cache, allow_code_exec=True) == arms[4]
    assert len(list(cache.entries("generations"))) == 4
    cmp = compare_recovery(arms, arms)
    assert cmp.verdict.verdict == "inconclusive"  # every answer truncated at these budgets
