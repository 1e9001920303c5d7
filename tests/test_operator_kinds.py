"""Operator kinds mean something: what generation does with each kind, and what its key records.

A hook is applied for the arm and removed after it (also when the run fails), a prompt operator's
messages are what the base is sent, a read-out refuses to generate, and the cache key is taken
from the operator object that ran: the untouched base keeps the ``"frozen"`` key part that every
earlier cache entry carries.
"""

from __future__ import annotations

import pytest

from dd.arcs._arms import arm_generations
from dd.core import Cache
from dd.lm import GenerationConfig, _generate, cached_generate, generate, generation_key, render_prompt
from dd.operators import Frozen, Sidecar, SystemPrompt, Tempering, projection_sites
from helpers import tiny_loader

tiny = tiny_loader()
PROMPTS = ["The capital of France", "How long should I boil an egg?"]
CONFIG = GenerationConfig(n_predict=4)


@pytest.fixture(scope="module")
def base(root):
    return tiny("tiny-llama", root)


class SpyTempering(Tempering):
    """Tempering that keeps the handles it hands out."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.handles = []

    def apply(self, base):
        handle = super().apply(base)
        self.handles.append(handle)
        return handle


def hooks_on(base) -> int:
    return sum(len(site.module._forward_pre_hooks) for site in projection_sites(base.model).values())


def test_the_untouched_base_keeps_its_key(base):
    plain = generation_key(base, PROMPTS, CONFIG)
    assert plain.parts["operator"] == "frozen"
    assert generation_key(base, PROMPTS, CONFIG, operator=Frozen()) == plain
    assert generate(base, PROMPTS, CONFIG, operator=Frozen()) == generate(base, PROMPTS, CONFIG)


def test_system_prompt_changes_the_rendered_prompt_and_the_key(base, tmp_path):
    op = SystemPrompt("Say when you are unsure.")
    plain = render_prompt(base.tokenizer, PROMPTS[0])
    asked = render_prompt(base.tokenizer, PROMPTS[0], operator=op)
    assert "<|system|>\nSay when you are unsure." in base.tokenizer.decode(asked)
    assert "Say when you are unsure." not in base.tokenizer.decode(plain)
    key = generation_key(base, PROMPTS, CONFIG, operator=op)
    assert key.parts["operator"] == op.key() != generation_key(base, PROMPTS, CONFIG).parts["operator"]
    assert key.diff(generation_key(base, PROMPTS, CONFIG)) == [f"operator: 'frozen' -> {op.key()!r}"]

    gens = generate(base, PROMPTS, CONFIG, operator=op)
    assert gens[0].n_prompt_tokens == len(asked) > len(plain)  # the base was sent the operator's messages
    cache = Cache(tmp_path)
    assert arm_generations(base, PROMPTS, CONFIG, cache, op) == gens
    assert cache.contains(key) and not cache.contains(generation_key(base, PROMPTS, CONFIG))


def test_hook_handle_is_removed_after_the_arm(base, tmp_path):
    op = SpyTempering([(0, 0), (1, 1)], lam=0.0)
    assert hooks_on(base) == 0
    cached_generate(base, PROMPTS, CONFIG, Cache(tmp_path), operator=op)
    (handle,) = op.handles
    assert sum(handle.calls.values()) > 0  # the hook acted during generation
    assert hooks_on(base) == 0  # and is gone after it
    assert Cache(tmp_path).contains(generation_key(base, PROMPTS, CONFIG, operator=op))
    assert generation_key(base, PROMPTS, CONFIG, operator=op).parts["operator"] == op.key()


def test_hook_handle_is_removed_when_generation_fails(base, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(_generate, "_generate_batch", boom)
    op = SpyTempering([(0, 0)], lam=0.5)
    with pytest.raises(RuntimeError, match="out of memory"):
        generate(base, PROMPTS, CONFIG, operator=op)
    assert len(op.handles) == 1 and hooks_on(base) == 0


def test_a_readout_cannot_generate(base, tmp_path):
    side = Sidecar()
    with pytest.raises(TypeError, match="sidecar.* is a read-out operator: it reads the features"):
        generate(base, PROMPTS, CONFIG, operator=side)
    with pytest.raises(TypeError, match="read-out"):
        cached_generate(base, PROMPTS, CONFIG, Cache(tmp_path), operator=side)
    assert not list(Cache(tmp_path).entries("generations"))  # an error is never cached


def test_a_name_string_is_not_an_operator(base):
    """The key must come from the object that runs, never from a name the caller vouches for."""
    with pytest.raises(TypeError, match="must be a dd.operators Operator"):
        generation_key(base, PROMPTS, CONFIG, operator="lora-x")
