"""The statistics behind every gate, with the exact semantics of the paper's code.

- AUC is the ROC AUC of P(correct) against the binary label.
- An item is *asserted* at threshold t when P(correct) > t (strictly greater).
- asym(t) = p_assert(wrong) - p_assert(correct); negative means the probe asserts the wrong
  answers less often than the right ones, which is what a disposition sidecar wants.
- The *balanced* asymmetry is the minimum asym(t) over the thresholds of `SWEEP` where
  p_assert(correct) >= 0.70. The paper's prose says "coverage >= 0.70"; the authors' code
  constrains p_assert(correct), and this is the code's meaning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SWEEP = np.linspace(0.05, 0.95, 91)
BALANCE_MIN_P_ASSERT_CORRECT = 0.70


class OneClassError(ValueError):
    """A statistic that compares two classes got only one."""


def check_binary(y) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1")
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == len(y):
        raise OneClassError(
            f"labels hold a single class ({n_pos} positives of {len(y)}): AUC and asymmetry are undefined"
        )
    return y.astype(int)


def check_finite(X, what: str = "features") -> np.ndarray:
    X = np.asarray(X, dtype=float)
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0] if X.ndim > 1 else np.nonzero(bad)[0])
        raise ValueError(f"{what} contain NaN or infinite values in {len(rows)} item(s), first at index {rows[0]}")
    return X


def rankdata(a, axis: int = -1) -> np.ndarray:
    """Ranks from 1, ties given their average rank (scipy's default method), along ``axis``.

    Written in numpy so that the AUCs, nulls and bootstraps of a warm run import no scipy.stats
    (about a second of start-up on these machines). Vectorized over the other axes.
    """
    a = np.asarray(a, dtype=float)
    if a.ndim == 0:
        return np.ones(())
    moved = np.moveaxis(a, axis, -1)
    n = moved.shape[-1]
    flat = moved.reshape(-1, n)
    order = np.argsort(flat, axis=1, kind="mergesort")
    ordered = np.take_along_axis(flat, order, axis=1)
    index = np.broadcast_to(np.arange(n), flat.shape)
    first = np.ones(flat.shape, bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    last = np.ones(flat.shape, bool)
    last[:, :-1] = first[:, 1:]
    start = np.maximum.accumulate(np.where(first, index, 0), axis=1)
    end = np.minimum.accumulate(np.where(last, index, n - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty(flat.shape)
    np.put_along_axis(ranks, order, (start + end) / 2 + 1, axis=1)
    return np.moveaxis(ranks.reshape(moved.shape), -1, axis)


def roc_auc(y, scores) -> float:
    """ROC AUC by the rank (Mann-Whitney) formula, ties counted half, as sklearn computes it."""
    y = check_binary(y)
    scores = check_finite(scores, "scores")
    ranks = rankdata(scores)
    n_pos = y.sum()
    n_neg = len(y) - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class SweepPoint:
    thr: float
    p_assert_wrong: float
    p_assert_correct: float
    asym: float

    def as_dict(self) -> dict[str, float]:
        return {
            "thr": self.thr,
            "p_assert_wrong": self.p_assert_wrong,
            "p_assert_correct": self.p_assert_correct,
            "asym": self.asym,
        }


def asymmetry(y, asserted) -> float:
    """p_assert(wrong) - p_assert(correct) for boolean assertions."""
    y = check_binary(y)
    asserted = np.asarray(asserted, dtype=bool)
    return float(asserted[y == 0].mean() - asserted[y == 1].mean())


def _assert_rates(y, p_correct, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """p_assert(wrong) and p_assert(correct) at each threshold, assertion being P(correct) > t."""
    y = check_binary(y)
    p = check_finite(p_correct, "probabilities")
    asserted = p[None, :] > np.asarray(thresholds)[:, None]
    return asserted[:, y == 0].mean(axis=1), asserted[:, y == 1].mean(axis=1)


def sweep(y, p_correct, thresholds=SWEEP) -> list[SweepPoint]:
    """asym(t) at each threshold, assertion being P(correct) > t."""
    p_w, p_c = _assert_rates(y, p_correct, thresholds)
    rows = zip(thresholds, p_w, p_c, strict=True)
    return [SweepPoint(float(t), float(w), float(c), float(w - c)) for t, w, c in rows]


def balanced_asymmetry(y, p_correct, min_p_assert_correct: float = BALANCE_MIN_P_ASSERT_CORRECT) -> SweepPoint | None:
    """The minimum asym(t) over thresholds with p_assert(correct) >= the bound (first on ties).

    Returns None when no threshold satisfies the bound.
    """
    p_w, p_c = _assert_rates(y, p_correct, SWEEP)
    asym = np.where(p_c >= min_p_assert_correct, p_w - p_c, np.inf)
    if not np.isfinite(asym).any():
        return None
    i = int(np.argmin(asym))  # the first threshold on ties, as a scan of `sweep` would pick
    return SweepPoint(float(SWEEP[i]), float(p_w[i]), float(p_c[i]), float(p_w[i] - p_c[i]))


def make_probe(C: float, random_state: int = 0):
    """The paper's probe: StandardScaler fit on training data, then LogisticRegression(C)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=random_state))


def fit_predict(X_train, y_train, X_eval, C: float = 1.0, *, estimator=None) -> np.ndarray:
    """P(correct) on X_eval from a probe fit on (X_train, y_train).

    The probe is the paper's (`make_probe(C)`) unless `estimator` is given: any unfitted sklearn
    classifier with `predict_proba`, cloned so the caller's object stays unfitted.
    """
    y_train, X_train, X_eval = check_binary(y_train), check_finite(X_train), check_finite(X_eval)
    if estimator is None:
        probe = make_probe(C)
    else:
        from sklearn.base import clone

        probe = clone(estimator)
    probe.fit(X_train, y_train)
    return probe.predict_proba(X_eval)[:, 1]


@dataclass(frozen=True)
class CVResult:
    """Out-of-fold P(correct), the pooled AUC over them, and the mean of per-fold AUCs.

    The two AUCs differ; the paper reported the mean of folds for one run and pooled numbers
    for another, so both are kept and labelled.
    """

    oof: np.ndarray
    pooled_auc: float
    fold_aucs: tuple[float, ...]

    @property
    def mean_fold_auc(self) -> float:
        return float(np.nanmean(self.fold_aucs))


CV_RANDOM_STATE = 42  # the fold seed of the claimed split; a specification curve varies it


def cross_validate(X, y, C: float = 1.0, n_splits: int = 5, random_state: int = CV_RANDOM_STATE, *,
                   estimator=None, groups=None) -> CVResult:
    """Out-of-fold scores of stratified k-fold CV; group-aware (`StratifiedGroupKFold`) when `groups` is given.

    With groups, no group has items on both sides of a fold, so a probe cannot score by
    recognising a group it has seen.
    """
    y = check_binary(y)
    X = check_finite(X)
    if min(y.sum(), len(y) - y.sum()) < n_splits:
        raise OneClassError(
            f"{n_splits}-fold CV needs at least {n_splits} items of each class, got {int(y.sum())}/{len(y)}"
        )
    # after the checks: a guard that asks of a one-class fact on every run imports no scikit-learn for it
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if groups is None:
        folds = StratifiedKFold(n_splits, shuffle=True, random_state=random_state).split(X, y)
    else:
        groups = np.asarray(groups)
        if groups.shape != y.shape:
            raise ValueError(f"groups have shape {groups.shape}, labels {y.shape}")
        if len(np.unique(groups)) < n_splits:
            raise ValueError(f"{n_splits}-fold group-aware CV needs at least {n_splits} groups, "
                             f"got {len(np.unique(groups))}")
        folds = StratifiedGroupKFold(n_splits, shuffle=True, random_state=random_state).split(X, y, groups)
    oof = np.zeros(len(y))
    fold_aucs = []
    for train, test in folds:
        oof[test] = fit_predict(X[train], y[train], X[test], C, estimator=estimator)
        # a group-aware fold can hold one class; its AUC is undefined, the pooled AUC is not
        fold_aucs.append(roc_auc(y[test], oof[test]) if 0 < y[test].sum() < len(test) else float("nan"))
    return CVResult(oof, roc_auc(y, oof), tuple(fold_aucs))


def principal_components(X, k: int = 2) -> np.ndarray:
    """X projected on its first k principal components (exact SVD of the centred data).

    Signs follow scikit-learn's PCA (each component's largest-magnitude loading positive), so
    scores read the same way; numpy alone, since a figure needs no second of scikit-learn import.
    """
    X = check_finite(X)
    centred = X - X.mean(axis=0)
    U, S, Vt = np.linalg.svd(centred, full_matrices=False)
    signs = np.sign(Vt[np.arange(len(Vt)), np.abs(Vt).argmax(axis=1)])
    return (U[:, :k] * S[:k]) * signs[:k]


@lru_cache(maxsize=16)
def _resample_counts(n_pos: int, n_neg: int, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """How often each positive (V) and each negative (W) is drawn in each stratified resample.

    They depend on the class sizes and the seed alone, so every gate on one split shares them:
    drawing them is most of a bootstrap's cost. Read-only, as they are shared.
    """
    rng = np.random.default_rng(seed)
    draws = [(rng.integers(0, n_pos, n_pos), rng.integers(0, n_neg, n_neg)) for _ in range(n_boot)]
    offsets = np.arange(n_boot)[:, None]

    def counts(idx, n):
        return np.bincount((idx + n * offsets).ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)

    V, W = counts(np.stack([d[0] for d in draws]), n_pos), counts(np.stack([d[1] for d in draws]), n_neg)
    V.flags.writeable = W.flags.writeable = False
    return V, W


def permuted_labels(y, n_permutations: int, seed: int) -> np.ndarray:
    """`n_permutations` label permutations (rows) under `seed`, as floats; shared by every null on these labels."""
    y = np.asarray(y)
    return _permuted_labels(y.tobytes(), y.dtype.str, n_permutations, seed)


@lru_cache(maxsize=16)
def _permuted_labels(data: bytes, dtype: str, n_permutations: int, seed: int) -> np.ndarray:
    y = np.frombuffer(data, dtype=dtype)
    rng = np.random.default_rng(seed)
    Y = np.stack([rng.permutation(y) for _ in range(n_permutations)]).astype(float)
    Y.flags.writeable = False
    return Y


def bootstrap_auc_cis(y, scores, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> np.ndarray:
    """Percentile CIs of AUC over stratified bootstrap resamples (each class resampled in place), one
    (low, high) row per row of `scores` (specifications x items).

    Every row sees the same resamples. A resample's AUC is v' H w / (n_pos n_neg), with v and w
    how often each positive and negative was drawn and H the pairwise comparisons (ties half), so
    all resamples cost one matrix product per row: a per-resample loop costs about a second per gate.
    """
    y = check_binary(y)
    scores = np.atleast_2d(check_finite(scores, "scores"))
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    V, W = _resample_counts(n_pos, n_neg, n_boot, seed)
    alpha = (1 - level) / 2
    out = np.empty((len(scores), 2))
    for row, s in enumerate(scores):
        pos, neg = s[y == 1], s[y == 0]
        H = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        aucs = ((V @ H) * W).sum(axis=1) / (n_pos * n_neg)
        out[row] = np.quantile(aucs, alpha), np.quantile(aucs, 1 - alpha)
    return out


def score_null(y, p, *, auc_min: float, asym_max: float, n_permutations: int = 1000, seed: int = 0) -> dict:
    """Label-permutation null of AUC and balanced asym with the probe's scores held fixed.

    Permuting the evaluation labels asks how often chance alone reaches the observed value
    (`*_null_p`) and how often it clears each bar (`*_null_clear_rate`). The balanced asym is a
    minimum over 91 thresholds, so on small or imbalanced sets chance clears its bar often.
    Vectorized over permutations; the same permutations as `permutation_null(seed=seed)`.
    """
    y = check_binary(y)
    p = check_finite(p, "probabilities")
    Y = permuted_labels(y, n_permutations, seed)
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    null_auc = (Y @ rankdata(p) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    asserted = (p[None, :] > SWEEP[:, None]).astype(float)  # thresholds x items
    p_c = Y @ asserted.T / n_pos
    p_w = (1 - Y) @ asserted.T / n_neg
    asym = np.where(p_c >= BALANCE_MIN_P_ASSERT_CORRECT, p_w - p_c, np.inf).min(axis=1)
    null_asym = asym[np.isfinite(asym)]
    observed = balanced_asymmetry(y, p)
    return {
        "auc_null_p": float(((null_auc >= roc_auc(y, p)).sum() + 1) / (n_permutations + 1)),
        "asym_null_p": float(((null_asym <= observed.asym).sum() + 1) / (len(null_asym) + 1)) if observed else None,
        "auc_null_clear_rate": float(np.mean(null_auc >= auc_min)),
        "asym_null_clear_rate": float(np.mean(null_asym <= asym_max)) if len(null_asym) else None,
    }


def max_auc_null(y, scores, n_permutations: int = 1000, seed: int = 0) -> np.ndarray:
    """Null distribution of the largest AUC over several score vectors of the same items.

    Each permutation of the labels is applied to every row of `scores` (specifications x items)
    at once, so the null keeps the correlation between specifications: the max-statistic
    (Westfall-Young) family-wise null. One matrix product over pre-computed ranks.
    """
    y = check_binary(y)
    scores = np.atleast_2d(check_finite(scores, "scores"))
    Y = permuted_labels(y, n_permutations, seed)
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    aucs = (Y @ rankdata(scores, axis=1).T - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return aucs.max(axis=1)


@dataclass(frozen=True)
class NullResult:
    """A label-permutation null for one statistic.

    `p_value` is the share of permutations at least as extreme as the observed value (with
    the +1 correction); `clear_rate` is the share of permutations that would clear the gate
    themselves: a gate the null clears often is not evidence.
    """

    observed: float
    p_value: float
    clear_rate: float
    n_permutations: int


def permutation_null(
    y,
    statistic: Callable[[np.ndarray], float],
    clears: Callable[[float], bool],
    *,
    greater_is_extreme: bool,
    n_permutations: int = 1000,
    seed: int = 0,
) -> NullResult:
    """Permute the labels, recompute the statistic, and compare with the observed one."""
    y = check_binary(y)
    rng = np.random.default_rng(seed)
    observed = statistic(y)
    null = np.array([statistic(rng.permutation(y)) for _ in range(n_permutations)])
    finite = null[np.isfinite(null)]
    extreme = finite >= observed if greater_is_extreme else finite <= observed
    p_value = (extreme.sum() + 1) / (len(finite) + 1)
    clear_rate = float(np.mean([clears(v) for v in finite])) if len(finite) else float("nan")
    return NullResult(float(observed), float(p_value), clear_rate, n_permutations)


def auc_is_integral(auc: float, n_pos: int, n_neg: int, tol: float = 1e-6) -> bool:
    """An AUC over n_pos x n_neg pairs (ties counted half) times 2*n_pos*n_neg is an integer."""
    scaled = auc * n_pos * n_neg * 2
    return abs(scaled - round(scaled)) < tol * max(1.0, scaled)


def two_by_two(correct, asserted) -> dict[str, float]:
    """The disposition 2x2 (correct/wrong x assert/hedge) and its assertion asymmetry."""
    correct = np.asarray(correct, dtype=bool)
    asserted = np.asarray(asserted, dtype=bool)
    y = check_binary(correct.astype(int))
    return {
        "correct_assert": int((correct & asserted).sum()),
        "correct_hedge": int((correct & ~asserted).sum()),
        "wrong_assert": int((~correct & asserted).sum()),
        "wrong_hedge": int((~correct & ~asserted).sum()),
        "p_assert_correct": float(asserted[correct].mean()),
        "p_assert_wrong": float(asserted[~correct].mean()),
        "asym": asymmetry(y, asserted),
    }
