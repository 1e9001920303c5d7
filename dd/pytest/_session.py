"""The controller-side session: collects claim entries from test reports, writes the outputs.

Registered only on the controller (never in an xdist worker): workers ship each entry inside
the test report's `user_properties`, so collecting them here gives one merged report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from dd.core import Settings
from dd.pytest import _report as report
from dd.pytest import _summary as summary

STATIC_KEY = "dd_claim"
ENTRY_KEY = "dd_entry"
FIGURE_KEY = "dd_figure"
ERROR_KEY = "dd_error"


def _outcome(rep: pytest.TestReport) -> str | None:
    """The contract's outcome word for one phase report, or None for a phase that says nothing.

    A failure outside the test body (fixture set-up or tear-down) and any crash of a claim test
    other than a failed verdict (the plugin tags those) are errors: never a research result.
    """
    xfail = hasattr(rep, "wasxfail")
    if rep.skipped:
        return "xfailed" if xfail else "skipped"
    if rep.failed:
        crashed = any(k == ERROR_KEY for k, _ in rep.user_properties)
        return "error" if crashed or rep.when != "call" else "failed"
    if rep.when == "call":
        return "xpassed" if xfail else "passed"
    return None


def _skip_reason(rep: pytest.TestReport) -> str:
    if isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
        return str(rep.longrepr[2]).removeprefix("Skipped: ")
    return _last_line(rep)


def _last_line(rep: pytest.TestReport) -> str:
    crash = getattr(rep.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message[:300]
    lines = str(rep.longreprtext or "").strip().splitlines()
    return lines[-1][:300] if lines else ""


@dataclass(eq=False)  # registered as a plugin, so it must stay hashable
class DDSession:
    """Settings, the entries collected so far (by nodeid) and figure payloads."""

    settings: Settings
    entries: dict[str, dict] = field(default_factory=dict)
    figures: dict[str, dict] = field(default_factory=dict)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props: dict[str, dict] = {k: v for k, v in report.user_properties
                                  if k in (STATIC_KEY, ENTRY_KEY, ERROR_KEY) and isinstance(v, dict)}
        if STATIC_KEY not in props:
            return
        for name, payload in report.user_properties:
            if name == FIGURE_KEY and isinstance(payload, dict):
                self.figures[payload["name"]] = payload
        entry = self.entries.setdefault(
            report.nodeid,
            {"nodeid": report.nodeid, **props[STATIC_KEY], "source": "skipped", "metrics": {}, "gate": {},
             "verdict": "inconclusive", "reasons": [], "outcome": "skipped"},
        )
        if ENTRY_KEY in props:
            entry.update(props[ENTRY_KEY])
        outcome = _outcome(report)
        if outcome is None or (report.when == "teardown" and outcome != "error"):
            return
        entry["outcome"] = outcome
        if outcome == "error":
            crash = props.get(ERROR_KEY)
            what = f"{crash['type']}: {crash['message']}" if crash else _last_line(report)
            entry["verdict"] = "inconclusive"
            entry["reasons"] = [f"error in {report.when}, not a verdict: {what}"]
        elif ENTRY_KEY not in props:
            if outcome == "skipped":
                entry["reasons"] = [_skip_reason(report)]
            elif outcome == "failed":
                entry["reasons"] = [f"failed before recording a result: {_last_line(report)}"]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        entries = list(self.entries.values())
        if self.settings.report:
            report.write(self.settings.report, entries)
        if not (self.settings.figures or self.settings.html):
            return
        from dd.pytest import _figures, _html

        drawn = _figures.figures(entries, self.figures)
        if self.settings.figures and drawn:
            _figures.write_all(self.settings.figures, drawn)
        if self.settings.html:
            _html.write(self.settings.html, report.build(entries), drawn)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.entries:
            return
        entries = list(self.entries.values())
        terminalreporter.section("dd claims: measured vs paper")
        if self.settings.table == "full":
            for line in summary.full_lines(entries):
                terminalreporter.write_line(line)
        else:
            for line, markup in summary.compact_lines(entries):
                terminalreporter.write_line(line, **markup)
        for what, path in (("report", self.settings.report), ("HTML report", self.settings.html)):
            if path:
                terminalreporter.write_line(f"dd {what} written to {path}")
