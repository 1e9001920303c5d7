"""A fresh prompt set with its provenance and split ledger, and the independence rule it must meet.

"Regenerate N prompts from the same distribution via an independent generator": a fresh set
written by the model that wrote the training prompts shares that model's habits, so transfer to it
says little. Every fresh set therefore records who wrote it (for a generated set: endpoint, model,
seed, temperature and the generator rubric's version), and one whose generator matches the
training set's is refused. Names match when one, normalized (the part after the last ``/``, lower
case, letters and digits only), starts with the other: ``DeepSeek V3.2`` matches
``deepseek/deepseek-v3.2-exp``. A training set whose generator is not known (``unknown``) cannot
be checked; that is recorded, never taken as independence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dd.core import canonical_json
from dd.fresh._dedup import SplitLedger, dedup, require_disjoint

SCHEMA = "dd-fresh/1"
#: The generator of a set nobody recorded; independence from it cannot be checked.
UNKNOWN = "unknown"


class GeneratorNotIndependent(ValueError):
    """The fresh set's generator is the training set's, so the fresh split is not independent."""


@dataclass(frozen=True)
class Provenance:
    """Who wrote a prompt set.

    Attributes:
        generator: the model (or the people) that wrote it; ``unknown`` when nobody recorded it.
        source: ``file`` (given), ``generated`` (by `generate_fresh`) or ``released`` (the paper's).
        endpoint, seed, temperature, rubric_version: how a generated set was asked for.
    """

    generator: str
    source: str = "file"
    endpoint: str | None = None
    seed: int | None = None
    temperature: float | None = None
    rubric_version: str | None = None

    def metrics(self, prefix: str) -> dict[str, Any]:
        return {f"{prefix}.{k}": v for k, v in asdict(self).items() if v is not None}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.rsplit("/", 1)[-1].lower())


def generators_match(a: str, b: str) -> bool:
    """Whether two generator names name the same model (see the module doc)."""
    x, y = _norm(a), _norm(b)
    return bool(x and y) and (x.startswith(y) or y.startswith(x))


def independence(train_generator: str, fresh: Provenance) -> str | None:
    """None when the generators are independent; a note when the training generator is unknown.

    Raises:
        GeneratorNotIndependent: naming both generators.
    """
    if _norm(train_generator) == UNKNOWN:
        return (f"the training set's generator is unknown, so the fresh set's ({fresh.generator!r}) independence "
                "from it is not checked")
    if generators_match(train_generator, fresh.generator):
        raise GeneratorNotIndependent(
            f"the fresh set's generator {fresh.generator!r} is the training set's ({train_generator!r}): a fresh "
            "split must come from an independent generator")
    return None


@dataclass(frozen=True)
class FreshSet:
    """Fresh prompts (kept after dedup), who wrote them, the ledger and, when written, gold checklists.

    Attributes:
        prompts: the kept prompts, in order.
        provenance: who wrote the candidates.
        ledger: what dedup against the training split kept and dropped.
        checklists: per prompt, the gold checklist's claims (`write_checklists`), or None.
        notes: what could not be checked (an unknown training generator).
    """

    prompts: tuple[str, ...]
    provenance: Provenance
    ledger: SplitLedger
    checklists: tuple[tuple[str, ...], ...] | None = None
    notes: tuple[str, ...] = ()

    def metrics(self) -> dict[str, Any]:
        """The ledger's and the provenance's numbers for a report entry."""
        return {**self.ledger.metrics(), **self.provenance.metrics("fresh"), "fresh.n": len(self.prompts),
                "fresh.checklists": self.checklists is not None}

    def save(self, path: str | Path) -> Path:
        """Write the set as a ``dd-fresh/1`` JSON file (a claim file's fresh ``prompts`` may name it)."""
        path = Path(path)
        body = {"schema": SCHEMA, "prompts": list(self.prompts), "provenance": asdict(self.provenance),
                "ledger": self.ledger.as_dict(),
                "checklists": None if self.checklists is None else [list(c) for c in self.checklists],
                "notes": list(self.notes)}
        path.write_text(json.dumps(json.loads(canonical_json(body)), indent=1, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> FreshSet:
        """Read a ``dd-fresh/1`` file.

        Raises:
            ValueError: the file is not one, naming the file.
        """
        body = json.loads(Path(path).read_text())
        if not isinstance(body, dict) or body.get("schema") != SCHEMA:
            raise ValueError(f"{path}: not a {SCHEMA} fresh-set file (its 'schema' must be {SCHEMA!r})")
        checklists = body.get("checklists")
        return cls(tuple(body["prompts"]), Provenance(**body["provenance"]), SplitLedger.from_dict(body["ledger"]),
                   None if checklists is None else tuple(tuple(c) for c in checklists), tuple(body.get("notes", ())))


def fresh_from_prompts(train: Sequence[str], prompts: Sequence[str], provenance: Provenance, *,
                       train_generator: str, what: str = "fresh set") -> FreshSet:
    """A given fresh set checked against the training split: independent, disjoint, near duplicates dropped.

    Raises:
        GeneratorNotIndependent: its generator is the training set's.
        FreshOverlap: it holds a training prompt (an exact repeat is an error in a given set, where
            a generated set drops it).
    """
    note = independence(train_generator, provenance)
    require_disjoint(train, prompts, what=what)
    ledger = dedup(train, prompts)
    return FreshSet(tuple(prompts[i] for i in ledger.kept), provenance, ledger, notes=(note,) if note else ())
