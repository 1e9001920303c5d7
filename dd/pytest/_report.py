"""The `--dd-report` JSON (schema dd-report/1), its validation, and the terminal summary table.

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
OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "skipped")
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


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


HEADLINE_KEYS = ("auc", "balanced_asym", "asym", "pos_rate", "n_pos", "delta")


def headline(entry: dict) -> tuple[str, str]:
    """(measured, paper): up to two numbers the paper also quotes, headline metrics first."""
    metrics, paper = entry["metrics"], entry["paper"]
    shared = [k for k in paper if k in metrics]
    ranked = [k for k in HEADLINE_KEYS if k in shared] + [k for k in shared if k not in HEADLINE_KEYS]
    keys = (ranked or [k for k in HEADLINE_KEYS if k in metrics] or list(metrics))[:2]
    measured = " ".join(f"{k}={_fmt(metrics[k])}" for k in keys if k in metrics)
    quoted = " ".join(f"{k}={_fmt(paper[k])}" for k in (keys if ranked else list(paper)[:2]) if k in paper)
    return measured or "-", quoted or "-"


def summary_lines(entries: list[dict]) -> list[str]:
    """The end-of-run table: claim, base, operator, measured, paper, gate, verdict, outcome."""
    rows = [("claim", "base", "operator", "measured", "paper", "gate", "verdict", "outcome")]
    for e in sorted(entries, key=lambda e: (e["claim"], e["base"] or "", e["nodeid"])):
        measured, quoted = headline(e)
        gate = ",".join(f"{k}={_fmt(v)}" for k, v in e["gate"].items() if k not in ("name", "version")) or "-"
        rows.append((e["claim"], e["base"] or "-", e["operator"] or "-", measured, quoted, gate, e["verdict"], e["outcome"]))
    caps = (34, 14, 18, 40, 36, 24, 12, 8)
    cells = [[c if len(c) <= cap else c[: cap - 1] + "~" for c, cap in zip(row, caps)] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(caps))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
