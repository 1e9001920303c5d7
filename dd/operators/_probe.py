"""The sidecar's estimator: the paper's probe plus the threshold that decides to hedge.

Kept apart from ``sidecar.py`` because importing scikit-learn costs over a second, and listing
operators should not pay it.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from dd.protocol import check_binary, check_finite, make_probe


class SidecarProbe(ClassifierMixin, BaseEstimator):
    """StandardScaler + LogisticRegression(C) on features; P(correct) < threshold means hedge.

    Args:
        C: inverse regularization strength (the paper used 1.0 and 0.1).
        threshold: hedge when P(correct) is below it.
        random_state: passed to LogisticRegression.

    Attributes:
        probe_: the fitted pipeline.
        classes_: ``[0, 1]`` (1 = correct).
        n_features_in_: feature width seen in ``fit``.
    """

    def __init__(self, C: float = 1.0, threshold: float = 0.5, random_state: int = 0) -> None:
        self.C = C
        self.threshold = threshold
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Fit on features X (n, d) and labels y (1 = correct)."""
        X = check_finite(X)
        y = check_binary(y)
        self.probe_ = make_probe(self.C, random_state=self.random_state).fit(X, y)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Columns: P(wrong), P(correct)."""
        check_is_fitted(self, "probe_")
        return self.probe_.predict_proba(check_finite(X))

    def p_correct(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X)[:, 1]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """1 where the response is asserted as is (P(correct) >= threshold), 0 where hedged."""
        return (self.p_correct(X) >= self.threshold).astype(int)
