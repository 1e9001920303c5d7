"""Cold and warm runs of the claims, before and after a change, in one run on one machine.

Usage: python bench/bench_warm_run.py [--before REF] [--repeats N] [--cache DIR] [--out FILE]

Needs DD_ARTIFACTS. Each run is a fresh `pytest` process (start-up included, as a user sees it)
with a Markdown table at the end; `--out` also writes the numbers as JSON. Two selections:

- artifact-only: `claims/arc3 claims/arc1 -m "not heavy"` (the paper's released files, no model);
- claims: `pytest claims` (with the smollm2-135m claims, which read cached features).

For each code tree (`--before REF`, checked out in a temporary git worktree, and this working
tree) the first run primes what that tree caches and the next `--repeats` runs are warm. A cold
run of the artifact-only selection starts from an empty cache; a cold run of `pytest claims`
starts from a cache holding the features but nothing else (every kind of `--cache` but `fits`,
linked into a temporary root), since extracting the features takes most of an hour on 2 cores.
The feature cache is shared (the trees key features alike), so run `pytest claims` once first or
the first run extracts them.
Python's bytecode cache is on, as it is for a user (a warm run imports compiled modules); CPU
time (user + sys of the pytest process) is reported next to wall time, which other work on the
machine inflates.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SELECTIONS = {"artifact-only": ["claims/arc3", "claims/arc1", "-m", "not heavy"], "claims": ["claims"]}


def timed_run(tree: Path, selection: list[str], cache: Path) -> dict:
    """One pytest process on `tree`'s code: wall and CPU seconds, and pytest's summary line."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DD_CACHE": str(cache), "PYTHONPATH": str(tree)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    command = [sys.executable, "-m", "pytest", *selection, "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    proc = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"pytest {' '.join(selection)} on {tree} exited {proc.returncode}:\n{proc.stdout[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "summary": proc.stdout.strip().splitlines()[-1]}


def worktree(ref: str, parent: Path) -> Path:
    """`ref` checked out apart; `dd/fixtures` linked as the installed package maps it (setuptools package-dir)."""
    path = parent / "before"
    subprocess.run(["git", "worktree", "add", "--detach", str(path), ref], cwd=ROOT, check=True, capture_output=True)
    link = path / "dd" / "fixtures"
    if not link.exists():
        link.symlink_to(path / "fixtures", target_is_directory=True)
    return path


def features_only(cache: Path, parent: Path) -> Path:
    """A cache root that holds `cache`'s entries (linked) except the fits: what a run costs with only features kept."""
    root = parent / "features-only"
    root.mkdir()
    for entry in cache.iterdir():
        if entry.name != "fits":
            (root / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return root


def median_of(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="HEAD", help="git ref of the code to compare against (default HEAD)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("DD_CACHE", ROOT / ".dd-cache")),
                        help="the cache holding the features (shared by both trees)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict = {"machine": f"{os.cpu_count()} CPUs", "before": args.before, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="dd-bench-") as tmp:
        trees = {"before": worktree(args.before, Path(tmp)), "after": ROOT}
        try:
            for name, tree in trees.items():
                cold = timed_run(tree, SELECTIONS["artifact-only"], Path(tmp) / f"cold-{name}")
                results["runs"][f"{name}/artifact-only/cold"] = [cold]
                if name == "after":
                    cold = timed_run(tree, SELECTIONS["claims"], features_only(args.cache, Path(tmp)))
                    results["runs"]["after/claims/cold"] = [cold]
                for selection, args_ in SELECTIONS.items():
                    prime = timed_run(tree, args_, args.cache)
                    warm = [timed_run(tree, args_, args.cache) for _ in range(args.repeats)]
                    results["runs"][f"{name}/{selection}/first"] = [prime]
                    results["runs"][f"{name}/{selection}/warm"] = warm
                    print(f"{name:6} {selection:13} first {prime['wall_s']:6.2f} s, warm median "
                          f"{median_of(warm, 'wall_s'):6.2f} s wall, {median_of(warm, 'cpu_s'):6.2f} s CPU "
                          f"({warm[-1]['summary']})", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(trees["before"])], cwd=ROOT,
                           capture_output=True)
    print("\n| selection | code | cold | first run | warm median wall | warm median CPU |")
    print("|---|---|---|---|---|---|")
    for selection in SELECTIONS:
        for name in ("before", "after"):
            runs = results["runs"]
            cold = runs.get(f"{name}/{selection}/cold")
            cold_s = f"{cold[0]['wall_s']:.2f} s" if cold else "-"
            print(f"| {selection} | {name} | {cold_s} | "
                  f"{runs[f'{name}/{selection}/first'][0]['wall_s']:.2f} s | "
                  f"{median_of(runs[f'{name}/{selection}/warm'], 'wall_s'):.2f} s | "
                  f"{median_of(runs[f'{name}/{selection}/warm'], 'cpu_s'):.2f} s |")
    print()
    for selection in SELECTIONS:
        cold = results["runs"][f"after/{selection}/cold"][0]["wall_s"]
        warm = median_of(results["runs"][f"after/{selection}/warm"], "wall_s")
        print(f"{selection}, after: cold {cold:.2f} s / warm {warm:.2f} s = {cold / warm:.1f}x")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
