"""The one claim-declaration helper (`claim_param`, `claim_test`) and the paper's numbers files.

An expected failure must be a strict xfail that only a failed verdict satisfies: these tests pin
the marks the helper builds, and show a user's run where a crash under an expected failure is an
error while the failed verdict is the expected failure.
"""

import textwrap

import pytest

from dd.paper import numbered_arcs, paper_numbers
from dd.protocol import VerdictFailed
from dd.pytest import claim_marks, claim_param, claim_test
from helpers import read_report


def marks_by_name(marks) -> dict:
    return {m.name: m for m in marks}


def test_a_passing_claim_carries_its_marker_and_no_xfail():
    param = claim_param("C=1.0", id="smollm-C=1.0", claim_id="arc3.step5.smollm", base="smollm2-1.7b",
                        operator="sidecar-logreg-C1.0", step="fresh", paper={"auc": 0.519},
                        marks=[pytest.mark.model])
    assert param.values == ("C=1.0",) and param.id == "smollm-C=1.0"
    assert [m.name for m in param.marks] == ["claim", "model"]
    claim = param.marks[0]
    assert claim.args == ("arc3.step5.smollm",)
    assert claim.kwargs == {"base": "smollm2-1.7b", "operator": "sidecar-logreg-C1.0", "step": "fresh",
                            "paper": {"auc": 0.519}}


@pytest.mark.parametrize("expected", ["fail", "inconclusive"])
def test_an_expected_failure_is_a_strict_xfail_pinned_to_the_verdict(expected):
    param = claim_param(1.0, claim_id="arc3.step2.fresh", expected=expected, why="paper: AUC 0.509 < 0.63",
                        marks=[pytest.mark.slow, pytest.mark.heavy])
    assert [m.name for m in param.marks] == ["claim", "xfail", "slow", "heavy"]
    assert marks_by_name(param.marks)["xfail"].kwargs == {"strict": True, "raises": VerdictFailed,
                                                          "reason": "paper: AUC 0.509 < 0.63"}


def test_the_quoted_numbers_are_copied_into_the_marker():
    quoted = {"auc": 0.557}
    marks = claim_marks("arc3.step4.multilayer.gate", paper=quoted)
    quoted["auc"] = 0.0
    assert marks[0].kwargs["paper"] == {"auc": 0.557}


def test_a_claim_test_gets_the_same_marks_as_a_param():
    @claim_test("arc3.step4.multilayer.gate", base="gemma4-e2b", step="multilayer", expected="fail",
                why="paper: AUC 0.557, asym -0.130", marks=[pytest.mark.model])
    def test_gate():
        pass

    names = sorted(m.name for m in test_gate.pytestmark)
    assert names == ["claim", "model", "xfail"]
    xfail = next(m for m in test_gate.pytestmark if m.name == "xfail")
    assert xfail.kwargs["raises"] is VerdictFailed and xfail.kwargs["strict"] is True


@pytest.mark.parametrize("kwargs, message", [
    ({"expected": "passed"}, "expected verdict is one of"),
    ({"expected": "fail"}, "must say why"),
    ({"expected": "inconclusive", "why": "  "}, "must say why"),
])
def test_a_malformed_expectation_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        claim_param(1, claim_id="demo", **kwargs)


def test_a_users_claim_module_built_with_the_helper(pytester, tmp_path):
    """A failed verdict is the expected failure; a crash under the same mark is an error; a pass is red."""
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        from dd.pytest import claim_param, claim_test

        FAILS = dict(expected="fail", why="paper: AUC 0.509 < 0.63")


        @pytest.mark.parametrize("auc", [claim_param(0.509, id="paper", claim_id="demo.gate", base="tiny", **FAILS)])
        def test_gate(auc, claim):
            claim.conclude(source="summary", metrics={"auc": auc}, verdict="fail", reasons=[f"AUC {auc} < 0.63"])


        @claim_test("demo.crash", base="tiny", **FAILS)
        def test_crash(claim):
            raise RuntimeError("perplexity at lambda 1 differs from the base's")


        @claim_test("demo.now_passes", base="tiny", **FAILS)
        def test_now_passes(claim):
            claim.conclude(source="recomputed", metrics={"auc": 0.7}, verdict="pass")
    """))
    path = tmp_path / "r.json"
    result = pytester.runpytest("-p", "no:randomly", "--dd-report", str(path))
    result.assert_outcomes(xfailed=1, errors=1, failed=1)
    assert result.ret == 1
    by = {e["claim"]: e for e in read_report(path)["results"]}
    assert (by["demo.gate"]["outcome"], by["demo.gate"]["verdict"]) == ("xfailed", "fail")
    assert by["demo.crash"]["outcome"] == "error" and "RuntimeError" in by["demo.crash"]["reasons"][0]
    assert (by["demo.now_passes"]["outcome"], by["demo.now_passes"]["verdict"]) == ("failed", "pass")


def test_every_arc_has_its_numbers():
    assert numbered_arcs() == ("arc1", "arc2", "arc3")
    assert paper_numbers("arc3")["smollm"]["fresh"]["C=1.0"] == {"auc": 0.519, "balanced_asym": -0.161,
                                                                 "balanced_thr": 0.06}
    assert paper_numbers("arc2")["attribution"]["circuit"]["layers"] == [11, 19, 23]
    assert paper_numbers("arc1")["firstpass"]["humaneval"]["delta"] == 15.3


def test_a_test_that_changes_its_numbers_changes_no_one_elses():
    paper_numbers("arc3")["step2"]["C=1.0"]["auc"] = 0.99
    assert paper_numbers("arc3")["step2"]["C=1.0"]["auc"] == 0.509


def test_an_arc_without_numbers_is_a_clear_error():
    with pytest.raises(ValueError, match="arcs with a numbers file are"):
        paper_numbers("arc4")
