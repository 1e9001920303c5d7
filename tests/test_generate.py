"""Tests for dd.lm: batching must not change greedy tokens; finish reasons; caching."""

from __future__ import annotations

import pytest

from dd.lm import _generate, generation_key
from dd.core import Cache, CacheMiss
from dd.lm import GenerationConfig, cached_generate, generate, left_pad, render_prompt
from dd.lm import TINY_NAMES
from dd.operators import SystemPrompt
from helpers import tiny_loader

tiny = tiny_loader()

PROMPTS = [
    "hi",
    "How long should I sear a steak on each side at high heat, and why?",
    "The capital of France",
    "def add(a, b):",
    "Water boils at one hundred degrees",
]

def test_left_pad_positions_from_mask():
    ids, mask, pos = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert pos.tolist() == [[0, 1, 2], [0, 0, 0]]


@pytest.mark.parametrize("name", TINY_NAMES)
def test_batched_equals_one_at_a_time(name, root):
    base = tiny(name, root)
    cfg = GenerationConfig(n_predict=10, batch_size=len(PROMPTS))
    batched = generate(base, PROMPTS, cfg)
    alone = [generate(base, [p], GenerationConfig(n_predict=10, batch_size=1))[0] for p in PROMPTS]
    assert [g.token_ids for g in batched] == [g.token_ids for g in alone]
    assert [g.prompt for g in batched] == PROMPTS  # input order kept despite length bucketing
    for g in batched:
        assert g.n_predict == 10 and g.finish_reason == "length" and len(g.token_ids) == 10
        assert g.n_prompt_tokens == len(render_prompt(base.tokenizer, g.prompt))


def test_eos_finish_reason_and_text(root):
    base = tiny("tiny-llama", root)
    first = generate(base, PROMPTS[:2], GenerationConfig(n_predict=6))
    stop = first[0].token_ids[2]
    old = base.model.generation_config.eos_token_id
    base.model.generation_config.eos_token_id = [base.tokenizer.eos_token_id, stop]
    try:
        out = generate(base, PROMPTS[:2], GenerationConfig(n_predict=6))
    finally:
        base.model.generation_config.eos_token_id = old
    g = out[0]
    assert g.finish_reason == "eos" and g.token_ids[-1] == stop
    assert len(g.token_ids) == g.token_ids.index(stop) + 1 <= 3
    assert g.text == base.tokenizer.decode(list(g.token_ids[:-1]))
    assert out[1].token_ids[: len(out[1].token_ids)] == first[1].token_ids[: len(out[1].token_ids)]


def test_zero_new_tokens(root):
    out = generate(tiny("tiny-qwen3", root), ["hi"], GenerationConfig(n_predict=0))
    assert out[0].token_ids == () and out[0].finish_reason == "length"


def test_plain_prompt_without_chat_template(root):
    base = tiny("tiny-llama", root)
    ids = render_prompt(base.tokenizer, "hi", chat=False)
    assert base.tokenizer.decode(ids).endswith("Question: hi\nAnswer:")


def test_cached_generate_hits_and_offline_miss(root, tmp_path, monkeypatch):
    base = tiny("tiny-gemma3", root)
    cache = Cache(tmp_path)
    cfg = GenerationConfig(n_predict=4)
    first = cached_generate(base, PROMPTS[:3], cfg, cache)
    monkeypatch.setattr(_generate, "generate", lambda *a, **k: pytest.fail("cache hit expected"))
    assert cached_generate(base, PROMPTS[:3], cfg, cache) == first
    with pytest.raises(CacheMiss, match="operator = 'system-prompt:"):
        cached_generate(base, PROMPTS[:3], cfg, Cache(tmp_path, offline=True), operator=SystemPrompt())
    key = generation_key(base, PROMPTS[:3], cfg)
    assert key.parts["gen.n_predict"] == 4 and key.parts["base.base"] == "tiny-gemma3"
    assert key.parts["operator"] == "frozen" and "code_version" in key.parts
