"""Whether a tempering lambda is a clean positive: content undamaged and a disposition moved up.

Arc 2's table held five variants to this and found none: each either damaged content, moved
nothing, or moved the wrong way. The bars are pre-registered in `gates.toml` (``[tempering]``).
A lambda whose evidence cannot decide (a disposition nobody judged, a delta that truncation can
explain) is ``undecided``, never counted as a positive or a negative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dd.protocol import FAIL, INCONCLUSIVE, PASS, tempering_bars

if TYPE_CHECKING:
    from dd.arcs._arms import Sweep
    from dd.arcs._disposition import DispositionComparison
    from dd.protocol import ArmComparison

CLEAN, DAMAGED, NOT_MOVED, UNDECIDED = "clean_positive", "content_damaged", "disposition_not_moved", "undecided"


@dataclass(frozen=True)
class LambdaVerdict:
    """One lambda's outcome (``CLEAN``, ``DAMAGED``, ``NOT_MOVED`` or ``UNDECIDED``) with its reasons."""

    lam: float
    outcome: str
    reasons: tuple[str, ...]


def judge_lambda(lam: float, *, ppl_rise: float, humaneval: ArmComparison | None,
                 disposition: DispositionComparison | None, n_tests: int,
                 bars: Mapping[str, float] | None = None) -> LambdaVerdict:
    """Classify one lambda from its content and disposition evidence against the base.

    Args:
        lam: the tempering scale.
        ppl_rise: perplexity of the reference answers over the base's, minus 1.
        humaneval: the base-vs-lambda pass@1 comparison, when code execution was allowed.
        disposition: the judged base-vs-lambda comparison, when a judge was configured.
        n_tests: disposition tests in the sweep (lambdas x axes), for the Bonferroni correction.
        bars: defaults to ``gates.toml``'s ``[tempering]``.
    """
    bars = tempering_bars() if bars is None else bars
    damaged: list[str] = []
    undecided: list[str] = []
    if ppl_rise > bars["max_ppl_rise"]:
        damaged.append(f"reference perplexity {ppl_rise:+.2%} (bar {bars['max_ppl_rise']:+.0%})")
    if humaneval is not None:
        if humaneval.verdict == "truncation_artifact":
            undecided.append("HumanEval delta is a truncation artifact: " + "; ".join(humaneval.reasons))
        elif humaneval.delta < -bars["max_pass_drop"]:
            damaged.append(f"HumanEval pass@1 {100 * humaneval.delta:+.1f} points")
    if disposition is None:
        undecided.append("disposition not measured (no judge)")
    elif disposition.truncation.verdict == "truncation_artifact":
        undecided.append("judged answers are a truncation artifact: " + "; ".join(disposition.truncation.reasons))
    elif disposition.content.delta < -bars["max_factual_drop"]:
        damaged.append(f"factual accuracy {100 * disposition.content.delta:+.1f} points "
                       f"(bar -{100 * bars['max_factual_drop']:.0f})")
    if damaged:
        return LambdaVerdict(lam, DAMAGED, tuple(f"content damaged: {d}" for d in damaged))
    if undecided:
        return LambdaVerdict(lam, UNDECIDED, ("content undamaged so far", *undecided))
    alpha = bars["alpha"] / max(1, n_tests)
    shifts = [f"{s.axis} {100 * s.base_rate:.0f}% -> {100 * s.op_rate:.0f}% (p {s.p_value:.3g}"
              + (", wrong direction)" if s.delta < 0 else ")") for s in disposition.shifts.values()]
    moved = [s for s in disposition.shifts.values() if s.delta > 0 and s.p_value <= alpha]
    outcome = CLEAN if moved else NOT_MOVED
    head = "disposition moved" if moved else f"disposition not moved at alpha {alpha:.3g}"
    return LambdaVerdict(lam, outcome, (f"content undamaged; {head}: " + "; ".join(shifts),))


def sweep_verdict(verdicts: Sequence[LambdaVerdict]) -> str:
    """pass with any clean positive; else inconclusive while any lambda is undecided; else fail."""
    outcomes = {v.outcome for v in verdicts}
    if CLEAN in outcomes:
        return PASS
    return INCONCLUSIVE if UNDECIDED in outcomes else FAIL


def sweep_verdicts(sweep: Sweep, bars: Mapping[str, float] | None = None) -> list[tuple[LambdaVerdict, DispositionComparison | None]]:
    """Each lambda below 1 against the untouched base, with its disposition comparison (if judged)."""
    from dd.arcs._disposition import DISPOSITION_AXES, compare_dispositions
    from dd.protocol import compare_arms

    bars = tempering_bars() if bars is None else bars
    base = sweep.base
    tempered = [p for p in sweep.points if p.lam != 1.0]
    n_tests = len(tempered) * len(DISPOSITION_AXES)
    out = []
    for p in tempered:
        he = (compare_arms(base.humaneval.stats, p.humaneval.stats, base.humaneval.passed, p.humaneval.passed)
              if base.humaneval and p.humaneval else None)
        disp = (compare_dispositions(base.judged, p.judged, n_permutations=int(bars["permutations"]))
                if base.judged and p.judged else None)
        verdict = judge_lambda(p.lam, ppl_rise=p.perplexity / base.perplexity - 1, humaneval=he, disposition=disp,
                               n_tests=n_tests, bars=bars)
        out.append((verdict, disp))
    return out
