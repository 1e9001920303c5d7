"""A warm re-run of the frozen-base claims loads no model and runs no forward pass.

Usage: python bench/bench_warm_claims.py [BASE]   (default smollm2-135m; needs a cold run first:
`pytest claims/arc3 -k smollm2-135m`). Runs the claims in this process with
`--dd-offline` (a cache miss that would need the model is an error) and counts model loads and
forward passes, then prints the wall time.
"""

import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


class Counter:
    """Wraps the two entry points of model work: loading a model and extracting features."""

    def __init__(self) -> None:
        self.loads = 0
        self.extractions = 0

    def pytest_configure(self, config) -> None:
        from dd.lm import _features, _models

        load, extract = _models.load_base, _features.extract_features

        def counted_load(*args, **kwargs):
            self.loads += 1
            return load(*args, **kwargs)

        def counted_extract(*args, **kwargs):
            self.extractions += 1
            return extract(*args, **kwargs)

        _models.load_base = counted_load
        _features.extract_features = counted_extract


def main() -> int:
    base = sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m"
    counter = Counter()
    start = time.perf_counter()
    code = pytest.main([str(ROOT / "claims/arc3/test_frozen_bases.py"), "-k", base, "--dd-offline",
                        "-q", "-p", "no:randomly"], plugins=[counter])
    wall = time.perf_counter() - start
    print(f"warm run of {base}: {wall:.1f} s, exit {code}, model loads {counter.loads}, "
          f"feature extractions {counter.extractions}")
    return 0 if code in (0, 1) and counter.loads == 0 and counter.extractions == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
