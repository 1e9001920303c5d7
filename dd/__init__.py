"""dd: the falsification suite for behavioural-editing claims on small language models.

The package is importable without pytest and without torch: model code lives in modules that
import torch lazily, so artifact-only claims stay fast. The subpackages follow the flow of data
(README, "Architecture"). The verdict types are also reachable here (`dd.VerdictFailed`), loaded
on first use so that `import dd` stays free of numpy and scikit-learn.
"""

__version__ = "0.1.0"
__all__ = ["Verdict", "VerdictFailed", "__version__"]


def __getattr__(name: str):
    if name in ("Verdict", "VerdictFailed"):
        from dd.protocol import _verdict

        return getattr(_verdict, name)
    raise AttributeError(f"module 'dd' has no attribute {name!r}")
