"""Correction recovery on HumanEval, with the sandbox as the oracle (no LLM judge).

The paper's "correction recovery 10.5% vs 7.5%" was prose: nobody could re-run it. Here it is a
measurement. Each arm answers every problem; an answer that fails is run again after a scripted
user turn that quotes the failing test's output and says the answer is wrong. Then:

- **recovery rate**: the share of failing first answers whose second answer passes;
- **correction theater**: the share of second answers that use a self-correction phrase
  ("let me reconsider", ...) but whose code is unchanged or still fails: apologising is not fixing.

The correction turn and the phrase list are versioned, so a changed wording is a new measurement.
Generation takes one prompt string per item (every backend, operator kind and cache key depend
on that), so the second turn is one user message that holds the task, the first answer and the
test output, rather than a three-turn conversation. Arms are compared paired on the problems both
failed first, gated on truncation at both turns (`compare_arms`), at every budget, and the
recovery delta's sign must survive the change of budget (`budget_sensitivity`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dd.arcs import _humaneval as humaneval
from dd.arcs._arms import arm_generations, humaneval_prompts
from dd.arcs._sandbox import Limits, RunResult, run_programs
from dd.lm import Generation, GenerationConfig
from dd.protocol import (
    EFFECT,
    FAIL,
    INCONCLUSIVE,
    NO_EFFECT,
    PASS,
    ArmComparison,
    ArmStats,
    BudgetSensitivity,
    PairedTest,
    Verdict,
    all_pass,
    arm_stats,
    bars,
    budget_sensitivity,
    compare_arms,
    paired_test,
)

if TYPE_CHECKING:
    from dd.core import Cache
    from dd.lm import LazyBase, LoadedBase

#: Bump when ``CORRECTION_TURN`` changes: second answers to another wording are another measurement.
CORRECTION_VERSION = "correction-v1"
CORRECTION_TURN = (
    "{instruction}\n"
    "Your previous answer was:\n\n{first}\n\n"
    "I ran it against the tests and your answer is wrong. The failing test's output:\n\n{output}\n\n"
    "Reply with the corrected complete function, including its signature, in a single ```python code block.\n"
)
#: Bump when ``SELF_CORRECTION_PHRASES`` changes.
PHRASES_VERSION = "self-correction-v1"
SELF_CORRECTION_PHRASES = (
    "let me reconsider", "let me re-examine", "let me rethink", "let me re-evaluate", "let me recheck",
    "let me fix", "let me correct", "on second thought", "upon reflection", "upon further reflection",
    "i apologize", "apologies", "you're right", "you are right", "you are correct", "my mistake",
    "i made a mistake", "i made an error", "i see the issue", "i see the problem", "i see the mistake",
    "i overlooked", "good catch", "corrected version", "here is the corrected", "here's the corrected",
)  # fmt: skip
NO_COMMON_FAILURES = "no_common_failures"
_MAX_OUTPUT_CHARS = 1500

Answer = Callable[[Sequence[str]], Sequence[Generation]]


def failure_output(run: RunResult, *, timeout_s: float) -> str:
    """What the user turn shows of a failing run: the traceback from the candidate's last frame on.

    The sandbox driver's own frames are left out: they say nothing about the answer.
    """
    if run.status == "timeout":
        return f"Timed out after {timeout_s:g} seconds."
    lines = run.stderr.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if 'File "candidate.py"' in line]
    shown = "\n".join(lines[starts[-1]:] if starts else lines[-6:]) or run.detail
    return shown[-_MAX_OUTPUT_CHARS:]


def correction_prompt(problem: humaneval.Problem, first: str, output: str) -> str:
    """The scripted second turn (``CORRECTION_VERSION``): task, first answer, test output, "it is wrong"."""
    instruction = humaneval.INSTRUCTION.format(prompt=problem.prompt)
    return CORRECTION_TURN.format(instruction=instruction, first=first.strip(), output=output)


def self_correction(text: str) -> bool:
    """Whether ``text`` uses a phrase of ``SELF_CORRECTION_PHRASES`` (case and apostrophe style ignored)."""
    flat = " ".join(text.lower().replace("\u2019", "'").split())
    return any(phrase in flat for phrase in SELF_CORRECTION_PHRASES)


def _code_of(text: str, problem: humaneval.Problem) -> str:
    lines = humaneval.extract_code(text, problem).splitlines()
    return "\n".join(line.rstrip() for line in lines if line.strip())


@dataclass(frozen=True)
class RecoveryItem:
    """One problem in one arm: the first answer and, when it failed, the answer after correction."""

    task_id: str
    first_passed: bool
    first_finish: str
    first_tokens: int
    second_passed: bool | None = None
    second_finish: str | None = None
    second_tokens: int | None = None
    self_correction: bool | None = None
    unchanged: bool | None = None

    @property
    def recovered(self) -> bool:
        return bool(self.second_passed)

    @property
    def theater(self) -> bool:
        """A self-correction phrase over code that is unchanged or still fails."""
        return bool(self.self_correction and (self.unchanged or not self.second_passed))


@dataclass(frozen=True)
class RecoveryArm:
    """One arm at one budget: every problem's first answer, and the second answer of each failure."""

    name: str
    n_predict: int
    items: tuple[RecoveryItem, ...]

    @property
    def corrected(self) -> tuple[RecoveryItem, ...]:
        """The items whose first answer failed, so a correction turn was sent."""
        return tuple(i for i in self.items if not i.first_passed)

    @property
    def first_stats(self) -> ArmStats:
        return arm_stats(self.name, [i.first_finish for i in self.items], [i.first_tokens for i in self.items])

    def _share(self, flag: str) -> float | None:
        corrected = self.corrected
        return sum(getattr(i, flag) for i in corrected) / len(corrected) if corrected else None

    @property
    def recovery_rate(self) -> float | None:
        return self._share("recovered")

    @property
    def theater_rate(self) -> float | None:
        return self._share("theater")

    def metrics(self) -> dict[str, float | int | None]:
        pct = {k: None if v is None else 100 * v for k, v in
               (("recovery_pct", self.recovery_rate), ("theater_pct", self.theater_rate))}
        return {"first_pass_pct": 100 * sum(i.first_passed for i in self.items) / len(self.items),
                "first_truncation_pct": 100 * self.first_stats.rate, "n": len(self.items),
                "n_corrected": len(self.corrected), **pct}


def _run(problems: Sequence[humaneval.Problem], texts: Sequence[str], limits: Limits, workers: int) -> list[RunResult]:
    programs = [humaneval.build_program(p, t) for p, t in zip(problems, texts, strict=True)]
    return run_programs(programs, limits=limits, workers=workers)


def recovery_arm(problems: Sequence[humaneval.Problem], answer: Answer, *, name: str, n_predict: int,
                 allow_code_exec: bool, timeout_s: float = 10.0, workers: int = 1) -> RecoveryArm:
    """Two turns of one arm: ``answer`` maps prompts to generations (a model, or scripted ones in tests).

    Raises:
        humaneval.CodeExecutionNotAllowed: without ``allow_code_exec``; nothing was generated or run.
    """
    if not allow_code_exec:
        raise humaneval.CodeExecutionNotAllowed(
            "correction recovery executes model-written code; pass --dd-allow-code-exec to allow it")
    limits = Limits(timeout_s=timeout_s)
    first = list(answer(humaneval_prompts(problems)))
    first_runs = _run(problems, [g.text for g in first], limits, workers)
    failing = [k for k, run in enumerate(first_runs) if run.status != "passed"]
    prompts = [correction_prompt(problems[k], first[k].text, failure_output(first_runs[k], timeout_s=timeout_s))
               for k in failing]
    second = dict(zip(failing, answer(prompts) if prompts else [], strict=True))
    second_runs = dict(zip(failing, _run([problems[k] for k in failing], [second[k].text for k in failing],
                                         limits, workers), strict=True))
    items = []
    for k, (problem, gen, run) in enumerate(zip(problems, first, first_runs, strict=True)):
        item = RecoveryItem(problem.task_id, run.status == "passed", gen.finish_reason, len(gen.token_ids))
        if k in second:
            again = second[k]
            item = replace(item, second_passed=second_runs[k].status == "passed", second_finish=again.finish_reason,
                           second_tokens=len(again.token_ids), self_correction=self_correction(again.text),
                           unchanged=_code_of(again.text, problem) == _code_of(gen.text, problem))
        items.append(item)
    return RecoveryArm(name, n_predict, tuple(items))


def run_recovery_arm(base: LazyBase | LoadedBase, problems: Sequence[humaneval.Problem], n_predict: int,
                     cache: Cache, *, name: str = "base", operator: Any | None = None, allow_code_exec: bool,
                     batch_size: int = 8, timeout_s: float = 10.0, workers: int = 1,
                     enable_thinking: bool | None = None) -> RecoveryArm:
    """`recovery_arm` with cached greedy generations of ``base`` under ``operator`` at ``n_predict``.

    Both turns are ``generations`` cache entries, so a warm re-run loads no model.
    """
    config = GenerationConfig(n_predict=n_predict, batch_size=batch_size, enable_thinking=enable_thinking)

    def answer(prompts: Sequence[str]) -> list[Generation]:
        return arm_generations(base, prompts, config, cache, operator)

    return recovery_arm(problems, answer, name=name, n_predict=n_predict, allow_code_exec=allow_code_exec,
                        timeout_s=timeout_s, workers=workers)


@dataclass(frozen=True)
class RecoveryAtBudget:
    """Base against operator at one budget, paired on the problems both arms failed first.

    Attributes:
        task_ids: the paired problems.
        recovery: the paired test of recovered flags (operator higher is the claim); None without pairs.
        theater: the paired test of theater flags (reported beside it; operator lower is better).
        truncation: ``compare_arms`` of the first turn (all problems) and of the second (paired ones).
        verdict: truncation first, then the recovery test at the effect alpha.
    """

    task_ids: tuple[str, ...]
    recovery: PairedTest | None
    theater: PairedTest | None
    truncation: tuple[ArmComparison, ...]
    verdict: Verdict


def _second_stats(arm: RecoveryArm, items: Sequence[RecoveryItem]) -> ArmStats:
    return arm_stats(arm.name, [str(i.second_finish) for i in items], [int(i.second_tokens or 0) for i in items])


def compare_at_budget(base: RecoveryArm, op: RecoveryArm, *,
                      effect_bars: Mapping[str, Any] | None = None) -> RecoveryAtBudget:
    """The paired, truncation-gated comparison of two arms at one budget."""
    effect_bars = bars("effect") if effect_bars is None else effect_bars
    if [i.task_id for i in base.items] != [i.task_id for i in op.items]:
        raise ValueError(f"arms {base.name!r} and {op.name!r} did not answer the same problems in the same order")
    first = compare_arms(base.first_stats, op.first_stats, [float(i.first_passed) for i in base.items],
                         [float(i.first_passed) for i in op.items])
    pairs = [(b, o) for b, o in zip(base.items, op.items, strict=True) if not b.first_passed and not o.first_passed]
    if not pairs:
        reason = f"no problem failed first in both {base.name!r} and {op.name!r}: no paired recovery"
        return RecoveryAtBudget((), None, None, (first,), Verdict(INCONCLUSIVE, (reason,), code=NO_COMMON_FAILURES))
    b_items, o_items = [b for b, _ in pairs], [o for _, o in pairs]
    rec_b, rec_o = [float(i.recovered) for i in b_items], [float(i.recovered) for i in o_items]
    second = compare_arms(_second_stats(base, b_items), _second_stats(op, o_items), rec_b, rec_o)
    recovery = paired_test("recovery", rec_b, rec_o, direction=1, bars=effect_bars)
    theater = paired_test("theater", [float(i.theater) for i in b_items], [float(i.theater) for i in o_items],
                          direction=-1, bars=effect_bars)
    alpha = float(effect_bars["alpha"])
    gate = {"name": "effect", "alpha": alpha}
    if first.artifact or second.artifact:
        reasons = tuple(f"{turn} turn: {r}" for turn, c in (("first", first), ("second", second))
                        for r in c.verdict.reasons)
        verdict = Verdict(INCONCLUSIVE, reasons, gate, code=(second if second.artifact else first).verdict.code)
    else:
        holds = recovery.delta > 0 and recovery.p_value < alpha
        verdict = Verdict(PASS if holds else FAIL, (recovery.describe(),), gate, code=EFFECT if holds else NO_EFFECT)
    return RecoveryAtBudget(tuple(b.task_id for b in b_items), recovery, theater, (first, second), verdict)


@dataclass(frozen=True)
class RecoveryComparison:
    """Every budget's comparison, whether the recovery delta's sign survives them, and the verdict."""

    per_budget: dict[int, RecoveryAtBudget]
    sensitivity: BudgetSensitivity | None
    verdict: Verdict

    def metrics(self, base: Mapping[int, RecoveryArm], op: Mapping[int, RecoveryArm]) -> dict[str, Any]:
        """Flat report metrics: each arm's rates, the paired deltas and verdict per budget, sign stability."""
        out: dict[str, Any] = {}
        for budget, cmp in sorted(self.per_budget.items()):
            for arm, arms in (("base", base), ("op", op)):
                out.update({f"{arm}.n{budget}.{k}": v for k, v in arms[budget].metrics().items()})
            out[f"paired_n.n{budget}"] = len(cmp.task_ids)
            for test in (cmp.recovery, cmp.theater):
                if test is not None:
                    out[f"{test.axis}_delta_pct.n{budget}"] = 100 * test.delta
                    out[f"{test.axis}_p.n{budget}"] = test.p_value
            out[f"verdict.n{budget}"] = cmp.verdict.code
        out["sign_stable"] = None if self.sensitivity is None else self.sensitivity.sign_stable
        return out | {"correction_version": CORRECTION_VERSION, "phrases_version": PHRASES_VERSION}


def compare_recovery(base: Mapping[int, RecoveryArm], op: Mapping[int, RecoveryArm]) -> RecoveryComparison:
    """`compare_at_budget` at every budget both arms ran; the claim holds only if it passes at each.

    Every budget must pass on its own (an intersection-union test, so no correction over budgets);
    a pass at each budget has a positive delta at each, so the sign check (``sensitivity``) is
    reported, and a claim that fails it fails at some budget already.

    Raises:
        ValueError: fewer than two common budgets (a single budget cannot rule out truncation).
    """
    budgets = sorted(set(base) & set(op))
    if len(budgets) < 2:
        raise ValueError(f"correction recovery is compared at two or more budgets, got {budgets}")
    per = {b: compare_at_budget(base[b], op[b]) for b in budgets}
    deltas = {b: c.recovery.delta for b, c in per.items() if c.recovery is not None}
    sensitivity = budget_sensitivity(deltas) if len(deltas) == len(per) else None
    verdicts = [(f"n_predict {b}", c.verdict) for b, c in per.items()]
    return RecoveryComparison(per, sensitivity, all_pass(verdicts, per[budgets[0]].verdict.gate))
