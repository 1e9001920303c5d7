"""Bounded retries for calls to HTTP endpoints: judges and generation servers share one policy.

Which failures earn another try (408, 409, 429, any 5xx, timeouts, lost connections), how long
to wait (doubling from a first delay up to a cap, a Retry-After honoured up to the same cap), and
when a 5xx will never clear. A 5xx usually means load or a restart and clears on retry, but some
servers answer a request they can never serve with a 500: llama.cpp's server refuses
``response_format={"type": "json_schema", ...}`` and a token-id prompt that way. Retrying such a
request for the whole backoff only hides the cause, so the same 5xx status with the same body
``IDENTICAL_LIMIT`` times in a row is taken as the server's answer, not as a fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

RETRYABLE_STATUS = frozenset({408, 409, 429})
#: The same 5xx status and body this many times in a row: the request, not the load, is the cause.
IDENTICAL_LIMIT = 3


def retryable(status: int) -> bool:
    """Whether an HTTP status may clear on retry (a 4xx other than these never does)."""
    return status in RETRYABLE_STATUS or status >= 500


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The seconds a Retry-After header asks for, or None (absent, or an HTTP date we do not parse)."""
    try:
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: ``first_s`` doubled per attempt, never above ``max_s``."""

    first_s: float = 1.0
    max_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The wait before ``attempt`` (1 = the first retry); a Retry-After may lengthen it up to the cap."""
        wait = min(self.max_s, self.first_s * 2 ** (attempt - 1))
        return wait if retry_after is None else min(self.max_s, max(wait, retry_after))


class RepeatWatch:
    """Tells a 5xx that never clears from a transient one by its repetition.

    Feed it every failed reply of one request's attempts; ``never_clears`` turns True once the
    same 5xx status with the same body came ``limit`` times in a row. Any other reply in between
    starts the count again.
    """

    def __init__(self, limit: int = IDENTICAL_LIMIT) -> None:
        self.limit = limit
        self._last: tuple[int, str] | None = None
        self.count = 0

    def never_clears(self, status: int, body: str) -> bool:
        if status < 500:
            self._last, self.count = None, 0
            return False
        self.count = self.count + 1 if self._last == (status, body) else 1
        self._last = (status, body)
        return self.count >= self.limit
