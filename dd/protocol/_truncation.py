"""Truncation as a first-class measurement.

A generation budget (``n_predict``) silently scores every answer cut at the limit as wrong.
When one arm writes longer answers than the other, a difference in pass rate can be nothing but
a difference in truncation: a headline +15.3 HumanEval points at ``n_predict=512`` became -8.0
at a larger budget. So every comparison reports both arms' truncation rates, refuses to call a
delta real when they differ (or are high), and checks that the delta's sign survives a change of
budget. The bounds are pre-registered in the gates file (`[truncation]`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from dd.protocol import _gates as gates
from dd.protocol._verdict import INCONCLUSIVE, PASS, Verdict

FinishReason = Literal["length", "eos"]
#: The codes of a comparison's verdict: `pass` when comparable, `inconclusive` when truncation can explain it.
COMPARABLE, TRUNCATION_ARTIFACT = "comparable", "truncation_artifact"
FINISH_REASONS: frozenset[str] = frozenset({"length", "eos"})


@dataclass(frozen=True)
class ArmStats:
    """Truncation statistics of one arm (base or operator) at one budget.

    Attributes:
        name: The arm, e.g. ``base`` or the operator's name.
        n: Number of generations.
        n_truncated: How many stopped at the token limit (finish reason ``length``).
        rate: ``n_truncated / n``.
        mean_len: Mean generated length in tokens.
    """

    name: str
    n: int
    n_truncated: int
    rate: float
    mean_len: float


@dataclass(frozen=True)
class ArmComparison:
    """A metric delta together with the truncation that may explain it.

    Attributes:
        delta: Operator mean score minus base mean score.
        base_rate: The base arm's truncation rate.
        operator_rate: The operator arm's truncation rate.
        verdict: ``pass`` (code ``comparable``), or ``inconclusive`` (code ``truncation_artifact``:
            the delta must not be reported as an effect) with the numbers in its reasons.
    """

    delta: float
    base_rate: float
    operator_rate: float
    verdict: Verdict

    @property
    def artifact(self) -> bool:
        """Whether truncation can explain the delta."""
        return self.verdict.code == TRUNCATION_ARTIFACT


@dataclass(frozen=True)
class BudgetSensitivity:
    """Whether a delta keeps its sign across generation budgets.

    Attributes:
        deltas: ``(n_predict, delta)`` pairs in increasing budget order.
        sign_stable: True iff every delta has the same sign (a zero delta matches no sign).
    """

    deltas: tuple[tuple[int, float], ...]
    sign_stable: bool


def arm_stats(name: str, finish_reasons: Sequence[str], lengths: Sequence[int]) -> ArmStats:
    """Summarise one arm from per-item finish reasons (``length``/``eos``) and token lengths."""
    if len(finish_reasons) != len(lengths):
        raise ValueError(f"{len(finish_reasons)} finish reasons but {len(lengths)} lengths")
    if not finish_reasons:
        raise ValueError(f"arm {name!r} has no generations")
    unknown = set(finish_reasons) - FINISH_REASONS
    if unknown:
        raise ValueError(f"unknown finish reasons {sorted(unknown)}; expected length or eos")
    n = len(finish_reasons)
    n_truncated = sum(reason == "length" for reason in finish_reasons)
    return ArmStats(name, n, n_truncated, n_truncated / n, sum(lengths) / n)


def _mean(scores: Sequence[float], arm: ArmStats) -> float:
    if len(scores) != arm.n:
        raise ValueError(f"arm {arm.name!r}: {len(scores)} scores for {arm.n} generations")
    return sum(scores) / len(scores)


def compare_arms(
    base: ArmStats,
    operator: ArmStats,
    base_scores: Sequence[float],
    op_scores: Sequence[float],
    *,
    max_rate_gap: float | None = None,
    max_rate: float | None = None,
) -> ArmComparison:
    """Compute the metric delta and decide whether truncation could explain it.

    Args:
        base: Truncation statistics of the base arm.
        operator: Truncation statistics of the operator arm.
        base_scores: Per-item scores of the base arm (e.g. 1.0 passed, 0.0 failed).
        op_scores: Per-item scores of the operator arm.
        max_rate_gap: Largest allowed absolute difference between the two truncation rates
            (default: the pre-registered bound in `dd/gates.toml`).
        max_rate: Largest allowed truncation rate of either arm (default: pre-registered).

    Returns:
        The comparison; its verdict's code is ``truncation_artifact`` if either bound is exceeded.
    """
    bounds = gates.truncation_bounds()
    max_rate_gap = bounds["max_rate_gap"] if max_rate_gap is None else max_rate_gap
    max_rate = bounds["max_rate"] if max_rate is None else max_rate
    delta = _mean(op_scores, operator) - _mean(base_scores, base)
    reasons = []
    gap = abs(operator.rate - base.rate)
    if gap > max_rate_gap:
        reasons.append(
            f"truncation rates differ by {gap:.3f} ({base.name} {base.rate:.3f}, "
            f"{operator.name} {operator.rate:.3f}) > max_rate_gap {max_rate_gap:.3f}"
        )
    for arm in (base, operator):
        if arm.rate > max_rate:
            reasons.append(
                f"{arm.name} truncation rate {arm.rate:.3f} ({arm.n_truncated}/{arm.n}) "
                f"> max_rate {max_rate:.3f}"
            )
    verdict = (Verdict(INCONCLUSIVE, tuple(reasons), code=TRUNCATION_ARTIFACT) if reasons
               else Verdict(PASS, (), code=COMPARABLE))
    return ArmComparison(delta, base.rate, operator.rate, verdict)


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def budget_sensitivity(deltas_by_budget: Mapping[int, float]) -> BudgetSensitivity:
    """Check that a delta's sign survives a change of ``n_predict`` (needs at least 2 budgets)."""
    if len(deltas_by_budget) < 2:
        raise ValueError("budget sensitivity needs deltas at two or more n_predict budgets")
    deltas = tuple(sorted(deltas_by_budget.items()))
    signs = {_sign(delta) for _, delta in deltas}
    return BudgetSensitivity(deltas, len(signs) == 1 and 0 not in signs)
