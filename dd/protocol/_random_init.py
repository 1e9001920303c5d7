"""The random-init baseline: a probe must read more from the trained base than from random weights.

A probe on a randomly initialised copy of the same architecture and tokenizer can score as well
as one on the trained base when the signal is lexical or positional (which tokens, how many),
not learned. The two bases' features go through the same probe on the same items, and the
trained base's AUC must beat the random-init base's by the pre-registered margin
(`gates.toml` `[random_init]`), judged on a paired bootstrap CI of the difference: items are
resampled once for both bases, so what they share (the labels, the item mix) cancels.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from dd.protocol import _fits as fits
from dd.protocol import _gates as gates
from dd.protocol import _stats as stats
from dd.protocol._pipeline import FeatureSource, StepResult
from dd.protocol._verdict import FAIL, INCONCLUSIVE, PASS, Verdict

RANDOM_INIT_BEATEN, RANDOM_INIT_NOT_BEATEN = "random_init_beaten", "random_init_not_beaten"


def paired_auc_ci(y, trained, random, *, n_boot: int, level: float, seed: int = 0) -> tuple[float, float]:
    """Percentile CI of AUC(trained) - AUC(random) over stratified bootstrap resamples shared by both."""
    y = stats.check_binary(y)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    P = pos[rng.integers(0, len(pos), (n_boot, len(pos)))]
    N = neg[rng.integers(0, len(neg), (n_boot, len(neg)))]
    idx = np.concatenate([P, N], axis=1)

    def aucs(scores: np.ndarray) -> np.ndarray:
        ranks = stats.rankdata(stats.check_finite(scores, "scores")[idx], axis=1)
        return (ranks[:, : len(pos)].sum(axis=1) - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))

    diff = aucs(np.asarray(trained)) - aucs(np.asarray(random))
    return float(np.quantile(diff, (1 - level) / 2)), float(np.quantile(diff, (1 + level) / 2))


def random_init_margin(y, trained, random, *, seed: int = 0) -> tuple[dict, Verdict]:
    """Hold the trained base's scores against the random-init base's on the same items.

    Args:
        y: 0/1 labels of the items both bases scored.
        trained, random: each base's probe scores (out-of-fold or fresh P(correct)) per item.

    Returns:
        (metrics, verdict): pass when the CI's lower bound clears the margin, fail when the
        difference itself does not, inconclusive when only the CI leaves room for chance.
    """
    bars = gates.bars("random_init")
    margin_min = bars["margin_min"]
    level = gates.guard("bootstrap_level")
    auc_t, auc_r = stats.roc_auc(y, trained), stats.roc_auc(y, random)
    lo, hi = paired_auc_ci(y, trained, random, n_boot=gates.guard("bootstrap_resamples"), level=level, seed=seed)
    margin = auc_t - auc_r
    metrics = {"auc_trained": auc_t, "auc_random_init": auc_r, "margin": margin, "margin_ci_low": lo,
               "margin_ci_high": hi, "margin_min": margin_min}
    gate = {"name": "random_init", "version": gates.gates_version(), "margin_min": margin_min, "level": level}
    said = f"trained AUC {auc_t:.4f} vs random-init AUC {auc_r:.4f}: margin {margin:+.4f}"
    if margin < margin_min:
        return metrics, Verdict(FAIL, (f"{said} < {margin_min}: the trained weights do not beat random ones by the "
                                       "pre-registered margin",), gate, RANDOM_INIT_NOT_BEATEN)
    if lo < margin_min:
        return metrics, Verdict(INCONCLUSIVE, (f"{said}, but its {level:.0%} CI lower bound {lo:+.4f} < {margin_min}",),
                                gate, RANDOM_INIT_NOT_BEATEN)
    return metrics, Verdict(PASS, (f"{said}, {level:.0%} CI [{lo:+.4f}, {hi:+.4f}] clears {margin_min}",), gate,
                            RANDOM_INIT_BEATEN)


def random_init_step(trained: FeatureSource, random: FeatureSource, C: float = 1.0, *,
                     step: Literal["cv", "fresh"] = "cv", seed: int = 0) -> StepResult:
    """Step 1 (``cv``) or 2 (``fresh``) scored through the same probe on both bases, then the margin.

    Raises:
        ValueError: when the two sources do not hold the same labels (not the same items).
    """
    for split in ("y_train", "y_fresh"):
        if not np.array_equal(getattr(trained, split), getattr(random, split)):
            raise ValueError(f"{trained.name} and {random.name} differ in {split}: the margin needs the same items")

    def scores(source: FeatureSource) -> np.ndarray:
        if step == "cv":
            return fits.cross_validate(source.X_train, source.y_train, C).oof
        return fits.fit_predict(source.X_train, source.y_train, source.X_fresh, C)

    y = trained.y_train if step == "cv" else trained.y_fresh
    metrics, verdict = random_init_margin(y, scores(trained), scores(random), seed=seed)
    return StepResult(f"random-init.{step}", {**metrics, "random_init_base": random.name}, verdict)
