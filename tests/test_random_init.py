"""The random-init baseline: same architecture and tokenizer, other weights, its own identity; the margin check."""

from __future__ import annotations

import numpy as np
import pytest

from dd.core import Cache
from dd.lm import FeatureSpec, LazyBase, cached_features, feature_key, random_init_of, resolve_base
from dd.protocol import FAIL, INCONCLUSIVE, PASS, FeatureSource, random_init_margin, random_init_step

PAIRS = [("hi", "Hello! How can I help?"), ("The capital of France", "Paris.")]


@pytest.fixture(scope="module")
def trained(root):
    return LazyBase(resolve_base("tiny-llama", cache_root=root))


def test_same_architecture_and_tokenizer_other_weights(trained):
    import torch

    rng_before = torch.random.get_rng_state()
    rand = random_init_of(trained, seed=0).load()
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # seeded without moving the caller's RNG
    base = trained.load()
    assert type(rand.model) is type(base.model)
    assert rand.model.config.to_dict() == base.model.config.to_dict()
    assert rand.tokenizer.get_vocab() == base.tokenizer.get_vocab()
    assert rand.tokenizer.chat_template == base.tokenizer.chat_template
    ours, theirs = dict(rand.model.named_parameters()), dict(base.model.named_parameters())
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    assert not any(torch.equal(ours[k], theirs[k]) for k in ours if ours[k].dim() == 2)


def test_seeded_and_identified(trained):
    import torch

    a, b, c = random_init_of(trained, 0), random_init_of(trained, 0), random_init_of(trained, 1)
    w = [dict(x.load().model.named_parameters())["model.embed_tokens.weight"] for x in (a, b, c)]
    assert torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])
    ident, base = a.identity(), trained.identity()
    assert a.name == ident["base"] == "tiny-llama@random-init0" and c.name == "tiny-llama@random-init1"
    assert ident["init"] == "random" and ident["init_seed"] == 0 and ident["weights_sha256"] is None
    for shared in ("tokenizer_sha256", "chat_template_sha256", "hf_id", "dtype", "attn"):
        assert ident[shared] == base[shared]
    keys = [feature_key(x, PAIRS, FeatureSpec()) for x in (trained, a, c)]
    assert len({k.digest for k in keys}) == 3
    assert "base.init_seed: 0 -> 1" in keys[2].diff(keys[1])


def test_features_cached_like_any_base(trained, tmp_path):
    rand = random_init_of(trained)
    ours = cached_features(rand, PAIRS, FeatureSpec(), Cache(tmp_path))
    theirs = cached_features(trained, PAIRS, FeatureSpec(), Cache(tmp_path))
    assert ours.h_last.shape == theirs.h_last.shape and not np.allclose(ours.h_last, theirs.h_last)
    again = cached_features(random_init_of(trained), PAIRS, FeatureSpec(), Cache(tmp_path, offline=True))
    np.testing.assert_array_equal(again.h_last, ours.h_last)  # a hit, without building the model


def sources(n: int, signal_trained: float, signal_random: float, seed: int = 0):
    """A trained and a random-init source over the same labelled items, each with its own signal strength."""
    rng = np.random.default_rng(seed)
    y_tr, y_fr = rng.permutation(np.arange(n) % 2), rng.permutation(np.arange(n) % 2)

    def source(name, s):
        return FeatureSource(name, X_train=y_tr[:, None] * s + rng.normal(size=(n, 4)), y_train=y_tr,
                             X_fresh=y_fr[:, None] * s + rng.normal(size=(n, 4)), y_fresh=y_fr)

    return source("trained", signal_trained), source("trained@random-init0", signal_random)


@pytest.mark.parametrize("step", ["cv", "fresh"])
def test_margin_trips_when_trained_matches_random(step):
    trained, rand = sources(300, 1.0, 1.0)
    result = random_init_step(trained, rand, 1.0, step=step)
    assert result.verdict.verdict == FAIL and result.verdict.code == "random_init_not_beaten"
    m = result.metrics
    assert abs(m["margin"]) < m["margin_min"] and m["margin_ci_low"] < m["margin_min"] < m["margin_ci_high"]
    assert m["auc_random_init"] > 0.7  # the random copy carries the (lexical) signal too


@pytest.mark.parametrize("step", ["cv", "fresh"])
def test_margin_passes_when_trained_clearly_wins(step):
    trained, rand = sources(300, 2.0, 0.0)
    result = random_init_step(trained, rand, 1.0, step=step)
    assert result.verdict.verdict == PASS, result.reasons
    m = result.metrics
    assert m["auc_trained"] > 0.9 and abs(m["auc_random_init"] - 0.5) < 0.1
    assert m["margin_ci_low"] >= m["margin_min"] == 0.05 and m["random_init_base"] == "trained@random-init0"


def test_margin_inconclusive_when_only_the_ci_leaves_room_for_chance():
    rng = np.random.default_rng(3)
    y = np.arange(40) % 2
    trained = y * 0.6 + rng.normal(size=40)
    metrics, verdict = random_init_margin(y, trained, rng.normal(size=40))
    assert metrics["margin"] >= 0.05 > metrics["margin_ci_low"]
    assert verdict.verdict == INCONCLUSIVE and "CI lower bound" in verdict.reasons[0]


def test_margin_needs_the_same_items():
    trained, rand = sources(60, 1.0, 0.0)
    with pytest.raises(ValueError, match="same items"):
        random_init_step(trained, FeatureSource(rand.name, rand.X_train, 1 - rand.y_train, rand.X_fresh, rand.y_fresh))
