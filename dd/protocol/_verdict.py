"""The one verdict type, and the one exception a claim test raises to state a failed verdict.

A verdict is `pass`, `fail` or `inconclusive`, always with reasons. `code` names the finer
outcome where one exists (`truncation_artifact`, `content_damaged`, ...), so that truncation,
tempering, agreement and the gates speak one type. A claim test ends with
`claim.conclude(...)`, which raises `VerdictFailed` for anything but a pass: only that exception
is an expected failure (`xfail(strict=True, raises=VerdictFailed)`); any other exception is an
error, never a research result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
VERDICTS = (PASS, FAIL, INCONCLUSIVE)


@dataclass(frozen=True)
class Verdict:
    """A research verdict with its reasons, the gate it was held to and an optional finer code."""

    verdict: str
    reasons: tuple[str, ...]
    gate: Mapping[str, Any] = field(default_factory=dict)
    code: str | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"a verdict is one of {VERDICTS}, not {self.verdict!r}")
        object.__setattr__(self, "reasons", tuple(self.reasons))

    @property
    def passed(self) -> bool:
        return self.verdict == PASS


class VerdictFailed(AssertionError):
    """A claim's verdict is not `pass`: the research result, never a crash.

    Attributes:
        verdict: the `Verdict` that failed (its word, reasons and gate).
    """

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        head = f"verdict {verdict.verdict}" + (f" ({verdict.code})" if verdict.code else "")
        super().__init__("; ".join([head, *verdict.reasons]))


def require_pass(verdict: Verdict) -> Verdict:
    """Return a passing verdict; raise `VerdictFailed` for any other."""
    if not verdict.passed:
        raise VerdictFailed(verdict)
    return verdict
