"""The data audit before training: what the teachers actually wrote, measured before a LoRA learns it.

Qwen3-1.7B's HumanEval regression came from its training set, not its training: 89% of the
teacher responses were markdown essays *about* code, so the adapter learned to write essays.
Nothing looked at the data before it was trained on. The audit reports, per training set:

- the share of responses with code (a fenced block that parses as Python) and the share written
  as markdown essays;
- length (words and characters);
- style uniformity: the share opening with the most common opening ngrams, and the spread of
  structural markers per response (a low spread is a template, not a style);
- content variance: the mean squared distance of the responses' TF-IDF rows from their centroid
  (0 when every response says the same words).

When the evaluation domain is code and the code share is below the pre-registered bar
(``[audit]`` in ``gates.toml``), the audit's verdict fails with the warning, before anything trains.
"""

from __future__ import annotations

import ast
import re
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dd.protocol import FAIL, PASS, Verdict, bars, gates_version

_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL)
#: Structural markers, matched per line (``bold``: per span) outside fenced blocks.
MARKERS: Mapping[str, re.Pattern[str]] = {
    "heading": re.compile(r"^#{1,6}\s", re.M),
    "bullet": re.compile(r"^\s*[-*+]\s", re.M),
    "numbered": re.compile(r"^\s*\d+[.)]\s", re.M),
    "bold": re.compile(r"\*\*[^*\n]+\*\*"),
    "table": re.compile(r"^\s*\|.*\|\s*$", re.M),
}
NOT_CODE = "training_set_not_code"


def has_code(text: str) -> bool:
    """Whether ``text`` holds a non-empty fenced block that parses as Python."""
    for block in _FENCE.findall(text):
        if not block.strip():
            continue
        try:
            ast.parse(block)
        except (SyntaxError, ValueError):
            continue
        return True
    return False


def _prose(text: str) -> str:
    return _FENCE.sub("", text)


def marker_counts(text: str) -> dict[str, int]:
    """Structural markers of ``text`` outside its fenced blocks, plus its number of fenced blocks."""
    prose = _prose(text)
    return {name: len(pattern.findall(prose)) for name, pattern in MARKERS.items()} | {
        "fence": len(_FENCE.findall(text))}


def is_essay(text: str, *, min_markers: int, min_words: int) -> bool:
    """Markdown structure (``min_markers`` or more) around ``min_words`` or more words of prose."""
    counts = marker_counts(text)
    markdown = sum(v for k, v in counts.items() if k != "fence")
    return markdown >= min_markers and len(_prose(text).split()) >= min_words


def opening(text: str, n: int) -> str:
    """The first ``n`` words, lower-cased, without surrounding punctuation."""
    return " ".join(w.strip(".,:;!?*#\"'`()[]").lower() for w in text.split()[:n])


def content_variance(texts: Sequence[str]) -> float:
    """Mean squared distance of the L2-normalised TF-IDF rows from their centroid (0: one text repeated)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(texts) < 2:
        return 0.0
    try:
        x = TfidfVectorizer().fit_transform(texts).toarray()
    except ValueError:  # no word in any text
        return 0.0
    return float(np.mean(np.sum((x - x.mean(axis=0)) ** 2, axis=1)))


@dataclass(frozen=True)
class Audit:
    """The audit of one training set.

    Attributes:
        name: the training set.
        n: responses audited.
        code_share: share with a fenced block that parses as Python.
        essay_share: share written as markdown essays.
        mean_words, median_words, mean_chars: length.
        top_openings: the most common opening ngrams with their counts.
        opening_share: share of responses opening with one of ``top_openings``.
        markers: per structural marker, the mean and the standard deviation of its count per response.
        content_variance: see `content_variance`.
        verdict: fail (code ``training_set_not_code``) when the domain is code and the code share
            is below the bar; pass otherwise.
    """

    name: str
    n: int
    code_share: float
    essay_share: float
    mean_words: float
    median_words: float
    mean_chars: float
    top_openings: tuple[tuple[str, int], ...]
    opening_share: float
    markers: Mapping[str, tuple[float, float]]
    content_variance: float
    verdict: Verdict

    def metrics(self) -> dict[str, Any]:
        """Flat report metrics (percentages for shares)."""
        out: dict[str, Any] = {"n": self.n, "code_pct": 100 * self.code_share, "essay_pct": 100 * self.essay_share,
                               "mean_words": self.mean_words, "median_words": self.median_words,
                               "mean_chars": self.mean_chars, "opening_pct": 100 * self.opening_share,
                               "top_opening": self.top_openings[0][0] if self.top_openings else "",
                               "content_variance": self.content_variance}
        for name, (mean, std) in self.markers.items():
            out[f"marker.{name}.mean"], out[f"marker.{name}.std"] = mean, std
        return {f"audit.{self.name}.{k}": v for k, v in out.items()}


def audit_responses(responses: Sequence[str], *, name: str = "train", domain: str | None = None,
                    audit_bars: Mapping[str, Any] | None = None) -> Audit:
    """Audit a training set's responses; ``domain`` is the evaluation domain (``code`` arms the warning).

    Raises:
        ValueError: no responses.
    """
    if not responses:
        raise ValueError(f"training set {name!r} has no responses to audit")
    b = bars("audit") if audit_bars is None else audit_bars
    n = len(responses)
    code_share = sum(map(has_code, responses)) / n
    essays = sum(is_essay(r, min_markers=int(b["essay_min_markers"]), min_words=int(b["essay_min_words"]))
                 for r in responses)
    words = [len(r.split()) for r in responses]
    openings = Counter(opening(r, int(b["opening_ngram"])) for r in responses)
    top = tuple(openings.most_common(int(b["opening_top"])))
    counts = [marker_counts(r) for r in responses]
    markers = {k: (float(np.mean([c[k] for c in counts])), float(np.std([c[k] for c in counts]))) for k in counts[0]}
    gate = {"name": "audit", "version": gates_version(), "min_code_share": float(b["min_code_share"]),
            "domain": domain}
    if domain == "code" and code_share < float(b["min_code_share"]):
        verdict = Verdict(FAIL, (f"{name}: the evaluation domain is code but {code_share:.0%} of {n} responses hold "
                                 f"parseable Python ({essays / n:.0%} are markdown essays) < min_code_share "
                                 f"{float(b['min_code_share']):.0%}",), gate, code=NOT_CODE)
    else:
        verdict = Verdict(PASS, (), gate)
    return Audit(name, n, code_share, essays / n, float(np.mean(words)), float(statistics.median(words)),
                 float(np.mean([len(r) for r in responses])), top, sum(c for _, c in top) / n, markers,
                 content_variance(responses), verdict)
