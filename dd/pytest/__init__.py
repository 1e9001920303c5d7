"""The pytest side: the plugin (`dd.pytest.plugin`, loaded through the pytest11 entry point), the
controller-side session, the report and the figures.
"""

from __future__ import annotations

from dd.pytest._figures import write_all as write_figures
from dd.pytest._report import validate

__all__ = ["validate", "write_figures"]
