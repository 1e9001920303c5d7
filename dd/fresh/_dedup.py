"""Dedup of a fresh split against its training split: exact content hashes, then character n-grams.

Step 2 of the protocol asks whether an effect transfers to prompts the operator never saw. A
fresh prompt that repeats a training prompt, or rewords it lightly, tests the training split
again, so it is dropped and counted in the split ledger. Exact repeats are found by content hash;
near duplicates by the Jaccard similarity of the two prompts' character n-gram sets (lower-cased,
words joined by single spaces), at the bar pre-registered in ``gates.toml`` (``[fresh]``). Sets
of a few hundred prompts make every pair cheap, so the similarity is exact, not a MinHash estimate.
A fresh prompt that repeats an earlier fresh prompt is dropped the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dd.paper import content_hash
from dd.protocol import bars

DuplicateKind = Literal["exact", "near", "repeat"]
_WORD = re.compile(r"\w+")


def fresh_bars() -> dict[str, float]:
    """The ``[fresh]`` section of the gates file."""
    return bars("fresh")


def shingles(text: str, n: int) -> frozenset[str]:
    """The character n-grams of ``text`` after lower-casing and joining its words by single spaces."""
    norm = " ".join(_WORD.findall(text.lower()))
    return frozenset(norm[i : i + n] for i in range(max(1, len(norm) - n + 1)))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b|; 0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


@dataclass(frozen=True)
class Duplicate:
    """One dropped candidate.

    Attributes:
        index: its index among the candidates.
        of: the index of the prompt it repeats (a training index; a candidate index for ``repeat``).
        kind: ``exact`` (same content hash as a training prompt), ``near`` (n-gram Jaccard at or
            above the bar against a training prompt) or ``repeat`` (exact or near against an
            earlier kept candidate).
        similarity: the Jaccard similarity (1.0 for an exact repeat).
    """

    index: int
    of: int
    kind: DuplicateKind
    similarity: float


@dataclass(frozen=True)
class SplitLedger:
    """What a fresh split kept and dropped, and the bar it was held to.

    Attributes:
        n_train: prompts in the training split it was checked against.
        n_candidates: fresh candidates before dedup.
        kept: indices of the kept candidates, in order.
        dropped: every dropped candidate with the prompt it repeats.
        bar: the ``[fresh]`` bars used (``ngram``, ``near_duplicate_jaccard``).
    """

    n_train: int
    n_candidates: int
    kept: tuple[int, ...]
    dropped: tuple[Duplicate, ...]
    bar: Mapping[str, float]

    def count(self, kind: DuplicateKind) -> int:
        return sum(d.kind == kind for d in self.dropped)

    def metrics(self) -> dict[str, Any]:
        """Flat numbers for a report entry."""
        return {"ledger.n_train": self.n_train, "ledger.n_candidates": self.n_candidates,
                "ledger.kept": len(self.kept), "ledger.dropped_exact": self.count("exact"),
                "ledger.dropped_near": self.count("near"), "ledger.dropped_repeat": self.count("repeat"),
                "ledger.near_duplicate_jaccard": self.bar["near_duplicate_jaccard"],
                "ledger.ngram": self.bar["ngram"]}

    def as_dict(self) -> dict[str, Any]:
        return {"n_train": self.n_train, "n_candidates": self.n_candidates, "kept": list(self.kept),
                "dropped": [d.__dict__ for d in self.dropped], "bar": dict(self.bar)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SplitLedger:
        return cls(int(d["n_train"]), int(d["n_candidates"]), tuple(d["kept"]),
                   tuple(Duplicate(**x) for x in d["dropped"]), dict(d["bar"]))


class FreshOverlap(ValueError):
    """A prompt set given as fresh holds training prompts, so it cannot test transfer."""


def _hash(text: str) -> str:
    return content_hash([text])


def require_disjoint(train: Sequence[str], fresh: Sequence[str], *, what: str = "fresh set") -> None:
    """Refuse a fresh set that shares any prompt (by content hash) with the training split.

    Raises:
        FreshOverlap: naming every shared item by its index in both sets and its opening words.
    """
    where = {_hash(t): i for i, t in enumerate(train)}
    shared = [(i, where[_hash(f)], f) for i, f in enumerate(fresh) if _hash(f) in where]
    if shared:
        named = "; ".join(f"item {i} is train item {j} ({text[:60]!r})" for i, j, text in shared[:10])
        more = f"; and {len(shared) - 10} more" if len(shared) > 10 else ""
        raise FreshOverlap(f"{what} overlaps the training split in {len(shared)} of {len(fresh)} prompts: "
                           f"{named}{more}. A fresh split holds prompts the operator was never built from")


def dedup(train: Sequence[str], candidates: Sequence[str], *, bar: Mapping[str, float] | None = None) -> SplitLedger:
    """Keep the candidates that neither repeat a training prompt nor an earlier kept candidate.

    Args:
        train: the whole training split (not only the subset a run uses).
        candidates: the fresh prompts, in order; the first of two repeats is kept.
        bar: ``ngram`` and ``near_duplicate_jaccard``; the ``[fresh]`` gates section by default.
    """
    bar = dict(fresh_bars() if bar is None else bar)
    n, limit = int(bar["ngram"]), float(bar["near_duplicate_jaccard"])
    train_hashes = {_hash(t): i for i, t in enumerate(train)}
    train_grams = [shingles(t, n) for t in train]
    kept: list[int] = []
    kept_hashes: dict[str, int] = {}
    kept_grams: list[frozenset[str]] = []
    dropped: list[Duplicate] = []
    for i, text in enumerate(candidates):
        h = _hash(text)
        if h in train_hashes:
            dropped.append(Duplicate(i, train_hashes[h], "exact", 1.0))
            continue
        if h in kept_hashes:
            dropped.append(Duplicate(i, kept_hashes[h], "repeat", 1.0))
            continue
        grams = shingles(text, n)
        near = _nearest(grams, train_grams)
        if near is not None and near[1] >= limit:
            dropped.append(Duplicate(i, near[0], "near", near[1]))
            continue
        again = _nearest(grams, kept_grams)
        if again is not None and again[1] >= limit:
            dropped.append(Duplicate(i, kept[again[0]], "repeat", again[1]))
            continue
        kept.append(i)
        kept_hashes[h] = i
        kept_grams.append(grams)
    return SplitLedger(len(train), len(candidates), tuple(kept), tuple(dropped), bar)


def _nearest(grams: frozenset[str], pool: Sequence[frozenset[str]]) -> tuple[int, float] | None:
    """(index, similarity) of the most similar set in ``pool``, or None for an empty pool."""
    return max(((j, jaccard(grams, other)) for j, other in enumerate(pool)), key=lambda x: x[1], default=None)
