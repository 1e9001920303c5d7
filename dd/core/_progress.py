"""Progress bars for long work (generation, features, judging, training) that a user can see.

pytest captures stdout and stderr, and xdist workers have no terminal of their own, so a bar
written there is never seen. The bar goes to the controlling terminal (`/dev/tty`) instead, when
there is one and the run asked for it: the plugin turns bars off under `-q -q` and when its own
output is not a terminal (a CI log never gets them). Without the plugin (a script, a notebook),
bars show when stderr is a terminal.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from typing import IO, Any

MIN_ITEMS = 8  # fewer items finish too fast for a bar to help
_state: dict[str, Any] = {"enabled": None, "label": ""}


def set_progress(enabled: bool, label: str = "") -> None:
    """Turn bars on or off for this process; `label` prefixes each bar (an xdist worker's id)."""
    _state.update(enabled=enabled, label=label)


@cache
def _terminal() -> IO[str] | None:
    try:
        return open(os.ctermid(), "w", buffering=1, encoding="utf-8")
    except OSError:
        return None


def progress(total: int, desc: str, *, enabled: bool = True) -> Any:
    """A tqdm bar over `total` items on the real terminal, or a silent one (`enabled=False` silences it)."""
    from tqdm.auto import tqdm

    shown = _state["enabled"]
    if shown is None:
        shown = sys.stderr.isatty()
    stream = _terminal() if enabled and shown and total > MIN_ITEMS else None
    label = f"[{_state['label']}] " if _state["label"] else ""
    return tqdm(total=total, desc=label + desc, file=stream, disable=stream is None, leave=False, mininterval=0.5)
