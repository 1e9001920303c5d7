"""Judge drift: does a fresh judge run still agree with a golden run, axis by axis?

Runs are compared on the binarized labels a claim uses (v4 axes at >= 4, verbal ASSERT, cert
class), item by item via the content hash, so a flip is named by item and axis. Agreement and
Cohen's kappa come per axis; the check passes when no axis flips more than `tolerance` of the
items both runs labelled. Items one run failed on are counted, not compared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dd.judges._protocol import V4_AXES, JudgeError, Outcome, V4Label, VerbalLabel

Fields = Mapping[str, Any]


def label_fields(outcome: Outcome) -> dict[str, Any] | None:
    """The comparable fields of one outcome (None for an error): v4 axes binarized, cert, verbal."""
    if isinstance(outcome, JudgeError):
        return None
    if isinstance(outcome, V4Label):
        out: dict[str, Any] = {axis: outcome.binary(axis) for axis in V4_AXES}
        out["cert"] = outcome.cert
        return out
    if isinstance(outcome, VerbalLabel):
        return {"verbal": outcome.label}
    return {"correct": int(outcome.correct)}


def fields_by_hash(outcomes: Mapping[str, Outcome]) -> dict[str, dict[str, Any] | None]:
    """`JudgeRun.by_hash()` -> item hash -> comparable fields (None where the judge failed)."""
    return {h: label_fields(o) for h, o in outcomes.items()}


@dataclass(frozen=True)
class Flip:
    item: str
    axis: str
    golden: Any
    fresh: Any


@dataclass(frozen=True)
class AxisDrift:
    axis: str
    n: int
    agreement: float
    kappa: float
    flips: int


@dataclass(frozen=True)
class DriftReport:
    """Per-axis agreement and kappa, the flipped (item, axis) pairs, and the verdict."""

    tolerance: float
    axes: tuple[AxisDrift, ...]
    flipped: tuple[Flip, ...]
    only_golden: tuple[str, ...] = ()
    only_fresh: tuple[str, ...] = ()
    newly_failed: tuple[str, ...] = ()
    newly_labelled: tuple[str, ...] = ()
    failed_axes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not self.failed_axes

    def summary(self) -> str:
        head = "judge drift: PASS" if self.passed else f"judge drift: FAIL on {', '.join(self.failed_axes)}"
        lines = [f"{head} (tolerance {self.tolerance:.3f} of items per axis)"]
        for ax in self.axes:
            lines.append(
                f"  {ax.axis}: n={ax.n} agreement={ax.agreement:.4f} kappa={ax.kappa:.4f} flips={ax.flips}"
            )
        for flip in self.flipped:
            lines.append(f"  flipped item {flip.item} axis {flip.axis}: {flip.golden!r} -> {flip.fresh!r}")
        if self.newly_failed:
            lines.append(f"  judge failed on {len(self.newly_failed)} item(s) labelled in golden: "
                         f"{', '.join(self.newly_failed)}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "tolerance": self.tolerance,
            "axes": {
                a.axis: {"n": a.n, "agreement": a.agreement, "kappa": a.kappa, "flips": a.flips} for a in self.axes
            },
            "flipped": [{"item": f.item, "axis": f.axis} for f in self.flipped],
            "newly_failed": list(self.newly_failed),
        }


def _kappa(golden: list[Any], fresh: list[Any]) -> float:
    if not golden:
        return math.nan
    if len(set(golden) | set(fresh)) == 1:
        return 1.0  # both constant and equal: perfect agreement (sklearn would give NaN)
    from sklearn.metrics import cohen_kappa_score  # lazy: sklearn costs a second to import

    return float(cohen_kappa_score(golden, fresh))


def compare_runs(
    golden: Mapping[str, Fields | None],
    fresh: Mapping[str, Fields | None],
    *,
    tolerance: float = 0.0,
    fail_on_new_errors: bool = True,
) -> DriftReport:
    """Compare two runs given as item hash -> fields (see `fields_by_hash`).

    Args:
        golden: the reference run.
        fresh: the run under test.
        tolerance: the largest share of compared items that may flip on any one axis.
        fail_on_new_errors: an item golden labelled but fresh failed on fails the check too.
    """
    shared = sorted(set(golden) & set(fresh))
    both = [h for h in shared if golden[h] is not None and fresh[h] is not None]
    newly_failed = tuple(h for h in shared if golden[h] is not None and fresh[h] is None)
    newly_labelled = tuple(h for h in shared if golden[h] is None and fresh[h] is not None)
    axes = sorted({a for h in both for a in golden[h]} & {a for h in both for a in fresh[h]})  # type: ignore[union-attr]
    drifts, flips, failed = [], [], []
    for axis in axes:
        pairs = [(h, golden[h][axis], fresh[h][axis]) for h in both if axis in golden[h] and axis in fresh[h]]  # type: ignore[index,operator]
        g = [p[1] for p in pairs]
        f = [p[2] for p in pairs]
        axis_flips = [Flip(h, axis, a, b) for h, a, b in pairs if a != b]
        n = len(pairs)
        agreement = 1.0 - len(axis_flips) / n if n else math.nan
        drifts.append(AxisDrift(axis, n, agreement, _kappa(g, f), len(axis_flips)))
        flips.extend(axis_flips)
        if n and len(axis_flips) / n > tolerance:
            failed.append(axis)
    if fail_on_new_errors and newly_failed:
        failed.append("judge_errors")
    return DriftReport(
        tolerance=tolerance,
        axes=tuple(drifts),
        flipped=tuple(flips),
        only_golden=tuple(sorted(set(golden) - set(fresh))),
        only_fresh=tuple(sorted(set(fresh) - set(golden))),
        newly_failed=newly_failed,
        newly_labelled=newly_labelled,
        failed_axes=tuple(failed),
    )


def compare_judge_runs(
    golden: Any, fresh: Any, *, tolerance: float = 0.0, fail_on_new_errors: bool = True
) -> DriftReport:
    """`compare_runs` on two `JudgeRun`s (anything with `.by_hash()`)."""
    return compare_runs(
        fields_by_hash(golden.by_hash()),
        fields_by_hash(fresh.by_hash()),
        tolerance=tolerance,
        fail_on_new_errors=fail_on_new_errors,
    )
