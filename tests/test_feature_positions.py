"""Named positions and the response cap: hand-computed indices, one forward for all, the default key kept."""

from __future__ import annotations

import numpy as np
import pytest

from dd.core import Cache
from dd.lm import (
    POSITIONS,
    READOUTS,
    FeatureSet,
    FeatureSpec,
    _features,
    cached_features,
    extract_features,
    feature_key,
    render_pair,
)
from helpers import tiny_loader

tiny = tiny_loader()

PAIRS = [
    ("hi", "Hello! How can I help?"),
    ("How long should I sear a steak?", "About two minutes per side at high heat, then rest it for five minutes."),
    ("The capital of France", "Paris."),
    ("Water boils at", "one hundred degrees Celsius at sea level, I think, but I am not completely sure."),
]
ALL = FeatureSpec(last_n=2, batch_size=len(PAIRS), positions=POSITIONS)


def hidden_alone(base, ids):
    """Every layer's hidden states of one unpadded sequence: the reference the batched read-outs must match."""
    import torch

    with torch.inference_mode():
        return [h[0].float() for h in base.model(torch.tensor([ids]), output_hidden_states=True).hidden_states]


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-qwen3"])
def test_positions_agree_with_hand_computed_indices(name, root):
    base = tiny(name, root)
    fs = extract_features(base, PAIRS, ALL)
    for i, pair in enumerate(PAIRS):
        r = render_pair(base.tokenizer, *pair)
        hs = hidden_alone(base, r.ids)
        end, last_resp = len(r.ids) - 1, r.response_end - 1
        assert base.tokenizer.decode(list(r.ids[last_resp + 1 :])) == "<|end|>\n"  # the template's closing tokens
        expected = {
            "h_last": hs[-1][end],
            "last_n_mean": (hs[-1][end] + hs[-2][end]) / 2,
            "last_response": hs[-1][last_resp],
            "last_response_n_mean": (hs[-1][last_resp] + hs[-2][last_resp]) / 2,
            "response_mean": hs[-1][r.response_start : r.response_end].mean(0),
        }
        for field, want in expected.items():
            np.testing.assert_allclose(getattr(fs, field)[i], want.numpy(), atol=1e-4, err_msg=field)
        assert fs.positions[i] == end and fs.n_response_tokens[i] == r.response_end - r.response_start


def test_one_forward_gives_every_position(root):
    base = tiny("tiny-llama", root)
    calls = []
    handle = base.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        fs = extract_features(base, PAIRS, FeatureSpec(batch_size=1, positions=POSITIONS))
        assert len(calls) == len(PAIRS)  # one forward per pair for all five read-outs
        default = extract_features(base, PAIRS, FeatureSpec(batch_size=1))
    finally:
        handle.remove()
    assert set(fs.to_arrays()) >= set(READOUTS.values())
    for field in ("h_last", "last_n_mean", "response_mean"):  # what both specs read, read alike
        np.testing.assert_array_equal(getattr(fs, field), getattr(default, field))
    assert default.last_response is None and default.last_response_n_mean is None


def test_default_key_is_unchanged():
    """Features cached before positions were named carry exactly these parts; their entries must still hit."""
    assert FeatureSpec().key_parts() == {
        "feat.last_n": 4, "feat.max_length": None, "feat.chat": True, "feat.enable_thinking": None,
        "feat.positions": "last_token,response_mean",
    }
    assert FeatureSpec(positions=("mean_response", "last_rendered")).key_parts() == FeatureSpec().key_parts()


def test_positions_and_cap_enter_the_key(root):
    base = tiny("tiny-llama", root)
    k0 = feature_key(base, PAIRS, FeatureSpec())
    k1 = feature_key(base, PAIRS, FeatureSpec(positions=("last_response", "last_rendered")))
    k2 = feature_key(base, PAIRS, FeatureSpec(positions=("last_response",), response_cap=512))
    assert k1.diff(k0) == ["feat.positions: 'last_token,response_mean' -> 'last_rendered,last_response'"]
    assert sorted(k2.diff(k0)) == ["feat.positions: 'last_token,response_mean' -> 'last_response'",
                                   "feat.response_cap: None -> 512"]
    assert FeatureSpec(response_cap=8).report("last_response") == {
        "position": "last_response", "layers": "last", "last_n": 4, "response_cap": 8}


def test_response_cap_keeps_the_first_tokens_and_the_end_marker(root):
    base = tiny("tiny-llama", root)
    cap = 3
    full = render_pair(base.tokenizer, *PAIRS[1])
    cut = render_pair(base.tokenizer, *PAIRS[1], response_cap=cap)
    assert cut.response_end - cut.response_start == cap
    assert cut.ids[: cut.response_end] == full.ids[: full.response_start + cap]
    assert cut.ids[cut.response_end :] == full.ids[full.response_end :]  # the template's closing tokens stay
    fs = extract_features(base, PAIRS, FeatureSpec(last_n=2, positions=POSITIONS, response_cap=cap))
    hs = hidden_alone(base, full.ids)  # causal attention: the kept tokens read as in the uncut pair
    np.testing.assert_allclose(fs.last_response[1], hs[-1][full.response_start + cap - 1].numpy(), atol=1e-4)
    np.testing.assert_allclose(fs.response_mean[1], hs[-1][full.response_start : full.response_start + cap].mean(0),
                               atol=1e-4)
    assert (fs.n_response_tokens <= cap).all()
    short = render_pair(base.tokenizer, *PAIRS[2], response_cap=100)
    assert short == render_pair(base.tokenizer, *PAIRS[2])  # a cap above the response changes nothing


def test_no_response_token_falls_back_to_the_last_rendered_token(root):
    base = tiny("tiny-llama", root)
    fs = extract_features(base, PAIRS, FeatureSpec(max_length=3, positions=POSITIONS))
    assert (fs.n_response_tokens == 0).all()
    np.testing.assert_array_equal(fs.last_response, fs.h_last)
    np.testing.assert_array_equal(fs.response_mean, fs.h_last)


def test_view_names_every_readout_and_refuses_the_rest(root):
    fs = extract_features(tiny("tiny-llama", root), PAIRS[:2], FeatureSpec(positions=("last_response",)))
    assert fs.view("last_response") is fs.last_response
    assert fs.view("last_response", "last_n_mean") is fs.last_response_n_mean
    with pytest.raises(ValueError, match="add the position to FeatureSpec.positions"):
        fs.view("last_rendered")
    with pytest.raises(ValueError, match="last-layer only"):
        fs.view("mean_response", "last_n_mean")
    with pytest.raises(ValueError, match="positions"):
        FeatureSpec(positions=("first_token",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="response_cap"):
        FeatureSpec(response_cap=0)


def test_cache_roundtrip_of_every_readout_and_of_an_old_entry(root, tmp_path):
    base = tiny("tiny-llama", root)
    spec = FeatureSpec(positions=POSITIONS, response_cap=4)
    a = cached_features(base, PAIRS, spec, Cache(tmp_path))
    b = cached_features(base, PAIRS, spec, Cache(tmp_path, offline=True))
    for k, v in a.to_arrays().items():
        np.testing.assert_array_equal(v, b.to_arrays()[k], err_msg=k)
    old = extract_features(base, PAIRS).to_arrays()
    assert set(old) == {"h_last", "last_n_mean", "response_mean", "positions", "n_response_tokens", "n_tokens",
                        "truncated", "padding_share"}  # the arrays an entry held before positions were named
    assert FeatureSet.from_arrays(old).view("last_rendered", "last_n_mean") is old["last_n_mean"]


def test_each_of_the_last_layers_agrees_with_the_hidden_states_and_a_shallow_base_lacks_the_deepest(root):
    base = tiny("tiny-llama", root)  # two decoder layers: hidden_states are the embeddings and two outputs
    fs = extract_features(base, PAIRS, FeatureSpec(last_n=2, batch_size=len(PAIRS), positions=POSITIONS,
                                                   each_of_last=4))
    for i, pair in enumerate(PAIRS):
        r = render_pair(base.tokenizer, *pair)
        hs = hidden_alone(base, r.ids)
        np.testing.assert_allclose(fs.view("last_rendered", "layer-2")[i], hs[-2][len(r.ids) - 1].numpy(), atol=1e-4)
        np.testing.assert_allclose(fs.view("last_response", "layer-2")[i], hs[-2][r.response_end - 1].numpy(),
                                   atol=1e-4)
    assert fs.held() == {*READOUTS, ("last_rendered", "layer-2"), ("last_response", "layer-2")}
    with pytest.raises(ValueError, match="layer-3 was not extracted"):
        fs.view("last_rendered", "layer-3")  # the embeddings are not a layer
    again = FeatureSet.from_arrays(fs.to_arrays())
    assert again.held() == fs.held()
    np.testing.assert_array_equal(again.view("last_response", "layer-2"), fs.view("last_response", "layer-2"))


def test_single_layers_enter_the_key_only_when_read_and_come_back_from_the_cache(root, tmp_path, monkeypatch):
    base = tiny("tiny-llama", root)
    k0 = feature_key(base, PAIRS, FeatureSpec(positions=POSITIONS))
    spec = FeatureSpec(positions=POSITIONS, each_of_last=2)
    assert feature_key(base, PAIRS, spec).diff(k0) == ["feat.each_of_last: None -> 2"]
    assert "feat.each_of_last" not in FeatureSpec().key_parts()
    cache = Cache(tmp_path)
    built = cached_features(base, PAIRS, spec, cache, progress=False)
    monkeypatch.setattr(_features, "extract_features", lambda *a, **k: pytest.fail("cache hit expected"))
    read = cached_features(base, PAIRS, spec, cache, progress=False)
    assert read.held() == built.held() and ("last_response", "layer-2") in read.held()
    np.testing.assert_array_equal(read.view("last_response", "layer-2"), built.view("last_response", "layer-2"))


@pytest.mark.parametrize("position, layers, match", [
    ("last_rendered", "layer-1", "unknown layer read-out 'layer-1'"),
    ("last_rendered", "layer-x", "unknown layer read-out"),
    ("last_rendered", "first", "unknown layer read-out"),
    ("mean_response", "layer-2", "single layers are read at"),
])
def test_a_single_layer_read_out_that_does_not_exist_is_named(position, layers, match, root):
    fs = extract_features(tiny("tiny-llama", root), PAIRS[:1], FeatureSpec(positions=POSITIONS, each_of_last=2))
    with pytest.raises(ValueError, match=match):
        fs.view(position, layers)


def test_each_of_last_must_name_layers_below_the_last():
    for bad in (1, -1):
        with pytest.raises(ValueError, match="each_of_last must be 0 or at least 2"):
            FeatureSpec(each_of_last=bad)
