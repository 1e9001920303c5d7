"""Apples-to-apples: two arms' judge scores may be compared only when they were judged alike.

The paper's first-pass MCAS gain (+33.9) came from judging the two arms with different judge
prompts. A comparison therefore first checks that both runs used the same judge, rubric version
(which pins the prompts), judge model, endpoint and decoding parameters; any difference is an
error naming each part with both values, never a result.
"""

from __future__ import annotations

from dd.judges._client import JudgeRun

IDENTITY_PARTS = ("judge", "rubric_version", "model", "base_url", "temperature", "seed", "structured_output")


class IncomparableArms(ValueError):
    """Two judge runs differ in how they judged, so their scores cannot be compared."""


def judging_identity(run: JudgeRun) -> dict:
    """The parts of a run that decide how an item is judged (never the key)."""
    return {"judge": run.judge, "rubric_version": run.rubric_version,
            **{k: run.config.get(k) for k in IDENTITY_PARTS[2:]}}


def require_same_judging(base: JudgeRun, operator: JudgeRun) -> dict:
    """The shared identity, or IncomparableArms listing every differing part."""
    a, b = judging_identity(base), judging_identity(operator)
    differing = [f"{k}: {a[k]!r} (base arm) vs {b[k]!r} (operator arm)" for k in IDENTITY_PARTS if a[k] != b[k]]
    if differing:
        raise IncomparableArms("the arms were judged differently, so their scores are not comparable: "
                               + "; ".join(differing))
    return a
