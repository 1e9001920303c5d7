"""Gold checklists for new prompts, written by a judge, so that coverage can be judged on any set.

The paper's coverage axis rests on per-prompt checklists of required claims that an independent
model wrote before seeing any answer. The checklist judge (`dd.judges`, rubric
``dd-gold-checklist/1``) writes one in its first, response-blind call; `ChecklistWriter` makes
exactly that call (same rubric version, messages, token budget and schema), so its cached replies
are the ones the checklist judge finds when it later scores answers to these prompts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import cast

from dd.core import Cache
from dd.fresh._generate import failures
from dd.fresh._sets import FreshSet
from dd.judges import (
    CHECKLIST_SCHEMA,
    Ask,
    ChecklistJudge,
    Judge,
    JudgeConfig,
    JudgeItem,
    checklist_messages,
    parse_checklist,
    run_judge,
)


@dataclass(frozen=True)
class Checklist:
    """The claims a correct answer to one prompt must contain."""

    claims: tuple[str, ...]


@dataclass(frozen=True)
class ChecklistWriter:
    """The checklist judge's response-blind first call alone."""

    name: str = "checklist-writer"
    rubric_version: str = ChecklistJudge.rubric_version
    max_tokens: int = ChecklistJudge.checklist_max_tokens

    async def judge(self, item: JudgeItem, ask: Ask) -> Checklist:
        return Checklist(await ask(checklist_messages(item.prompt), parse=parse_checklist, stage="checklist",
                                   max_tokens=self.max_tokens, schema=CHECKLIST_SCHEMA))


def write_checklists(fresh: FreshSet, config: JudgeConfig, cache: Cache | None = None) -> FreshSet:
    """``fresh`` with a gold checklist per prompt, written by the judge at ``config``.

    Raises:
        FreshRunFailed: naming every prompt that got no usable checklist; the others are cached.
        CacheMiss: offline, for a prompt whose checklist was never written.
    """
    run = run_judge(cast(Judge, ChecklistWriter()), [JudgeItem(p, "") for p in fresh.prompts], config, cache)
    failed = failures(run, "prompt", [f"prompt {i} ({p[:50]!r})" for i, p in enumerate(fresh.prompts)])
    if failed is not None:
        raise failed
    return dataclasses.replace(fresh, checklists=tuple(cast(Checklist, o).claims for o in run.outcomes))
