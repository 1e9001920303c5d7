"""What a user sees: the report contract, xdist merging, skips and errors on bad artifacts."""

import os
import re
import subprocess
import sys
import textwrap

import pytest

from dd.pytest import validate

from helpers import ROOT, read_report, run_pytest

ARTIFACT_CLAIMS = ["claims/arc3", "claims/arc1", "-m", "not heavy"]


@pytest.fixture(scope="module")
def serial_report(artifact_root, tmp_path_factory):
    path = tmp_path_factory.mktemp("serial") / "report.json"
    code, out = run_pytest(*ARTIFACT_CLAIMS, "-p", "no:randomly", "-q", "--dd-report", str(path),
                           artifacts_dir=artifact_root)
    assert code == 0, out
    return read_report(path), out


def collected_ids(artifact_root) -> list[str]:
    code, out = run_pytest(*ARTIFACT_CLAIMS, "--collect-only", "-q", artifacts_dir=artifact_root)
    assert code == 0, out
    return [line for line in out.splitlines() if "::" in line]


def test_report_validates_with_one_entry_per_claim_test(serial_report, artifact_root):
    rep, out = serial_report
    assert validate(rep) == []
    ids = collected_ids(artifact_root)
    assert sorted(e["nodeid"] for e in rep["results"]) == sorted(ids)
    assert "dd claims: measured vs paper" in out


def test_sources_are_truthful(serial_report):
    rep, _ = serial_report
    for entry in rep["results"]:
        if "test_summaries.py" in entry["nodeid"]:
            assert entry["source"] == "summary", entry["nodeid"]
        if "test_step5_smollm.py" in entry["nodeid"] or "test_baseline.py" in entry["nodeid"]:
            assert entry["source"] == "recomputed", entry["nodeid"]
        if entry["outcome"] == "skipped":
            assert entry["source"] == "skipped" and entry["reasons"]


def test_xfail_entries_carry_the_gate_and_the_failure(serial_report):
    rep, _ = serial_report
    gate = [e for e in rep["results"] if e["claim"] == "arc3.step5.smollm.gate"]
    assert {e["outcome"] for e in gate} == {"xfailed"}
    for e in gate:
        assert e["gate"]["auc_min"] == 0.63 and e["verdict"] == "fail"
        assert any("class imbalance" in r for r in e["reasons"])
        assert e["metrics"]["n_pos"] == 9 and "auc" in e["paper"]


@pytest.mark.parametrize("dist", ["load", "loadgroup"])
def test_xdist_gives_the_same_report(serial_report, artifact_root, tmp_path, dist):
    path = tmp_path / "xdist.json"
    code, out = run_pytest(*ARTIFACT_CLAIMS, "-n", "2", "--dist", dist, "-v", "-p", "no:randomly", "--dd-report",
                           str(path), artifacts_dir=artifact_root)
    assert code == 0, out
    assert read_report(path)["results"] == serial_report[0]["results"]
    if dist == "loadgroup":  # every base's claims ran on one worker, so each base loads once per worker
        workers: dict[str, set[str]] = {}
        for worker, base in re.findall(r"^\[(gw\d+)\] .*::\S+@(\S+)\s*$", out, re.M):
            workers.setdefault(base, set()).add(worker)
        assert len(workers) >= 5 and all(len(w) == 1 for w in workers.values()), workers


def test_a_deleted_artifact_skips_only_its_tests(serial_report, artifact_copy, tmp_path):
    (artifact_copy / "eval/results/smollm_fresh_features.npz").unlink()
    path = tmp_path / "r.json"
    code, out = run_pytest(*ARTIFACT_CLAIMS, "-q", "--dd-report", str(path), artifacts_dir=artifact_copy)
    assert code == 0, out
    before = {e["nodeid"]: e for e in serial_report[0]["results"]}
    after = {e["nodeid"]: e for e in read_report(path)["results"]}
    newly_skipped = {n for n, e in after.items() if e["outcome"] == "skipped" and before[n]["outcome"] != "skipped"}
    assert newly_skipped and all(before[n]["base"] == "smollm2-1.7b" for n in newly_skipped)
    for n in newly_skipped:
        assert "smollm_fresh_features.npz" in after[n]["reasons"][0] and "dd artifacts fetch" in after[n]["reasons"][0]
    assert all(after[n]["outcome"] == before[n]["outcome"] for n in after if n not in newly_skipped)


def test_a_tampered_artifact_fails_loudly(artifact_copy):
    path = artifact_copy / "eval/results/judge_v4_step16.json"
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 1
    path.write_bytes(bytes(raw))
    code, out = run_pytest("claims/arc3", "-q", "-k", "step16", artifacts_dir=artifact_copy)
    assert code == 1
    assert "ArtifactCorrupt" in out and "judge_v4_step16.json" in out and "24a33185010a2143" in out


def test_a_warm_artifact_only_run_imports_no_heavy_module(artifact_root, tmp_path):
    """Cold, the fits need scikit-learn; warm, every fit comes from the cache and nothing heavy is imported."""
    args = ["claims/arc3", "claims/arc2", "claims/arc1", "-m", "not heavy", "-q", "-p", "no:randomly",
            "-p", "import_probe", "--dd-cache", str(tmp_path / "cache")]
    env = {"PYTHONPATH": str(ROOT / "tests")}
    code, cold = run_pytest(*args, artifacts_dir=artifact_root, extra_env=env)
    assert code == 0, cold[-2000:]
    assert "'sklearn'" in cold and "'torch'" not in cold and "'transformers'" not in cold, cold[-300:]
    code, warm = run_pytest(*args, artifacts_dir=artifact_root, extra_env=env)
    assert code == 0 and "HEAVY []" in warm, warm[-2000:]


def test_snapshot_update_refuses_several_workers(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("-n", "2", "--snapshot-update")
    assert result.ret != 0
    assert "loses snapshot entries" in result.stderr.str()


def test_outcomes_of_a_synthetic_claim_module(pytester, tmp_path):
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        from dd.protocol import VerdictFailed

        @pytest.mark.claim("demo.pass", base="tiny", paper={"auc": 0.7})
        def test_pass(claim):
            claim.conclude(source="recomputed", metrics={"auc": 0.7}, verdict="pass")

        @pytest.mark.claim("demo.xfail", base="tiny")
        @pytest.mark.xfail(strict=True, raises=VerdictFailed, reason="paper reports a failure")
        def test_xfail(claim):
            claim.conclude(source="summary", metrics={"auc": 0.5}, verdict="fail", reasons=["AUC 0.5 < 0.63"])

        @pytest.mark.claim("demo.skip", base="tiny")
        def test_skip(claim):
            pytest.skip("needs weights: pass --dd-model tiny=PATH")

        @pytest.mark.claim("demo.error", base="tiny")
        def test_error(claim):
            raise RuntimeError("boom")

        def test_not_a_claim():
            pass
    """))
    path = tmp_path / "r.json"
    result = pytester.runpytest("--dd-report", str(path))
    result.assert_outcomes(passed=2, xfailed=1, skipped=1, errors=1)
    rep = read_report(path)
    assert validate(rep) == []
    by = {e["claim"]: e for e in rep["results"]}
    assert set(by) == {"demo.pass", "demo.xfail", "demo.skip", "demo.error"}
    assert by["demo.pass"]["outcome"] == "passed" and by["demo.pass"]["paper"] == {"auc": 0.7}
    assert by["demo.xfail"]["outcome"] == "xfailed" and by["demo.xfail"]["source"] == "summary"
    assert by["demo.skip"]["source"] == "skipped" and "--dd-model tiny=PATH" in by["demo.skip"]["reasons"][0]
    assert by["demo.error"]["outcome"] == "error" and "boom" in by["demo.error"]["reasons"][0]
