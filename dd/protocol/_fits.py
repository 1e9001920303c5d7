"""A gate's costly pure computations (probe fits, bootstrap CIs, KS tests), memoized on content.

A run asks the same question of the same split many times: the gate, its specification curve,
the surface guard, the group guard and steps 3-5 all cross-validate or transfer the same
features at the same C. Keying on content (not identity) lets the two C parametrizations of a
claim share one grid. A read-out operator's estimator is keyed by its class and every parameter
(`get_params(deep=True)`): sklearn's `clone` contract makes those the whole of an unfitted probe.

Fits of the paper's probe, bootstrap CIs and KS tests are also kept in the cache (kind ``fits``)
once `keep_fits_in` names one, so a warm re-run fits and resamples nothing and imports neither
scikit-learn nor scipy.stats (about three seconds of start-up here). Their key holds the
arrays' sha256 (with shape and dtype), the settings, the versions of scikit-learn, scipy and
numpy and the sha256 of the statistics module's source: a change to any of them is a miss, never
a stale hit. A read-out operator's own estimator stays in memory only: its code is the user's,
and no key here could tell when it changed.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from dd.core import Cache, CacheKey
from dd.protocol import _stats as stats

_MEMO: dict[tuple, Any] = {}
_STORE: list[Cache] = []


def keep_fits_in(store: Cache | None) -> None:
    """Keep fits of the paper's probe in `store` as well as in memory (None: memory only)."""
    _STORE[:] = [] if store is None else [store]


def _digest(a) -> str:
    if a is None:
        return "-"
    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()


def _probe_key(C: float, estimator) -> tuple:
    if estimator is None:
        return ("paper", float(C))
    params = sorted((k, repr(v)) for k, v in estimator.get_params(deep=True).items())
    return (f"{type(estimator).__module__}.{type(estimator).__qualname__}", tuple(params))


@cache
def _code_parts() -> dict[str, str]:
    """What a stored fit's result depends on besides its inputs."""
    return {"stats_sha256": hashlib.sha256(Path(stats.__file__).read_bytes()).hexdigest(),
            "sklearn": metadata.version("scikit-learn"), "scipy": metadata.version("scipy"),
            "numpy": np.__version__}


def _memoized(parts: dict[str, Any], storable: bool, compute, encode, decode):
    """`compute()` once per content key: from memory, else from the store (when `storable`), else computed."""
    key = tuple(sorted(parts.items()))
    if key in _MEMO:
        return _MEMO[key]
    if storable and _STORE:
        entry = CacheKey("fits", {**parts, **_code_parts()})
        result = decode(_STORE[0].get_or_build(entry, lambda: encode(compute()), needs_model=False))
    else:
        result = compute()
    _MEMO[key] = result
    return result


def cross_validate(X, y, C: float = 1.0, n_splits: int = 5, random_state: int = stats.CV_RANDOM_STATE, *,
                   estimator=None, groups=None) -> stats.CVResult:
    """`stats.cross_validate` (stratified k-fold; group-aware with `groups`), memoized."""
    groups_key = None if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    parts = {"fit": "cv", "X": _digest(X), "y": _digest(y), "groups": _digest(groups_key),
             "probe": repr(_probe_key(C, estimator)), "n_splits": n_splits, "random_state": random_state}
    return _memoized(
        parts, estimator is None,
        lambda: stats.cross_validate(X, y, C, n_splits, random_state, estimator=estimator, groups=groups),
        lambda r: {"oof": r.oof, "pooled_auc": np.array(r.pooled_auc), "fold_aucs": np.array(r.fold_aucs)},
        lambda d: stats.CVResult(d["oof"], float(d["pooled_auc"]), tuple(float(a) for a in d["fold_aucs"])),
    )


def fit_predict(X_train, y_train, X_eval, C: float = 1.0, *, estimator=None) -> np.ndarray:
    """`stats.fit_predict` (P(correct) on X_eval from a probe fit on the training split), memoized."""
    parts = {"fit": "transfer", "X": _digest(X_train), "y": _digest(y_train), "X_eval": _digest(X_eval),
             "probe": repr(_probe_key(C, estimator))}
    return _memoized(parts, estimator is None,
                     lambda: stats.fit_predict(X_train, y_train, X_eval, C, estimator=estimator),
                     lambda p: {"p": p}, lambda d: d["p"])


def ks_2samp(a, b) -> tuple[float, float]:
    """scipy's two-sample Kolmogorov-Smirnov test (statistic, p-value), memoized."""

    def compute() -> tuple[float, float]:
        from scipy.stats import ks_2samp as scipy_ks_2samp

        result = scipy_ks_2samp(a, b)
        return float(result.statistic), float(result.pvalue)

    return _memoized({"fit": "ks_2samp", "a": _digest(a), "b": _digest(b)}, True, compute,
                     lambda r: {"ks": np.array(r)}, lambda d: (float(d["ks"][0]), float(d["ks"][1])))


def bootstrap_auc_cis(y, scores, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> np.ndarray:
    """`stats.bootstrap_auc_cis` (every row's percentile AUC CI over shared resamples), memoized."""
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    parts = {"fit": "bootstrap_auc_cis", "y": _digest(np.asarray(y)), "scores": _digest(scores), "n_boot": n_boot,
             "level": float(level), "seed": seed}
    return _memoized(parts, True, lambda: stats.bootstrap_auc_cis(y, scores, n_boot, level, seed),
                     lambda cis: {"cis": cis}, lambda d: d["cis"])


def bootstrap_auc_ci(y, scores, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile CI of AUC over stratified bootstrap resamples, memoized (`bootstrap_auc_cis` of one row)."""
    (lo, hi), = bootstrap_auc_cis(y, np.asarray(scores, dtype=float)[None, :], n_boot, level, seed)
    return float(lo), float(hi)
