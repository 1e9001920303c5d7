"""The controller-side session: collects claim entries from test reports, writes the outputs.

Registered only on the controller (never in an xdist worker): workers ship each entry inside
the test report's `user_properties`, so collecting them here gives one merged report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from dd.pytest import _report as report
from dd.core import Settings

STATIC_KEY = "dd_claim"
ENTRY_KEY = "dd_entry"
FIGURE_KEY = "dd_figure"


def _outcome(rep: pytest.TestReport) -> str | None:
    """The contract's outcome word for one phase report, or None for a phase that says nothing."""
    xfail = hasattr(rep, "wasxfail")
    if rep.skipped:
        return "xfailed" if xfail else "skipped"
    if rep.failed:
        return "failed"
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
        props = {k: v for k, v in report.user_properties if k in (STATIC_KEY, ENTRY_KEY)}
        if STATIC_KEY not in props:
            return
        for name, payload in report.user_properties:
            if name == FIGURE_KEY:
                self.figures[payload["name"]] = payload
        entry = self.entries.setdefault(
            report.nodeid,
            {"nodeid": report.nodeid, **props[STATIC_KEY], "source": "skipped", "metrics": {}, "gate": {},
             "verdict": "inconclusive", "reasons": [], "outcome": "skipped"},
        )
        if ENTRY_KEY in props:
            entry.update(props[ENTRY_KEY])
        outcome = _outcome(report)
        if outcome is None or (report.when == "teardown" and outcome != "failed"):
            return
        entry["outcome"] = outcome
        if ENTRY_KEY not in props:
            if outcome == "skipped":
                entry["reasons"] = [_skip_reason(report)]
            elif outcome == "failed":
                entry["reasons"] = [f"errored before recording a result: {_last_line(report)}"]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        entries = list(self.entries.values())
        if self.settings.report:
            report.write(self.settings.report, entries)
        if self.settings.figures and self.figures:
            from dd.pytest import _figures as figures

            figures.write_all(self.settings.figures, entries, self.figures)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.entries:
            return
        terminalreporter.section("dd claims: measured vs paper")
        for line in report.summary_lines(list(self.entries.values())):
            terminalreporter.write_line(line)
        if self.settings.report:
            terminalreporter.write_line(f"dd report written to {self.settings.report}")
