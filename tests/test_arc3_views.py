"""The Arc 3 frozen-base sources' alternative views: the pre-registered grid, read from passes already made.

A pool that hands out feature sets (no model) stands in for `bases`; what is checked is which
views a claim's specification curve gets and how many feature passes it asks for.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from claims.arc3.test_frozen_bases import feature_views, view_name
from dd.fixtures.bases import BasePool
from dd.lm import READOUTS, FeatureSet, readout_name, single_layer_depth
from dd.protocol import spec_grid


class Pool:
    """`bases` with `spec` as the suite's and `features` returning random read-outs of a spec, counted."""

    spec = staticmethod(BasePool.spec)

    def __init__(self) -> None:
        self.passes: list = []

    def features(self, name, judged, spec):
        self.passes.append((judged, spec.response_cap))
        return fake_features(spec, n=judged)


def fake_features(spec, n: int, depth: int = 8, seed: int = 0) -> FeatureSet:
    """Random read-outs of `spec` from a base with `depth` layers (deeper single layers are not read)."""
    rng = np.random.default_rng([n, seed])
    arrays = {readout_name(*r): rng.normal(size=(n, 4)).astype(np.float32) for r in spec.readouts
              if (single_layer_depth(r[1]) or 0) <= depth}
    pooled = {k: v for k, v in arrays.items() if k in READOUTS.values()}
    return FeatureSet(positions=np.zeros(n, int), n_response_tokens=np.ones(n, int), n_tokens=np.ones(n, int),
                      truncated=np.zeros(n, bool), **pooled,
                      single_layers={k: v for k, v in arrays.items() if k not in pooled})


def views_of(cap, full: bool, position: str = "last_rendered"):
    pool, judged = Pool(), {"step16": 10, "fresh": 7}
    spec = pool.spec(position, cap)
    own = {w: fake_features(spec, n) for w, n in judged.items()}
    return feature_views("base", pool, judged, own, spec, spec_grid(full=full)), pool.passes


def test_the_small_grid_reads_the_views_of_the_claimed_pass_and_asks_for_no_other():
    views, passes = views_of(None, full=False)
    assert passes == []
    assert set(views) == {"last_rendered/last/cap=none", "last_rendered/last_n_mean/cap=none",
                          "mean_response/last/cap=none"}  # the default pass holds no last_response
    views, passes = views_of(512, full=False)
    assert passes == [] and len(views) == 5  # every position at a cap; mean_response at the last layer only
    assert "mean_response/last_n_mean/cap=512" not in views
    assert all(tr.shape == (10, 4) and fr.shape == (7, 4) for tr, fr in views.values())


def test_the_full_grid_reads_every_view_at_each_cap_from_one_more_pass_per_split_and_cap():
    views, passes = views_of(None, full=True)
    assert sorted(passes, key=str) == [(10, 512), (10, None), (7, 512), (7, None)]  # the default pass holds no last_response
    per_cap = 2 * 5 + 1  # two token positions x (two pools + three single layers), mean_response at the last layer
    assert len(views) == 2 * per_cap
    assert {view_name("last_response", "layer-4", None), view_name("last_rendered", "layer-2", 512)} <= set(views)
    assert "mean_response/layer-2/cap=none" not in views
    views, passes = views_of(512, full=True)
    assert sorted(passes, key=str) == [(10, None), (7, None)] and len(views) == 2 * per_cap  # the claimed pass is not re-read
    _, passes = views_of(None, full=True, position="last_response")
    assert sorted(passes) == [(7, 512), (10, 512)]


def test_the_claimed_pass_gives_the_views_it_holds():
    """The claimed view is read from the claimed pass, not from a re-read of the same position."""
    pool, judged = Pool(), {"step16": 10, "fresh": 7}
    spec = pool.spec("last_rendered", None)
    own = {w: fake_features(spec, n, seed=1) for w, n in judged.items()}  # other draws than the pool's
    views = feature_views("base", pool, judged, own, spec, spec_grid(full=True))
    np.testing.assert_array_equal(views["last_rendered/last/cap=none"][0], own["step16"].h_last)


def test_a_layer_deeper_than_the_base_is_not_a_view():
    pool, judged = Pool(), {"step16": 10, "fresh": 7}
    spec = pool.spec("last_rendered", 512)
    own = {w: fake_features(spec, n, depth=2) for w, n in judged.items()}
    views = feature_views("base", pool, judged, own, spec, dataclasses.replace(spec_grid(full=True), response_caps=()))
    assert {name.split("/")[1] for name in views} == {"last", "last_n_mean", "layer-2"}


def test_a_malformed_layer_name_in_the_grid_is_an_error():
    pool, judged = Pool(), {"step16": 10, "fresh": 7}
    spec = pool.spec("last_rendered", 512)
    own = {w: fake_features(spec, n) for w, n in judged.items()}
    grid = dataclasses.replace(spec_grid(full=True), layers=("last", "layer2"))
    with pytest.raises(ValueError, match="unknown layer read-out 'layer2'"):
        feature_views("base", pool, judged, own, spec, grid)


@pytest.mark.parametrize("name", ["tiny-gemma4", "tiny-qwen3.5"])
def test_the_suites_every_view_pass_reads_every_view_of_the_full_grid_on_a_real_forward(name, root):
    """The grid in gates.toml and the pass `bases.spec` asks for agree, on four-layer bases (hybrid, altup)."""
    from dd.lm import extract_features, load_base, resolve_base

    grid = spec_grid(full=True)
    spec = dataclasses.replace(BasePool.spec("last_response", 512), batch_size=2)
    pairs = [("hi", "Hello! How can I help?"), ("The capital of France", "Paris, I believe.")]
    fs = extract_features(load_base(resolve_base(name, cache_root=root)), pairs, spec, progress=False)
    assert fs.held() == {(p, lay) for p in grid.positions for lay in grid.layers
                         if p != "mean_response" or lay == "last"}
    assert all(fs.view(*r).shape == (2, fs.h_last.shape[1]) for r in fs.held())
