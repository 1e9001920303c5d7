"""The `dd report` sub-command: an HTML page from a report, and the changes between two reports.

The report modules load inside the handlers, so that `dd cache` and `dd artifacts` start at once.

`dd report diff MAIN.json PR.json` exits 1 when any verdict changed, so a CI job gating a pull
request can run it against the main branch's report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``report {html,diff}`` to an argparse subparsers object."""
    sub = subparsers.add_parser("report", help="render or compare dd-report/1 files").add_subparsers(
        dest="action", required=True)
    page = sub.add_parser("html", help="write the report as one self-contained HTML page")
    page.add_argument("report", type=Path)
    page.add_argument("-o", "--output", type=Path, required=True)
    page.set_defaults(handler=cmd_html)
    diff = sub.add_parser("diff", help="verdict, outcome and number changes from A to B; exit 1 if a verdict changed")
    diff.add_argument("a", type=Path)
    diff.add_argument("b", type=Path)
    diff.set_defaults(handler=cmd_diff)


def _load(path: Path) -> dict:
    """A report, or a clear error: an unreadable or non-conforming file is never compared."""
    from dd.pytest import validate

    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise SystemExit(f"dd: {path} is not JSON: {err}") from err
    problems = validate(report)
    if problems:
        raise SystemExit(f"dd: {path} is not a dd-report/1 file: " + "; ".join(problems[:5]))
    return report


def cmd_html(args: argparse.Namespace) -> int:
    from dd.pytest import draw_figures, write_html

    report = _load(args.report)
    # figure payloads (the PCA's points) never enter the report: only what its entries carry is drawn
    write_html(args.output, report, draw_figures(report["results"], {}))
    print(f"wrote {args.output}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from dd.pytest import diff_reports

    diff = diff_reports(_load(args.a), _load(args.b))
    for line in diff.lines():
        print(line)
    if diff.verdict_changed:
        print(f"{len(diff.verdicts)} verdict(s) changed", file=sys.stderr)
        return 1
    return 0
