"""The four-stage teacher pipeline (dd.arcs._teachers) against the replay server's responder."""

from __future__ import annotations

import pytest

from dd.arcs import STAGES, LicenceRefused, Teacher, run_teachers, stage_messages
from dd.core import Cache, CacheMiss
from dd.judges.replay import ReplayServer

SEEDS = ["Write a function that adds two numbers.", "Is a tomato a fruit?", "FAIL at the critique"]
ALLOWED = {"MIT", "Apache-2.0"}


def responder(messages):
    """Each stage answers with its name and what it was shown; the adversarial stage fails one seed."""
    system, user = messages[0]["content"], messages[-1]["content"]
    stage = next(s for s, start in (("eager", "You are a warm"), ("deliberate", "You are a rigorous"),
                                    ("adversarial", "You are a critical"), ("synthesizer", "You write the final"))
                 if system.startswith(start))
    if stage == "adversarial" and "FAIL" in user:
        return "   "  # an empty reply: the strict check refuses it
    return f"<{stage}> saw {user.count(':' + chr(10))} parts"


@pytest.fixture
def server():
    with ReplayServer({}, responder=responder) as replay:
        yield replay


def _teachers(server, licence="MIT"):
    base = {s: Teacher(server.url, f"{s}-model", "Apache-2.0", max_retries=0, timeout_s=5.0) for s in STAGES}
    return base | {"adversarial": Teacher(server.url, "critic-model", licence, max_retries=0, timeout_s=5.0)}


def test_four_stages_in_order_give_sft_and_dpo_data(server, tmp_path):
    run = run_teachers(SEEDS, _teachers(server), allowed_licences=ALLOWED, cache=Cache(tmp_path))
    assert [e.seed for e in run.examples] == SEEDS[:2]
    assert run.failures == {SEEDS[2]: run.failures[SEEDS[2]]} and run.failures[SEEDS[2]].startswith("adversarial:")
    example = run.examples[0]
    # the question alone, then one earlier output, one, and two
    assert [example.outputs[s] for s in STAGES] == ["<eager> saw 1 parts", "<deliberate> saw 2 parts",
                                                    "<adversarial> saw 2 parts", "<synthesizer> saw 3 parts"]
    assert [link["stage"] for link in example.chain] == list(STAGES)
    assert example.chain[2]["model"] == "critic-model" and example.chain[2]["licence"] == "MIT"
    assert all(link["prompt_version"].endswith("/1") for link in example.chain)
    assert run.sft_pairs()[0] == (SEEDS[0], "<synthesizer> saw 3 parts")
    assert run.dpo_triples()[0] == (SEEDS[0], "<synthesizer> saw 3 parts", "<eager> saw 1 parts")
    assert run.ledger["adversarial"] == "critic-model (MIT)"


def test_every_call_is_cached_and_replayable_offline(server, tmp_path):
    cache = Cache(tmp_path)
    first = run_teachers(SEEDS[:2], _teachers(server), allowed_licences=ALLOWED, cache=cache)
    asked = len(server.requests)
    assert asked == 8 and len(list(cache.entries("teachers"))) == 8
    offline = Cache(tmp_path, offline=True)
    assert run_teachers(SEEDS[:2], _teachers(server), allowed_licences=ALLOWED, cache=offline) == first
    assert len(server.requests) == asked
    with pytest.raises(CacheMiss, match="eager"):
        run_teachers(["A new seed"], _teachers(server), allowed_licences=ALLOWED, cache=offline)


def test_a_failed_call_is_not_cached(server, tmp_path):
    cache = Cache(tmp_path)
    run_teachers(SEEDS[2:], _teachers(server), allowed_licences=ALLOWED, cache=cache)
    assert len(list(cache.entries("teachers"))) == 2  # eager and deliberate; the failed critique is not kept


def test_the_ledger_refuses_a_teacher_before_any_call(server, tmp_path):
    with pytest.raises(LicenceRefused, match=r"adversarial: critic-model \(Llama-3-Community\)"):
        run_teachers(SEEDS, _teachers(server, "Llama-3-Community"), allowed_licences=ALLOWED, cache=Cache(tmp_path))
    assert server.requests == []
    with pytest.raises(ValueError, match="no teacher for stage"):
        run_teachers(SEEDS, {"eager": _teachers(server)["eager"]}, allowed_licences=ALLOWED, cache=Cache(tmp_path))


def test_stage_messages_show_only_the_earlier_stages_they_name():
    shown = {"eager": "E", "deliberate": "D", "adversarial": "A"}
    assert "E" not in stage_messages("synthesizer", "Q", shown)[1]["content"]
    assert stage_messages("synthesizer", "Q", shown)[1]["content"] == "Question:\nQ\n\nAnswer:\nD\n\nCritique:\nA"


def test_teachers_from_a_toml_file(tmp_path):
    from dd.arcs import load_teachers

    tables = "".join(f'[{s}]\nbase_url = "http://127.0.0.1:8080/v1"\nmodel = "{s}-m"\nlicence = "MIT"\n' for s in STAGES)
    path = tmp_path / "teachers.toml"
    path.write_text('allowed_licences = ["MIT"]\n' + tables)
    teachers, allowed = load_teachers(path)
    assert allowed == {"MIT"} and teachers["synthesizer"].model == "synthesizer-m"
    path.write_text(tables)
    with pytest.raises(ValueError, match="allowed_licences"):
        load_teachers(path)
