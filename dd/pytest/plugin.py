"""The pytest plugin: options, the claim recorder, report collection across xdist, the summary.

A claim test declares what it is with `@pytest.mark.claim(id, base=..., operator=..., step=...,
paper={...})` and records what it computed through the `claim` fixture. Entries travel to the
controller in each test report's `user_properties`, so the report is the same with and without
xdist workers; the controller alone writes the report, the figures and the summary table.
"""

from __future__ import annotations

import pytest

from dd.pytest import _report as report
from dd.core import FLAGS, OPTIONS, Settings, resolve_settings
from dd.pytest._session import ENTRY_KEY, FIGURE_KEY, STATIC_KEY, DDSession
from dd.protocol import Verdict

# the fixtures every project gets with the plugin
pytest_plugins = ["dd.fixtures.artifacts", "dd.fixtures.bases"]

SETTINGS_KEY = pytest.StashKey[Settings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dd", "falsification suite (dd)")
    for dest, (flag, env, help_text) in OPTIONS.items():
        action = "append" if dest == "dd_model" else "store"
        group.addoption(flag, dest=dest, action=action, default=None, help=f"{help_text} [env {env}]")
    for dest, (flag, env, help_text) in FLAGS.items():
        group.addoption(flag, dest=dest, action="store_true", default=False, help=f"{help_text} [env {env}=1]")


def pytest_configure(config: pytest.Config) -> None:
    try:
        settings = resolve_settings(config.getoption)
    except ValueError as err:
        raise pytest.UsageError(str(err)) from err
    config.stash[SETTINGS_KEY] = settings
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(DDSession(settings), "dd-session")
    if getattr(config.option, "update_snapshots", False) and _worker_count(config) > 1:
        raise pytest.UsageError(
            "--snapshot-update under several xdist workers loses snapshot entries; rerun with -n 0"
        )


def _worker_count(config: pytest.Config) -> int:
    n = getattr(config.option, "numprocesses", None)
    if n in (None, 0):
        return 0
    return n if isinstance(n, int) else 2  # 'auto' / 'logical'


def settings_of(config: pytest.Config) -> Settings:
    return config.stash[SETTINGS_KEY]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = settings_of(config)
    skip_slow = pytest.mark.skip(reason="marked slow: run with --dd-slow (or DD_SLOW=1)")
    for item in items:
        if "slow" in item.keywords and not settings.slow:
            item.add_marker(skip_slow)
        marker = item.get_closest_marker("claim")
        if marker is not None:
            static = _static_entry(item, marker)
            item.user_properties.append((STATIC_KEY, static))
            # so that `-k gemma` selects every claim about a base, whatever the test is named
            item.extra_keyword_matches.update(v for v in (static["base"], static["claim"]) if v)


def _static_entry(item: pytest.Item, marker: pytest.Mark) -> dict:
    claim_id = marker.args[0] if marker.args else marker.kwargs["id"]
    params = getattr(item, "callspec", None)
    params = params.params if params else {}
    pick = lambda key: marker.kwargs.get(key) or params.get(key)  # noqa: E731
    return report.jsonable(
        {
            "claim": claim_id,
            "base": pick("base"),
            "operator": pick("operator"),
            "step": pick("step"),
            "paper": marker.kwargs.get("paper") or {},
        }
    )


class ClaimRecorder:
    """What a claim test computed: metrics, the gate it was held to and the verdict.

    `source` is 'recomputed' when the test computed the numbers from data, 'summary' when
    it only checked a stored summary the authors computed from unreleased inputs. `paper`
    overrides the marker's quoted numbers; a Verdict's reasons and gate come along with it.
    """

    def __init__(self, item: pytest.Item) -> None:
        self._item = item
        self.entry: dict = {}

    def record(
        self,
        *,
        source: str,
        metrics: dict,
        verdict: Verdict | str,
        reasons: list[str] | tuple[str, ...] = (),
        paper: dict | None = None,
        gate: dict | None = None,
    ) -> None:
        if source not in ("recomputed", "summary"):
            raise ValueError(f"a recorded claim is 'recomputed' or 'summary', not {source!r}")
        if isinstance(verdict, Verdict):
            reasons = [*verdict.reasons, *reasons]
            gate = gate if gate is not None else verdict.gate
            verdict = verdict.verdict
        entry = {"source": source, "metrics": metrics, "verdict": verdict, "reasons": list(reasons), "gate": gate or {}}
        if paper is not None:
            entry["paper"] = paper
        self.entry = report.jsonable(entry)
        self._item.user_properties[:] = [p for p in self._item.user_properties if p[0] != ENTRY_KEY]
        self._item.user_properties.append((ENTRY_KEY, self.entry))

    def figure(self, name: str, payload: dict) -> None:
        """Data for a figure drawn at the end of the run (never part of the report)."""
        self._item.user_properties.append((FIGURE_KEY, {"name": name, **report.jsonable(payload)}))


@pytest.fixture
def claim(request: pytest.FixtureRequest) -> ClaimRecorder:
    """The recorder of the current claim test."""
    if request.node.get_closest_marker("claim") is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses the claim fixture without @pytest.mark.claim")
    return ClaimRecorder(request.node)


@pytest.fixture(scope="session")
def dd_settings(request: pytest.FixtureRequest) -> Settings:
    return settings_of(request.config)


