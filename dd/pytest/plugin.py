"""The pytest plugin: options, the claim recorder, report collection across xdist, the summary.

A claim test declares what it is with `@pytest.mark.claim(id, base=..., operator=..., step=...,
paper={...})` and records what it computed through the `claim` fixture. Entries travel to the
controller in each test report's `user_properties`, so the report is the same with and without
xdist workers; the controller alone writes the report, the figures and the summary table.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import pytest

from dd.core import FLAGS, OPTIONS, Cache, Settings, resolve_settings, set_progress
from dd.protocol import PASS, Verdict, VerdictFailed, keep_fits_in
from dd.pytest import _report as report
from dd.pytest import _xdist
from dd.pytest._session import ENTRY_KEY, ERROR_KEY, FIGURE_KEY, STATIC_KEY, DDSession

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


@pytest.hookimpl(trylast=True)  # after the terminal reporter, which says whether bars can show
def pytest_configure(config: pytest.Config) -> None:
    try:
        settings = resolve_settings(config.getoption)
    except ValueError as err:
        raise pytest.UsageError(str(err)) from err
    config.stash[SETTINGS_KEY] = settings
    keep_fits_in(Cache(settings.cache_root))  # a warm re-run then fits no probe twice, across runs
    worker = getattr(config, "workerinput", None)
    if worker is None:
        config.pluginmanager.register(DDSession(settings), "dd-session")
        set_progress(_shows_progress(config))
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(_ProgressToWorkers(_shows_progress(config)), "dd-progress-to-workers")
    else:
        set_progress(bool(worker.get("dd_progress")), worker.get("workerid", ""))
    if getattr(config.option, "update_snapshots", False) and _worker_count(config) > 1:
        raise pytest.UsageError(
            "--snapshot-update under several xdist workers loses snapshot entries; rerun with -n 0"
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Spare a run that ran no hypothesis test the quarter second hypothesis's summary spends importing it.

    Only in-process (no xdist controller, whose workers' tests this process never imports): there,
    hypothesis absent from ``sys.modules`` means no test used it, so its summary has nothing to say.
    """
    manager = session.config.pluginmanager
    if "hypothesis" not in sys.modules and not manager.hasplugin("dsession"):
        plugin = manager.get_plugin("hypothesispytest")
        if plugin is not None:
            manager.unregister(plugin)


def pytest_unconfigure(config: pytest.Config) -> None:
    keep_fits_in(None)  # an in-process run (pytester) must not leave its cache to the next


def _shows_progress(config: pytest.Config) -> bool:
    """Bars for long work unless the run is very quiet (`-q -q`) or its output is not a terminal."""
    writer = config.get_terminal_writer()
    return config.get_verbosity() > -2 and writer.hasmarkup


class _ProgressToWorkers:
    """Tells each xdist worker whether the controller's terminal shows bars (registered with xdist only)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def pytest_configure_node(self, node) -> None:
        node.workerinput["dd_progress"] = self.enabled


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
    unpinned = []
    for item in items:
        if "slow" in item.keywords and not settings.slow:
            item.add_marker(skip_slow)
        marker = item.get_closest_marker("claim")
        if marker is not None:
            unpinned += [item.nodeid for mark in item.iter_markers("xfail") if not _pins_verdict(mark)]
            static = _static_entry(item, marker)
            item.user_properties.append((STATIC_KEY, static))
            # so that `-k gemma` selects every claim about a base, whatever the test is named
            item.extra_keyword_matches.update(v for v in (static["base"], static["claim"]) if v)
            _report_verdicts_plainly(item)
    _xdist.distribute(config, items)  # one GPU per xdist worker; claims grouped by base (--dist loadgroup)
    if unpinned:
        raise pytest.UsageError(
            "a claim's expected failure must be a failed verdict, never a crash: mark it "
            f"xfail(strict=True, raises=dd.VerdictFailed). {len(unpinned)} unpinned: " + ", ".join(unpinned[:10])
            + (f", and {len(unpinned) - 10} more" if len(unpinned) > 10 else "")
        )


def _report_verdicts_plainly(item: pytest.Item) -> None:
    """A failed verdict's report is where the claim is and what it measured, not a traceback.

    A verdict is a result, not a crash: its reasons say everything a traceback would, and pytest
    spends about a twentieth of a second per failure re-parsing the test module to print one
    (a second or more of a warm run with fifty expected failures). Any other exception keeps
    pytest's own report.
    """
    default = item.repr_failure

    def repr_failure(excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, VerdictFailed):
            path, line, _ = item.reportinfo()
            return f"{path}:{(line or 0) + 1}: {type(excinfo.value).__name__}: {excinfo.value}"
        return default(excinfo) if style is None else default(excinfo, style)

    item.repr_failure = repr_failure  # type: ignore[method-assign]


def _pins_verdict(mark: pytest.Mark) -> bool:
    """Whether an xfail mark accepts only a failed verdict (`raises=VerdictFailed` or a subclass)."""
    raises = mark.kwargs.get("raises")
    pinned = raises if isinstance(raises, tuple) else (raises,)
    return raises is not None and all(isinstance(r, type) and issubclass(r, VerdictFailed) for r in pinned)


# pytest's own outcomes, not a crash of the claim: a skip, an imperative xfail, a deliberate failure.
_CONTROL_FLOW = (pytest.skip.Exception, pytest.xfail.Exception, pytest.fail.Exception)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, pytest.TestReport,
                                                                                    pytest.TestReport]:
    """Mark any exception of a claim test other than a failed verdict as an error."""
    rep = yield
    excinfo = call.excinfo
    if item.get_closest_marker("claim") is None or excinfo is None:
        return rep
    if isinstance(excinfo.value, VerdictFailed) or isinstance(excinfo.value, _CONTROL_FLOW):
        return rep
    if call.when == "call":
        rep.outcome = "failed"  # never an xfail, even where the mark's raises= would allow it
        if hasattr(rep, "wasxfail"):
            del rep.wasxfail
    first = (str(excinfo.value).strip().splitlines() or [""])[0]
    rep.user_properties.append((ERROR_KEY, {"type": excinfo.type.__name__, "message": first[:300]}))
    return rep


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """A crashed claim reads as an error in the terminal, never as a failed (or expected) verdict."""
    if report.when == "call" and report.failed and any(k == ERROR_KEY for k, _ in report.user_properties):
        return "error", "E", ("ERROR", {"red": True})
    return None


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

    `conclude` is the one call that ends a claim test: it records the entry and raises
    `VerdictFailed` unless the verdict is `pass`. `source` is 'recomputed' when the test computed
    the numbers from data, 'summary' when it only checked a stored summary the authors computed
    from unreleased inputs. `paper` overrides the marker's quoted numbers; a Verdict's reasons
    and gate come along with it.
    """

    def __init__(self, item: pytest.Item) -> None:
        self._item = item
        self.entry: dict = {}

    def conclude(
        self,
        *,
        source: str,
        metrics: dict,
        verdict: Verdict | str,
        reasons: list[str] | tuple[str, ...] = (),
        paper: dict | None = None,
        gate: dict | None = None,
        claimed: str | None = None,
    ) -> Verdict:
        """Record the entry, then raise `VerdictFailed` unless the verdict passes.

        `claimed` is the verdict a source or operator declared for itself: a measured failure
        of another kind (inconclusive where fail was claimed) fails the test outright instead
        of satisfying its strict xfail.
        """
        if source not in ("recomputed", "summary"):
            raise ValueError(f"a recorded claim is 'recomputed' or 'summary', not {source!r}")
        if isinstance(verdict, Verdict):
            verdict = Verdict(verdict.verdict, (*verdict.reasons, *reasons), verdict.gate if gate is None else gate,
                              verdict.code)
        else:
            verdict = Verdict(verdict, tuple(reasons), gate or {})
        if claimed is not None and verdict.verdict != claimed:
            static = dict(self._item.user_properties).get(STATIC_KEY)
            step = static.get("step") if isinstance(static, dict) else None
            contradiction = f"claims {claimed!r}" + (f" at {step}" if step else "") + f", measured {verdict.verdict!r}"
            verdict = Verdict(verdict.verdict, (*verdict.reasons, contradiction), verdict.gate, verdict.code)
        entry = {"source": source, "metrics": metrics, "verdict": verdict.verdict, "reasons": list(verdict.reasons),
                 "gate": dict(verdict.gate)}
        if paper is not None:
            entry["paper"] = paper
        self.entry = report.jsonable(entry)
        self._item.user_properties[:] = [p for p in self._item.user_properties if p[0] != ENTRY_KEY]
        self._item.user_properties.append((ENTRY_KEY, self.entry))
        if claimed not in (None, PASS) and verdict.verdict not in (PASS, claimed):
            # the strict xfail expects this failure, not another one: a contradicted claim fails
            pytest.fail("; ".join(verdict.reasons))
        if not verdict.passed:
            raise VerdictFailed(verdict)
        return verdict

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


