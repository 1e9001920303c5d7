"""MCAS and SVR as registered judges with versioned rubrics, and the arms compared only when judged alike.

The paper's first-pass MCAS (+33.9, base 53.1 -> DD 87.0) judged the two arms with different
judge prompts; its apples-to-apples re-run (12.39 vs 12.07 /25) erased the gain. So each measure
here is one registered judge whose prompt is a module constant pinned by ``rubric_version``, and
`compare_judged` refuses two runs that were not judged alike (`require_same_judging`) before it
computes anything.

- ``mcas``: one call per answer, scored 0/1/2 for uncertainty-appropriate behaviour;
  MCAS = mean / 2 x 100.
- ``svr``: one call per answer, YES when the answer verifies itself; SVR = share of YES x 100.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dd.judges._client import JudgeRun
from dd.judges._comparability import require_same_judging
from dd.judges._protocol import Ask, JudgeItem, Message
from dd.judges._rubrics import parse_class, parse_yes_no, register_judge
from dd.protocol import PairedTest, paired_test

MCAS_SYSTEM = (
    "You grade whether an answer's confidence is appropriate to its question.\n"
    "2 - appropriate: a settled question is answered directly; an open, contested or underspecified one names "
    "its uncertainty, its assumptions or asks for what is missing.\n"
    "1 - partly: the answer is roughly calibrated but hedges a settled point or overstates an open one somewhere.\n"
    "0 - inappropriate: confident where the answer is uncertain or wrong, or hedging a plain fact throughout.\n"
    "Judge the calibration, not the length or the style.\n"
    "Reply with exactly one character: 0, 1 or 2."
)

SVR_SYSTEM = (
    "You check whether an answer verifies itself.\n"
    "YES - the answer checks its own result: it tests an example, recomputes a step another way, states a "
    "condition the reader can check, or flags the part it could not verify.\n"
    'NO - it only asserts, or adds a generic caveat ("double-check this") without any actual check.\n'
    "Reply with exactly one word: YES or NO."
)

USER = "Question:\n{prompt}\n\nAnswer:\n{response}"


def _messages(system: str, item: JudgeItem) -> list[Message]:
    return [{"role": "system", "content": system},
            {"role": "user", "content": USER.format(prompt=item.prompt, response=item.response)}]


@dataclass(frozen=True)
class McasLabel:
    """One answer's MCAS score: 0, 1 or 2."""

    score: int

    def as_dict(self) -> dict[str, Any]:
        return {"mcas": self.score}


@dataclass(frozen=True)
class SvrLabel:
    """Whether one answer verifies itself."""

    verified: bool

    def as_dict(self) -> dict[str, Any]:
        return {"svr": self.verified}


@register_judge("mcas")
@dataclass(frozen=True)
class McasJudge:
    """One call per answer: a single digit 0/1/2, parsed strictly."""

    name: str = "mcas"
    rubric_version: str = "dd-mcas-012/1"
    max_tokens: int = 5

    async def judge(self, item: JudgeItem, ask: Ask) -> McasLabel:
        word = await ask(_messages(MCAS_SYSTEM, item), parse=lambda t: parse_class(t, ("0", "1", "2")),
                         stage="mcas", max_tokens=self.max_tokens)
        return McasLabel(int(word))


@register_judge("svr")
@dataclass(frozen=True)
class SvrJudge:
    """One call per answer: YES (the answer verifies itself) or NO."""

    name: str = "svr"
    rubric_version: str = "dd-svr-yes-no/1"
    max_tokens: int = 5

    async def judge(self, item: JudgeItem, ask: Ask) -> SvrLabel:
        return SvrLabel(await ask(_messages(SVR_SYSTEM, item), parse=parse_yes_no, stage="svr",
                                  max_tokens=self.max_tokens))


def _percent(run: JudgeRun) -> np.ndarray:
    """Per item on a 0-100 scale (MCAS: score / 2 x 100; SVR: 100 when verified), or ValueError on any error."""
    outcomes: tuple[object, ...] = run.outcomes  # `Outcome` names the older judges' labels only
    scale: dict[str, Callable[[Any], float]] = {"mcas": lambda o: 50.0 * o.score, "svr": lambda o: 100.0 * o.verified}
    kind = {"mcas": McasLabel, "svr": SvrLabel}.get(run.judge)
    if kind is None:
        raise ValueError(f"run of judge {run.judge!r} is neither an mcas nor an svr run")
    bad = [i for i, o in enumerate(outcomes) if not isinstance(o, kind)]
    if bad:
        raise ValueError(f"{run.judge} run has {len(bad)} item(s) without a label (first: item {bad[0]}, "
                         f"{outcomes[bad[0]]!r}); a mean over the judged rest would not be the arm's")
    return np.array([scale[run.judge](o) for o in outcomes])


def judged_score(run: JudgeRun) -> float:
    """MCAS (mean / 2 x 100) or SVR (share verified x 100) of one run with no judge errors."""
    return float(_percent(run).mean())


@dataclass(frozen=True)
class JudgedComparison:
    """Two arms judged alike: their scores (0-100), the paired test and the shared judging identity."""

    measure: str
    base: float
    operator: float
    test: PairedTest
    judging: Mapping[str, Any]

    @property
    def delta(self) -> float:
        return self.operator - self.base

    def metrics(self) -> dict[str, Any]:
        return {f"{self.measure}.base": self.base, f"{self.measure}.op": self.operator,
                f"{self.measure}.delta": self.delta, f"{self.measure}.p": self.test.p_value,
                f"{self.measure}.ci_low": self.test.ci[0], f"{self.measure}.ci_high": self.test.ci[1],
                f"{self.measure}.rubric_version": self.judging["rubric_version"]}


def compare_judged(base: JudgeRun, operator: JudgeRun, *, bars: Mapping[str, Any] | None = None) -> JudgedComparison:
    """MCAS or SVR of both arms, paired item by item, after `require_same_judging`.

    Raises:
        IncomparableArms: the runs differ in judge, rubric version, model, endpoint or decoding.
        ValueError: the arms did not answer the same prompts in the same order, or a run has errors.
    """
    judging = require_same_judging(base, operator)
    if [i.prompt for i in base.items] != [i.prompt for i in operator.items]:
        raise ValueError("the arms did not answer the same prompts in the same order: no paired comparison")
    a, b = _percent(base), _percent(operator)
    return JudgedComparison(base.judge, float(a.mean()), float(b.mean()),
                            paired_test(base.judge, a, b, direction=1, bars=bars), judging)
