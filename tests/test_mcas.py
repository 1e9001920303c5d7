"""MCAS and SVR judges (dd.judges._mcas) through the replay server: scores, strict parsing, apples-to-apples."""

from __future__ import annotations

import pytest

from dd.core import Cache
from dd.judges import (
    IncomparableArms,
    JudgeConfig,
    JudgeError,
    McasLabel,
    SvrLabel,
    compare_judged,
    get_judge,
    judge_names,
    judged_score,
    run_judge,
)
from dd.judges.replay import ReplayServer

PROMPTS = [f"How long should I rest dough number {i}?" for i in range(20)]


def responder(messages):
    """MCAS 2 for a hedged answer, 0 otherwise; SVR YES when the answer checks something; 'two' for 'garbage'."""
    system, answer = messages[0]["content"], messages[-1]["content"].split("\n\nAnswer:\n", 1)[1]
    if "garbage" in answer:
        return "two"
    if system.startswith("You grade whether an answer's confidence"):
        return "2" if "depends" in answer else "0"
    if system.startswith("You check whether an answer verifies itself"):
        return "YES" if "check:" in answer else "NO"
    return None


@pytest.fixture
def server():
    with ReplayServer({}, responder=responder) as replay:
        yield replay


def _config(server, model="rule-judge"):
    return JudgeConfig(server.url, model, timeout_s=5.0, max_retries=0, progress=False)


def test_registered_with_versioned_rubrics():
    assert {"mcas", "svr"} <= set(judge_names())
    assert get_judge("mcas").rubric_version.startswith("dd-mcas") and get_judge("svr").rubric_version


def test_scores_paired_and_cached(server, tmp_path):
    config, cache = _config(server), Cache(tmp_path)
    base_items = [(p, "An hour.") for p in PROMPTS]
    op_items = [(p, "It depends on the flour; check: the dough springs back.") for p in PROMPTS[:15]]
    op_items += [(p, "An hour.") for p in PROMPTS[15:]]
    base = run_judge(get_judge("mcas"), base_items, config, cache)
    op = run_judge(get_judge("mcas"), op_items, config, cache)
    assert base.outcomes[0] == McasLabel(0) and op.outcomes[0] == McasLabel(2)
    assert judged_score(base) == 0.0 and judged_score(op) == pytest.approx(75.0)  # mean 1.5 / 2 x 100
    cmp = compare_judged(base, op)
    assert cmp.delta == pytest.approx(75.0) and cmp.test.p_value < 1e-3 and cmp.test.n == 20
    assert cmp.metrics()["mcas.rubric_version"] == get_judge("mcas").rubric_version
    svr = compare_judged(run_judge(get_judge("svr"), base_items, config, cache),
                         run_judge(get_judge("svr"), op_items, config, cache))
    assert (svr.base, svr.operator) == (0.0, 75.0)
    assert run_judge(get_judge("svr"), op_items, config, cache).outcomes[0] == SvrLabel(True)
    asked = len(server.requests)
    run_judge(get_judge("mcas"), op_items, config, cache)  # replayed from the cache
    assert len(server.requests) == asked


def test_arms_judged_differently_are_refused(server):
    items = [(p, "An hour.") for p in PROMPTS[:3]]
    base = run_judge(get_judge("mcas"), items, _config(server))
    other_model = run_judge(get_judge("mcas"), items, _config(server, "another-judge"))
    with pytest.raises(IncomparableArms, match="another-judge"):
        compare_judged(base, other_model)
    with pytest.raises(IncomparableArms, match="rubric_version"):
        compare_judged(base, run_judge(get_judge("svr"), items, _config(server)))
    with pytest.raises(ValueError, match="same prompts"):
        compare_judged(base, run_judge(get_judge("mcas"), items[::-1], _config(server)))


def test_a_reply_outside_the_rubric_is_an_error_not_a_score(server):
    run = run_judge(get_judge("mcas"), [(PROMPTS[0], "garbage"), (PROMPTS[1], "An hour.")], _config(server))
    assert isinstance(run.outcomes[0], JudgeError) and run.outcomes[1] == McasLabel(0)
    with pytest.raises(ValueError, match="without a label"):
        judged_score(run)
