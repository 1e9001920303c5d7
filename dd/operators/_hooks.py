"""The handle of a hook operator (tempering, steering): the registered hooks, and what they did."""

from __future__ import annotations

from collections import Counter
from typing import Any, Self


class HookHandle:
    """Registered hooks; ``remove()`` or leaving the ``with`` block takes them off.

    Attributes:
        calls: per layer, how many forwards the hook has changed.
    """

    def __init__(self, hooks: list[Any]) -> None:
        self._hooks = hooks
        self.calls: Counter[int] = Counter()

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
