"""A small MLP probe as a read-out operator, registered through the `dd.operators` entry point.

`claims` is what the operator's authors claim per protocol step; `pytest claims/pipeline -k
mlp-probe` holds it to exactly that, on every feature source the run has.
"""

from dataclasses import dataclass

from dd.operators import KeyMixin


@dataclass(frozen=True)
class MLPProbeSpec:
    hidden: int = 32
    alpha: float = 1e-2
    random_state: int = 0


class MLPProbe(KeyMixin):
    name = "mlp-probe"
    kind = "readout"
    claims = {"cv": "pass", "fresh": "pass"}

    def __init__(self, hidden: int = 32, alpha: float = 1e-2, random_state: int = 0) -> None:
        self.spec = MLPProbeSpec(hidden, alpha, random_state)

    def estimator(self):
        """An unfitted sklearn classifier with predict_proba: standardize, then a one-layer MLP."""
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        mlp = MLPClassifier((self.spec.hidden,), alpha=self.spec.alpha, max_iter=2000,
                            random_state=self.spec.random_state)
        return make_pipeline(StandardScaler(), mlp)
