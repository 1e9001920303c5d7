"""A system-prompt claim file (dd.arcs): what it takes, what it refuses, which steps apply to it.

A prompt operator changes what the base reads, not its weights, so it is the operator a claim can
run through a remote generation backend (``tests/test_backend_claim_parity.py`` runs one that
way). It has no vector and no dose, so the steering keys, the random-direction baseline and a
step 4 expectation are contradictions named before anything runs; steps 3 (without an anchor it
can be measured on) and 4 skip saying why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dd.arcs import ArmSpec, ClaimFileError, ClaimRun, ClaimUnavailable, load_claim
from dd.core import Cache
from dd.operators import SystemPrompt
from helpers import ROOT, edited_example

EXAMPLE = ROOT / "examples" / "smollm2_prompt_claim"
TINY = ROOT / "examples" / "tiny_claim"


def claim_copy(tmp_path: Path, edits: dict[str, str] | None = None, extra: str = "") -> Path:
    """The example copied to ``tmp_path`` with ``edits`` (old -> new) applied and ``extra`` appended."""
    return edited_example(EXAMPLE, tmp_path, edits, extra)


def test_the_example_parses_as_a_prompt_claim_whose_steps_3_and_4_do_not_apply():
    claim = load_claim(EXAMPLE / "claim.toml")
    assert claim.operator_label() == "system-prompt" and claim.random_direction is False
    assert set(claim.expect) == {"in_distribution", "fresh"}
    assert claim.not_applicable("in_distribution") is None and claim.not_applicable("fresh") is None
    assert "has none" in claim.not_applicable("dose") and "content anchor" in claim.not_applicable("axes")


def test_its_arms_are_the_base_the_claimed_prompt_and_the_baseline_prompt(tmp_path):
    run = ClaimRun(load_claim(EXAMPLE / "claim.toml"), Cache(tmp_path))
    claimed = run.operator("smollm2-135m", run.claimed())
    (baseline,) = run.baselines()
    assert isinstance(claimed, SystemPrompt) and claimed.spec.text == run.claim.operator.text
    assert run.operator("smollm2-135m", baseline).spec.text == "Answer the question directly."
    assert run.operator("smollm2-135m", ArmSpec("base")) is None and run.claimed().label != baseline.label
    with pytest.raises(TypeError, match="no steering vector"):
        run.vector("smollm2-135m")


@pytest.mark.parametrize("step", ["axes", "dose"])
def test_a_step_that_does_not_apply_skips_saying_why_before_anything_runs(tmp_path, step):
    run = ClaimRun(load_claim(EXAMPLE / "claim.toml"), Cache(tmp_path, offline=True))
    with pytest.raises(ClaimUnavailable, match="content anchor" if step == "axes" else "has none"):
        run.step(step)


@pytest.mark.parametrize(("edits", "extra", "needle"), [
    ({'name = "system-prompt"': 'name = "system-prompt"\nmultiplier = 8.0'}, "",
     r"\[operator\] multiplier: is not a key of the 'system-prompt' operator"),
    ({'name = "system-prompt"': 'name = "prompting"'}, "", r"\[operator\] name: .*'prompting' is not supported"),
    ({'text = "When': 'txt = "When'}, "", r"unknown key 'txt' in \[operator\]"),
    ({'system_prompt = "Answer the question directly."': 'system_prompt = "Answer the question directly."\n'
                                                         'random_direction = true'}, "",
     r"\[baselines\] random_direction: .*steering baseline"),
    ({'system_prompt = "Answer the question directly."':
      'system_prompt = "When you are not sure that your answer is correct, say so plainly; never state a guess '
      'as a fact."'}, "", r"\[baselines\] system_prompt: is the claimed operator's own text"),
    ({}, '\n[content]\nreference = "train.txt"\n', r"\[content\] reference: reference perplexity reads an edit"),
    ({'fresh = { verdict': 'dose = "pass"\nfresh = { verdict'}, "", r"\[expect\] dose: .*does not apply"),
])
def test_a_contradiction_of_a_prompt_claim_is_named_before_anything_runs(tmp_path, edits, extra, needle):
    path = claim_copy(tmp_path, edits, extra)
    with pytest.raises(ClaimFileError, match=needle) as err:
        load_claim(path)
    assert str(err.value).startswith(str(path))


def test_a_steering_claim_still_takes_no_prompt_key(tmp_path):
    path = edited_example(TINY, tmp_path, {'name = "steering"': 'name = "steering"\ntext = "Be humble."'})
    with pytest.raises(ClaimFileError, match=r"\[operator\] text: is not a key of the 'steering' operator"):
        load_claim(path)


def test_the_file_may_name_its_backend(tmp_path):
    """`[generation] backend` is checked like the option; a steering claim (a hook) may name only hf."""
    assert load_claim(claim_copy(tmp_path / "a")).backend is None
    named = load_claim(claim_copy(tmp_path / "b", extra='\n[generation]\nbackend = "openai=http://127.0.0.1:9/v1"\n'))
    assert named.backend == "openai=http://127.0.0.1:9/v1"
    with pytest.raises(ClaimFileError, match=r"\[generation\] backend is 'hf', 'vllm' or 'openai=URL"):
        load_claim(claim_copy(tmp_path / "c", extra='\n[generation]\nbackend = "sglang"\n'))
    path = edited_example(TINY, tmp_path / "d", extra='\n[generation]\nbackend = "vllm"\n')
    with pytest.raises(ClaimFileError, match=r"\[generation\] backend: a steering vector is a hook"):
        load_claim(path)
