"""claims/arc1/test_from_scratch.py as a user runs it: skips with the exact options, and the tiny-base chain
(recorded teachers -> audit -> SFT LoRA -> recovery, and MCAS through a judge endpoint) end to end."""

from __future__ import annotations

import pytest

from dd.arcs import humaneval_missing
from dd.judges.replay import ReplayServer
from helpers import read_report, run_pytest

CLAIMS = "claims/arc1/test_from_scratch.py"


def test_claims_skip_with_the_exact_options(tmp_path):
    code, out = run_pytest(CLAIMS, "-p", "no:xdist", "--dd-cache", str(tmp_path / "cache"), artifacts_dir=tmp_path)
    assert code == 0, out
    assert "needs --dd-allow-code-exec" in out and "--dd-judge-base-url URL --dd-judge-model NAME" in out
    assert "marked slow: run with --dd-slow" in out
    assert list((tmp_path / "cache").glob("generations/*")) == []  # a skip ran nothing


def mcas_one(messages):
    """Every answer gets MCAS 1: no arm gains, as the paper's apples-to-apples re-run found."""
    return "1" if messages[0]["content"].startswith("You grade whether an answer's confidence") else None


@pytest.mark.skipif(humaneval_missing() is not None, reason=humaneval_missing() or "")
def test_tiny_chain_end_to_end(tmp_path):
    report = tmp_path / "report.json"
    with ReplayServer({}, responder=mcas_one) as judge:
        code, out = run_pytest(CLAIMS, "-k", "tiny", "-p", "no:xdist", "--dd-allow-code-exec",
                               "--dd-cache", str(tmp_path / "cache"), "--dd-report", str(report),
                               "--dd-judge-base-url", judge.url, "--dd-judge-model", "rule-judge",
                               artifacts_dir=tmp_path)
        assert code == 0 and "2 xfailed" in out, out
        # one MCAS call per distinct answer of the two arms to the six prompts; nothing asked twice
        assert 6 <= len({r.messages_sha256 for r in judge.requests}) == len(judge.requests) <= 12
    entries = {e["claim"]: e for e in read_report(report)["results"]}
    recovery, mcas = entries["arc1.recovery"], entries["arc1.mcas.apples"]
    assert recovery["verdict"] == "inconclusive" and recovery["metrics"]["verdict.n4"] == "truncation_artifact"
    assert recovery["metrics"]["audit.teachers.code_pct"] == 100 and recovery["metrics"]["teacher_examples"] == 4
    assert any("measure the plumbing, not disposition distillation" in r for r in recovery["reasons"])
    assert recovery["paper"]["delta"] == -3.0
    assert mcas["verdict"] == "fail" and mcas["metrics"]["mcas.delta"] == 0.0
    assert mcas["metrics"]["mcas.base"] == 50.0
