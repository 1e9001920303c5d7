"""An arm's disposition, judged by the v4 rubric, and whether an operator moved it.

Arc 2 held head tempering to "shift the disposition axis (v4 rubric) while content holds". Both
arms answer the same prompts, so a shift is tested paired, item by item: the one-sided sign-flip
permutation test of mean(operator - base) on the binarized axis (score >= 4). The comparison is
refused unless both arms were judged alike (`require_same_judging`), and a judge failure on any
item stops the run with the item named: a missing label is never read as either class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dd.core import Cache
from dd.judges import (
    V4_AXES,
    JudgeConfig,
    JudgeItem,
    JudgeRun,
    V4Label,
    get_judge,
    require_same_judging,
    run_judge,
)
from dd.lm import Generation
from dd.protocol import ArmComparison, ArmStats, arm_stats, compare_arms, sign_flip_p

# The two dispositions Arc 2 tempered (Humble, Adversarial-self) and its content axis on Chef.
DISPOSITION_AXES: tuple[str, ...] = ("hedging_appropriateness", "self_verification")
CONTENT_AXIS = "factual_accuracy"


class JudgingFailed(RuntimeError):
    """The judge gave no label for some items of an arm, so the arm has no disposition to compare."""


@dataclass(frozen=True)
class JudgedArm:
    """One arm's generations with their v4 labels, binarized per axis.

    Attributes:
        name: the arm (``base`` or ``lambda=0.5``).
        run: the judge run (its config and rubric version are the arm's judging identity).
        high: per v4 axis, 1 where the item scored at least 4, else 0.
        stats: truncation statistics of the generations that were judged.
    """

    name: str
    run: JudgeRun
    high: Mapping[str, np.ndarray]
    stats: ArmStats

    def rates(self) -> dict[str, float]:
        return {axis: float(v.mean()) for axis, v in self.high.items()}


def judge_arm(name: str, generations: Sequence[Generation], config: JudgeConfig,
              cache: Cache | None = None) -> JudgedArm:
    """The v4 labels of one arm's generations.

    Raises:
        JudgingFailed: when any item came back as a `JudgeError`, naming the first few with their kind.
    """
    items = [JudgeItem(g.prompt, g.text) for g in generations]
    run = run_judge(get_judge("v4"), items, config, cache)
    if run.errors:
        shown = "; ".join(f"item {i} ({e.stage}: {e.kind}: {e.message[:80]})" for i, e in run.errors[:3])
        raise JudgingFailed(f"arm {name!r}: the judge failed on {len(run.errors)} of {len(items)} items ({shown}); "
                            "a failed label is never filled with a default, so this arm has no disposition")
    labels = [out for out in run.outcomes if isinstance(out, V4Label)]
    assert len(labels) == len(run.outcomes), "a v4 run without errors holds only V4Label outcomes"
    high = {axis: np.array([label.binary(axis) for label in labels], dtype=np.int8) for axis in V4_AXES}
    stats = arm_stats(name, [g.finish_reason for g in generations], [len(g.token_ids) for g in generations])
    return JudgedArm(name, run, high, stats)


@dataclass(frozen=True)
class Shift:
    """A paired change of one binarized axis from the base arm to the operator arm.

    Attributes:
        axis: the v4 axis.
        base_rate: share of base items scoring >= 4.
        op_rate: share of operator items scoring >= 4.
        p_value: one-sided (operator higher) sign-flip permutation p; 1.0 when no item changed.
        n: number of paired items.
    """

    axis: str
    base_rate: float
    op_rate: float
    p_value: float
    n: int

    @property
    def delta(self) -> float:
        return self.op_rate - self.base_rate


def paired_shift(axis: str, base: np.ndarray, op: np.ndarray, *, n_permutations: int = 2000,
                 seed: int = 0) -> Shift:
    """Whether ``op`` is higher than ``base`` item by item, beyond what random sign flips give."""
    base, op = np.asarray(base, dtype=float), np.asarray(op, dtype=float)
    if base.shape != op.shape or base.ndim != 1 or not len(base):
        raise ValueError(f"paired arms need equal non-empty 1-d label arrays, got {base.shape} and {op.shape}")
    p = sign_flip_p(op - base, n_permutations=n_permutations, seed=seed)
    return Shift(axis, float(base.mean()), float(op.mean()), p, len(base))


@dataclass(frozen=True)
class DispositionComparison:
    """Base vs operator on the same prompts, judged alike.

    Attributes:
        shifts: per disposition axis, the paired shift.
        content: the paired shift of the content axis (factual accuracy).
        truncation: both arms' truncation rates and whether they allow a comparison at all.
        judging: the shared judging identity (judge, rubric version, model, decoding).
    """

    shifts: Mapping[str, Shift]
    content: Shift
    truncation: ArmComparison
    judging: Mapping[str, object]

    def metrics(self) -> dict[str, float | str]:
        out: dict[str, float | str] = {}
        for s in (*self.shifts.values(), self.content):
            out.update({f"{s.axis}.base_pct": 100 * s.base_rate, f"{s.axis}.op_pct": 100 * s.op_rate,
                        f"{s.axis}.p": s.p_value})
        code = self.truncation.verdict.code
        assert code is not None, "compare_arms always gives its verdict a code"
        out.update({"truncation_pct.base": 100 * self.truncation.base_rate,
                    "truncation_pct.op": 100 * self.truncation.operator_rate,
                    "truncation_verdict": code})
        return out


def compare_dispositions(base: JudgedArm, op: JudgedArm, *, axes: Sequence[str] = DISPOSITION_AXES,
                         n_permutations: int = 2000) -> DispositionComparison:
    """Paired shifts of each axis, after checking the arms were judged alike on the same prompts.

    Raises:
        IncomparableArms: the arms were judged with different judges, prompts or decoding.
        ValueError: the arms answered different prompts.
    """
    judging = require_same_judging(base.run, op.run)
    if [it.prompt for it in base.run.items] != [it.prompt for it in op.run.items]:
        raise ValueError(f"arms {base.name!r} and {op.name!r} answered different prompts: no paired comparison")
    shifts = {axis: paired_shift(axis, base.high[axis], op.high[axis], n_permutations=n_permutations)
              for axis in axes}
    content = paired_shift(CONTENT_AXIS, base.high[CONTENT_AXIS], op.high[CONTENT_AXIS], n_permutations=n_permutations)
    # only the truncation verdict is used here; the scores just size-check the arms
    # (as Python ints: an int8 array summed element by element would wrap past 127)
    trunc = compare_arms(base.stats, op.stats, base.high[axes[0]].tolist(), op.high[axes[0]].tolist())
    return DispositionComparison(shifts, content, trunc, judging)
