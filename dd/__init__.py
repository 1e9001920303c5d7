"""dd: the falsification suite for behavioural-editing claims on small language models.

The package is importable without pytest and without torch: model code lives in modules that
import torch lazily, so artifact-only claims stay fast.
"""

__version__ = "0.1.0"
