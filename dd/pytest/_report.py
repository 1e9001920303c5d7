"""The `--dd-report` JSON (schema dd-report/1) and its validation.

One entry per claim or pipeline test parametrization. Metrics a test computed go in `metrics`;
numbers quoted from the paper only in `paper`. Tensors never enter the report.
"""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path

import dd

SCHEMA = "dd-report/1"
SOURCES = ("recomputed", "summary", "skipped")
VERDICTS = ("pass", "fail", "inconclusive")
OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "skipped", "error")
ENTRY_KEYS = (
    "nodeid", "claim", "base", "operator", "step", "source",
    "metrics", "paper", "gate", "verdict", "reasons", "outcome",
)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, str | None]:
    """Versions read from package metadata, so writing a report never imports torch."""
    return {
        "dd": dd.__version__,
        "python": platform.python_version(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "sklearn": _version("scikit-learn"),
    }


def jsonable(value):
    """Plain JSON values: numpy scalars become Python numbers, NaN becomes None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"report values must be JSON scalars, lists or dicts, not {type(value).__name__}")


def build(entries: list[dict]) -> dict:
    return {"schema": SCHEMA, "environment": environment(), "results": sorted(entries, key=lambda e: e["nodeid"])}


def validate(report: dict) -> list[str]:
    """Problems with a report against the contract; empty when it conforms."""
    problems = []
    if report.get("schema") != SCHEMA:
        problems.append(f"schema is {report.get('schema')!r}, not {SCHEMA!r}")
    env = report.get("environment", {})
    for key in ("dd", "python", "torch", "transformers", "sklearn"):
        if key not in env:
            problems.append(f"environment lacks {key!r}")
    seen = set()
    for i, entry in enumerate(report.get("results", [])):
        where = f"results[{i}] ({entry.get('nodeid')})"
        missing = [k for k in ENTRY_KEYS if k not in entry]
        if missing:
            problems.append(f"{where} lacks {missing}")
            continue
        if entry["nodeid"] in seen:
            problems.append(f"{where} duplicates a nodeid")
        seen.add(entry["nodeid"])
        for key, allowed in (("source", SOURCES), ("verdict", VERDICTS), ("outcome", OUTCOMES)):
            if entry[key] not in allowed:
                problems.append(f"{where} {key} {entry[key]!r} not in {allowed}")
        for key in ("metrics", "paper", "gate"):
            if not isinstance(entry[key], dict):
                problems.append(f"{where} {key} is not an object")
        if not isinstance(entry["reasons"], list):
            problems.append(f"{where} reasons is not a list")
        if entry["source"] == "skipped" and entry["metrics"]:
            problems.append(f"{where} is skipped but carries metrics")
    return problems


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


def write(path: Path, entries: list[dict]) -> dict:
    report = build(entries)
    write_atomic(path, json.dumps(report, indent=1, sort_keys=False) + "\n")
    return report
