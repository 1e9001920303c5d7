"""Unit tests of the judges' prompts, strict parsers, labels, silent-default accounting and drift."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dd.judges import (
    CERT_CLASSES,
    V4_AXES,
    ChecklistJudge,
    ChecklistLabel,
    Judge,
    JudgeError,
    JudgeItem,
    ParseError,
    V4Judge,
    V4Label,
    VerbalJudge,
    VerbalLabel,
    compare_runs,
    default_fill_impact,
    get_judge,
    item_hash,
    judge_names,
    messages_hash,
)
from dd.judges import _rubrics as R


def test_registry_names_the_judges():
    assert judge_names() == ("checklist", "lexical", "mcas", "svr", "v4", "verbal")
    assert isinstance(get_judge("v4"), V4Judge)
    assert isinstance(get_judge("verbal"), VerbalJudge)
    assert isinstance(get_judge("checklist"), ChecklistJudge)
    assert all(isinstance(get_judge(n), Judge) for n in judge_names())
    with pytest.raises(KeyError, match="registered"):
        get_judge("nope")


def test_rubric_versions_are_distinct_and_nonempty():
    versions = {get_judge(n).rubric_version for n in judge_names()}
    assert len(versions) == len(judge_names()) and all(versions)


def test_v4_pass1_is_response_blind():
    msgs = R.v4_pass1_messages("Q?")
    assert "Q?" in msgs[-1]["content"]
    assert all("Answer" not in m["content"] for m in msgs)


def test_v4_pass2_fixes_class_defines_axes_and_refuses_verbosity():
    system = R.v4_pass2_messages("Q?", "UNCERTAIN", "R.")[0]["content"]
    assert "UNCERTAIN" in system
    for axis in V4_AXES:
        assert axis in system
    assert "verbosity" in system
    assert "bullet" in system  # length or bullets alone are not teaching


def test_checklist_prompt_asks_for_concrete_claims():
    system = R.checklist_messages("Q?")[0]["content"]
    assert "3 to 5" in system and "generic advice" in system


@pytest.mark.parametrize("reply,expected", [("CERTAIN", "CERTAIN"), (" uncertain.\n", "UNCERTAIN"), ("**AMBIGUOUS**", "AMBIGUOUS")])
def test_parse_class_accepts_exact_words(reply, expected):
    assert R.parse_class(reply, CERT_CLASSES) == expected


@pytest.mark.parametrize("reply", ["", "The question is CERTAIN.", "NOT CERTAIN", "CERTAIN or UNCERTAIN", "{}"])
def test_parse_class_never_guesses(reply):
    with pytest.raises(ParseError) as err:
        R.parse_class(reply, CERT_CLASSES)
    assert err.value.kind == "unparseable"


scores_st = st.fixed_dictionaries({a: st.integers(1, 5) for a in V4_AXES})


@given(scores_st, st.booleans())
def test_parse_v4_scores_roundtrip(scores, fenced):
    text = R.scores_reply(scores)
    if fenced:
        text = f"```json\n{text}\n```"
    assert R.parse_v4_scores(text) == scores


@given(scores_st, st.sampled_from(V4_AXES))
def test_parse_v4_scores_missing_axis_is_its_own_kind(scores, axis):
    del scores[axis]
    with pytest.raises(ParseError) as err:
        R.parse_v4_scores(json.dumps(scores))
    assert err.value.kind == "missing_axis" and axis in str(err.value)


@pytest.mark.parametrize("bad", [0, 6, 3.5, "4", True, None])
def test_parse_v4_scores_rejects_non_integer_scores(bad):
    scores = {a: 3 for a in V4_AXES} | {"completeness": bad}
    with pytest.raises(ParseError) as err:
        R.parse_v4_scores(json.dumps(scores))
    assert err.value.kind == "invalid_score"


@pytest.mark.parametrize("text", ["no json here", "Scores: {\"factual_accuracy\": 4", "[1,2,3]", "Here: {}"])
def test_parse_v4_scores_unparseable(text):
    with pytest.raises(ParseError) as err:
        R.parse_v4_scores(text)
    assert err.value.kind == "unparseable"


def test_parse_checklist_and_yes_no():
    assert R.parse_checklist('{"claims": [" a ", "b", "c"]}') == ("a", "b", "c")
    for bad in ['{"claims": []}', '{"claims": [1]}', '{"x": 1}', "claims: a, b"]:
        with pytest.raises(ParseError):
            R.parse_checklist(bad)
    assert R.parse_yes_no("Yes.") is True and R.parse_yes_no("NO") is False
    with pytest.raises(ParseError):
        R.parse_yes_no("Mostly yes")


def test_labels_binarize_at_four_and_coverage_at_half():
    label = V4Label("CERTAIN", {a: s for a, s in zip(V4_AXES, (4, 3, 5, 1, 2))})
    assert [label.binary(a) for a in V4_AXES] == [1, 0, 1, 0, 0]
    assert label.scores_tuple() == (4, 3, 5, 1, 2)
    assert VerbalLabel("ASSERT").asserted and not VerbalLabel("HEDGE").asserted
    half = ChecklistLabel(("a", "b"), (True, False))
    assert half.coverage == 0.5 and half.correct
    assert not ChecklistLabel(("a", "b", "c"), (True, False, False)).correct


def test_item_and_messages_hash_are_stable_and_distinct():
    assert item_hash("p", "r") == JudgeItem("p", "r").hash
    assert len(item_hash("p", "r")) == 16
    assert item_hash("p", "r") != item_hash("pr", "")
    m = R.verbal_messages("p", "r")
    assert messages_hash(m) == messages_hash([dict(x, extra="ignored") for x in m])
    assert messages_hash(m) != messages_hash(R.verbal_messages("p", "r "))


def test_default_fill_impact_counts_hidden_errors():
    outcomes = [VerbalLabel("HEDGE"), JudgeError("unparseable", raw="??"), VerbalLabel("ASSERT"), JudgeError("timeout")]
    impact = default_fill_impact(outcomes, VerbalLabel("ASSERT"))
    assert (impact.n_items, impact.n_errors, impact.changed) == (4, 2, 2)
    assert impact.by_kind == {"unparseable": 1, "timeout": 1}
    # against a re-run: only fills that differ from the true label count
    rerun = [VerbalLabel("HEDGE"), VerbalLabel("ASSERT"), VerbalLabel("ASSERT"), VerbalLabel("HEDGE")]
    assert default_fill_impact(outcomes, VerbalLabel("ASSERT"), reference=rerun).changed == 1
    assert default_fill_impact(outcomes, VerbalLabel("ASSERT"), project=lambda l: l.asserted, reference=rerun).changed == 1
    assert default_fill_impact([VerbalLabel("HEDGE")], VerbalLabel("ASSERT")).changed == 0


def _fields(bits):
    return {f"i{k}": {"completeness": b, "cert": "CERTAIN"} for k, b in enumerate(bits)}


def test_compare_runs_agreement_kappa_and_flips():
    golden = _fields([1, 0, 1, 0, 1, 0, 1, 0])
    same = compare_runs(golden, golden)
    assert same.passed and not same.flipped
    assert {a.axis: a.kappa for a in same.axes} == {"cert": 1.0, "completeness": 1.0}
    fresh = _fields([1, 0, 1, 0, 1, 0, 1, 1])
    report = compare_runs(golden, fresh, tolerance=0.0)
    assert not report.passed and report.failed_axes == ("completeness",)
    assert [(f.item, f.axis, f.golden, f.fresh) for f in report.flipped] == [("i7", "completeness", 0, 1)]
    axis = next(a for a in report.axes if a.axis == "completeness")
    assert axis.agreement == pytest.approx(7 / 8) and axis.kappa == pytest.approx(0.75)
    assert compare_runs(golden, fresh, tolerance=0.2).passed
    assert "i7" in report.summary() and "completeness" in report.summary()


def test_compare_runs_flags_new_judge_errors():
    golden = _fields([1, 0])
    fresh = dict(golden, i1=None)
    report = compare_runs(golden, fresh)
    assert not report.passed and report.newly_failed == ("i1",)
    assert compare_runs(golden, fresh, fail_on_new_errors=False).passed
