"""The sidecar's estimator: the paper's probe plus the threshold that decides to hedge.

Kept apart from ``sidecar.py`` because importing scikit-learn costs over a second, and listing
operators should not pay it. It keeps sklearn's contract (checked by ``parametrize_with_checks``),
so the protocol's CV, permutation tests and ``clone`` treat it like any other classifier.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import Tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from dd.protocol import OneClassError, check_finite, make_probe


class SidecarProbe(ClassifierMixin, BaseEstimator):
    """StandardScaler + LogisticRegression(C) on features; P(correct) < threshold means hedge.

    A binary classifier: ``classes_[1]`` (1 with the suite's 0/1 labels) is "correct".

    Args:
        C: inverse regularization strength (the paper used 1.0 and 0.1).
        threshold: hedge when P(correct) is below it.
        random_state: passed to LogisticRegression.

    Attributes:
        probe_: the fitted pipeline.
        classes_: the two labels seen in ``fit``, sorted.
        n_features_in_: feature width seen in ``fit``.
    """

    def __init__(self, C: float = 1.0, threshold: float = 0.5, random_state: int = 0) -> None:
        self.C = C
        self.threshold = threshold
        self.random_state = random_state

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # P(correct) is a two-class question
        return tags

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Fit on features X (n, d) and labels y (two classes; 1 = correct).

        Raises:
            ValueError: for NaN/inf features (naming the first bad item), or labels that are not
                two classes (``OneClassError`` for one: the paper's statistics are undefined).
        """
        X, y = validate_data(self, X, y, ensure_all_finite=False)
        X = check_finite(X)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) == 1:
            raise OneClassError(f"labels hold one class ({self.classes_[0]!r}): a probe needs both")
        if len(self.classes_) > 2:
            raise ValueError(f"Only binary classification is supported (correct or not); labels hold "
                             f"{len(self.classes_)} classes")
        self.probe_ = make_probe(self.C, random_state=self.random_state).fit(X, y)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Columns: P(wrong), P(correct)."""
        check_is_fitted(self)
        X = check_finite(validate_data(self, X, reset=False, ensure_all_finite=False))
        return self.probe_.predict_proba(X)

    def p_correct(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X)[:, 1]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``classes_[1]`` where the response is asserted as is (P(correct) >= threshold), else ``classes_[0]``."""
        asserted = self.p_correct(X) >= self.threshold
        return self.classes_[asserted.astype(int)]
