"""The prompt sets and reference pairs a claim file names, read when a run needs them.

A file is ``.txt`` (one prompt per line; blank lines skipped), ``.jsonl`` (one object per line with
``prompt``, and ``response`` for reference pairs) or a ``dd-fresh/1`` ``.json`` set written by
`dd.fresh.FreshSet.save` (its provenance comes with it). ``released:step16`` and ``released:fresh``
are read from the paper's artifacts through `dd.paper.load_judged`, so their prompts are never
copied into a claim's folder; the released responses (Gemma 4 E2B's) serve as reference answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from dd.arcs._claim_file import ClaimFileError, Source
from dd.fresh import FreshSet
from dd.paper import ArtifactStore, load_judged

Store = Callable[[], ArtifactStore]


def _jsonl(source: Source, fields: tuple[str, ...]) -> list[tuple[str, ...]]:
    assert source.path is not None
    rows = []
    for n, line in enumerate(source.path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as err:
            raise ClaimFileError(f"{source.path}:{n}: not a JSON object ({err})") from None
        if not isinstance(obj, dict) or not all(isinstance(obj.get(f), str) and obj[f].strip() for f in fields):
            raise ClaimFileError(f"{source.path}:{n}: needs non-empty string field(s) {', '.join(fields)}")
        rows.append(tuple(obj[f] for f in fields))
    if not rows:
        raise ClaimFileError(f"{source.path}: holds no items")
    return rows


def read_prompts(source: Source, store: Store) -> tuple[str, ...]:
    """The prompts of ``source``, in order."""
    if source.released is not None:
        return load_judged(store(), source.released).responses.prompt_set.prompts
    assert source.path is not None
    if source.path.suffix == ".json":
        return fresh_file(source).prompts
    if source.path.suffix == ".jsonl":
        return tuple(row[0] for row in _jsonl(source, ("prompt",)))
    prompts = tuple(line.strip() for line in source.path.read_text().splitlines() if line.strip())
    if not prompts:
        raise ClaimFileError(f"{source.path}: holds no prompts")
    return prompts


def fresh_file(source: Source) -> FreshSet:
    """A ``dd-fresh/1`` file, or an error naming it."""
    try:
        return FreshSet.load(source.path or "")
    except (ValueError, KeyError, TypeError) as err:
        raise ClaimFileError(f"{source.path}: not a readable dd-fresh/1 set ({err})") from None


def read_pairs(source: Source, store: Store) -> tuple[tuple[str, str], ...]:
    """(prompt, reference answer) pairs of ``source``: a ``.jsonl`` file or a released set."""
    if source.released is not None:
        return tuple(load_judged(store(), source.released).responses.pairs())
    if source.path is None or source.path.suffix != ".jsonl":
        raise ClaimFileError(f"{source.describe()}: reference pairs are a .jsonl file (prompt, response) or "
                             "released:step16 / released:fresh")
    return tuple((p, r) for p, r in _jsonl(source, ("prompt", "response")))
