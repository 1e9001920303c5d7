"""Wall time of the artifact-only claims run (claims/arc3 + claims/arc1, not heavy) in a fresh process.

Usage: python bench/bench_claims.py [repeats]. Needs DD_ARTIFACTS. Prints one line per run and
the median; the process start-up (pytest, numpy, scikit-learn imports) is included, as a user
would see it.
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "claims/arc3", "claims/arc1", "-m", "not heavy", "-q", "-p", "no:randomly"],
                   cwd=ROOT, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - start


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    times = [one_run() for _ in range(repeats)]
    for t in times:
        print(f"run: {t:.2f} s")
    print(f"median: {statistics.median(times):.2f} s over {repeats} runs")


if __name__ == "__main__":
    main()
