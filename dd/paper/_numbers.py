"""The paper's quoted numbers, one TOML file per arc in `numbers/` beside this module.

Claim tests read the numbers the paper quotes from here, so that each number has one home and a
test never copies another's constants. Only quoted numbers live in these files, never the
paper's released data (prompts, responses, labels): those come through the artifact loaders.
"""

from __future__ import annotations

import copy
import tomllib
from functools import cache
from importlib import resources
from typing import Any


def paper_numbers(arc: str) -> dict[str, Any]:
    """The quoted numbers of one arc ('arc1', 'arc2', 'arc3') as nested dicts.

    Each call returns a fresh copy: a test that adds a key to its expected values must not change
    what the next test reads.
    """
    return copy.deepcopy(_parsed(arc))


def numbered_arcs() -> tuple[str, ...]:
    """The arcs that have a numbers file."""
    return tuple(sorted(p.name.removesuffix(".toml") for p in _folder().iterdir() if p.name.endswith(".toml")))


@cache
def _parsed(arc: str) -> dict[str, Any]:
    if arc not in numbered_arcs():
        raise ValueError(f"no quoted numbers for {arc!r}; the arcs with a numbers file are {numbered_arcs()}")
    return tomllib.loads((_folder() / f"{arc}.toml").read_text())


def _folder():
    return resources.files("dd.paper") / "numbers"
