"""Fresh sets (dd.fresh): dedup against train with a split ledger, the independence rule, generation
and gold checklists through the real judge client against a replay server (never a network)."""

from __future__ import annotations

import json
import re

import pytest

from dd.core import Cache, CacheMiss
from dd.fresh import (
    GENERATOR_RUBRIC_VERSION,
    FreshOverlap,
    FreshRunFailed,
    FreshSet,
    GeneratorNotIndependent,
    GeneratorSpec,
    Provenance,
    dedup,
    fresh_bars,
    fresh_from_prompts,
    generate_fresh,
    generators_match,
    jaccard,
    require_disjoint,
    shingles,
    write_checklists,
)
from dd.judges import ChecklistJudge, JudgeConfig, JudgeItem, run_judge
from dd.judges.replay import ReplayServer
from dd.paper import load_judged
from dd.protocol import bars

TRAIN = ["How long should I rest a roast chicken before carving it?",
         "At what temperature does sugar caramelize?",
         "Why should meat be patted dry before searing?"]


def test_the_near_duplicate_bar_is_pre_registered():
    assert fresh_bars() == bars("fresh") == {"ngram": 5, "near_duplicate_jaccard": 0.5}


def test_shingles_ignore_case_punctuation_and_spacing():
    assert shingles("Why  DOES bread rise?!", 5) == shingles("why does bread rise", 5)
    a, b = shingles("why does bread rise", 5), shingles("why does bread rise in the oven", 5)
    assert 0 < jaccard(a, b) < 1 and jaccard(a, a) == 1.0 and jaccard(frozenset(), frozenset()) == 0.0


def test_dedup_drops_exact_near_and_repeated_prompts_and_counts_them():
    candidates = ["At what temperature does sugar caramelize?",  # exact repeat of train 1
                  "how long should I rest a roast chicken before carving?",  # near duplicate of train 0
                  "What oil is best for deep frying?",
                  "What oil is best for deep frying at home?",  # near repeat of candidate 2
                  "What oil is best for deep frying?",  # exact repeat of candidate 2
                  "Why did my custard turn lumpy?"]
    ledger = dedup(TRAIN, candidates)
    assert ledger.kept == (2, 5)
    assert [(d.index, d.of, d.kind) for d in ledger.dropped] == [(0, 1, "exact"), (1, 0, "near"), (3, 2, "repeat"),
                                                               (4, 2, "repeat")]
    metrics = ledger.metrics()
    assert (metrics["ledger.dropped_exact"], metrics["ledger.dropped_near"], metrics["ledger.dropped_repeat"]) == (1, 1, 2)
    assert metrics["ledger.near_duplicate_jaccard"] == 0.5


def test_a_given_fresh_set_holding_a_train_prompt_is_refused_naming_the_item():
    fresh = ["Why did my custard turn lumpy?", "Why should meat be patted dry before searing?"]
    with pytest.raises(FreshOverlap, match=r"1 of 2 prompts: item 1 is train item 2 \('Why should meat"):
        require_disjoint(TRAIN, fresh)
    with pytest.raises(FreshOverlap, match="item 1 is train item 2"):
        fresh_from_prompts(TRAIN, fresh, Provenance("someone else"), train_generator="me")


@pytest.mark.parametrize(("a", "b", "same"), [
    ("DeepSeek V3.2", "deepseek/deepseek-v3.2-exp", True),
    ("gpt-4o", "openai/gpt-4o", True),
    ("deepseek-v3.2", "kimi-k2.5", False),
    ("", "kimi", False),
])
def test_generators_match_by_normalized_prefix(a, b, same):
    assert generators_match(a, b) is same


def test_the_training_generator_is_refused_and_an_unknown_one_is_noted():
    with pytest.raises(GeneratorNotIndependent, match="'deepseek/deepseek-v3.2-exp' is the training set's"):
        fresh_from_prompts(TRAIN, ["Why did my custard turn lumpy?"], Provenance("deepseek/deepseek-v3.2-exp"),
                           train_generator="DeepSeek V3.2")
    noted = fresh_from_prompts(TRAIN, ["Why did my custard turn lumpy?"], Provenance("kimi"), train_generator="unknown")
    assert noted.notes and "not checked" in noted.notes[0]


def test_the_released_fresh_set_has_no_near_duplicate_of_step16(store):
    step16 = load_judged(store, "step16").responses.prompt_set.prompts
    fresh = load_judged(store, "fresh").responses.prompt_set.prompts
    ledger = dedup(step16, fresh)
    assert len(ledger.kept) == len(fresh) == 193 and not ledger.dropped


def test_a_fresh_set_file_round_trips(tmp_path):
    fresh = fresh_from_prompts(TRAIN, ["Why did my custard turn lumpy?"], Provenance("kimi"), train_generator="me")
    assert FreshSet.load(fresh.save(tmp_path / "fresh.json")) == fresh
    (tmp_path / "other.json").write_text(json.dumps({"prompts": []}))
    with pytest.raises(ValueError, match="not a dd-fresh/1"):
        FreshSet.load(tmp_path / "other.json")


# ---------------------------------------------------------------- generation and checklists over HTTP

NEW = ["Why did my custard turn lumpy on the stove?", "What oil is best for deep frying at high heat?",
       "How do I stop a cheese sauce from going grainy?", "How can I rescue a soup that is far too salty?",
       "Why does garlic turn bitter when it is fried too long?", "What causes a souffle to collapse after baking?"]


def generator(messages: list[dict]) -> str | None:
    """A stand-in generator: request 1 repeats a train prompt and a near copy, later requests bring new ones."""
    if not messages[0]["content"].startswith("You write new prompts"):
        return None
    request = int(re.search(r"This is request (\d+)", messages[-1]["content"]).group(1))
    if request == 1:
        return json.dumps({"prompts": [TRAIN[0], TRAIN[1].lower() + " exactly", *NEW[:2]]})
    return json.dumps({"prompts": NEW[2 * request - 2: 2 * request]})


def spec(server: ReplayServer, n: int = 5, model: str = "kimi-k2.5") -> GeneratorSpec:
    return GeneratorSpec(server.url, model, n, "home cooking questions", seed=7, temperature=0.9)


def test_generation_dedups_records_provenance_and_replays_from_the_cache(tmp_path, monkeypatch):
    import dd.fresh._generate as G

    monkeypatch.setattr(G, "PER_REQUEST", 2)  # two prompts a request, so a short fall triggers more requests
    with ReplayServer({}, responder=generator) as server:
        fresh = generate_fresh(TRAIN, spec(server), train_generator="hand-written", cache=Cache(tmp_path))
        asked = len(server.requests)
        again = generate_fresh(TRAIN, spec(server), train_generator="hand-written", cache=Cache(tmp_path, offline=True))
        assert len(server.requests) == asked  # the re-run asked nothing
    assert fresh == again and fresh.prompts == tuple(NEW[:5])
    assert (fresh.ledger.count("exact"), fresh.ledger.count("near")) == (1, 1)
    assert fresh.provenance == Provenance("kimi-k2.5", "generated", server.url, 7, 0.9, GENERATOR_RUBRIC_VERSION)


def test_a_generator_that_wrote_the_training_set_is_refused_before_any_request(tmp_path):
    with ReplayServer({}, responder=generator) as server:
        with pytest.raises(GeneratorNotIndependent, match="is the training set's"):
            generate_fresh(TRAIN, spec(server, model="moonshot/Kimi-K2.5"), train_generator="kimi k2.5",
                           cache=Cache(tmp_path))
        assert server.requests == []


def test_a_failed_request_is_named_and_the_rerun_asks_only_for_it(tmp_path, monkeypatch):
    import dd.fresh._generate as G

    monkeypatch.setattr(G, "PER_REQUEST", 2)
    with ReplayServer({}, responder=generator) as server:
        server.set_fault("malformed_reply", match="This is request 2;")
        with pytest.raises(FreshRunFailed, match=r"1 of 3 requests got no usable reply .*: request 2 \(prompts: unparseable"):
            generate_fresh(TRAIN, spec(server), train_generator="hand-written", cache=Cache(tmp_path))
        server.clear_faults()
        before = len(server.requests)
        generate_fresh(TRAIN, spec(server), train_generator="hand-written", cache=Cache(tmp_path))
        assert len(server.requests) - before == 1  # request 2 alone: the others' replies are cached
    with pytest.raises(CacheMiss):
        generate_fresh(TRAIN, spec(server, n=9), train_generator="hand-written", cache=Cache(tmp_path, offline=True))


def checklist_judge(messages: list[dict]) -> str | None:
    system = messages[0]["content"]
    if system.startswith("You write the grading checklist"):
        return json.dumps({"claims": ["names a temperature", "names a time", "gives a reason"]})
    if system.startswith("You check one required claim"):
        return "YES" if "Required claim:\nnames a time" in messages[-1]["content"] else "NO"
    return None


def test_gold_checklists_are_written_once_and_serve_the_checklist_judge(tmp_path):
    fresh = fresh_from_prompts(TRAIN, NEW[:3], Provenance("kimi"), train_generator="me")
    with ReplayServer({}, responder=checklist_judge) as server:
        config = JudgeConfig(base_url=server.url, model="judge")
        written = write_checklists(fresh, config, Cache(tmp_path))
        assert written.checklists == (("names a temperature", "names a time", "gives a reason"),) * 3
        assert len(server.requests) == 3
        run = run_judge(ChecklistJudge(), [JudgeItem(p, "Ten minutes.") for p in fresh.prompts], config,
                        Cache(tmp_path))
        assert len(server.requests) == 3 + 9  # only the claim checks: every checklist came from the cache
    assert [o.coverage for o in run.outcomes] == [pytest.approx(1 / 3)] * 3
    assert FreshSet.load(written.save(tmp_path / "fresh.json")).checklists == written.checklists
