"""Whether a tempering lambda is a clean positive: content undamaged and a disposition moved up.

Arc 2's table held five variants to this and found none: each either damaged content, moved
nothing, or moved the wrong way. The bars are pre-registered in `gates.toml` (``[tempering]``).
A lambda whose evidence cannot decide (a disposition nobody judged, a delta that truncation can
explain) is ``undecided``, never counted as a positive or a negative. Each lambda's outcome is a
`Verdict` whose code is the outcome: clean positive passes, content damaged and not moved fail,
undecided is inconclusive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dd.protocol import (
    CONTENT_DAMAGED,
    FAIL,
    INCONCLUSIVE,
    PASS,
    Verdict,
    any_pass,
    bonferroni_alpha,
    content_anchors,
    content_check,
    rejected,
    tempering_bars,
)

if TYPE_CHECKING:
    from dd.arcs._arms import Sweep
    from dd.arcs._disposition import DispositionComparison
    from dd.protocol import ArmComparison

CLEAN, DAMAGED, NOT_MOVED, UNDECIDED = "clean_positive", "content_damaged", "disposition_not_moved", "undecided"
_WORD = {CLEAN: PASS, DAMAGED: FAIL, NOT_MOVED: FAIL, UNDECIDED: INCONCLUSIVE}


def _outcome(code: str, reasons: tuple[str, ...]) -> Verdict:
    return Verdict(_WORD[code], reasons, code=code)


@dataclass(frozen=True)
class LambdaVerdict:
    """One lambda and its verdict (code ``CLEAN``, ``DAMAGED``, ``NOT_MOVED`` or ``UNDECIDED``)."""

    lam: float
    verdict: Verdict

    @property
    def outcome(self) -> str:
        """The lambda's outcome code."""
        return str(self.verdict.code)


def judge_lambda(lam: float, *, ppl_rise: float, humaneval: ArmComparison | None,
                 disposition: DispositionComparison | None, n_tests: int,
                 bars: Mapping[str, float] | None = None) -> LambdaVerdict:
    """Classify one lambda from its content and disposition evidence against the base.

    The content anchors and their check, and the correction, are the effect protocol's; what is
    Arc 2's own is the rule that any one disposition axis moving up makes a clean positive.

    Args:
        lam: the tempering scale.
        ppl_rise: perplexity of the reference answers over the base's, minus 1.
        humaneval: the base-vs-lambda pass@1 comparison, when code execution was allowed.
        disposition: the judged base-vs-lambda comparison, when a judge was configured.
        n_tests: disposition tests in the sweep (lambdas x axes), for the Bonferroni correction.
        bars: defaults to ``gates.toml``'s ``[tempering]``.
    """
    bars = tempering_bars() if bars is None else bars
    content = content_check(content_anchors(
        bars=bars, ppl_rise=ppl_rise, humaneval=humaneval,
        factual=None if disposition is None else disposition.content.delta,
        judged=None if disposition is None else disposition.truncation))
    if content.code == CONTENT_DAMAGED:
        return LambdaVerdict(lam, _outcome(DAMAGED, content.reasons))
    undecided = [] if content.passed else list(content.reasons)
    if disposition is None:
        undecided.append("disposition not measured (no judge)")
    if undecided or disposition is None:
        return LambdaVerdict(lam, _outcome(UNDECIDED, ("content undamaged so far", *undecided)))
    shifts = disposition.shifts.values()
    significant = rejected({s.axis: s.p_value for s in shifts}, alpha=bars["alpha"], method="bonferroni",
                           family_size=n_tests)
    described = [f"{s.axis} {100 * s.base_rate:.0f}% -> {100 * s.op_rate:.0f}% (p {s.p_value:.3g}"
                 + (", wrong direction)" if s.delta < 0 else ")") for s in shifts]
    moved = [s for s in shifts if s.delta > 0 and significant[s.axis]]
    head = ("disposition moved" if moved
            else f"disposition not moved at alpha {bonferroni_alpha(bars['alpha'], n_tests):.3g}")
    reasons = (f"content undamaged; {head}: " + "; ".join(described),)
    return LambdaVerdict(lam, _outcome(CLEAN if moved else NOT_MOVED, reasons))


def sweep_verdict(verdicts: Sequence[LambdaVerdict]) -> Verdict:
    """pass with any clean positive; else inconclusive while any lambda is undecided; else fail."""
    return any_pass([(f"lambda {v.lam}", v.verdict) for v in verdicts])


def sweep_verdicts(sweep: Sweep, bars: Mapping[str, float] | None = None
                   ) -> list[tuple[LambdaVerdict, DispositionComparison | None]]:
    """Each lambda below 1 against the untouched base, with its disposition comparison (if judged)."""
    from dd.arcs._disposition import DISPOSITION_AXES, compare_dispositions
    from dd.protocol import compare_arms

    bars = tempering_bars() if bars is None else bars
    base = sweep.base
    tempered = [p for p in sweep.points if p.lam != 1.0]
    n_tests = len(tempered) * len(DISPOSITION_AXES)
    out = []
    for p in tempered:
        assert p.lam is not None, "every sweep point has a lambda; only the base has none"
        he = (compare_arms(base.humaneval.stats, p.humaneval.stats, base.humaneval.passed, p.humaneval.passed)
              if base.humaneval and p.humaneval else None)
        disp = (compare_dispositions(base.judged, p.judged, n_permutations=int(bars["permutations"]))
                if base.judged and p.judged else None)
        verdict = judge_lambda(p.lam, ppl_rise=p.perplexity / base.perplexity - 1, humaneval=he, disposition=disp,
                               n_tests=n_tests, bars=bars)
        out.append((verdict, disp))
    return out
