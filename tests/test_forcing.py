"""The one teacher-forcing loop (dd.lm.teacher_force) on tiny bases.

Features, perplexity and attribution all read through it, so the three properties they rely on
are checked here once: a batched row equals the row alone, the response span points at the
response's tokens, and a hook inside the forward sees what ``output_hidden_states`` reports.
"""

from __future__ import annotations

import numpy as np
import pytest

from dd.lm import TINY_NAMES, render_pair, teacher_force
from dd.operators import decoder_layers
from helpers import tiny_loader

tiny = tiny_loader()

PAIRS = [
    ("hi", "Hello! How can I help?"),
    ("How long should I sear a steak?", "About two minutes per side at high heat, then rest it for five minutes."),
    ("The capital of France", "Paris."),
    ("def add(a, b):", "    return a + b\n"),
    ("Water boils at", "one hundred degrees Celsius at sea level, I think, but I am not completely sure."),
]


def rendered(base, pairs=PAIRS, **kw):
    return [render_pair(base.tokenizer, p, r, **kw) for p, r in pairs]


def last_hidden(base, rows, batch_size):
    """Per item, the last layer's hidden states over its real (unpadded) tokens."""
    got = {}
    for batch, out in teacher_force(base, rows, batch_size=batch_size, output_hidden_states=True):
        for row, (item, off) in enumerate(zip(batch.items, batch.offsets, strict=True)):
            got[item] = out.hidden_states[-1][row, off:].float().numpy()
    return got


@pytest.mark.parametrize("name", TINY_NAMES)
def test_batched_equals_one_at_a_time(name, root):
    base = tiny(name, root)
    # Qwen3.5's DeltaNet layers scan over the padded width, so float sums regroup: single tokens
    # move by up to ~3e-4 (the features' last token and means stay within 1e-4)
    atol = 1e-3 if name == "tiny-qwen3.5" else 1e-4
    rows = rendered(base)
    batched = last_hidden(base, rows, batch_size=len(rows))
    assert sorted(batched) == list(range(len(rows)))  # every pair once
    for i, r in enumerate(rows):
        alone = last_hidden(base, [r], batch_size=1)[0]
        assert batched[i].shape == alone.shape == (len(r.ids), base.model.config.hidden_size)
        np.testing.assert_allclose(batched[i], alone, atol=atol)


def test_batches_are_left_padded_and_spans_hold_the_response(root):
    base = tiny("tiny-qwen3", root)
    rows = rendered(base)
    seen = []
    for batch, _ in teacher_force(base, rows, batch_size=2, logits_to_keep=1):
        ids, mask = batch.input_ids, batch.attention_mask
        for row, (item, off, (a, b)) in enumerate(zip(batch.items, batch.offsets, batch.spans, strict=True)):
            r = rows[item]
            assert mask[row, :off].sum() == 0 and bool(mask[row, off:].all())
            assert ids[row, off:].tolist() == list(r.ids)
            assert (a - off, b - off) == (r.response_start, r.response_end)
            assert base.tokenizer.decode(ids[row, a:b].tolist()).strip() == PAIRS[item][1].strip()
        seen.append([len(rows[i].ids) for i in batch.items])
    flat = [n for lengths in seen for n in lengths]
    assert flat == sorted(flat, reverse=True)  # longest first: similar lengths share a batch


def test_a_response_cut_by_max_length_has_an_empty_span(root):
    base = tiny("tiny-llama", root)
    rows = rendered(base, max_length=3)
    for batch, _ in teacher_force(base, rows, batch_size=len(rows), logits_to_keep=1):
        assert all(a == b for a, b in batch.spans)


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-qwen3.5", "tiny-gemma4"])
def test_hooks_see_what_output_hidden_states_reports(name, root):
    """A pre-hook on decoder layer i reads hidden_states[i] (the last entry is after the final norm)."""
    base = tiny(name, root)
    layers = decoder_layers(base.model)
    seen: dict[tuple[int, int], np.ndarray] = {}

    def read(layer):
        def hook(batch, x):
            for row, (item, off) in enumerate(zip(batch.items, batch.offsets, strict=True)):
                seen[layer, item] = x[row, off:].float().numpy()

        return hook

    rows = rendered(base)
    hooks = [(module, read(i)) for i, module in enumerate(layers)]
    for batch, out in teacher_force(base, rows, batch_size=3, hooks=hooks, output_hidden_states=True):
        for row, (item, off) in enumerate(zip(batch.items, batch.offsets, strict=True)):
            for i in range(len(layers)):
                np.testing.assert_array_equal(seen[i, item], out.hidden_states[i][row, off:].float().numpy())
    assert len(seen) == len(layers) * len(rows)
    assert all(not module._forward_pre_hooks for module in layers)  # removed with the loop


def test_a_template_that_rewrites_the_response_is_an_error(root):
    """A template that rewrites the answer (Qwen3 re-renders a <think> block) leaves no span: an error, not noise."""
    import copy

    tokenizer = copy.deepcopy(tiny("tiny-llama", root).tokenizer)
    tokenizer.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] | replace('<think>', '') }}"
                               "\n{% endfor %}")
    found = render_pair(tokenizer, "hi", "plain answer")  # untouched: located
    assert found.response_end > found.response_start
    with pytest.raises(ValueError, match="rewrote the response"):
        render_pair(tokenizer, "hi", "<think>hmm</think> answer")
