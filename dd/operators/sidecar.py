"""The paper's confidence-gated read-out (Arc 3): a probe decides when to prefix a hedge.

The base and its response are untouched; a probe over teacher-forced features estimates
P(correct), and a response whose estimate is below the threshold gets a hedge sentence in front.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np

from dd.operators._protocol import KeyMixin
from dd.operators._registry import register_operator

if TYPE_CHECKING:
    from dd.lm import FeatureSet
    from dd.operators._probe import SidecarProbe

Pooling = Literal["last", "last4-mean"]
HEDGE = "I'm not certain about this, so please double-check the following."


@dataclass(frozen=True)
class SidecarSpec:
    """Attributes: C, threshold, random_state (probe); pooling (which feature); hedge (text)."""

    C: float = 1.0
    pooling: Pooling = "last"
    threshold: float = 0.5
    hedge: str = HEDGE
    random_state: int = 0


def pooled(features: FeatureSet, pooling: Pooling) -> np.ndarray:
    """The feature matrix a pooling names: ``h_last`` or the last-4-layer mean at the last token.

    Raises:
        ValueError: for an unknown pooling, or one whose read-out was not extracted.
    """
    if pooling == "last":
        return features.view("last_rendered", "last")
    if pooling == "last4-mean":
        return features.view("last_rendered", "last_n_mean")
    raise ValueError(f"unknown pooling {pooling!r}; use 'last' or 'last4-mean'")


@register_operator("sidecar")
class Sidecar(KeyMixin):
    """Hedge responses whose probe P(correct) is below ``threshold``.

    ``last4-mean`` expects features extracted with ``FeatureSpec(last_n=4)``.
    """

    name = "sidecar"
    kind = "readout"

    def __init__(self, C: float = 1.0, pooling: Pooling = "last", threshold: float = 0.5,
                 hedge: str = HEDGE, random_state: int = 0) -> None:
        if C not in (1.0, 0.1):
            raise ValueError(f"the paper's sidecar uses C in (1.0, 0.1), got {C}")
        if pooling not in ("last", "last4-mean"):
            raise ValueError(f"unknown pooling {pooling!r}; use 'last' or 'last4-mean'")
        self.spec = SidecarSpec(float(C), pooling, float(threshold), hedge, int(random_state))

    def estimator(self) -> SidecarProbe:
        """A fresh, unfitted estimator with this spec's parameters."""
        from dd.operators._probe import SidecarProbe

        return SidecarProbe(C=self.spec.C, threshold=self.spec.threshold, random_state=self.spec.random_state)

    def features(self, features: FeatureSet | np.ndarray) -> np.ndarray:
        """The matrix this sidecar reads (arrays pass through)."""
        return features if isinstance(features, np.ndarray) else pooled(features, self.spec.pooling)

    def fit(self, X: FeatureSet | np.ndarray, y: Any) -> Self:
        """Fit ``estimator_`` (sklearn's convention: it exists only once fitted)."""
        self.estimator_: SidecarProbe = self.estimator().fit(self.features(X), np.asarray(y))
        return self

    def hedged(self, X: FeatureSet | np.ndarray) -> np.ndarray:
        """Boolean mask: which items get the hedge (P(correct) below the threshold)."""
        if not hasattr(self, "estimator_"):
            raise RuntimeError("sidecar is not fitted: call fit(X, y) first")
        return self.estimator_.p_correct(self.features(X)) < self.spec.threshold

    def hedge(self, responses: list[str], X: FeatureSet | np.ndarray) -> list[str]:
        """Responses with the hedge sentence prefixed where P(correct) < threshold."""
        mask = self.hedged(X)
        if len(mask) != len(responses):
            raise ValueError(f"{len(responses)} responses but {len(mask)} feature rows")
        return [f"{self.spec.hedge} {r}" if m else r for r, m in zip(responses, mask, strict=True)]
