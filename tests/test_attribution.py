"""Attribution on tiny bases: planted signal is found, random labels are not mistaken for one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from dd.arcs import (
    HeadInputs,
    cohen_d,
    collect_head_inputs,
    directional_attribution,
    directional_stats,
    magnitude_attribution,
)
from dd.operators import Tempering, projection_sites
from helpers import tiny_loader

tiny = tiny_loader()

_WORDS = ["steak", "salt", "water", "fox", "paris", "tokyo", "light", "energy", "plant", "list", "sum", "python", "number", "heat", "side", "minute", "answer", "capital", "dog", "level"]


def pairs(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        prompt = " ".join(rng.choice(_WORDS, 4)) + "?"
        response = " ".join(rng.choice(_WORDS, int(rng.integers(6, 14)))) + f" {i}."
        out.append((prompt, response))
    return out


def test_cohen_d_uses_the_pooled_sd():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 2.0])
    pooled = np.sqrt((3 * a.var(ddof=1) + 2 * b.var(ddof=1)) / 5)
    assert cohen_d(a, b) == pytest.approx((a.mean() - b.mean()) / pooled)
    assert cohen_d(np.ones(3), np.ones(3)) == 0.0
    with pytest.raises(ValueError, match="two items"):
        cohen_d(np.ones(1), np.ones(3))


def test_head_norms_match_a_manual_read(root):
    """The window is the last N response tokens; batching does not change the numbers."""
    import torch

    from dd.lm import render_pair

    base = tiny("tiny-gemma4", root)
    items = pairs(5, 0)
    batched = collect_head_inputs(base, items, last_n_tokens=4, batch_size=5)
    site = projection_sites(base.model)[1]  # head_dim 512
    seen = {}
    hook = site.module.register_forward_pre_hook(lambda m, a: seen.update(x=a[0][0]))
    try:
        r = render_pair(base.tokenizer, *items[2])
        with torch.inference_mode():
            base.model(torch.tensor([r.ids]))
    finally:
        hook.remove()
    seg = seen["x"][r.response_end - 4 : r.response_end].reshape(4, site.n_heads, site.head_dim)
    k = [s.layer for s in batched.sites].index(1)
    np.testing.assert_allclose(batched.norms[k][2], seg.norm(dim=-1).mean(0).numpy(), rtol=1e-5)
    np.testing.assert_allclose(batched.means[k][2], seg.mean(0).numpy(), atol=1e-5)
    assert batched.n_tokens.tolist() == [4] * 5 and batched.means[k].shape == (5, 4, 512)


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-qwen3.5", "tiny-gemma4"])
def test_planted_magnitude_signal_ranks_first(name, root):
    """Heads of 'wrong' items are scaled by a tempering hook: magnitude attribution finds that head."""
    base = tiny(name, root)
    last = max(s.layer for s in projection_sites(base.model).values() if s.kind == "attention")
    target = (last, 1)
    with Tempering([target], 2.0).apply(base):
        wrong = collect_head_inputs(base, pairs(10, 1), last_n_tokens=8)
    right = collect_head_inputs(base, pairs(10, 2), last_n_tokens=8)
    inputs = HeadInputs.concat([wrong, right])
    labels = np.r_[np.ones(10, bool), np.zeros(10, bool)]
    att = magnitude_attribution(inputs, labels)
    assert att.top(1) == [target]
    top = att.rows[0]
    assert top.cohen_d > 2 and top.overconf_score == pytest.approx(top.mean_cw - top.mean_cr)
    assert [r.cohen_d for r in att.rows] == sorted((r.cohen_d for r in att.rows), reverse=True)
    assert att.cohorts == {"cw": 10, "cr": 10}
    assert all(s.kind == "attention" for s in inputs.sites)  # DeltaNet layers are not read by default
    if name == "tiny-qwen3.5":
        assert top.attn_layer_idx == 0  # layer 3 is the first attention layer


def test_released_json_layout(root):
    base = tiny("tiny-llama", root)
    inputs = collect_head_inputs(base, pairs(8, 3), last_n_tokens=32)
    out = magnitude_attribution(inputs, np.arange(8) % 2 == 0).to_json()
    artifacts = Path(os.environ.get("DD_ARTIFACTS", "")) / "eval/results/path_b_attribution_qwen35_0.8b.json"
    if not artifacts.is_file():
        pytest.skip("DD_ARTIFACTS does not hold path_b_attribution_qwen35_0.8b.json")
    released = json.loads(artifacts.read_text())
    assert {"cohorts", "last_n_tokens", "all_heads_ranked_by_cohen_d", "top20_overconf_heads",
            "bottom5_overconf_heads"} <= set(out) & set(released)
    assert set(out["all_heads_ranked_by_cohen_d"][0]) == set(released["all_heads_ranked_by_cohen_d"][0])
    assert out["last_n_tokens"] == released["last_n_tokens"] == 32
    assert len(out["all_heads_ranked_by_cohen_d"]) == 8 and len(out["top20_overconf_heads"]) == 8


def test_random_labels_fool_in_sample_d_but_not_held_out_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 256))
    labels = rng.permutation(np.r_[np.ones(20, bool), np.zeros(20, bool)])
    d_in, d_out, _ = directional_stats(x, labels)
    assert d_in > 3 and abs(d_out) < 0.8
    x[labels, 0] += 3.0  # a real axis survives the held-out split
    d_in, d_out, _ = directional_stats(x, labels)
    assert d_out > 1.0


def test_random_labels_directional_on_a_model(root):
    """On real o_proj inputs (head_dim 512), the in-sample d of random labels looks like a finding."""
    base = tiny("tiny-gemma4", root)
    inputs = collect_head_inputs(base, pairs(32, 4), last_n_tokens=8)
    labels = np.random.default_rng(5).permutation(np.r_[np.ones(16, bool), np.zeros(16, bool)])
    att = directional_attribution(inputs, labels, random_state=0)
    wide = [r for r in att.rows if inputs.sites[[s.layer for s in inputs.sites].index(r.layer)].head_dim == 512]
    assert min(r.cohen_d for r in wide) > 1.3  # the paper's "d > 1.3" bar, passed by noise
    assert np.median([abs(r.cohen_d_heldout) for r in att.rows]) < 0.6
    assert all(-1 <= r.cos_cr_cw <= 1 for r in att.rows)
