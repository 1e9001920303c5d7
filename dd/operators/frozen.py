"""The identity operator: the base as released, the reference every claim compares with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from dd.operators._protocol import KeyMixin
from dd.operators._registry import register_operator


@dataclass(frozen=True)
class FrozenSpec:
    """No parameters: every frozen run shares one cache key."""


class NoopHandle:
    """A handle that changes nothing, so callers treat every model operator alike."""

    def remove(self) -> None:
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@register_operator("frozen")
class Frozen(KeyMixin):
    """Leave the base unchanged."""

    name = "frozen"
    kind = "identity"

    def __init__(self) -> None:
        self.spec = FrozenSpec()

    def apply(self, base: Any) -> NoopHandle:
        return NoopHandle()
