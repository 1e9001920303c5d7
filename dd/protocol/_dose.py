"""Dose-response and steerability: how an operator's effect grows with its strength.

An effect at one strength can be an accident of that strength; a claim about an operator says
the behaviour follows the dial. The mean score per dose must rank-correlate with the dose (a
rise-then-fall is flagged, not averaged away) and the mean per-item slope must beat doses
shuffled within items, with no dose's arm cut at the budget differently from the base's. Per
item, steerability is as Tan et al. 2024 (arXiv 2407.12404) define it: the slope of the item's
score against the multiplier, the share of anti-steerable items (slope <= 0) with a CI, and how
much of the in-distribution slope survives on fresh prompts. Bars in ``[effect]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from dd.protocol._effect import Arm, effect_bars, effect_gate, require_alike
from dd.protocol._truncation import TRUNCATION_ARTIFACT, compare_arms
from dd.protocol._verdict import FAIL, INCONCLUSIVE, PASS, Verdict

DOSE_MONOTONE, DOSE_NOT_MONOTONE, NO_DOSE_TREND = "dose_monotone", "dose_not_monotone", "no_dose_trend"
STEERABLE, NOT_STEERABLE, ANTI_STEERABLE, DOES_NOT_TRANSFER = (
    "steerable", "not_steerable", "anti_steerable", "does_not_transfer")


def item_slopes(doses: Sequence[float] | np.ndarray, scores: Any) -> np.ndarray:
    """Per item (row of ``scores``, one column per dose), the least-squares slope of score on dose."""
    d = np.asarray(doses, dtype=float)
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or s.shape[1] != len(d) or not len(s):
        raise ValueError(f"scores must be (items, {len(d)} doses), got shape {s.shape}")
    centred = d - d.mean()
    if not centred.any():
        raise ValueError(f"a slope needs two or more distinct doses, got {sorted(set(d.tolist()))}")
    return s @ centred / (centred @ centred)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(y) == 0:
        return 0.0  # a flat response has no order at all
    return float(spearmanr(x, y).statistic)


def _slope_null(doses: np.ndarray, scores: np.ndarray, n_permutations: int, seed: int) -> np.ndarray:
    """Mean item slope with the doses shuffled within each item (no dose effect, items kept apart)."""
    centred = doses - doses.mean()
    rng = np.random.default_rng(seed)
    order = rng.permuted(np.broadcast_to(np.arange(len(doses)), (n_permutations, *scores.shape)), axis=2)
    return (centred[order] * scores).sum(axis=2).mean(axis=1) / (centred @ centred)


@dataclass(frozen=True)
class DoseResponse:
    """Mean score against the operator's strength.

    Attributes:
        doses: the base's dose first, then the arms' in increasing order.
        means: per dose, the mean score.
        truncation_rates: per dose, the share cut at the budget.
        spearman: rank correlation of dose and mean score, times the claimed direction.
        mean_slope: the mean per-item slope, times the claimed direction.
        p_value: one-sided, doses permuted within items.
    """

    axis: str
    doses: tuple[float, ...]
    means: tuple[float, ...]
    truncation_rates: tuple[float, ...]
    spearman: float
    mean_slope: float
    p_value: float
    verdict: Verdict


def dose_response(base: Arm, arms: Mapping[float, Arm], *, axis: str, direction: int = 1, base_dose: float = 0.0,
                  bars: Mapping[str, Any] | None = None, seed: int = 0) -> DoseResponse:
    """Whether the score moves monotonically with the strength, and not through truncation.

    Codes: ``truncation_artifact`` (inconclusive) when any dose's truncation differs from the
    base's beyond the ``[truncation]`` bounds; ``dose_not_monotone`` (fail) when the mean scores'
    rank correlation with dose is below ``min_dose_spearman``; ``no_dose_trend`` (fail) when the
    mean item slope is not significant; else ``dose_monotone``.
    """
    bars = effect_bars(bars)
    gate = effect_gate(bars, "alpha", "min_dose_spearman")
    ordered = sorted(arms.items())
    for _, arm in ordered:
        require_alike(base, arm, [axis])
    doses = np.array([base_dose, *(d for d, _ in ordered)])
    scores = np.stack([base.scores[axis], *(a.scores[axis] for _, a in ordered)], axis=1)
    comparisons = [compare_arms(base.stats(), a.stats(), base.scores[axis], a.scores[axis]) for _, a in ordered]
    slope = direction * float(item_slopes(doses, scores).mean())
    null = direction * _slope_null(doses, scores, int(bars["permutations"]), seed)
    p = float((1 + np.sum(null >= slope - 1e-12)) / (len(null) + 1))
    means = scores.mean(axis=0)
    rho = direction * _spearman(doses, means)
    shown = ", ".join(f"{d:g}: {m:.3g}" for d, m in zip(doses, means, strict=True))
    artifacts = [f"dose {d:g}: " + "; ".join(c.verdict.reasons) for (d, _), c in zip(ordered, comparisons, strict=True)
                 if c.artifact]
    if artifacts:
        verdict = Verdict(INCONCLUSIVE, tuple(artifacts), gate, TRUNCATION_ARTIFACT)
    elif rho < bars["min_dose_spearman"]:
        verdict = Verdict(FAIL, (f"{axis} means by dose ({shown}) have rank correlation {rho:+.2f} with the "
                                 f"dose in the claimed direction (bar {bars['min_dose_spearman']})",),
                          gate, DOSE_NOT_MONOTONE)
    elif p > bars["alpha"]:
        verdict = Verdict(FAIL, (f"{axis} mean item slope {slope:+.3g} per unit dose (p {p:.3g} > {bars['alpha']})",),
                          gate, NO_DOSE_TREND)
    else:
        verdict = Verdict(PASS, (f"{axis} moves monotonically with the dose ({shown}; rank correlation {rho:+.2f}, "
                                 f"mean item slope {slope:+.3g}, p {p:.3g})",), gate, DOSE_MONOTONE)
    rates = (base.stats().rate, *(c.operator_rate for c in comparisons))
    return DoseResponse(axis, tuple(doses.tolist()), tuple(means.tolist()), rates, rho, slope, p, verdict)


def wilson_interval(k: int, n: int, level: float) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n (sound at 0 and n, unlike the normal one)."""
    z = NormalDist().inv_cdf((1 + level) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if k == 0 else float(centre - half)), (1.0 if k == n else float(centre + half))


@dataclass(frozen=True)
class Steerability:
    """Per-item steerability as Tan et al. 2024 define it, in distribution and on fresh prompts.

    Attributes:
        slopes: per in-distribution item, the slope of its score against the multiplier, times the
            claimed direction (so positive is steered the claimed way).
        mean_slope: their mean.
        anti_steerable: the share of items whose slope is <= 0, with its Wilson CI.
        fresh_mean_slope: the mean slope on fresh prompts, same multipliers.
        slope_ratio: fresh over in-distribution mean slope (None when the latter is not positive).
    """

    multipliers: tuple[float, ...]
    slopes: tuple[float, ...]
    mean_slope: float
    anti_steerable: float
    anti_steerable_ci: tuple[float, float]
    fresh_mean_slope: float
    slope_ratio: float | None
    verdict: Verdict


def steerability(multipliers: Sequence[float], scores: Any, fresh_scores: Any, *, direction: int = 1,
                 bars: Mapping[str, Any] | None = None) -> Steerability:
    """Slopes, anti-steerable share and transfer from (items x multipliers) score arrays.

    Codes: ``not_steerable`` (mean slope not in the claimed direction), ``anti_steerable`` (the
    share's CI upper bound above ``max_anti_steerable``), ``does_not_transfer`` (fresh/in-distribution
    slope ratio below ``min_fresh_slope_ratio``), else ``steerable``.
    """
    bars = effect_bars(bars)
    gate = effect_gate(bars, "max_anti_steerable", "min_fresh_slope_ratio", "bootstrap_level")
    slopes = direction * item_slopes(multipliers, scores)
    fresh = float(direction * item_slopes(multipliers, fresh_scores).mean())
    mean = float(slopes.mean())
    k = int((slopes <= 0).sum())
    ci = wilson_interval(k, len(slopes), float(bars["bootstrap_level"]))
    ratio = fresh / mean if mean > 0 else None
    summary = (f"mean slope {mean:+.3g} per unit multiplier; anti-steerable {k}/{len(slopes)} items "
               f"({k / len(slopes):.0%}, CI [{ci[0]:.0%}, {ci[1]:.0%}]); fresh mean slope {fresh:+.3g}"
               + (f", ratio {ratio:.2f}" if ratio is not None else ""))
    checks: list[tuple[bool, str, str]] = [
        (mean <= 0, NOT_STEERABLE, "the mean slope is not in the claimed direction"),
        (ci[1] > bars["max_anti_steerable"], ANTI_STEERABLE,
         f"the anti-steerable share may reach {ci[1]:.0%} (bar {bars['max_anti_steerable']:.0%})"),
        (ratio is not None and ratio < bars["min_fresh_slope_ratio"], DOES_NOT_TRANSFER,
         f"fresh prompts keep {ratio or 0:.0%} of the slope (bar {bars['min_fresh_slope_ratio']:.0%})"),
    ]
    failed = next(((code, why) for bad, code, why in checks if bad), None)
    verdict = (Verdict(FAIL, (f"{failed[1]}: {summary}",), gate, failed[0]) if failed
               else Verdict(PASS, (summary,), gate, STEERABLE))
    return Steerability(tuple(float(m) for m in multipliers), tuple(slopes.tolist()), mean, k / len(slopes), ci,
                        fresh, ratio, verdict)

