"""End to end: the Arc 3 frozen-base claims run for a base given with --dd-model.

A tiny random-init Gemma 4 stands in for the real Gemma 4 E2B weights, so the whole path (option,
resolution, lazy load, teacher-forced features over the released pairs, cache, gates, report) runs
here; its numbers are noise, and the claims hold it to the paper's verdicts, so some fail.
"""

import pytest

from dd.lm import build_tiny_base
from helpers import ROOT, read_report, run_pytest


@pytest.fixture(scope="module")
def tiny_gemma4(tmp_path_factory):
    return build_tiny_base("tiny-gemma4", tmp_path_factory.mktemp("bases") / "tiny-gemma4")


def test_gemma_claims_run_on_a_base_given_by_option(artifact_root, tiny_gemma4, tmp_path):
    report_path, cache = tmp_path / "r.json", tmp_path / "cache"
    args = ["claims/arc3/test_frozen_bases.py", "-k", "gemma4-e2b and not second_base", "-p", "no:randomly", "-q",
            "--dd-model", f"gemma4-e2b={tiny_gemma4}", "--dd-cache", str(cache), "--dd-report", str(report_path)]
    code, out = run_pytest(*args, artifacts_dir=artifact_root)
    assert code in (0, 1), out
    entries = read_report(report_path)["results"]
    assert len(entries) == 2 + 2 + 5 + 2
    for entry in entries:
        assert entry["base"] == "gemma4-e2b" and entry["source"] == "recomputed", entry
        assert entry["outcome"] in ("passed", "failed", "xfailed", "xpassed")
        assert 0.0 <= entry["metrics"].get("auc", entry["metrics"].get("fresh_auc")) <= 1.0
    step2 = [e for e in entries if e["claim"] == "arc3.step2.fresh"]
    assert {e["paper"]["auc"] for e in step2} == {0.509, 0.516}
    assert all(e["gate"]["auc_min"] == 0.63 for e in step2)
    # a warm re-run hits the cache: same numbers, no model load, nothing heavy imported (not even torch)
    code, out = run_pytest(*args, "--dd-offline", "-p", "import_probe", artifacts_dir=artifact_root,
                           extra_env={"PYTHONPATH": str(ROOT / "tests")})
    assert code in (0, 1), out
    assert "HEAVY []" in out, out[-2000:]
    assert [e["metrics"] for e in read_report(report_path)["results"]] == [e["metrics"] for e in entries]
