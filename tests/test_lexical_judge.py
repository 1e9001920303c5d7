"""The `lexical` judge: deterministic marker counts, no endpoint, and a caveat on every label."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dd.judges import (
    LEXICAL_AXIS,
    LEXICAL_CAVEAT,
    LEXICAL_CONFIG,
    Judge,
    JudgeItem,
    LexicalJudge,
    count_markers,
    get_judge,
    judging_identity,
    lexical_scores,
    require_same_judging,
    run_judge,
)
from dd.judges import _lexical as L


def test_registered_like_the_other_judges():
    judge = get_judge("lexical")
    assert isinstance(judge, LexicalJudge) and isinstance(judge, Judge)
    assert judge.rubric_version.startswith("dd-lexical-hedge-assert/1+")


def test_rubric_says_it_measures_wording_not_disposition_and_its_version_pins_the_lists():
    judge = get_judge("lexical")
    assert "measures surface wording, not disposition" in judge.rubric
    assert "not disposition" in judge.caveat
    assert all(m in judge.rubric for m in (*L.HEDGE_MARKERS, *L.ASSERTION_MARKERS))
    digest = hashlib.sha256(judge.rubric.encode()).hexdigest()[:12]
    assert judge.rubric_version.endswith(digest)


@pytest.mark.parametrize(("text", "hedges", "assertions"), [
    ("I'm not sure, but it is probably Paris.", 2, 0),  # "not sure" once, not also a bare word
    ("It is DEFINITELY Paris. Of course it is.", 0, 2),
    ("Searing is not always needed; it\u2019s generally two minutes.", 2, 0),  # "not always" is a hedge
    ("Add mayonnaise and mustard, then serve.", 0, 0),  # whole words only: no "may", no "must"
    ("As far as\nI   know, it could be\tright.", 2, 0),  # any whitespace inside a phrase
    ("", 0, 0),
])
def test_counts(text, hedges, assertions):
    label = count_markers(text)
    assert (label.hedges, label.assertions) == (hedges, assertions)


def test_score_is_net_markers_per_hundred_words_and_every_label_carries_the_caveat():
    label = count_markers("Maybe it is Paris, maybe Lyon. Certainly not Rome.")
    assert (label.hedges, label.assertions, label.words) == (2, 1, 9)
    assert label.score == pytest.approx(100 * 1 / 9)
    assert count_markers("").score == 0.0
    assert label.as_dict() == {"hedges": 2, "assertions": 1, "words": 9, "score": label.score,
                               "caveat": LEXICAL_CAVEAT}


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from("abcdefgh ,.\n'"), max_size=80))
def test_deterministic_case_blind_and_one_more_hedge_counts_one(text):
    label = count_markers(text)
    assert label == count_markers(text) == count_markers(text.upper())
    more = count_markers(text + " perhaps.")
    assert (more.hedges, more.assertions) == (label.hedges + 1, label.assertions)


def test_a_run_needs_no_endpoint_and_feeds_the_effect_protocol():
    items = [JudgeItem("Q?", "Maybe ten minutes."), JudgeItem("Q?", "Ten minutes, definitely."),
             JudgeItem("Q?", "Ten minutes.")]
    run = run_judge(get_judge("lexical"), items, LEXICAL_CONFIG)  # local:lexical is never contacted
    assert not run.errors and run.stats.requests == 0
    assert all(o.caveat == LEXICAL_CAVEAT for o in run.outcomes)
    scores = lexical_scores(run)[LEXICAL_AXIS]
    np.testing.assert_allclose(scores, [100 / 3, -100 / 3, 0.0])
    again = run_judge(get_judge("lexical"), items, LEXICAL_CONFIG)
    assert require_same_judging(run, again) == judging_identity(run)
    assert judging_identity(run)["judge"] == "lexical"
