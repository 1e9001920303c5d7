"""The replay server, and the paper's released labels going in as recorded replies and coming out of
the suite's judges unchanged through the real client path (raw scores, classes and binarized)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from dd.core import Cache
from dd.paper import FRESH, STEP16, V4_AXES, JudgedSet, load_judged
from dd.judges import (
    ChecklistJudge,
    JudgeConfig,
    JudgeError,
    JudgeItem,
    V4Label,
    VerbalLabel,
    default_fill_impact,
    judge_label_set,
    messages_hash,
    run_judge,
)
from dd.judges import _rubrics as R
from dd.judges.replay import (
    ReplayServer,
    paper_recordings,
    replay_paper_runs,
    serve_replay,
    start_replay_server,
    synthetic_checklist_recordings,
)

ERROR_ITEM = {"step16": 21, "fresh": 149}


# ------------------------------------------------------------------ server mechanics (no paper data)


def _post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_server_answers_openai_shape_with_usage():
    messages = [{"role": "user", "content": "one two three"}]
    with start_replay_server({messages_hash(messages): "HEDGE"}) as server:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v1")
        status, body = _post(server.url, json.dumps({"model": "m", "messages": messages}).encode())
        assert status == 200
        assert body["choices"][0]["message"]["content"] == "HEDGE"
        assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
        status, body = _post(server.url, json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode())
        assert status == 404 and body["error"]["type"] == "replay_miss"
        status, _ = _post(server.url, b"not json")
        assert status == 400
        with urllib.request.urlopen(server.url + "/models", timeout=5) as resp:
            assert json.loads(resp.read())["data"][0]["id"] == "replay"
        assert [r.status for r in server.requests] == [200, 404]
        assert server.requests[0].messages_sha256 == messages_hash(messages)


def test_faults_count_down_and_match_single_requests():
    a = [{"role": "user", "content": "alpha"}]
    b = [{"role": "user", "content": "beta"}]
    gen = serve_replay({messages_hash(a): "A", messages_hash(b): "B"})
    server = next(gen)
    try:
        with pytest.raises(ValueError, match="unknown fault"):
            server.set_fault("teapot")
        server.set_fault("500", times=1, match=messages_hash(b)[:12])
        assert _post(server.url, json.dumps({"messages": a}).encode())[0] == 200
        assert _post(server.url, json.dumps({"messages": b}).encode())[0] == 500
        assert _post(server.url, json.dumps({"messages": b}).encode())[0] == 200
        server.set_fault("missing_axis")  # a non-scores reply cannot lose an axis: untouched
        assert _post(server.url, json.dumps({"messages": a}).encode())[1]["choices"][0]["message"]["content"] == "A"
        server.clear_faults()
        server.set_reply(messages_hash(a), "A2")
        assert _post(server.url, json.dumps({"messages": a}).encode())[1]["choices"][0]["message"]["content"] == "A2"
    finally:
        gen.close()


# ------------------------------------------------------------------ the paper's labels, end to end


def test_recordings_cover_every_released_item(store):
    rec = paper_recordings(store)
    assert len(rec) == 3 * 100 + 2 * 193  # pass 1, pass 2 (+ verbal for step16), all prompts distinct
    raw = store.json(STEP16)["items"][0]
    assert rec[messages_hash(R.v4_pass1_messages(raw["prompt"]))] == raw["cert"]


@pytest.mark.parametrize("which", ["step16", "fresh"])
def test_v4_labels_round_trip_exactly(store, which):
    released = store.json({"step16": STEP16, "fresh": FRESH}[which])["items"]
    judged = load_judged(store, which)
    run = replay_paper_runs(store, which)["v4"]
    assert len(run.outcomes) == len(released)
    errors = [i for i, o in enumerate(run.outcomes) if isinstance(o, JudgeError)]
    assert errors == [ERROR_ITEM[which]]
    err = run.outcomes[ERROR_ITEM[which]]
    assert err.kind == "unparseable" and err.stage == "pass2" and err.raw  # explicit, raw kept
    for i, (item, out) in enumerate(zip(released, run.outcomes)):
        if i == ERROR_ITEM[which]:
            assert released[i]["scores"] == {"error": "no_json"}
            continue
        assert isinstance(out, V4Label)
        assert out.cert == item["cert"]
        assert out.scores_tuple() == tuple(item["scores"][a] for a in V4_AXES)
    for axis in V4_AXES:
        labels = judged.axis_labels(axis)
        valid = np.array([not isinstance(o, JudgeError) for o in run.outcomes])
        assert np.array_equal(valid, labels.mask)
        ours = np.array([o.binary(axis) if not isinstance(o, JudgeError) else 0 for o in run.outcomes])
        assert np.array_equal(ours[valid], labels.y[valid])
    stats = run.stats.as_dict()
    assert stats["requests"] == 2 * len(released) and stats["errors"] == {"unparseable": 1}
    assert stats["total_tokens"] > 0


def test_verbal_labels_round_trip_exactly(store):
    judged = load_judged(store, "step16")
    run = replay_paper_runs(store, "step16")["verbal"]
    assert all(isinstance(o, VerbalLabel) for o in run.outcomes)
    assert tuple(o.label.lower() for o in run.outcomes) == judged.verbal


def test_error_items_would_be_hidden_by_a_silent_default(store):
    v4 = replay_paper_runs(store, "fresh")["v4"]
    default = V4Label("CERTAIN", {a: 3 for a in V4_AXES})
    impact = default_fill_impact(v4.outcomes, default)
    assert (impact.n_items, impact.n_errors, impact.changed) == (193, 1, 1)
    assert impact.by_kind == {"unparseable": 1}


def test_judge_label_set_is_a_judged_set_equal_to_the_file(store, tmp_path):
    with ReplayServer(paper_recordings(store, ("step16",))) as server:
        config = JudgeConfig(server.url, "replay", timeout_s=10, max_retries=0, concurrency=8, progress=False)
        labels = judge_label_set(store, "step16", config, Cache(tmp_path))
    released = load_judged(store, "step16")
    assert isinstance(labels, JudgedSet)
    assert labels.responses == released.responses
    for axis in V4_AXES:
        np.testing.assert_array_equal(labels.scores[axis], released.scores[axis])
        ours, theirs = labels.axis_labels(axis), released.axis_labels(axis)
        assert np.array_equal(ours.y, theirs.y) and np.array_equal(ours.mask, theirs.mask)
    assert labels.verbal == released.verbal
    assert labels.cert[21] is None and set(labels.cert) - {None} == {"CERTAIN"}
    assert [i for i, _ in labels.errors["v4"]] == [21] and labels.errors["verbal"] == ()
    assert labels.valid["v4"].sum() == 99 and labels.coverage is None
    assert labels.judge_params["source"] == "dd.judges" and labels.stats["v4"]["requests"] == 200


def test_synthetic_checklists_reproduce_released_coverage_arithmetic_only(store):
    """SYNTHETIC: the released files hold no checklists; this checks coverage and correct >= 0.5
    through the real client path, not agreement with the paper's checklist judge."""
    rec = synthetic_checklist_recordings(store)
    released = store.json(STEP16)["items"][:25]
    items = [JudgeItem(it["prompt"], it["response"]) for it in released]
    with ReplayServer(rec) as server:
        config = JudgeConfig(server.url, "replay", timeout_s=10, max_retries=0, concurrency=8, progress=False)
        run = run_judge(ChecklistJudge(), items, config)
    for it, out in zip(released, run.outcomes):
        assert out.coverage == pytest.approx(it["coverage"], abs=1e-3)
        assert out.correct == it["correct"]
        assert all(c.startswith("SYNTHETIC") for c in out.claims)
