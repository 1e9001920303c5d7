"""Your own claim: one claim file (`--dd-claim claim.toml`) through the effect protocol's five steps.

Each step is one claim test and one report entry, held to the verdict the file claims for it: a
claimed pass that does not pass is a failed test; a claimed fail or inconclusive is a strict xfail
that only that failed verdict satisfies, so the run turns red the day the verdict changes. A
step that cannot run here (a missing base, judge endpoint, artifact or opt-in) skips saying what
would let it run; a bad claim file or input is an error naming the file and the item, never a
verdict. Without `--dd-claim` there is nothing to run.
"""

from __future__ import annotations

import pytest

from dd.arcs import STEPS, ClaimFile, ClaimFileError, ClaimRun, ClaimUnavailable, load_claim
from dd.paper import ArtifactMissing
from dd.pytest import claim_param
from dd.pytest.plugin import settings_of

NO_CLAIM = "no claim file: pass --dd-claim claim.toml (or set DD_CLAIM) to run one claim end to end"


def _load(config: pytest.Config) -> ClaimFile | None:
    path = settings_of(config).claim
    if path is None:
        return None
    try:
        return load_claim(path)
    except ClaimFileError as err:
        raise pytest.UsageError(str(err)) from None


def _params(claim: ClaimFile) -> list:
    marks = [getattr(pytest.mark, m) for m in claim.marks]
    params = []
    for step, suffix in STEPS.items():
        expected = claim.expect.get(step)
        skip = [] if step in claim.steps else [pytest.mark.skip(reason="the claim file names no second base "
                                                                      "([base] second): step 5 does not run")]
        params.append(claim_param(step, id=step, claim_id=f"{claim.id}.{suffix}",
                                  base=claim.second_base if step == "second_base" else claim.base,
                                  operator=claim.operator_label(), step=step,
                                  expected=expected.verdict if expected else "pass",
                                  why=expected.why if expected else "", marks=[*marks, *skip]))
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "step" not in metafunc.fixturenames:
        return
    claim = _load(metafunc.config)
    if claim is None:
        metafunc.parametrize("step", [pytest.param(None, id="no-claim", marks=pytest.mark.skip(reason=NO_CLAIM))])
    else:
        metafunc.parametrize("step", _params(claim))


@pytest.fixture(scope="session")
def claim_run(dd_settings, bases) -> ClaimRun:
    """The session's run of the claim file: each stage is built once and cached.

    It generates where `--dd-gen-backend` says, else where the file's `[generation] backend` says, else in-process.
    """
    claim = load_claim(dd_settings.claim)
    return ClaimRun(claim, bases.cache, artifacts=dd_settings.artifacts,
                    models=dd_settings.models, judge_base_url=dd_settings.judge_base_url,
                    judge_model=dd_settings.judge_model, allow_code_exec=dd_settings.allow_code_exec,
                    bases=bases.get, backend=bases.backend_for(claim.backend))


def test_claim_step(step, claim_run, claim):
    """One step of the claim file, concluded with the verdict it measured."""
    try:
        outcome = claim_run.step(step)
    except (ClaimUnavailable, ArtifactMissing) as err:
        pytest.skip(str(err))
    expected = claim_run.claim.expect[step].verdict
    # claimed=: a failure of another kind than the file claims fails the test, not its strict xfail
    claim.conclude(source="recomputed", metrics={**outcome.metrics, "expected_verdict": expected},
                   verdict=outcome.verdict, claimed=expected)
