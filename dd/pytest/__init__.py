"""The pytest side: the plugin (`dd.pytest.plugin`, loaded through the pytest11 entry point), the
controller-side session, the report, the figures, and the one way to declare a claim test
(`claim_param`, `claim_test`).
"""

from __future__ import annotations

from dd.pytest._claims import ClaimFields, claim_marks, claim_param, claim_test
from dd.pytest._diff import ReportDiff, diff_reports
from dd.pytest._figures import figures as draw_figures
from dd.pytest._figures import write_all as write_figures
from dd.pytest._html import write as write_html
from dd.pytest._report import validate

__all__ = [
    "ClaimFields",
    "ReportDiff",
    "claim_marks",
    "claim_param",
    "claim_test",
    "diff_reports",
    "draw_figures",
    "validate",
    "write_figures",
    "write_html",
]
