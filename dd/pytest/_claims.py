"""One way to declare a claim test: its claim marker, its expected verdict and its other marks.

A claim the paper (or this suite's own measurement) reports as failing is a strict xfail pinned
to `VerdictFailed`, so that only a failed verdict, never a crash, counts as the expected
failure; the plugin refuses any other xfail on a claim. Building the marks in one place keeps
every claim file to that rule and gives each expected failure its reason, with the numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack

import pytest

from dd.protocol import PASS, VERDICTS, VerdictFailed

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet

F = TypeVar("F", bound=Callable[..., Any])


class ClaimFields(TypedDict, total=False):
    """The keywords of `claim_marks` after the claim id, as `claim_param` and `claim_test` pass them on."""

    base: str | None
    operator: str | None
    step: str | None
    paper: Mapping[str, Any] | None
    expected: str
    why: str
    marks: Iterable[pytest.MarkDecorator]


def claim_marks(
    claim_id: str,
    *,
    base: str | None = None,
    operator: str | None = None,
    step: str | None = None,
    paper: Mapping[str, Any] | None = None,
    expected: str = PASS,
    why: str = "",
    marks: Iterable[pytest.MarkDecorator] = (),
) -> list[pytest.MarkDecorator]:
    """The marks of one claim: the claim marker, the expected failure unless `expected` is pass, `marks`.

    Args:
        claim_id: the claim's id in the report (`arc3.step2.fresh`, ...).
        base, operator, step: what the report entry says the claim is about.
        paper: the numbers the paper quotes for it (the report's `paper` field).
        expected: the verdict the suite expects to measure: 'pass', or 'fail' / 'inconclusive',
            which make the test a strict xfail that only a failed verdict satisfies.
        why: the reason for an expected failure, quoting its numbers; required unless pass.
        marks: further marks (`pytest.mark.model`, `slow`, `heavy`, ...).

    Raises:
        ValueError: `expected` is not a verdict word, or an expected failure has no reason.
    """
    if expected not in VERDICTS:
        raise ValueError(f"{claim_id}: expected verdict is one of {VERDICTS}, not {expected!r}")
    if expected != PASS and not why.strip():
        raise ValueError(f"{claim_id}: an expected {expected!r} verdict must say why, quoting its numbers")
    claim = pytest.mark.claim(claim_id, base=base, operator=operator, step=step, paper=dict(paper or {}))
    xfail = [pytest.mark.xfail(strict=True, raises=VerdictFailed, reason=why)] if expected != PASS else []
    return [claim, *xfail, *marks]


def claim_param(*values: Any, claim_id: str, id: str | None = None, **claim: Unpack[ClaimFields]) -> ParameterSet:  # noqa: A002
    """A `pytest.param` of `values` carrying the marks of one claim (see `claim_marks`).

    `id` is the parametrization's id, as in `pytest.param`; every other keyword goes to
    `claim_marks`.
    """
    return pytest.param(*values, id=id, marks=claim_marks(claim_id, **claim))


def claim_test(claim_id: str, **claim: Unpack[ClaimFields]) -> Callable[[F], F]:
    """Decorate an unparametrized claim test with the marks of its claim (see `claim_marks`)."""

    def mark(fn: F) -> F:
        for decorator in claim_marks(claim_id, **claim):
            fn = decorator(fn)
        return fn

    return mark
