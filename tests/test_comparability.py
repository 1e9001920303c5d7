"""Two arms' judge scores are compared only when both were judged alike (the MCAS lesson)."""

import dataclasses

import pytest

from dd.judges import IncomparableArms, JudgeRun, RunStats, require_same_judging

CONFIG = {"base_url": "http://127.0.0.1:9/v1", "model": "judge-a", "temperature": 0.0, "seed": 0,
          "structured_output": False}


def run(**changes) -> JudgeRun:
    config = {**CONFIG, **{k: v for k, v in changes.items() if k in CONFIG}}
    rubric = changes.get("rubric_version", "dd-v4-two-pass-5axis/1")
    return JudgeRun("v4", rubric, (), (), RunStats(), config)


def test_identically_judged_arms_are_comparable():
    assert require_same_judging(run(), run())["model"] == "judge-a"


@pytest.mark.parametrize("change", [{"model": "judge-b"}, {"rubric_version": "mcas-dd-prompt/2"},
                                    {"temperature": 0.7}, {"seed": 1}, {"base_url": "http://127.0.0.1:8/v1"}])
def test_any_difference_is_an_error_naming_both_values(change):
    with pytest.raises(IncomparableArms) as err:
        require_same_judging(run(), run(**change))
    key, value = next(iter(change.items()))
    assert key in str(err.value) and repr(value) in str(err.value)


def test_the_key_is_not_part_of_the_identity():
    a = run()
    assert "api_key" not in str(require_same_judging(a, dataclasses.replace(a)))
