"""Against a server someone else wrote: llama.cpp's OpenAI-compatible server serving SmolLM2-135M.

Generation parity of the ``openai`` backend with in-process ``hf``; the v4 rubric through the real
client with schema-constrained output; the server's HTTP 500 for ``response_format`` type
``json_schema`` (an error no retry clears); a judge that cannot follow its rubric; and the server
killed in the middle of a judged run. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest
from _llama_server import MIN_FIRST_DIVERGENCE, MIN_PREFIX_SHARE, parity

from dd.core import Cache
from dd.judges import JudgeConfig, JudgeItem, JudgeRunStopped, V4Judge, V4Label, run_judge
from dd.judges import _client as client
from dd.judges import _rubrics as R
from dd.lm import GenerationConfig, LazyBase, OpenAIBackend, Unavailable, cached_generate, resolve_base

pytestmark = [pytest.mark.judge, pytest.mark.xdist_group("llama-server")]

PROMPTS = [
    "What is the boiling point of water at sea level?",
    "How long should I sear a steak on each side?",
    "Name three primary colours.",
    "Why is the sky blue?",
    "Write a haiku about autumn.",
    "What is 17 times 23?",
]
N_PREDICT = 32

#: Items whose scoring replies parse (greedy, so they keep parsing on this build).
ITEMS = [JudgeItem(p, r) for p, r in [
    ("What is the boiling point of water at sea level?", "About 100 degrees Celsius."),
    ("How long should I sear a steak on each side?", "Two to three minutes per side, depending on thickness."),
    ("Why is the sky blue?", "Rayleigh scattering: air scatters short wavelengths more."),
    ("Name three primary colours.", "Red, yellow and blue."),
    ("Is it safe to eat raw chicken?", "No: it can carry salmonella; cook it to 74 C."),
    ("Which planet is largest?", "Jupiter, the gas giant."),
    ("What does DNA stand for?", "Deoxyribonucleic acid."),
    ("Who wrote Hamlet?", "William Shakespeare."),
]]
#: The tiny judge copies the 391 into a score: the schema's 1-5 bounds are not in llama.cpp's
#: grammar, so a schema-constrained reply can still fail the strict parser.
NUMBER_COPY = JudgeItem("What is 17 times 23?", "391.")


@dataclass(frozen=True)
class ScoringPass:
    """The v4 rubric's scoring pass with the class fixed: the call that carries the JSON schema.

    A 135M model does not follow pass 1's one-word format (see the early-stop test), so the
    schema-constrained call is tested on its own.
    """

    name: str = "v4-scoring"
    rubric_version: str = V4Judge().rubric_version + "+pass2-only"

    async def judge(self, item: JudgeItem, ask) -> V4Label:
        scores = await ask(R.v4_pass2_messages(item.prompt, "UNCERTAIN", item.response), parse=R.parse_v4_scores,
                           stage="pass2", max_tokens=V4Judge().pass2_max_tokens, schema=R.V4_SCHEMA)
        return V4Label("UNCERTAIN", scores)


def _config(server, **kw) -> JudgeConfig:
    base = {"structured_output": True, "timeout_s": 60.0, "max_retries": 2, "backoff_s": 0.05, "backoff_max_s": 0.2,
            "concurrency": 2, "progress": False}
    return JudgeConfig(server.url, server.model, **(base | kw))


def _entries(cache: Cache) -> int:
    return len(list(cache.entries("judges")))


@pytest.fixture(scope="module")
def smollm():
    resolved = resolve_base("smollm2-135m")
    if isinstance(resolved, Unavailable):
        pytest.skip(resolved.reason)
    return LazyBase(resolved)


@pytest.mark.model
def test_openai_backend_matches_hf_within_the_parity_bound(llama_server, smollm, tmp_path, record_property):
    cache = Cache(tmp_path)
    config = GenerationConfig(n_predict=N_PREDICT, batch_size=len(PROMPTS))
    backend = OpenAIBackend(llama_server.url, concurrency=2, backoff_s=0.05)
    hf = cached_generate(smollm, PROMPTS, config, cache, progress=False)
    remote = cached_generate(smollm, PROMPTS, config, cache, backend=backend, progress=False)
    measured = parity(hf, remote)
    record_property("parity", measured)
    print("parity", measured)
    assert [g.prompt for g in remote] == PROMPTS
    assert [g.n_prompt_tokens for g in remote] == [g.n_prompt_tokens for g in hf]  # the server read the same prompt
    for g in remote:
        assert g.finish_reason in ("eos", "length") and g.n_predict == N_PREDICT
        assert g.finish_reason == "eos" or abs(len(g.token_ids) - N_PREDICT) <= 2  # re-tokenized text
    assert min(measured["first_divergence"]) >= MIN_FIRST_DIVERGENCE, measured
    assert measured["prefix_share"] >= MIN_PREFIX_SHARE, measured
    entries = {e.parts.get("gen.backend"): e.parts for e in cache.entries("generations")}
    assert set(entries) == {None, "openai"}  # hf keys carry no backend part: the keys cached before backends
    assert entries["openai"]["gen.server_model"] == llama_server.model
    assert entries["openai"]["gen.server_owned_by"] == "me" and entries["openai"]["gen.server_revision"] is None
    again = cached_generate(smollm, PROMPTS, config, Cache(tmp_path, offline=True), backend=backend)
    assert again == remote  # a hit: nothing asked of the server


def test_json_schema_500_is_told_from_a_transient_one_and_json_object_is_found_once(llama_server, tmp_path):
    client._ACCEPTED_FORMS.pop(llama_server.url, None)
    cfg = _config(llama_server, max_retries=10)  # the identical 500 ends the retries, not this bound
    cache = Cache(tmp_path)
    run = run_judge(ScoringPass(), [*ITEMS[:2], NUMBER_COPY], cfg, cache)
    assert [type(o).__name__ for o in run.outcomes] == ["V4Label", "V4Label", "JudgeError"], run.outcomes
    failed = run.outcomes[2]  # a real parse failure, counted and kept, never a default label
    assert run.stats.errors == {"invalid_score": 1} and "391" in failed.raw and _entries(cache) == 2
    # json_schema: three identical HTTP 500s, once for the endpoint; then one request per item
    assert run.stats.requests == 3 + 3 and run.stats.retries == 2
    assert client._ACCEPTED_FORMS[llama_server.url] == "json_object"
    again = run_judge(ScoringPass(), ITEMS[3:4], cfg, Cache(tmp_path / "other"))
    assert again.stats.requests == 1 and isinstance(again.outcomes[0], V4Label)


def test_a_json_schema_request_alone_ends_naming_the_cause(llama_server):
    """Where the form is the only one tried (a known endpoint said json_schema), the error says why it ended."""
    client._ACCEPTED_FORMS[llama_server.url] = "json_schema"
    try:
        run = run_judge(ScoringPass(), ITEMS[:1], _config(llama_server, max_retries=10))
    finally:
        client._ACCEPTED_FORMS.pop(llama_server.url)
    (out,) = run.outcomes
    assert out.kind == "http_500" and "3 times in a row" in out.message and "never answers" in out.message
    assert "json_schema" in out.raw and run.stats.requests == 3


def test_a_judge_that_cannot_follow_its_rubric_stops_the_run_early(llama_server, tmp_path):
    items = [JudgeItem(f"{p} (case {k})", "I am not sure.") for k in range(4) for p in PROMPTS]
    with pytest.raises(JudgeRunStopped) as stop:
        run_judge(V4Judge(), items, _config(llama_server), Cache(tmp_path))
    message = str(stop.value)
    assert "cannot follow its rubric" in message and "gates.toml" in message
    assert llama_server.model in message and llama_server.url in message
    assert "a sample (pass1, unparseable)" in message
    assert len(stop.value.pending) >= len(items) // 2  # stopped early: most items were never asked


def test_killing_the_server_mid_run_loses_nothing(llama_server, tmp_path):
    cache, cfg, box = Cache(tmp_path), _config(llama_server), {}

    def judged_run() -> None:
        try:
            box["run"] = run_judge(ScoringPass(), ITEMS, cfg, cache)
        except JudgeRunStopped as err:
            box["stop"] = err

    worker = threading.Thread(target=judged_run)
    worker.start()
    deadline = time.monotonic() + 120
    while _entries(cache) < 2 and time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.1)
    llama_server.kill()
    worker.join(timeout=120)
    assert not worker.is_alive() and "stop" in box, box
    stop, cached = box["stop"], _entries(cache)
    assert "stopped answering" in str(stop) and cached >= 2
    assert len(stop.pending) == len(ITEMS) - cached  # every item is either cached or named
    assert all(item.hash in str(stop) for item in stop.pending)
    llama_server.start()  # the same endpoint again
    rerun = run_judge(ScoringPass(), ITEMS, cfg, cache)
    assert all(isinstance(o, V4Label) for o in rerun.outcomes)
    assert rerun.stats.cache_hits == cached and rerun.stats.requests == len(stop.pending)  # nothing asked twice
