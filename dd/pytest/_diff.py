"""What changed between two dd-report/1 files: verdicts, outcomes and numbers, entry by entry.

Entries are matched by nodeid. A verdict change is what a CI job gating a pull request fails
on; outcome and number changes are reported beside it. Numbers compare with a relative
tolerance, since a float printed through JSON round-trips exactly but a recomputation on another
machine may move in the last digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class ReportDiff:
    """Changes from report A to report B."""

    verdicts: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)

    @property
    def verdict_changed(self) -> bool:
        return bool(self.verdicts)

    def lines(self) -> list[str]:
        out = []
        for title, items in (("verdict changes", self.verdicts), ("outcome changes", self.outcomes),
                             ("number changes", self.numbers), ("only in A", self.only_a), ("only in B", self.only_b)):
            if items:
                out.append(f"{title} ({len(items)}):")
                out += [f"  {item}" for item in items]
        return out or ["no changes"]


def _differs(a, b, rel: float) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return not math.isclose(a, b, rel_tol=rel, abs_tol=rel)
    return a != b


def diff_reports(a: dict, b: dict, *, rel: float = 1e-9) -> ReportDiff:
    """Compare report `a` (the reference, e.g. main's) with report `b` (the candidate)."""
    ea = {e["nodeid"]: e for e in a["results"]}
    eb = {e["nodeid"]: e for e in b["results"]}
    out = ReportDiff(only_a=sorted(set(ea) - set(eb)), only_b=sorted(set(eb) - set(ea)))
    for nodeid in sorted(set(ea) & set(eb)):
        x, y = ea[nodeid], eb[nodeid]
        if x["verdict"] != y["verdict"]:
            out.verdicts.append(f"{nodeid}: {x['verdict']} -> {y['verdict']}")
        if x["outcome"] != y["outcome"]:
            out.outcomes.append(f"{nodeid}: {x['outcome']} -> {y['outcome']}")
        for key in sorted(set(x["metrics"]) | set(y["metrics"])):
            va, vb = x["metrics"].get(key), y["metrics"].get(key)
            if _differs(va, vb, rel):
                out.numbers.append(f"{nodeid}: {key} {va!r} -> {vb!r}")
    return out
