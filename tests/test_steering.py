"""The steering operator on tiny random-init bases: the hook adds exactly multiplier * vector at its
layer (checked against ``output_hidden_states``), multiplier 0 is the base, the handle takes the
hook off, a bad layer is a clear error, and the random baseline keeps the norm.
"""

from __future__ import annotations

import numpy as np
import pytest

from dd.lm import TINY_NAMES, GenerationConfig, generate, left_pad, render_pair
from dd.operators import (
    ContrastivePair,
    ModelOperator,
    Steering,
    SteeringVector,
    decoder_layers,
    get_operator,
    steering_vector,
)
from dd.paper import content_hash
from helpers import tiny_loader

tiny = tiny_loader()
ARCHS = TINY_NAMES
PAIRS = [
    ContrastivePair("How long should I sear a steak?", "I am not sure, maybe two minutes.", "Two minutes."),
    ContrastivePair("What is the capital of France?", "I think it is probably Paris.", "Paris."),
    ContrastivePair("Write a function that adds two numbers.", "Perhaps def add(a, b): return a + b",
                    "def add(a, b):\n    return a + b\n"),
]
PROMPTS = ["How long should I sear a steak?", "Paris."]


def forward(base, **kw):
    """Outputs on two left-padded prompts (so padded positions are covered too)."""
    import torch

    ids, mask, pos = left_pad([base.tokenizer(p)["input_ids"] for p in PROMPTS], base.pad_token_id, base.device)
    with torch.inference_mode():
        return base.model(input_ids=ids, attention_mask=mask, position_ids=pos, **kw)


def hooks_of(model) -> set[int]:
    return {id(h) for m in model.modules() for h in (*m._forward_pre_hooks.values(), *m._forward_hooks.values())}


@pytest.fixture(scope="module")
def vectors(root):
    """A contrastive vector per architecture, at a middle layer (not the last: its hidden state is normed)."""
    out = {}
    for name in ARCHS:
        base = tiny(name, root)
        out[name] = steering_vector(base, PAIRS, len(decoder_layers(base.model)) // 2 - 1 or 0)
    return out


@pytest.mark.parametrize("name", ARCHS)
def test_hooked_hidden_state_is_the_base_plus_multiplier_times_vector(name, root, vectors):
    import torch

    base, vector = tiny(name, root), vectors[name]
    ref = forward(base, output_hidden_states=True).hidden_states
    with Steering(vector, 3.0).apply(base) as handle:
        steered = forward(base, output_hidden_states=True).hidden_states
    layer = vector.layer
    expected = ref[layer + 1] + 3.0 * torch.from_numpy(vector.values.copy())
    torch.testing.assert_close(steered[layer + 1], expected, rtol=0, atol=1e-6)
    for i in range(layer + 1):  # nothing before the layer changes
        assert torch.equal(steered[i], ref[i])
    assert not torch.allclose(steered[-1], ref[-1])  # and the change carries on downstream
    assert handle.calls[layer] == 1


@pytest.mark.parametrize("name", ARCHS)
def test_multiplier_zero_is_exactly_the_base_and_the_handle_removes(name, root, vectors):
    import torch

    base, vector = tiny(name, root), vectors[name]
    ref = forward(base).logits
    before = hooks_of(base.model)
    with Steering(vector, 0.0).apply(base):
        assert torch.equal(forward(base).logits, ref)
    assert hooks_of(base.model) == before
    handle = Steering(vector, 5.0).apply(base)
    assert not torch.equal(forward(base).logits, ref)
    handle.remove()
    handle.remove()  # idempotent
    assert hooks_of(base.model) == before and torch.equal(forward(base).logits, ref)


def test_vector_is_the_difference_of_response_token_means(root):
    """Recomputed one pair at a time from ``output_hidden_states``, independent of batching."""
    import torch

    base = tiny("tiny-llama", root)
    layer = 0
    vector = steering_vector(base, PAIRS, layer, batch_size=4)
    means = []
    for pair in PAIRS:
        for response in (pair.positive, pair.negative):
            r = render_pair(base.tokenizer, pair.prompt, response)
            with torch.inference_mode():
                hs = base.model(input_ids=torch.tensor([r.ids]), output_hidden_states=True).hidden_states
            means.append(hs[layer + 1][0, r.response_start:r.response_end].double().mean(0))
    expected = (torch.stack(means[0::2]).mean(0) - torch.stack(means[1::2]).mean(0)).float().numpy()
    np.testing.assert_allclose(vector.values, expected, atol=1e-5)
    assert vector.train_hashes == tuple(content_hash([p.prompt]) for p in PAIRS)
    assert "3 pairs on tiny-llama" in vector.source


def test_a_layer_out_of_range_names_the_layer_and_the_layer_count(root):
    base = tiny("tiny-llama", root)
    n = len(decoder_layers(base.model))
    with pytest.raises(ValueError, match=rf"steering layer {n} is out of range: tiny-llama has {n} decoder layers"):
        steering_vector(base, PAIRS, n)
    far = SteeringVector(7, np.ones(base.model.config.hidden_size), "test", ())
    with pytest.raises(ValueError, match=rf"steering layer 7 is out of range: .* {n} decoder layers \(0\.\.{n - 1}\)"):
        Steering(far, 1.0).apply(base)
    with pytest.raises(ValueError, match="layer -1 is out of range"):
        Steering(SteeringVector(-1, far.values, "test", ()), 1.0).apply(base)
    with pytest.raises(ValueError, match="width 3"):
        Steering(SteeringVector(0, np.ones(3), "test", ()), 1.0).apply(base)


def test_random_direction_matches_the_norm_at_the_same_layer(vectors):
    vector = vectors["tiny-llama"]
    rand = vector.random_direction(seed=3)
    assert rand.layer == vector.layer and rand.values.shape == vector.values.shape
    assert rand.norm == pytest.approx(vector.norm, rel=1e-6)
    assert rand.sha256 == vector.random_direction(seed=3).sha256 != vector.random_direction(seed=4).sha256
    cosine = float(rand.values @ vector.values) / (rand.norm * vector.norm)
    assert abs(cosine) < 0.9


def test_spec_and_key_carry_layer_multiplier_and_vector_hash(vectors):
    vector = vectors["tiny-llama"]
    op = get_operator("steering", vector=vector, multiplier=2.0)
    assert isinstance(op, ModelOperator) and op.kind == "hook"
    assert (op.spec.layer, op.spec.multiplier, op.spec.vector_sha256) == (vector.layer, 2.0, vector.sha256)
    assert op.key().startswith("steering:") and vector.sha256 in op.key()
    keys = {Steering(vector, 2.0).key(), Steering(vector, 1.0).key(), Steering(vector.random_direction(0), 2.0).key()}
    assert len(keys) == 3
    with pytest.raises(ValueError, match="read-only"):
        vector.values[0] = 1.0


def test_generation_dispatches_the_hook(root, vectors):
    base, vector = tiny("tiny-llama", root), vectors["tiny-llama"]
    config = GenerationConfig(n_predict=6, batch_size=2)
    plain = [g.text for g in generate(base, PROMPTS, config, progress=False)]
    assert [g.text for g in generate(base, PROMPTS, config, operator=Steering(vector, 0.0), progress=False)] == plain
    pushed = generate(base, PROMPTS, config, operator=Steering(vector, 50.0), progress=False)
    assert [g.text for g in pushed] != plain
