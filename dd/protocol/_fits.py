"""Probe fits memoized on the arrays' content and the probe's parameters.

A run asks the same question of the same split many times: the gate, its specification curve,
the surface guard, the group guard and steps 3-5 all cross-validate or transfer the same
features at the same C. Keying on content (not identity) lets the two C parametrizations of a
claim share one grid. A read-out operator's estimator is keyed by its class and every parameter
(`get_params(deep=True)`): sklearn's `clone` contract makes those the whole of an unfitted probe.
"""

from __future__ import annotations

import hashlib

import numpy as np

from dd.protocol import _stats as stats

_CV: dict[tuple, stats.CVResult] = {}
_FIT: dict[tuple, np.ndarray] = {}


def _digest(*arrays) -> tuple[str, ...]:
    return tuple("-" if a is None else hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()
                 for a in arrays)


def _probe_key(C: float, estimator) -> tuple:
    if estimator is None:
        return ("paper", C)
    params = sorted((k, repr(v)) for k, v in estimator.get_params(deep=True).items())
    return (f"{type(estimator).__module__}.{type(estimator).__qualname__}", tuple(params))


def cross_validated(X, y, C: float, random_state: int = stats.CV_RANDOM_STATE, *, groups=None,
                    estimator=None) -> stats.CVResult:
    """`stats.cross_validate`, memoized."""
    groups_key = None if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    key = ("cv", *_digest(X, y, groups_key), _probe_key(C, estimator), random_state)
    if key not in _CV:
        _CV[key] = stats.cross_validate(X, y, C, random_state=random_state, estimator=estimator, groups=groups)
    return _CV[key]


def transferred(X_train, y_train, X_eval, C: float, *, estimator=None) -> np.ndarray:
    """`stats.fit_predict`, memoized."""
    key = ("fit", *_digest(X_train, y_train, X_eval), _probe_key(C, estimator))
    if key not in _FIT:
        _FIT[key] = stats.fit_predict(X_train, y_train, X_eval, C, estimator=estimator)
    return _FIT[key]
