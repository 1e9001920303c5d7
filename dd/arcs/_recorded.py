"""Arc 1 from scratch without teacher endpoints: recorded replies replayed on 127.0.0.1, and what a run needs.

Without a ``teachers.toml`` the four stages of `run_teachers` are still real openai-client calls
over HTTP, answered by `dd.judges.replay.ReplayServer` from the short replies below (written for
this suite, not the paper's data). Replies this small measure the plumbing, not disposition
distillation. ``think=True`` gives the synthesizer's reply the reasoning block a reasoning teacher
(Qwen3) would write before its answer, so that a think-block-masked training variant has spans to
mask; without it the SFT targets are the final answers alone. `arc1_missing` says, in the options'
own words, what a from-scratch claim lacks, so that every such claim skips alike.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dd.arcs._teachers import STAGE_PROMPTS, STAGES, Stage, Teacher, TeacherRun, load_teachers, run_teachers

if TYPE_CHECKING:
    from dd.core import Cache

#: Licences of the recorded teachers' run (every recorded teacher is "MIT").
ALLOWED_LICENCES = frozenset({"MIT", "Apache-2.0", "BSD-3-Clause"})
CRITIQUE = "The answer is mostly right; state its limits."

#: seed -> (eager draft, final answer).
RECORDED: Mapping[str, tuple[str, str]] = {
    "Write a Python function that returns the larger of two numbers.": (
        "Ooh, fun one! Just use max and you're done!",
        "```python\ndef larger(a, b):\n    return a if a >= b else b\n```\nCheck: larger(2, 3) is 3 and larger(3, 3) "
        "is 3. If the inputs can be None, that case is not handled."),
    "Write a Python function that reverses a list.": (
        "Easy peasy! Slicing is your friend here!",
        "```python\ndef reverse(items):\n    return items[::-1]\n```\nCheck: reverse([1, 2, 3]) is [3, 2, 1]; an empty "
        "list stays empty. It returns a new list rather than reversing in place."),
    "Write a Python function that counts the words in a string.": (
        "Great question! Splitting is the magic trick!",
        "```python\ndef count_words(text):\n    return len(text.split())\n```\nCheck: count_words('a b  c') is 3, "
        "since split() with no argument skips repeated spaces. Punctuation is not treated specially."),
    "Write a Python function that checks whether a number is prime.": (
        "Primes are so cool! Loop and check divisors!",
        "```python\ndef is_prime(n):\n    if n < 2:\n        return False\n    k = 2\n    while k * k <= n:\n"
        "        if n % k == 0:\n            return False\n        k += 1\n    return True\n```\nCheck: is_prime(2) "
        "and is_prime(13) are True, is_prime(1) and is_prime(9) are False."),
}

#: seed -> the synthesizer's reasoning before its answer (``think=True``).
THINKING: Mapping[str, str] = {
    "Write a Python function that returns the larger of two numbers.":
        "Two numbers in, the larger out. Ties: either one is fine, so >= keeps the first. No imports needed.",
    "Write a Python function that reverses a list.":
        "Slicing with a step of -1 copies the list backwards. The caller's list should not change, so no reverse().",
    "Write a Python function that counts the words in a string.":
        "Words are separated by whitespace; split() without an argument drops empty strings, so runs of spaces "
        "are fine.",
    "Write a Python function that checks whether a number is prime.":
        "Numbers below 2 are not prime. Trial division up to the square root is enough: a larger factor has a "
        "smaller partner.",
}


def recorded_replies(*, think: bool = False) -> dict[str, dict[Stage, str]]:
    """seed -> stage -> recorded reply; with ``think`` the synthesizer reasons in a ``<think>`` block first."""
    out: dict[str, dict[Stage, str]] = {}
    for seed, (draft, final) in RECORDED.items():
        synth = f"<think>\n{THINKING[seed]}\n</think>\n\n{final}" if think else final
        out[seed] = {"eager": draft, "deliberate": final, "adversarial": CRITIQUE, "synthesizer": synth}
    return out


def recorded_responder(replies: Mapping[str, Mapping[Stage, str]]) -> Callable[[list[dict[str, str]]], str | None]:
    """The replay server's responder: a stage from its system prompt, a seed from the question."""

    def respond(messages: list[dict[str, str]]) -> str | None:
        stage = next((s for s in STAGES if messages[0]["content"] == STAGE_PROMPTS[s]), None)
        seed = messages[-1]["content"].removeprefix("Question:\n").split("\n\n", 1)[0]
        if stage is None or seed not in replies:
            return None
        return replies[seed][stage]

    return respond


def replay_teachers(replies: Mapping[str, Mapping[Stage, str]], cache: Cache | None = None, *,
                    allowed_licences: Collection[str] = ALLOWED_LICENCES) -> TeacherRun:
    """`run_teachers` on ``replies``' seeds, every stage a recorded teacher served on 127.0.0.1."""
    from dd.judges.replay import ReplayServer

    with ReplayServer({}, responder=recorded_responder(replies)) as server:
        teachers = {s: Teacher(server.url, f"recorded-{s}", "MIT", max_retries=0) for s in STAGES}
        return run_teachers(list(replies), teachers, allowed_licences=allowed_licences, cache=cache)


def teacher_run(teachers_toml: str | Path | None, cache: Cache | None = None, *, think: bool = False,
                seeds: Sequence[str] | None = None) -> TeacherRun:
    """The pipeline's run: the teachers of ``teachers_toml`` (see `load_teachers`), else the recorded ones.

    ``seeds`` defaults to the recorded seeds; ``think`` only shapes the recorded replies (real
    teachers write what they write).
    """
    seeds = list(RECORDED) if seeds is None else list(seeds)
    if teachers_toml:
        teachers, allowed = load_teachers(teachers_toml)
        return run_teachers(seeds, teachers, allowed_licences=allowed, cache=cache)
    replies = recorded_replies(think=think)
    return replay_teachers({s: replies[s] for s in seeds}, cache)


CODE_EXEC_FLAG = "--dd-allow-code-exec"


def arc1_missing(settings: Any, *, code: bool = True, judge: bool = False) -> str | None:
    """What a from-scratch claim lacks, as the options that supply it (None: nothing).

    Args:
        settings: the session's settings (``allow_code_exec``, ``judge_base_url``, ``judge_model``).
        code: the claim runs model-written code (HumanEval, recovery).
        judge: the claim needs a judge endpoint (MCAS).
    """
    from dd.arcs._humaneval import humaneval_missing

    missing = []
    if code and not settings.allow_code_exec:
        missing.append(f"{CODE_EXEC_FLAG} (recovery and HumanEval run model-written code in the sandbox)")
    if code and humaneval_missing():
        missing.append(str(humaneval_missing()))
    if judge and not (settings.judge_base_url and settings.judge_model):
        missing.append("a judge: --dd-judge-base-url URL --dd-judge-model NAME (key from DD_JUDGE_API_KEY)")
    return "needs " + "; ".join(missing) if missing else None
