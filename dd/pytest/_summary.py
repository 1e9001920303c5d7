"""The end-of-run terminal summary: compact (grouped by arc, 120 columns) or full.

The compact table shows what a reader needs first: errors, then each arc's claims with the
measured and the paper's numbers side by side, rounded to what they can carry, then the skipped
claims folded into a few lines by what would enable them. `--dd-table=full` keeps one row per
entry with every column uncut.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

WIDTH = 120
HEADLINE_KEYS = ("auc", "balanced_asym", "asym", "pos_rate", "n_pos", "delta")
# Short names for the metrics the table shows most; the report keeps the full names.
SHORT = {"balanced_asym": "asym", "cv_mean_fold_auc": "cv_fold_auc", "clean_positives": "clean"}
SHORT_OPERATOR = (("sidecar-logreg", "sidecar"),)
MEASURED_WIDTH = 24
# The verdict column also says how pytest took it, where that is not the plain pairing.
OUTCOME_NOTE = {"passed": "", "xfailed": " (xfail)", "skipped": " (skip)", "failed": " FAILED", "xpassed": " XPASS"}
UNAVAILABLE = re.compile(r"^base (\S+) is not available: pass --dd-model")
SLOW = "marked slow"


def fmt_number(value) -> str:
    """A number rounded to what it can carry: counts whole, shares and AUCs to three decimals."""
    if isinstance(value, list):
        return ",".join(fmt_number(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.4g}"


def headline_keys(entry: dict) -> list[str]:
    """Up to two metrics to show: those the paper also quotes, headline metrics first."""
    metrics, paper = entry["metrics"], entry["paper"]
    shared = [k for k in paper if k in metrics]
    ranked = [k for k in HEADLINE_KEYS if k in shared] + [k for k in shared if k not in HEADLINE_KEYS]
    return (ranked or [k for k in HEADLINE_KEYS if k in metrics] or list(metrics))[:2]


def _pair(name: str, value) -> str:
    return f"{elide(SHORT.get(name, name), 12)} {fmt_number(value)}"


def measured_and_paper(entry: dict, width: int = MEASURED_WIDTH) -> tuple[str, str]:
    """('auc 0.509 asym -0.161', '0.519 -0.161'): the paper's values in the same order, '-' where absent.

    A second metric is shown only where both fit the column, so that no number is ever cut.
    """
    keys = [k for k in headline_keys(entry) if k in entry["metrics"]]
    if len(" ".join(_pair(k, entry["metrics"][k]) for k in keys)) > width:
        keys = keys[:1]
    measured = " ".join(_pair(k, entry["metrics"][k]) for k in keys)
    quoted = [fmt_number(entry["paper"][k]) if k in entry["paper"] else "-" for k in keys]
    if not any(q != "-" for q in quoted):
        quoted = [_pair(k, v) for k, v in list(entry["paper"].items())[:1]]
    return measured or "-", " ".join(quoted) or "-"


def elide(text: str, width: int) -> str:
    """Cut the middle, which keeps both the family (prefix) and the variant (suffix) of a name."""
    if len(text) <= width:
        return text
    if width < 5:
        return text[:width]
    head = (width - 1) // 2
    return text[:head] + "~" + text[len(text) - (width - 1 - head):]


def fit(rows: Sequence[tuple[str, ...]], caps: tuple[int, ...], width: int, shrink: tuple[int, ...],
        indent: int = 2) -> list[str]:
    """Lay rows out in columns, narrowing the `shrink` columns (widest first) until a line fits `width`."""
    widths = [min(cap, max(len(r[i]) for r in rows)) for i, cap in enumerate(caps)]
    while indent + sum(widths) + 2 * (len(widths) - 1) > width and any(widths[i] > 8 for i in shrink):
        i = max(shrink, key=lambda j: widths[j])
        widths[i] -= 1
    return [" " * indent + "  ".join(elide(c, w).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def row_names(entries: list[dict], arc: str) -> dict[str, str]:
    """Each entry's claim as the table names it: without the arc, plus the test's variant where
    several entries share claim, base and operator (the per-axis steps)."""
    seen = Counter((e["claim"], e["base"], e["operator"]) for e in entries)
    names = {}
    for e in entries:
        name = e["claim"].removeprefix(f"{arc}.")
        if seen[(e["claim"], e["base"], e["operator"])] > 1 and "[" in e["nodeid"]:
            variant = e["nodeid"].rsplit("[", 1)[1].rstrip("]").removeprefix(f"{e['base']}-")
            name = f"{name}[{variant}]"
        names[e["nodeid"]] = name
    return names


def short_operator(name: str | None) -> str:
    """The operator's name without the estimator family the table's readers already know."""
    if not name:
        return "-"
    for long, short in SHORT_OPERATOR:
        name = name.replace(long, short)
    return name


def _arc(entry: dict) -> str:
    return entry["claim"].split(".", 1)[0]


def _counts(entries: Iterable[dict]) -> str:
    counts = Counter(e["outcome"] for e in entries)
    order = ("error", "failed", "xpassed", "passed", "xfailed", "skipped")
    return ", ".join(f"{counts[o]} {o if o != 'error' else 'errors'}" for o in order if counts[o])


def skip_groups(skipped: list[dict]) -> list[str]:
    """Skipped claims folded by what would enable them, largest group first."""
    bases: dict[str, int] = Counter()
    other: dict[str, int] = Counter()
    for e in skipped:
        reason = e["reasons"][0] if e["reasons"] else "no reason given"
        match = UNAVAILABLE.match(reason)
        if match:
            bases[match.group(1)] += 1
        elif reason.startswith(SLOW):
            other["are slow (run with --dd-slow)"] += 1
        else:
            other[reason] += 1
    groups = []
    if bases:
        names = ", ".join(sorted(bases))
        groups.append((sum(bases.values()), f"need weights: {names} (use --dd-model NAME=PATH)"))
    groups += [(n, why) for why, n in other.items()]
    return [elide(f"  {n:>3} claims {why}", WIDTH) for n, why in sorted(groups, key=lambda g: -g[0])]


def compact_lines(entries: list[dict], width: int = WIDTH) -> list[tuple[str, dict]]:
    """The compact summary as (line, markup) pairs; markup is what pytest's terminal writer takes."""
    out: list[tuple[str, dict]] = [(f"{len(entries)} claims: {_counts(entries)}", {"bold": True})]
    errors = [e for e in entries if e["outcome"] in ("error", "failed", "xpassed")]
    if errors:
        out.append(("", {}))
        out.append(("needs attention:", {"red": True, "bold": True}))
        for e in sorted(errors, key=lambda e: e["nodeid"]):
            reason = e["reasons"][0] if e["reasons"] else ""
            out.append((elide(f"  {e['outcome'].upper():<7} {e['nodeid']}: {reason}", width), {"red": True}))
    by_arc: dict[str, list[dict]] = defaultdict(list)
    for e in entries:
        if e["outcome"] != "skipped":
            by_arc[_arc(e)].append(e)
    header = ("claim", "base", "operator", "measured", "paper", "verdict")
    for arc in sorted(by_arc):
        rows, alarm = [header], [False]
        names = row_names(by_arc[arc], arc)
        for e in sorted(by_arc[arc], key=lambda e: (e["claim"], e["base"] or "", e["nodeid"])):
            measured, quoted = measured_and_paper(e)
            verdict = "ERROR" if e["outcome"] == "error" else e["verdict"] + OUTCOME_NOTE[e["outcome"]]
            rows.append((names[e["nodeid"]], e["base"] or "-", short_operator(e["operator"]), measured,
                         quoted, verdict))
            alarm.append(e["outcome"] in ("error", "failed", "xpassed"))
        arc_entries = [e for e in entries if _arc(e) == arc]
        out.append(("", {}))
        out.append((f"{arc}: {_counts(arc_entries)}", {"bold": True}))
        lines = fit(rows, (36, 14, 20, MEASURED_WIDTH, 16, 20), width, shrink=(4, 2, 0))
        out += [(line, {"red": True} if red else {}) for line, red in zip(lines, alarm, strict=True)]
    skipped = [e for e in entries if e["outcome"] == "skipped"]
    if skipped:
        out.append(("", {}))
        out.append((f"skipped: {len(skipped)} claims", {"bold": True}))
        out += [(line, {}) for line in skip_groups(skipped)]
    return out


def full_lines(entries: list[dict]) -> list[str]:
    """One uncut row per entry: claim, base, operator, measured, paper, gate, verdict, outcome, reason."""
    rows = [("claim", "base", "operator", "measured", "paper", "gate", "verdict", "outcome", "reason")]
    for e in sorted(entries, key=lambda e: (e["claim"], e["base"] or "", e["nodeid"])):
        measured, quoted = measured_and_paper(e)
        gate = ",".join(f"{k}={fmt_number(v)}" for k, v in e["gate"].items()
                        if k not in ("name", "version") and not isinstance(v, dict)) or "-"
        reason = e["reasons"][0] if e["reasons"] and e["outcome"] in ("skipped", "error") else ""
        rows.append((e["claim"], e["base"] or "-", e["operator"] or "-", measured, quoted, gate, e["verdict"],
                     e["outcome"], reason))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
