"""MDL probing: the online code length of the labels given the features (Voita & Titov 2020).

AUC says how well a probe trained on all items separates held-out ones; it does not say how
much data the probe needed. The online code sends the labels block by block, each block with a
probe fit on every item before it, so a probe that only beats chance once it has seen most of
the split pays for it in bits. Compression = uniform code / online code; `prior_bits` is the code
of the labels' base rate alone, the reference on an imbalanced split. Reported next to AUC for
every gate; it changes no verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dd.protocol import _fits as fits
from dd.protocol import _gates as gates
from dd.protocol import _stats as stats

_MIN_P = 1e-12  # a probability is clipped here, so a confident mistake costs about 40 bits, not infinity


@dataclass(frozen=True)
class OnlineCode:
    """Code lengths in bits of one split's binary labels."""

    online_bits: float
    uniform_bits: float
    prior_bits: float
    n_blocks: int

    @property
    def compression(self) -> float:
        return self.uniform_bits / self.online_bits

    def metrics(self) -> dict:
        return {"mdl.online_bits": self.online_bits, "mdl.uniform_bits": self.uniform_bits,
                "mdl.prior_bits": self.prior_bits, "mdl.compression": self.compression,
                "mdl.blocks": self.n_blocks}


def _interleaved(y, seed: int) -> np.ndarray:
    """A seeded order that spreads each class evenly, so every block keeps the class balance."""
    rng = np.random.default_rng(seed)
    key = np.empty(len(y))
    for value in (0, 1):
        idx = rng.permutation(np.nonzero(y == value)[0])
        key[idx] = (np.arange(len(idx)) + rng.random()) / len(idx)
    return np.argsort(key, kind="stable")


def _bits(y, p) -> float:
    p = np.clip(p, _MIN_P, 1 - _MIN_P)
    return float(-np.sum(np.where(y == 1, np.log2(p), np.log2(1 - p))))


def online_code(X, y, C: float = 1.0, *, estimator=None, fractions=None, seed: int | None = None) -> OnlineCode:
    """The online code of y given X, blocks ending at `fractions` of the split (`[mdl]` by default).

    A block whose preceding items hold one class is sent with the Laplace-smoothed frequency of
    those items: no probe can be fit on them.
    """
    bars = gates.registry()["mdl"]
    fractions = bars["block_fractions"] if fractions is None else fractions
    y = stats.check_binary(y)
    X = stats.check_finite(X)
    order = _interleaved(y, bars["seed"] if seed is None else seed)
    X, y = X[order], y[order]
    n = len(y)
    ends = sorted({max(1, min(n, int(np.ceil(f * n)))) for f in fractions} | {n})
    bits = float(ends[0])  # the first block, one bit per binary label
    for start, stop in zip(ends, ends[1:], strict=False):
        seen = y[:start]
        if 0 < seen.sum() < start:
            p = fits.fit_predict(X[:start], seen, X[start:stop], C, estimator=estimator)
        else:
            p = np.full(stop - start, (seen.sum() + 1) / (start + 2))
        bits += _bits(y[start:stop], p)
    rate = y.mean()
    prior = -n * (rate * np.log2(rate) + (1 - rate) * np.log2(1 - rate))
    return OnlineCode(bits, float(n), float(prior), len(ends))
