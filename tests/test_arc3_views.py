"""The Arc 3 frozen-base sources' alternative views: the pre-registered grid, read from passes already made.

A pool that hands out feature sets (no model) stands in for `bases`; what is checked is which
views a claim's specification curve gets and how many feature passes it asks for.
"""

from __future__ import annotations

import numpy as np

from claims.arc3.test_frozen_bases import feature_views, view_name
from dd.fixtures.bases import BasePool
from dd.lm import READOUTS, FeatureSet
from dd.protocol import spec_grid


class Pool:
    """`bases` with `spec` as the suite's and `features` returning random read-outs of a spec, counted."""

    spec = staticmethod(BasePool.spec)

    def __init__(self) -> None:
        self.passes: list = []

    def features(self, name, judged, spec):
        self.passes.append((judged, spec.response_cap))
        return fake_features(spec, n=judged)


def fake_features(spec, n: int) -> FeatureSet:
    rng = np.random.default_rng(n)
    arrays = {READOUTS[r]: rng.normal(size=(n, 4)).astype(np.float32) for r in spec.readouts}
    return FeatureSet(positions=np.zeros(n, int), n_response_tokens=np.ones(n, int), n_tokens=np.ones(n, int),
                      truncated=np.zeros(n, bool), **arrays)


def views_of(cap, full: bool):
    pool, judged = Pool(), {"step16": 10, "fresh": 7}
    own = {w: fake_features(pool.spec("last_rendered", cap), n) for w, n in judged.items()}
    return feature_views("base", pool, judged, own, cap, spec_grid(full=full)), pool.passes


def test_the_small_grid_reads_the_views_of_the_claimed_pass_and_asks_for_no_other():
    views, passes = views_of(None, full=False)
    assert passes == []
    assert set(views) == {"last_rendered/last/cap=none", "last_rendered/last_n_mean/cap=none",
                          "mean_response/last/cap=none"}  # the default pass holds no last_response
    views, passes = views_of(512, full=False)
    assert passes == [] and len(views) == 5  # every position at a cap; mean_response at the last layer only
    assert "mean_response/last_n_mean/cap=512" not in views
    assert all(tr.shape == (10, 4) and fr.shape == (7, 4) for tr, fr in views.values())


def test_the_full_grid_adds_the_other_cap_as_one_more_pass_per_split():
    views, passes = views_of(None, full=True)
    assert sorted(passes) == [(7, 512), (10, 512)]
    assert len(views) == 3 + 5 and view_name("last_response", "last_n_mean", 512) in views
    _, passes = views_of(512, full=True)
    assert sorted(passes) == [(7, None), (10, None)]
