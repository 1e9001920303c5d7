"""An error is never a verdict: only `VerdictFailed` is an expected failure of a claim.

A corrupt cache entry, a missing array key or a wrong feature shape inside a strict-xfail claim
must fail the run (non-zero exit), show as an error in the terminal and the report, and never
read as the paper's expected failure.
"""

import textwrap

import pytest

from dd.lm import build_tiny_base
from dd.pytest import validate
from helpers import read_report, run_pytest

# A claim module whose three expected failures crash before they reach a verdict, through the
# suite's own code paths: the cache, an npz of features, the protocol's steps.
CRASHING_CLAIMS = """
    import numpy as np
    import pytest

    from dd import VerdictFailed
    from dd.core import Cache, CacheKey
    from dd.protocol import FeatureSource, fresh_step

    XFAIL = pytest.mark.xfail(strict=True, raises=VerdictFailed, reason="paper: the gate fails")
    rng = np.random.default_rng(0)


    def source(d_fresh=8):
        y = np.tile([0, 1], 40)
        return FeatureSource(name="demo", X_train=rng.normal(size=(80, 8)), y_train=y,
                             X_fresh=rng.normal(size=(80, d_fresh)), y_fresh=y)


    @pytest.mark.claim("demo.corrupt_cache", base="tiny")
    @XFAIL
    def test_corrupt_cache(claim, tmp_path):
        cache, key = Cache(tmp_path), CacheKey("features", {"base": "tiny"})
        path = cache.put(key, {"X": np.ones((4, 8))})
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 1
        path.write_bytes(bytes(raw))
        X = cache.get(key)["X"]
        claim.conclude(source="recomputed", metrics={"n": len(X)}, verdict="fail")


    @pytest.mark.claim("demo.missing_key", base="tiny")
    @XFAIL
    def test_missing_key(claim, tmp_path):
        np.savez(tmp_path / "train.npz", X=np.ones((4, 8)))
        with np.load(tmp_path / "train.npz") as z:
            y = z["y"]
        claim.conclude(source="recomputed", metrics={"n": len(y)}, verdict="fail")


    @pytest.mark.claim("demo.wrong_shape", base="tiny")
    @XFAIL
    def test_wrong_shape(claim):
        result = fresh_step(source(d_fresh=5), 1.0)
        claim.conclude(source="recomputed", metrics=result.metrics, verdict=result.verdict)


    @pytest.mark.claim("demo.real_failure", base="tiny")
    @XFAIL
    def test_real_failure(claim):
        result = fresh_step(source(), 1.0)
        claim.conclude(source="recomputed", metrics=result.metrics, verdict=result.verdict)
"""


def test_crashes_in_strict_xfail_claims_fail_the_run(pytester, tmp_path):
    pytester.makepyfile(textwrap.dedent(CRASHING_CLAIMS))
    path = tmp_path / "r.json"
    result = pytester.runpytest("-p", "no:randomly", "-rA", "--dd-report", str(path))
    assert result.ret == 1
    result.assert_outcomes(errors=3, xfailed=1)
    result.stdout.re_match_lines([rf"^ERROR \S+::{name}\b" for name in ("test_corrupt_cache", "test_missing_key",
                                                                        "test_wrong_shape")])
    result.stdout.re_match_lines([r"^XFAIL \S+::test_real_failure"])
    rep = read_report(path)
    assert validate(rep) == []
    by = {e["claim"]: e for e in rep["results"]}
    assert by["demo.real_failure"]["outcome"] == "xfailed" and by["demo.real_failure"]["verdict"] == "fail"
    expected_types = {"demo.corrupt_cache": "CorruptCacheEntry", "demo.missing_key": "KeyError",
                      "demo.wrong_shape": "ValueError"}
    for claim_id, exc_type in expected_types.items():
        entry = by[claim_id]
        assert entry["outcome"] == "error", entry
        assert entry["verdict"] == "inconclusive" and exc_type in entry["reasons"][0], entry["reasons"]


@pytest.mark.parametrize("raises", ["", ", raises=AssertionError"])
def test_a_claim_xfail_that_does_not_pin_the_verdict_is_refused(pytester, raises):
    pytester.makepyfile(textwrap.dedent(f"""
        import pytest

        @pytest.mark.claim("demo.unpinned", base="tiny")
        @pytest.mark.xfail(strict=True{raises}, reason="paper: fails")
        def test_unpinned(claim):
            claim.conclude(source="recomputed", metrics={{}}, verdict="fail")
    """))
    result = pytester.runpytest("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "raises=dd.VerdictFailed" in result.stderr.str() and "test_unpinned" in result.stderr.str()


@pytest.mark.parametrize("phase", ["setup", "teardown"])
def test_a_fixture_error_in_a_claim_is_an_error(pytester, tmp_path, phase):
    before, after = ("raise FileNotFoundError('features.npz')", "") if phase == "setup" else (
        "", "raise FileNotFoundError('features.npz')")
    pytester.makepyfile(textwrap.dedent(f"""
        import pytest

        @pytest.fixture
        def features():
            {before}
            yield
            {after}

        @pytest.mark.claim("demo.fixture", base="tiny")
        def test_claim(claim, features):
            claim.conclude(source="recomputed", metrics={{}}, verdict="pass")
    """))
    path = tmp_path / "r.json"
    result = pytester.runpytest("-p", "no:randomly", "--dd-report", str(path))
    assert result.ret == 1
    result.assert_outcomes(errors=1, passed=int(phase == "teardown"))
    entry = read_report(path)["results"][0]
    assert entry["outcome"] == "error" and "FileNotFoundError" in entry["reasons"][0], entry
    assert entry["reasons"][0].startswith(f"error in {phase}, not a verdict")


@pytest.fixture(scope="module")
def tiny_gemma4(tmp_path_factory):
    return build_tiny_base("tiny-gemma4", tmp_path_factory.mktemp("bases") / "tiny-gemma4")


@pytest.mark.model
def test_corrupt_feature_cache_fails_the_frozen_base_claims(artifact_root, tiny_gemma4, tmp_path):
    """The user's reproduction: a byte flipped in each cached feature file, then Steps 1-2 again."""
    cache = tmp_path / "cache"
    args = ["claims/arc3/test_frozen_bases.py", "-k", "gemma4-e2b and (step1 or step2)", "-p", "no:randomly",
            "--dd-model", f"gemma4-e2b={tiny_gemma4}", "--dd-cache", str(cache)]
    code, out = run_pytest(*args, "-q", artifacts_dir=artifact_root)
    assert code in (0, 1), out
    files = sorted((cache / "features").glob("*/*.npz"))
    assert files, f"no cached features under {cache}"
    for path in files:
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 1
        path.write_bytes(bytes(raw))
    report_path = tmp_path / "r.json"
    code, out = run_pytest(*args, "-rA", "--dd-report", str(report_path), artifacts_dir=artifact_root)
    assert code == 1, out
    assert "xfailed" not in out.splitlines()[-1], out.splitlines()[-1]
    entries = read_report(report_path)["results"]
    assert len(entries) == 4
    for entry in entries:
        assert entry["outcome"] == "error" and "CorruptCacheEntry" in entry["reasons"][0], entry


def test_a_failure_other_than_the_claimed_one_fails_the_test(pytester):
    pytester.makepyfile(textwrap.dedent("""
        import pytest
        from dd import VerdictFailed

        XFAIL = pytest.mark.xfail(strict=True, raises=VerdictFailed, reason="claims fail")

        @pytest.mark.claim("demo.same", base="tiny")
        @XFAIL
        def test_same(claim):
            claim.conclude(source="recomputed", metrics={}, verdict="fail", claimed="fail")

        @pytest.mark.claim("demo.other", base="tiny")
        @XFAIL
        def test_other(claim):
            claim.conclude(source="recomputed", metrics={}, verdict="inconclusive", reasons=["9 positives"],
                           claimed="fail")
    """))
    result = pytester.runpytest("-p", "no:randomly", "-rA")
    result.assert_outcomes(xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["*9 positives; claims 'fail', measured 'inconclusive'*"])
