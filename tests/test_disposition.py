"""Judged disposition of an arm and the paired shift between two arms (dd.arcs)."""

import dataclasses

import numpy as np
import pytest
from helpers import rule_judge
from hypothesis import given, settings
from hypothesis import strategies as st

from dd.arcs import JudgingFailed, compare_dispositions, judge_arm, paired_shift
from dd.lm import Generation
from dd.judges import IncomparableArms, JudgeConfig
from dd.judges.replay import ReplayServer

PROMPTS = [f"How long should I rest dough number {i}?" for i in range(30)]


def gens(texts, finish="eos", prompts=PROMPTS):
    return [Generation(p, tuple(range(len(t.split()))), t, finish, 64, 8) for p, t in zip(prompts, texts, strict=True)]


@pytest.fixture
def judge():
    with ReplayServer({}, responder=rule_judge) as server:
        yield server, JudgeConfig(server.url, "rule-judge", timeout_s=5.0, max_retries=0, progress=False)


def test_a_hedging_arm_moves_the_humble_axis(judge):
    _, config = judge
    base = judge_arm("base", gens(["Rest it for an hour."] * 30), config)
    op = judge_arm("lambda=0.5", gens(["Maybe an hour; double-check the recipe."] * 25 + ["An hour."] * 5), config)
    cmp = compare_dispositions(base, op)
    humble = cmp.shifts["hedging_appropriateness"]
    assert (humble.base_rate, humble.op_rate, humble.n) == (0.0, 25 / 30, 30)
    assert humble.p_value < 1e-3
    assert cmp.content.delta == 0.0 and not cmp.truncation.artifact
    assert cmp.judging["model"] == "rule-judge" and cmp.judging["rubric_version"]
    assert cmp.metrics()["hedging_appropriateness.op_pct"] == pytest.approx(100 * 25 / 30)


def test_a_garbage_reply_stops_the_arm_naming_the_item(judge):
    server, config = judge
    server.responder = lambda m: "looks fine to me" if "dough number 3?" in m[-1]["content"] else rule_judge(m)
    with pytest.raises(JudgingFailed, match=r"failed on 1 of 30 items \(item 3 \(pass\w: unparseable"):
        judge_arm("base", gens(["An hour."] * 30), config)


def test_arms_judged_differently_or_on_other_prompts_are_refused(judge):
    _, config = judge
    base = judge_arm("base", gens(["An hour."] * 30), config)
    other_model = judge_arm("op", gens(["An hour."] * 30), dataclasses.replace(config, model="another-judge"))
    with pytest.raises(IncomparableArms, match="another-judge"):
        compare_dispositions(base, other_model)
    shifted = judge_arm("op", gens(["An hour."] * 30, prompts=PROMPTS[1:] + PROMPTS[:1]), config)
    with pytest.raises(ValueError, match="different prompts"):
        compare_dispositions(base, shifted)


def test_a_mostly_truncated_arm_is_not_a_comparison(judge):
    _, config = judge
    base = judge_arm("base", gens(["An hour."] * 30), config)
    op = judge_arm("op", gens(["Maybe an hour"] * 30, finish="length"), config)
    assert compare_dispositions(base, op).truncation.artifact


def test_no_change_has_p_one_and_a_drop_is_not_a_rise():
    same = np.array([0, 1] * 10)
    assert paired_shift("a", same, same).p_value == 1.0
    drop = paired_shift("a", np.ones(20), np.zeros(20))
    assert drop.delta == -1.0 and drop.p_value > 0.5
    with pytest.raises(ValueError, match="equal non-empty"):
        paired_shift("a", np.ones(3), np.ones(4))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=40))
def test_p_value_is_a_probability_and_monotone_in_the_rise(pairs):
    base, op = (np.array(x) for x in zip(*pairs))
    p = paired_shift("a", base, op).p_value
    assert 0.0 < p <= 1.0
    all_high = np.ones_like(op)  # every operator item at 1: the rise can only grow
    assert paired_shift("a", base, all_high).p_value <= p + 1e-9
