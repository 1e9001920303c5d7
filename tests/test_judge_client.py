"""The client path through the real `openai` package against the replay server: retries, explicit
errors, the cache (errors never cached, offline misses are errors, corrupt entries never loaded)
and the API key's absence."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle

import pytest

from dd.core import Cache, CacheKey, CacheMiss, CorruptCacheEntry
from dd.judges import (
    V4_AXES,
    JudgeConfig,
    JudgeError,
    JudgeItem,
    V4Judge,
    V4Label,
    VerbalJudge,
    VerbalLabel,
    arun_judge,
    judge_key,
    run_judge,
)
from dd.judges import _rubrics as R
from dd.judges.replay import ReplayServer

SECRET = "sk-dd-test-7f3a9c1e-NEVER-WRITE-ME"

# Made-up items: the fault tests need no paper data.
ITEMS = [JudgeItem(f"Synthetic question {k}?", f"Synthetic answer {k}.") for k in range(4)]
SCORES = [dict(zip(V4_AXES, (1 + k % 5, 2, 3, 4, 5))) for k in range(4)]
CERTS = ["CERTAIN", "UNCERTAIN", "AMBIGUOUS", "CERTAIN"]
VERBAL = ["ASSERT", "HEDGE", "ASSERT", "HEDGE"]


def _recordings() -> dict[str, str]:
    from dd.judges import messages_hash

    rec = {}
    for item, cert, scores, verbal in zip(ITEMS, CERTS, SCORES, VERBAL):
        rec[messages_hash(R.v4_pass1_messages(item.prompt))] = cert
        rec[messages_hash(R.v4_pass2_messages(item.prompt, cert, item.response))] = R.scores_reply(scores)
        rec[messages_hash(R.verbal_messages(item.prompt, item.response))] = verbal
    return rec


@pytest.fixture
def server():
    with ReplayServer(_recordings(), hang_s=3.0) as srv:
        yield srv


def _config(server, **kw) -> JudgeConfig:
    base = dict(model="replay-judge", api_key=SECRET, timeout_s=2.0, max_retries=3, backoff_s=0.001, backoff_max_s=0.01, progress=False)
    return JudgeConfig(server.url, **(base | kw))


def _expected_v4(k: int) -> V4Label:
    return V4Label(CERTS[k], SCORES[k])


def _judge_entries(cache: Cache) -> list:
    return list(cache.entries("judges"))


def test_config_never_shows_or_pickles_the_key(monkeypatch):
    cfg = JudgeConfig("http://127.0.0.1:1/v1", "m", api_key=SECRET)
    assert SECRET not in repr(cfg) and SECRET not in json.dumps(cfg.as_dict())
    assert SECRET not in str(pickle.dumps(cfg))
    assert cfg.resolved_api_key() == SECRET
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("DD_JUDGE_API_KEY", "from-env")
    assert JudgeConfig("u", "m").resolved_api_key() == "from-env"
    monkeypatch.delenv("DD_JUDGE_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", "openai-env")
    assert JudgeConfig("u", "m").resolved_api_key() == "openai-env"


def test_from_env_needs_endpoint_and_model(monkeypatch):
    monkeypatch.delenv("DD_JUDGE_BASE_URL", raising=False)
    monkeypatch.delenv("DD_JUDGE_MODEL", raising=False)
    with pytest.raises(ValueError, match="--dd-judge-base-url"):
        JudgeConfig.from_env()
    monkeypatch.setenv("DD_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("DD_JUDGE_MODEL", "m")
    assert JudgeConfig.from_env(timeout_s=3).timeout_s == 3


def test_clean_run_labels_usage_and_stats(server, tmp_path):
    run = run_judge(V4Judge(), ITEMS, _config(server), Cache(tmp_path))
    assert list(run.outcomes) == [_expected_v4(k) for k in range(4)]
    stats = run.stats.as_dict()
    assert stats["calls"] == stats["requests"] == 8 and stats["retries"] == 0 and stats["errors"] == {}
    assert stats["prompt_tokens"] > 0 and stats["total_tokens"] == stats["prompt_tokens"] + stats["completion_tokens"]
    assert all(r.authorization for r in server.requests)  # the key was sent, as a header only
    again = run_judge(V4Judge(), ITEMS, _config(server), Cache(tmp_path))
    assert again.outcomes == run.outcomes
    assert again.stats.cache_hits == 8 and again.stats.requests == 0


@pytest.mark.parametrize("kind", ["429", "500"])
def test_transient_faults_are_retried_then_succeed(server, kind):
    server.set_fault(kind, times=2)
    run = run_judge(VerbalJudge(), ITEMS[:1], _config(server, max_retries=3))
    assert run.outcomes == (VerbalLabel("ASSERT"),)
    assert run.stats.retries == 2 and run.stats.requests == 3
    assert [r.status for r in server.requests] == [int(kind), int(kind), 200]


@pytest.mark.parametrize("kind", ["429", "500"])
def test_persistent_faults_end_as_explicit_http_errors(server, kind, tmp_path):
    server.set_fault(kind)
    cache = Cache(tmp_path)
    run = run_judge(VerbalJudge(), ITEMS[:2], _config(server, max_retries=2), cache)
    assert all(isinstance(o, JudgeError) and o.kind == f"http_{kind}" for o in run.outcomes)
    assert run.stats.requests == 6 and run.stats.errors == {f"http_{kind}": 2}
    assert "error" in run.outcomes[0].raw  # the body is kept
    assert _judge_entries(cache) == []


def test_hang_becomes_a_timeout_error_not_a_label(server, tmp_path):
    server.set_fault("hang")
    cache = Cache(tmp_path)
    run = run_judge(VerbalJudge(), ITEMS[:1], _config(server, timeout_s=0.3, max_retries=1), cache)
    (out,) = run.outcomes
    assert isinstance(out, JudgeError) and out.kind == "timeout" and out.stage == "verbal"
    assert run.stats.requests == 2 and _judge_entries(cache) == []


def test_one_hang_is_retried(server):
    server.set_fault("hang", times=1)
    run = run_judge(VerbalJudge(), ITEMS[:1], _config(server, timeout_s=0.3, max_retries=1))
    assert run.outcomes == (VerbalLabel("ASSERT"),)


def test_malformed_http_body_is_unparseable_with_raw_kept(server, tmp_path):
    server.set_fault("malformed")
    cache = Cache(tmp_path)
    run = run_judge(V4Judge(), ITEMS[:2], _config(server), cache)
    for out in run.outcomes:
        assert isinstance(out, JudgeError) and out.kind == "unparseable" and out.stage == "pass1"
        assert out.raw.startswith('{"id": "replay-broken"')
    assert _judge_entries(cache) == []


def test_malformed_reply_is_unparseable_and_not_cached(server, tmp_path):
    item = ITEMS[1]
    server.set_fault("malformed_reply", match="Answer:\n" + item.response)  # pass 2 of item 1 only
    cache = Cache(tmp_path)
    run = run_judge(V4Judge(), ITEMS, _config(server), cache)
    out = run.outcomes[1]
    assert isinstance(out, JudgeError) and out.kind == "unparseable" and out.stage == "pass2"
    assert out.raw.endswith(" }{")
    assert [run.outcomes[k] for k in (0, 2, 3)] == [_expected_v4(k) for k in (0, 2, 3)]
    assert len(_judge_entries(cache)) == 7  # 4 pass-1 + 3 good pass-2 replies; the failed one is absent
    server.clear_faults()
    rerun = run_judge(V4Judge(), ITEMS, _config(server), cache)
    assert rerun.outcomes[1] == _expected_v4(1) and rerun.stats.requests == 1


def test_missing_axis_is_its_own_error(server, tmp_path):
    server.set_fault("missing_axis")
    cache = Cache(tmp_path)
    run = run_judge(V4Judge(), ITEMS[:2], _config(server), cache)
    for out in run.outcomes:
        assert isinstance(out, JudgeError) and out.kind == "missing_axis" and "completeness" in out.message
    assert len(_judge_entries(cache)) == 2  # only the pass-1 replies


def test_replay_miss_is_an_http_error_not_a_label(server):
    run = run_judge(VerbalJudge(), [JudgeItem("unrecorded", "x")], _config(server))
    (out,) = run.outcomes
    assert isinstance(out, JudgeError) and out.kind == "http_404" and run.stats.retries == 0


def test_offline_miss_is_an_error_and_offline_hit_needs_no_server(server, tmp_path):
    with pytest.raises(CacheMiss, match="offline") as err:
        run_judge(VerbalJudge(), ITEMS[:1], _config(server), Cache(tmp_path, offline=True))
    assert "judge 'verbal'" in str(err.value) and "messages_sha256 = " in str(err.value)
    assert server.requests == []
    run_judge(VerbalJudge(), ITEMS[:1], _config(server), Cache(tmp_path))
    server.stop()
    run = run_judge(VerbalJudge(), ITEMS[:1], _config(server), Cache(tmp_path, offline=True))
    assert run.outcomes == (VerbalLabel("ASSERT"),) and run.stats.requests == 0


def test_cache_key_parts_separate_endpoint_model_rubric_and_seed(server, tmp_path):
    cache = Cache(tmp_path)
    run_judge(VerbalJudge(), ITEMS[:1], _config(server), cache)
    for variant in (dict(model="other"), dict(seed=1), dict(temperature=0.5)):
        with pytest.raises(CacheMiss):
            run_judge(VerbalJudge(), ITEMS[:1], _config(server, **variant), Cache(tmp_path, offline=True))
    with pytest.raises(CacheMiss):
        run_judge(VerbalJudge(rubric_version="other"), ITEMS[:1], _config(server), Cache(tmp_path, offline=True))
    other_key = JudgeConfig(server.url, "replay-judge", api_key="another-key", progress=False)
    assert run_judge(VerbalJudge(), ITEMS[:1], other_key, Cache(tmp_path, offline=True)).stats.cache_hits == 1
    (entry,) = _judge_entries(cache)
    assert entry.parts["base_url"] == server.url and entry.parts["model"] == "replay-judge"
    assert cache.get(CacheKey("judges", entry.parts))["reply"] == "ASSERT"


def test_judge_key_names_its_parts_and_never_the_key():
    cfg = JudgeConfig("http://127.0.0.1:1/v1/", "m", api_key=SECRET)
    key = judge_key(cfg, "v4-1", [{"role": "user", "content": "q"}], 8, {"type": "object"})
    assert key.kind == "judges" and key.parts["base_url"] == "http://127.0.0.1:1/v1"
    assert set(key.parts) == {"model", "base_url", "rubric_version", "messages_sha256", "temperature", "seed",
                              "max_tokens", "schema_sha256"}
    assert key.parts["schema_sha256"] is None  # structured output is off, so no schema is sent
    assert judge_key(JudgeConfig(cfg.base_url, "m", structured_output=True), "v4-1", [], 8, {"a": 1}).parts["schema_sha256"]
    assert SECRET not in json.dumps(dict(key.parts))


def test_a_corrupt_reply_is_an_error_naming_the_file_never_a_miss(server, tmp_path):
    cache = Cache(tmp_path)
    run_judge(VerbalJudge(), ITEMS[:2], _config(server), cache)
    torn = _judge_entries(cache)[0].path
    torn.write_bytes(torn.read_bytes()[:-4])  # a torn file: not loaded, and not silently re-asked
    server.requests.clear()
    with pytest.raises(CorruptCacheEntry, match="dd cache clear --kind judges") as err:
        run_judge(VerbalJudge(), ITEMS[:2], _config(server), cache)
    assert str(torn) in str(err.value) and server.requests == []


def test_a_reply_whose_write_was_interrupted_is_asked_again(server, tmp_path):
    cache = Cache(tmp_path)
    run_judge(VerbalJudge(), ITEMS[:1], _config(server), cache)
    (entry,) = _judge_entries(cache)
    entry.path.with_name(entry.digest + ".meta.json").unlink()  # killed before the commit point
    server.requests.clear()
    run = run_judge(VerbalJudge(), ITEMS[:1], _config(server), cache)
    assert run.outcomes == (VerbalLabel("ASSERT"),) and run.stats.requests == 1
    assert [e.digest for e in _judge_entries(cache)] == [entry.digest]


def test_structured_output_flag_sends_json_schema_only_where_asked(server):
    run_judge(V4Judge(), ITEMS[:1], _config(server, structured_output=True))
    assert [r.structured for r in server.requests] == [False, True]  # pass 1 has no schema
    server.requests.clear()
    run_judge(V4Judge(), ITEMS[:1], _config(server))
    assert not any(r.structured for r in server.requests)


def test_concurrency_is_bounded_and_results_keep_order(server):
    items = ITEMS * 10
    run = run_judge(VerbalJudge(), items, _config(server, concurrency=2))
    assert [o.label for o in run.outcomes] == VERBAL * 10


def test_run_judge_inside_a_running_loop(server):
    async def inner():
        return run_judge(VerbalJudge(), ITEMS[:2], _config(server))

    assert asyncio.run(inner()).outcomes == (VerbalLabel("ASSERT"), VerbalLabel("HEDGE"))
    assert asyncio.run(arun_judge(VerbalJudge(), ITEMS[:1], _config(server))).outcomes == (VerbalLabel("ASSERT"),)


def test_no_file_the_suite_wrote_contains_the_key(server, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    cache = Cache(tmp_path / "cache")
    server.set_fault("429", times=1)
    server.set_fault("malformed_reply", match="Answer:\n" + ITEMS[2].response)
    runs = [run_judge(j, ITEMS, _config(server), cache) for j in (V4Judge(), VerbalJudge())]
    report = {
        "config": _config(server).as_dict(),
        "stats": [r.stats.as_dict() for r in runs],
        "errors": [[e.as_dict() for _, e in r.errors] for r in runs],
        "config_repr": repr(_config(server)),
    }
    (tmp_path / "report.json").write_text(json.dumps(report))
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 10
    for path in written:
        assert SECRET not in path.read_text(errors="replace"), path
    captured = capsys.readouterr()
    assert SECRET not in caplog.text + captured.out + captured.err
    assert any(isinstance(o, JudgeError) for o in runs[0].outcomes)
