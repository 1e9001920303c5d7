"""The judge contract: items in, labels or explicit errors out.

A judge never generates responses; it takes (prompt, response) pairs and asks an LLM about them
through an `Ask` callable that owns transport, retries and caching. A failure anywhere ends as a
`JudgeError` value in the item's slot, never as a default label, so a count of positives can never
silently include replies the judge could not read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

# The label definitions are the paper's (``dd.paper``); the judges' names re-export them.
from dd.paper import AXIS_HIGH_SCORE, CORRECT_COVERAGE, V4_AXES

CERT_CLASSES: tuple[str, ...] = ("CERTAIN", "UNCERTAIN", "AMBIGUOUS")
VERBAL_CLASSES: tuple[str, ...] = ("ASSERT", "HEDGE")

Message = Mapping[str, str]
T = TypeVar("T")


def canonical_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Messages reduced to role and content, the only parts that define a judge question."""
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]


def messages_hash(messages: Sequence[Message]) -> str:
    """sha256 of the canonical JSON of the messages; shared by the cache and the replay server."""
    payload = json.dumps(canonical_messages(messages), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def item_hash(prompt: str, response: str) -> str:
    """16 hex digits of sha256(prompt + NUL + response): names an item without its text."""
    return hashlib.sha256(f"{prompt}\x00{response}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class JudgeItem:
    """One (prompt, response) pair to judge; the response is input, never regenerated."""

    prompt: str
    response: str

    @property
    def hash(self) -> str:
        return item_hash(self.prompt, self.response)


ErrorKind = str  # 'unparseable' | 'missing_axis' | 'invalid_score' | 'timeout' | 'connection' | 'http_<code>'


@dataclass(frozen=True)
class JudgeError:
    """An explicit failed label: why it failed, at which call, and the raw reply text kept.

    Args:
        kind: 'unparseable', 'missing_axis', 'invalid_score', 'timeout', 'connection' or 'http_<code>'.
        message: a short human explanation (never contains the API key).
        raw: the reply text or HTTP body as received, for audit.
        stage: which call of the judge failed ('pass1', 'pass2', 'verbal', 'checklist', 'claim3', ...).
    """

    kind: ErrorKind
    message: str = ""
    raw: str = ""
    stage: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message, "raw": self.raw, "stage": self.stage}


class JudgeFailure(Exception):
    """Raised inside a judge when one call fails; the runner turns it into the item's `JudgeError`."""

    def __init__(self, error: JudgeError) -> None:
        super().__init__(f"{error.stage or 'judge'}: {error.kind}: {error.message}")
        self.error = error


class ParseError(ValueError):
    """A reply that a strict parser rejects; `kind` becomes the `JudgeError` kind."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class V4Label:
    """The v4 rubric's result: the response-blind class and the five 1-5 scores."""

    cert: str
    scores: Mapping[str, int]

    def binary(self, axis: str) -> int:
        return int(self.scores[axis] >= AXIS_HIGH_SCORE)

    def scores_tuple(self) -> tuple[int, ...]:
        return tuple(int(self.scores[a]) for a in V4_AXES)

    def as_dict(self) -> dict[str, Any]:
        return {"cert": self.cert, "scores": {a: int(self.scores[a]) for a in V4_AXES}}


@dataclass(frozen=True)
class VerbalLabel:
    """Verbal delivery: ASSERT (confident, unqualified) or HEDGE (flags uncertainty)."""

    label: Literal["ASSERT", "HEDGE"]

    @property
    def asserted(self) -> bool:
        return self.label == "ASSERT"

    def as_dict(self) -> dict[str, Any]:
        return {"verbal": self.label}


@dataclass(frozen=True)
class ChecklistLabel:
    """Gold checklist: the claims a correct answer needs and which of them the response states."""

    claims: tuple[str, ...]
    present: tuple[bool, ...]

    @property
    def coverage(self) -> float:
        return sum(self.present) / len(self.present)

    @property
    def correct(self) -> bool:
        return self.coverage >= CORRECT_COVERAGE

    def as_dict(self) -> dict[str, Any]:
        return {"coverage": self.coverage, "correct": self.correct, "n_claims": len(self.claims)}


Label = V4Label | VerbalLabel | ChecklistLabel
Outcome = Label | JudgeError


@runtime_checkable
class Ask(Protocol):
    """One judge question: send messages, get back the parsed reply or raise `JudgeFailure`.

    `parse` must raise `ParseError` on a reply it cannot read; such replies are not cached.
    """

    def __call__(
        self,
        messages: Sequence[Message],
        *,
        parse: Callable[[str], T],
        stage: str,
        max_tokens: int,
        schema: Mapping[str, Any] | None = None,
    ) -> Awaitable[T]: ...


@runtime_checkable
class Judge(Protocol):
    """A judge: a name, a rubric version (part of every cache key) and an async `judge` method."""

    name: str
    rubric_version: str

    async def judge(self, item: JudgeItem, ask: Ask) -> Label: ...


@dataclass(frozen=True)
class FillImpact:
    """What a silent default would have done to a run: how many errors it would have hidden."""

    n_items: int
    n_errors: int
    by_kind: Mapping[str, int] = field(default_factory=dict)
    changed: int = 0
    default: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_items": self.n_items,
            "n_errors": self.n_errors,
            "by_kind": dict(self.by_kind),
            "changed": self.changed,
            "default": self.default,
        }


def default_fill_impact(
    labels: Sequence[Outcome],
    default: Label,
    *,
    project: Callable[[Label], Any] = lambda label: label,
    reference: Sequence[Outcome] | None = None,
) -> FillImpact:
    """Count the labels a silent default (the paper scripts' habit) would have changed.

    Every `JudgeError` would have become `default`. Without `reference`, each such fill counts
    as a change (an item gets a label nobody judged). With `reference` (e.g. a successful re-run),
    a fill counts only where `project(default)` differs from `project(reference[i])`, so
    `project=lambda l: l.binary("completeness")` counts the binarized labels a default would flip.

    Args:
        labels: one outcome per item; non-error values are left alone.
        default: the label a silent default fills in (e.g. `VerbalLabel("ASSERT")`).
        project: map from a label to the value a claim uses.
        reference: optional outcomes to compare the fills with, same order as `labels`.
    """
    by_kind: dict[str, int] = {}
    changed = 0
    for i, lab in enumerate(labels):
        if not isinstance(lab, JudgeError):
            continue
        by_kind[lab.kind] = by_kind.get(lab.kind, 0) + 1
        ref = None if reference is None else reference[i]
        if ref is None or isinstance(ref, JudgeError) or project(ref) != project(default):
            changed += 1
    return FillImpact(len(labels), sum(by_kind.values()), by_kind, changed, repr(default))
