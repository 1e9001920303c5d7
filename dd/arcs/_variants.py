"""Training variants of the DD adapter, each measured against the base the way Arc 1 from scratch is.

The paper tried several ways of training the same teacher data into Qwen3-1.7B (attention-only
LoRA, all modules at r = 32, a think-block-masked v3, a DPO pass after SFT) and every one regressed
HumanEval. Here a variant is a `Variant` (an SFT `LoraTrainConfig`, optionally a DPO stage that
continues it), trained through the ``lora`` operator and the cache (`cached_sft_adapter`,
`cached_dpo_adapter`), and measured like the from-scratch DD arm: correction recovery at two
budgets, whose first turn is HumanEval pass@1 at those budgets.

- `compare_variant`: the DD claim through one variant: it recovers from corrections more often
  than its reference (`compare_recovery`: paired, truncation-gated, at every budget) *and* its
  HumanEval pass@1 does not fall at any budget (the ``[effect]`` content anchor, undecided when
  truncation could explain the delta). Both must hold.
- `compare_humaneval`: one variant against another on the same data: its pass@1 is higher at
  every budget, paired (sign-flip test at the ``[effect]`` alpha), truncation-gated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dd.arcs._arms import BudgetComparison, HumanEvalArm, cached_dpo_adapter, cached_sft_adapter, compare_budgets
from dd.arcs._recovery import RecoveryArm, RecoveryComparison, compare_recovery, run_recovery_arm
from dd.protocol import (
    EFFECT,
    FAIL,
    INCONCLUSIVE,
    NO_EFFECT,
    PASS,
    Verdict,
    all_pass,
    bars,
    content_anchors,
    content_check,
    effect_gate,
    paired_test,
)

if TYPE_CHECKING:
    from dd.arcs._humaneval import Problem
    from dd.arcs._teachers import TeacherRun
    from dd.core import Cache
    from dd.lm import LazyBase, LoadedBase
    from dd.operators import LoraTrainConfig


def _gate(effect_bars: Mapping[str, Any]) -> dict[str, Any]:
    """The gate a variant's verdict records: ``[effect]``, the gates file's version, the bars it uses."""
    return effect_gate(effect_bars, "alpha", "max_pass_drop")


@dataclass(frozen=True)
class Variant:
    """One way to train the DD adapter on the pipeline's data.

    Attributes:
        name: the arm's name in reports (``attention``, ``all-linear``, ``sft+dpo``, ...).
        sft: the SFT stage (target, r, alpha, optimiser, ``mask_think``).
        dpo: a DPO stage continuing the SFT adapter (same target, r and alpha), or None.
    """

    name: str
    sft: LoraTrainConfig
    dpo: LoraTrainConfig | None = None


def train_variant(base: LazyBase | LoadedBase, variant: Variant, run: TeacherRun, cache: Cache) -> Any:
    """The variant's ``Lora`` operator: SFT on the run's pairs, then DPO on its triples when asked."""
    op = cached_sft_adapter(base, run.sft_pairs(), variant.sft, cache)
    if variant.dpo is not None:
        op = cached_dpo_adapter(base, run.dpo_triples(), variant.dpo, cache, after=op)
    return op


def recovery_arms(base: LazyBase | LoadedBase, problems: Sequence[Problem], budgets: Sequence[int], cache: Cache,
                  *, name: str = "base", operator: Any | None = None, workers: int = 2) -> dict[int, RecoveryArm]:
    """One arm's correction recovery at every budget (code execution is the caller's opt-in)."""
    return {b: run_recovery_arm(base, problems, b, cache, name=name, operator=operator, allow_code_exec=True,
                                workers=workers) for b in budgets}


def humaneval_arms(arms: Mapping[int, RecoveryArm]) -> dict[int, HumanEvalArm]:
    """HumanEval pass@1 per budget from recovery's first turn (the same greedy answers, scored alike)."""
    return {b: HumanEvalArm(a.name, b, tuple(float(i.first_passed) for i in a.items), a.first_stats)
            for b, a in arms.items()}


@dataclass(frozen=True)
class VariantComparison:
    """A variant against its reference: HumanEval per budget, recovery, the content check, the verdict."""

    humaneval: BudgetComparison
    recovery: RecoveryComparison
    content: Mapping[int, Verdict]
    verdict: Verdict

    def metrics(self, ref: Mapping[int, RecoveryArm], arm: Mapping[int, RecoveryArm]) -> dict[str, Any]:
        """Flat report metrics: HumanEval and recovery per budget and arm, and each content verdict."""
        return {**{f"humaneval.{k}": v for k, v in self.humaneval.metrics(humaneval_arms(ref),
                                                                           humaneval_arms(arm)).items()},
                **{f"recovery.{k}": v for k, v in self.recovery.metrics(ref, arm).items()},
                **{f"content.n{b}": v.code for b, v in sorted(self.content.items())}}


def compare_variant(ref: Mapping[int, RecoveryArm], arm: Mapping[int, RecoveryArm]) -> VariantComparison:
    """The DD claim through a variant: recovery up at every budget and HumanEval not damaged at any.

    Raises:
        ValueError: fewer than two common budgets (one cannot rule out truncation).
    """
    effect_bars = bars("effect")
    humaneval = compare_budgets(humaneval_arms(ref), humaneval_arms(arm))
    recovery = compare_recovery(ref, arm)
    content = {b: content_check(content_anchors(bars=effect_bars, humaneval=c))
               for b, c in humaneval.per_budget.items()}
    verdict = all_pass([("recovery", recovery.verdict),
                        *((f"HumanEval n_predict {b}", v) for b, v in sorted(content.items()))],
                       _gate(effect_bars))
    return VariantComparison(humaneval, recovery, content, verdict)


def compare_humaneval(ref: Mapping[int, RecoveryArm], arm: Mapping[int, RecoveryArm]) -> tuple[BudgetComparison,
                                                                                                  Verdict]:
    """``arm``'s HumanEval pass@1 above ``ref``'s at every budget: paired, truncation-gated, each on its own.

    Raises:
        ValueError: fewer than two common budgets (from `compare_budgets`: one cannot rule out truncation).
    """
    effect_bars = bars("effect")
    cmp = compare_budgets(humaneval_arms(ref), humaneval_arms(arm))
    alpha = float(effect_bars["alpha"])
    per: list[tuple[str, Verdict]] = []
    for b, c in sorted(cmp.per_budget.items()):
        if c.artifact:
            per.append((f"n_predict {b}", Verdict(INCONCLUSIVE, c.verdict.reasons, code=c.verdict.code)))
            continue
        test = paired_test("pass@1", [float(i.first_passed) for i in ref[b].items],
                           [float(i.first_passed) for i in arm[b].items], direction=1, bars=effect_bars)
        holds = test.delta > 0 and test.p_value < alpha
        per.append((f"n_predict {b}", Verdict(PASS if holds else FAIL, (test.describe(),),
                                              code=EFFECT if holds else NO_EFFECT)))
    return cmp, all_pass(per, _gate(effect_bars))
