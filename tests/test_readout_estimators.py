"""Read-out estimators keep scikit-learn's contract, checked by sklearn itself.

The five-step protocol clones, cross-validates and permutation-tests a read-out's estimator, so
it must be an sklearn estimator in full: constructors only store parameters, fitted attributes end
in ``_``, ``clone`` gives an unfitted twin. Every registered read-out operator's estimator runs
``parametrize_with_checks``; a check it fails on purpose is listed with its reason, strictly, so
the day it passes the reason is re-read.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from dd.operators import Sidecar, get_operator, operator_factory, operator_names
from dd.protocol import OneClassError
from helpers import ROOT

READOUTS = [name for name in operator_names() if operator_factory(name).kind == "readout"]


def readout_estimators() -> list[BaseEstimator]:
    """Each registered read-out's estimator at its defaults, and the sidecar hedging at 0.3."""
    return [get_operator(name).estimator() for name in READOUTS] + [Sidecar(C=0.1, threshold=0.3).estimator()]


def expected_failed_checks(estimator: BaseEstimator) -> dict[str, str]:
    if getattr(estimator, "threshold", 0.5) != 0.5:
        return {"check_classifiers_train": "predict hedges below `threshold`, not below P = 0.5, so with "
                                           "threshold 0.3 it differs from argmax(predict_proba) by design"}
    return {}


@parametrize_with_checks(readout_estimators(), expected_failed_checks=expected_failed_checks, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_sidecar_is_a_registered_readout():
    assert "sidecar" in READOUTS


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n // 2, int), np.zeros(n // 2, int)]
    return rng.normal(size=(n, 4)) + 2.0 * y[:, None], y


def test_probe_refuses_one_class_and_names_the_bad_item():
    X, y = blobs()
    probe = Sidecar().estimator()
    with pytest.raises(OneClassError, match="one class"):
        probe.fit(X, np.ones_like(y))
    X[7, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values in 1 item.*index 7"):
        probe.fit(X, y)


def test_sidecar_operator_is_fitted_only_after_fit():
    side = Sidecar()
    assert not hasattr(side, "estimator_")
    X, y = blobs()
    assert side.fit(X, y).estimator_.n_features_in_ == 4
    assert not hasattr(clone(side.estimator_), "probe_")


def test_the_examples_estimator_survives_clone(monkeypatch):
    """The README's worked read-out composes sklearn's own estimators; clone must keep it unfitted."""
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "dd_mlp_probe"))
    from dd_mlp_probe import MLPProbe

    estimator = MLPProbe(hidden=8).estimator()
    twin = clone(estimator)
    assert twin.get_params()["mlpclassifier__hidden_layer_sizes"] == (8,)
    X, y = blobs()
    twin.fit(X, y)
    assert not hasattr(estimator[-1], "coefs_") and hasattr(twin[-1], "coefs_")
