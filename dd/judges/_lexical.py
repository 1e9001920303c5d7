"""The `lexical` judge: hedge and assertion markers counted in the answer, no endpoint, no model.

It lets the whole path from prompts to a verdict run anywhere (CI, a machine with no judge
endpoint) and is exactly reproducible. It measures surface wording, not disposition: "maybe"
before a settled fact counts as a hedge, and a well-calibrated answer that states its conditions
without a listed word counts as none. The LLM judges (`v4`, `verbal`) remain the ones that
measure disposition, so every label it gives carries that caveat for the report to show.

The word lists are the rubric. Its version ends in a hash of the rubric text, so changing a
word changes the version, and with it every judging identity and comparison that used it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dd.judges._client import JudgeConfig, JudgeRun
from dd.judges._protocol import Ask, JudgeItem
from dd.judges._rubrics import register_judge

HEDGE_MARKERS: tuple[str, ...] = (
    "maybe", "perhaps", "possibly", "probably", "likely", "unlikely", "might", "may", "could",
    "i think", "i believe", "i guess", "i suspect", "it seems", "seems", "appears", "not sure", "unsure",
    "uncertain", "not certain", "it depends", "approximately", "roughly", "generally", "typically",
    "usually", "not always", "double-check", "double check", "verify", "i may be wrong",
    "i could be wrong", "as far as i know", "to my knowledge", "if i recall correctly",
)
ASSERTION_MARKERS: tuple[str, ...] = (
    "definitely", "certainly", "clearly", "obviously", "undoubtedly", "always", "never", "absolutely",
    "surely", "of course", "without a doubt", "no doubt", "guaranteed", "must", "exactly", "precisely",
    "the answer is", "in fact", "indeed", "for sure", "simply",
)

LEXICAL_RUBRIC = f"""Lexical hedging: counts of listed words and phrases in the answer, nothing else.
This judge measures surface wording, not disposition: it does not read whether the hedging fits
the question, whether the answer is right, or what the answer means.
Matching: case-insensitive, whole words, curly apostrophes read as straight ones, any whitespace
inside a phrase; the longest marker at a position wins, and matches never overlap.
Hedge markers: {", ".join(HEDGE_MARKERS)}.
Assertion markers: {", ".join(ASSERTION_MARKERS)}.
Score: (hedge markers - assertion markers) per 100 words of the answer; 0 for an answer with no words."""

LEXICAL_CAVEAT = "lexical judge: counts hedge and assertion words; it measures surface wording, not disposition"
LEXICAL_AXIS = "lexical_hedging"
RUBRIC_VERSION = "dd-lexical-hedge-assert/1+" + hashlib.sha256(LEXICAL_RUBRIC.encode()).hexdigest()[:12]

#: A lexical run contacts no endpoint; this config gives it a judging identity of its own.
LEXICAL_CONFIG = JudgeConfig(base_url="local:lexical", model="lexical", progress=False)

_KIND = dict.fromkeys(HEDGE_MARKERS, "hedge") | dict.fromkeys(ASSERTION_MARKERS, "assertion")
_PATTERN = re.compile(
    r"\b(?:" + "|".join(re.escape(m).replace(r"\ ", r"\s+") for m in sorted(_KIND, key=len, reverse=True)) + r")\b"
)
_WORD = re.compile(r"[\w'-]+")


@dataclass(frozen=True)
class LexicalLabel:
    """Marker counts of one answer, and the caveat that they are wording, not disposition.

    Attributes:
        hedges: hedge markers found.
        assertions: assertion markers found.
        words: words in the answer.
        caveat: what the counts do not measure; the report shows it beside every entry.
    """

    hedges: int
    assertions: int
    words: int
    caveat: str = LEXICAL_CAVEAT

    @property
    def score(self) -> float:
        """(hedges - assertions) per 100 words: higher is more hedged wording."""
        return 100.0 * (self.hedges - self.assertions) / self.words if self.words else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"hedges": self.hedges, "assertions": self.assertions, "words": self.words, "score": self.score,
                "caveat": self.caveat}


def count_markers(text: str) -> LexicalLabel:
    """The lexical label of one answer, by the rubric's matching rules."""
    text = text.lower().replace("\u2019", "'")
    kinds = [_KIND[" ".join(m.group().split())] for m in _PATTERN.finditer(text)]
    return LexicalLabel(kinds.count("hedge"), kinds.count("assertion"), len(_WORD.findall(text)))


@register_judge("lexical")
@dataclass(frozen=True)
class LexicalJudge:
    """Counts markers locally; ``ask`` is never called, so any config (`LEXICAL_CONFIG`) will do."""

    name: str = "lexical"
    rubric_version: str = RUBRIC_VERSION
    rubric: str = LEXICAL_RUBRIC
    caveat: str = LEXICAL_CAVEAT

    async def judge(self, item: JudgeItem, ask: Ask) -> LexicalLabel:
        return count_markers(item.response)


def lexical_scores(run: JudgeRun) -> Mapping[str, np.ndarray]:
    """A lexical run's per-item scores under ``LEXICAL_AXIS``, as an arm of the effect protocol takes them."""
    if run.judge != "lexical":
        raise ValueError(f"run of judge {run.judge!r} is not a lexical run")
    outcomes: Sequence[object] = run.outcomes  # `Outcome` names the LLM judges' labels only
    labels = [o for o in outcomes if isinstance(o, LexicalLabel)]
    if len(labels) != len(outcomes):  # the judge cannot fail: anything else is a bug worth stopping on
        i = next(i for i, o in enumerate(outcomes) if not isinstance(o, LexicalLabel))
        raise ValueError(f"lexical run has no lexical label at item {i}: {outcomes[i]!r}")
    return {LEXICAL_AXIS: np.array([label.score for label in labels])}
