"""Golden judge runs: the v4 and verbal judges, replayed from the paper's released labels through the
real client, snapshot-compared as compact records (item hashes, label hashes, counts; no text).

`pytest tests/test_judge_golden.py --snapshot-update` rewrites the snapshot after an intended
rubric change; a diff in review then shows exactly which items and counts moved.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

import pytest

from dd.paper import STEP16
from dd.judges import (
    V4_AXES,
    JudgeConfig,
    JudgeError,
    JudgeItem,
    JudgeRun,
    V4Judge,
    V4Label,
    VerbalLabel,
    compare_judge_runs,
    messages_hash,
    run_judge,
)
from dd.judges import _rubrics as R
from dd.judges.replay import ReplayServer, paper_recordings, replay_paper_runs


def label_hash(outcome: Any) -> str:
    payload = {"error": outcome.kind} if isinstance(outcome, JudgeError) else outcome.as_dict()
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def golden_record(run: JudgeRun, item_set: str) -> dict[str, Any]:
    """The compact, text-free record a snapshot holds for one (judge, rubric, item set)."""
    ok = [o for o in run.outcomes if not isinstance(o, JudgeError)]
    record: dict[str, Any] = {
        "judge": run.judge,
        "rubric_version": run.rubric_version,
        "item_set": item_set,
        "n_items": len(run.outcomes),
        "n_labelled": len(ok),
        "errors": {item.hash: out.kind for item, out in zip(run.items, run.outcomes) if isinstance(out, JudgeError)},
        "items": dict(sorted((item.hash, label_hash(out)) for item, out in zip(run.items, run.outcomes))),
    }
    if ok and isinstance(ok[0], V4Label):
        record["cert"] = dict(sorted(Counter(o.cert for o in ok).items()))
        record["axes"] = {
            axis: {
                "positives": sum(o.binary(axis) for o in ok),
                "scores": dict(sorted(Counter(o.scores[axis] for o in ok).items())),
            }
            for axis in V4_AXES
        }
        record["positives_total"] = sum(o.binary(a) for o in ok for a in V4_AXES)
    elif ok and isinstance(ok[0], VerbalLabel):
        record["verbal"] = dict(sorted(Counter(o.label for o in ok).items()))
    return record


CASES = [("v4", "step16"), ("v4", "fresh"), ("verbal", "step16")]


@pytest.mark.parametrize("judge,item_set", CASES, ids=[f"{j}-{s}" for j, s in CASES])
def test_golden_judge_run(store, snapshot, judge, item_set):
    run = replay_paper_runs(store, item_set)[judge]
    record = golden_record(run, item_set)
    assert len(record["items"]) == record["n_items"]  # item hashes are unique
    assert record == snapshot


def test_golden_record_holds_no_text(store):
    run = replay_paper_runs(store, "step16")["v4"]
    blob = json.dumps(golden_record(run, "step16"))
    for item in run.items[:20]:
        assert item.prompt[:40] not in blob and item.response[:40] not in blob


def test_changing_one_recorded_reply_fails_the_drift_check_naming_item_and_axis(store):
    golden = replay_paper_runs(store, "step16")["v4"]
    released = store.json(STEP16)["items"]
    k = next(i for i, it in enumerate(released) if it["scores"].get("completeness", 5) < 4)
    target = released[k]
    recordings = paper_recordings(store, ("step16",))
    changed = dict(target["scores"], completeness=5)
    recordings[messages_hash(R.v4_pass2_messages(target["prompt"], target["cert"], target["response"]))] = R.scores_reply(changed)
    subset = [JudgeItem(it["prompt"], it["response"]) for it in released[max(0, k - 5) : k + 5]]
    with ReplayServer(recordings) as server:
        config = JudgeConfig(server.url, "replay", timeout_s=10, max_retries=0, concurrency=8, progress=False)
        fresh = run_judge(V4Judge(), subset, config)
    report = compare_judge_runs(golden, fresh, tolerance=0.0)
    target_hash = JudgeItem(target["prompt"], target["response"]).hash
    assert not report.passed and report.failed_axes == ("completeness",)
    assert [(f.item, f.axis, f.golden, f.fresh) for f in report.flipped] == [(target_hash, "completeness", 0, 1)]
    assert target_hash in report.summary()
    by_axis = {a.axis: a for a in report.axes}
    assert by_axis["completeness"].flips == 1 and by_axis["factual_accuracy"].agreement == 1.0
    assert compare_judge_runs(golden, fresh, tolerance=0.2).passed
