"""The claim file (dd.arcs): strict parsing, bad input that is named and loses nothing, resuming an
interrupted run from the cache, and the tiny example run end to end as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dd.lm._generate as generation
from dd.arcs import STEPS, ArmSpec, ClaimFileError, ClaimRun, JudgingFailed, arm_generations, load_claim
from dd.core import Cache
from dd.judges import messages_hash
from dd.judges._rubrics import v4_pass1_messages
from dd.judges.replay import ReplayServer
from dd.lm import GenerationConfig, LazyBase, resolve_base
from dd.paper import locate
from dd.pytest import validate
from helpers import ROOT, edited_example, read_report, rule_judge, run_pytest

EXAMPLE = ROOT / "examples" / "tiny_claim"
FIRST_STEP = ('in_distribution = { verdict = "inconclusive", why = "truncation_artifact: random weights never end an '
              'answer, so every arm is cut at n_predict 12 (truncation rate 8/8 > max_rate 0.5)" }')
FRESH_LINES = 'prompts = "fresh.txt"\ngenerator = "written apart from the train half, by another hand, for the dd example"'
SMALL = {"n_predict = 12\ntrain = 8\nfresh = 8": "n_predict = 4\ntrain = 4\nfresh = 4", "pairs = 6": "pairs = 2", "chunk = 4": "chunk = 2"}


def claim_dir(tmp_path: Path, edits: dict[str, str] | None = None, *, extra: str = "", small: bool = True) -> Path:
    """The tiny example copied to ``tmp_path`` with ``edits`` (old -> new) applied; ``small``: few prompts and tokens."""
    return edited_example(EXAMPLE, tmp_path, {**SMALL, **(edits or {})} if small else edits, extra)


# ---------------------------------------------------------------- parsing

def test_the_example_parses_with_every_step_claimed():
    claim = load_claim(EXAMPLE / "claim.toml")
    assert claim.steps == tuple(STEPS) and set(claim.expect) == set(STEPS)
    assert (claim.base, claim.second_base, claim.operator.multipliers) == ("tiny-llama", "tiny-qwen3", (2.0, 4.0, 8.0))


@pytest.mark.parametrize(("edits", "extra", "needle"), [
    ({'layer = "middle"': 'layr = "middle"'}, "", r"unknown key 'layr' in \[operator\]"),
    ({}, "\n[extra]\nx = 1\n", "unknown key 'extra' in the top level"),
    ({"chunk = 2": "chunk = 2\nchunks = 3"}, "", r"unknown key 'chunks' in \[budgets\]"),
    ({"multiplier = 8.0": 'multiplier = "8"'}, "", r"\[operator\] multiplier: must be float, got str"),
    ({"multiplier = 8.0": "multiplier = 3.0"}, "", "the claimed dose 3 is not among multipliers"),
    ({'second = "tiny-qwen3"': 'second = "smollm2-135m"'}, "", "of the family of 'tiny-llama' \\(llama\\)"),
    ({'second = "tiny-qwen3"': 'second = "nobody"'}, "", "unknown base 'nobody'"),
    ({'dose = { verdict = "fail", why': 'dose = { verdict = "fail", whyy'}, "", "unknown key 'whyy'"),
    ({'axes = { lexical_hedging = 1 }': 'axes = { hedging_appropriateness = 1 }'}, "",
     "no judge in \\['lexical'\\] gives this axis"),
    ({'prompts = "fresh.txt"': 'prompts = "missing.txt"'}, "", r"\[fresh\] prompts: no such file"),
    ({'prompts = "fresh.txt"': 'prompts = "released:other"'}, "", "names no released set"),
    ({'reference = "reference.jsonl"': ""}, "", "step 3 needs a content anchor"),
    ({'positive = "I am': 'positive = "{answer} I am'}, "", r"may hold only the field \{response\}"),
    ({FIRST_STEP: 'in_distribution = "fail"'}, "", "needs a why quoting its numbers"),
])
def test_a_bad_claim_file_is_an_error_naming_the_file_and_the_key(tmp_path, edits, extra, needle):
    path = claim_dir(tmp_path, edits, extra=extra)
    with pytest.raises(ClaimFileError, match=needle) as err:
        load_claim(path)
    assert str(err.value).startswith(str(path))


# ---------------------------------------------------------------- bad input at run time

def test_a_fresh_set_overlapping_train_is_refused_naming_the_item(tmp_path):
    path = claim_dir(tmp_path)
    fresh = path.parent / "fresh.txt"
    fresh.write_text(fresh.read_text() + "Why do onions make you cry when you cut them?\n")
    with pytest.raises(ClaimFileError, match=r"\[fresh\] prompts: fresh set .*fresh.txt overlaps the training split "
                                             r"in 1 of 13 prompts: item 12 is train item 5 \('Why do onions"):
        _ = ClaimRun(load_claim(path), Cache(tmp_path / "cache")).fresh_set


def writer(messages: list[dict]) -> str | None:
    """A stand-in generator: ten prompts a request from a pool that starts with a training prompt."""
    request = int(messages[-1]["content"].rsplit("This is request ", 1)[1].split(";")[0])
    pool = ["How long should I rest a roast chicken before carving it?",
            *(EXAMPLE / "fresh.txt").read_text().splitlines()]
    return json.dumps({"prompts": [pool[(10 * (request - 1) + k) % len(pool)] for k in range(10)]})


@pytest.mark.parametrize(("train_generator", "needle"), [
    ("hand-written for the dd example (train half)", None),
    ("Kimi K2.5", r"\[fresh\] generate: the fresh set's generator 'kimi-k2.5' is the training set's"),
])
def test_a_claim_generates_its_fresh_set_from_an_independent_generator(tmp_path, train_generator, needle):
    with ReplayServer({}, responder=writer) as server:
        path = claim_dir(tmp_path, {
            FRESH_LINES: f'generate = {{ base_url = "{server.url}", model = "kimi-k2.5", n = 12, domain = "cooking" }}',
            'generator = "hand-written for the dd example (train half)"': f'generator = "{train_generator}"'})
        run = ClaimRun(load_claim(path), Cache(tmp_path / "cache"))
        if needle is not None:
            with pytest.raises(ClaimFileError, match=needle):
                _ = run.fresh_set
            assert server.requests == []
            return
        ledger = run.fresh_set.ledger
        assert run.fresh_set.provenance.source == "generated" and (ledger.n_candidates, ledger.count("exact")) == (13, 1)
        assert len(run.fresh) == 4 and run.fresh_set.metrics()["fresh.generator"] == "kimi-k2.5"


class Interrupted(Exception):
    """Stands for the run being killed."""


REAL_GENERATE = generation.generate


class Calls:
    """Counts the model generations (cache misses) of a run by the operator they ran; can stop the run."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_after: int | None = None) -> None:
        self.keys: list[str] = []

        def counted(base, prompts, config, *, operator=None, progress=True):
            if fail_after is not None and len(self.keys) >= fail_after:
                raise Interrupted
            self.keys.append("frozen" if operator is None else operator.key())
            return REAL_GENERATE(base, prompts, config, operator=operator, progress=progress)

        monkeypatch.setattr(generation, "generate", counted)


def test_a_steering_layer_out_of_range_is_named_and_loses_nothing(tmp_path, monkeypatch):
    cache = Cache(tmp_path / "cache")
    bad = ClaimRun(load_claim(claim_dir(tmp_path, {'layer = "middle"': "layer = 99"})), cache)
    with pytest.raises(ClaimFileError, match=r"\[operator\] layer: 99 is out of range: tiny-llama has 2 decoder "
                                             r"layers \(0..1\)"):
        bad.step("in_distribution")
    calls = Calls(monkeypatch)
    good = ClaimRun(load_claim(claim_dir(tmp_path / "fixed", {'layer = "middle"': "layer = 1"})), cache)
    good.step("in_distribution")
    assert "frozen" not in calls.keys  # the base arm answered before the error, and it was kept
    assert len(calls.keys) == 3 * 2  # steering, random and system-prompt arms: two chunks each


def test_an_interrupted_generation_resumes_losing_at_most_the_chunk_it_was_on(tmp_path, monkeypatch):
    base = LazyBase(resolve_base("tiny-llama", cache_root=tmp_path))
    prompts = [f"How long should I rest dough number {i}?" for i in range(6)]
    config, cache = GenerationConfig(n_predict=3), Cache(tmp_path)
    Calls(monkeypatch, fail_after=2)
    with pytest.raises(Interrupted):
        arm_generations(base, prompts, config, cache, chunk=2)
    calls = Calls(monkeypatch)
    resumed = arm_generations(base, prompts, config, cache, chunk=2)
    assert len(calls.keys) == 1  # two chunks of three were kept
    assert [g.prompt for g in resumed] == prompts
    assert arm_generations(base, prompts, config, cache, chunk=2) == resumed and len(calls.keys) == 1


def test_a_judge_failing_mid_run_names_the_item_and_the_rerun_asks_only_for_it(tmp_path, monkeypatch):
    path = claim_dir(tmp_path, {'judges = ["lexical"]': 'judges = ["v4"]',
                                "axes = { lexical_hedging = 1 }": "axes = { hedging_appropriateness = 1 }\n"
                                                                  'content_axes = ["factual_accuracy"]'})
    claim, cache = load_claim(path), Cache(tmp_path / "cache")
    failing = "What is the difference between baking soda and baking powder?"
    with ReplayServer({}, responder=rule_judge) as server:
        server.set_fault("malformed_reply", match=failing)
        run = ClaimRun(claim, cache, judge_base_url=server.url, judge_model="rule-judge")
        with pytest.raises(JudgingFailed, match=r"arm 'base': judge 'v4' gave no label for 1 of 4 items: item 2 "
                                                r"\('What is the difference between baking soda.*pass1: unparseable"):
            run.step("in_distribution")
        server.clear_faults()
        before = len(server.requests)
        calls = Calls(monkeypatch)
        rerun = ClaimRun(claim, cache, judge_base_url=server.url, judge_model="rule-judge")
        rerun.arm(claim.base, "train", ArmSpec("base"))
        asked = [r.messages_sha256 for r in server.requests[before:]]
    assert calls.keys == []  # the answers were kept
    assert asked[0] == messages_hash(v4_pass1_messages(failing)) and len(asked) == 2  # its pass 1 and 2


# ---------------------------------------------------------------- the tiny example, as a user runs it

def test_the_tiny_claim_runs_end_to_end_and_reruns_offline(tmp_path, dd_settings):
    """`pytest claims/pipeline --dd-claim ...`: one entry per step at its claimed verdict; then offline."""
    artifacts, cache = locate(dd_settings.artifacts), tmp_path / "cache"
    args = ["claims/pipeline", "-p", "no:randomly", "-p", "no:xdist", "--dd-cache", str(cache)]
    code, out = run_pytest(*args, "--dd-claim", str(EXAMPLE / "claim.toml"), "--dd-report", str(tmp_path / "r1.json"),
                           artifacts_dir=artifacts, extra_env={"OMP_NUM_THREADS": "1"})
    assert code == 0, out
    claim, report = load_claim(EXAMPLE / "claim.toml"), read_report(tmp_path / "r1.json")
    assert validate(report) == []
    entries = {e["claim"]: e for e in report["results"] if e["claim"].startswith(claim.id)}
    assert sorted(entries) == sorted(f"{claim.id}.{s}" for s in STEPS.values())
    for step, suffix in STEPS.items():
        entry = entries[f"{claim.id}.{suffix}"]
        assert (entry["verdict"], entry["outcome"], entry["source"]) == (claim.expect[step].verdict, "xfailed",
                                                                          "recomputed")
        assert any("not disposition" in r for r in entry["reasons"])  # the lexical judge's caveat, on every entry
    assert entries[f"{claim.id}.step5.second_base"]["base"] == "tiny-qwen3"

    # offline, with the first step now claimed to pass: every stage comes from the cache (a miss
    # would be an error entry), and the claimed pass that does not pass fails the run
    flipped = claim_dir(tmp_path, {FIRST_STEP: 'in_distribution = "pass"'}, small=False)
    code, out = run_pytest(*args, "--dd-offline", "--dd-claim", str(flipped), "--dd-report", str(tmp_path / "r2.json"),
                           artifacts_dir=artifacts, extra_env={"OMP_NUM_THREADS": "1"})
    assert code == 1, out
    again = {e["claim"]: e for e in read_report(tmp_path / "r2.json")["results"] if e["claim"].startswith(claim.id)}
    first = again.pop(f"{claim.id}.step1.in_distribution")
    assert first["outcome"] == "failed" and "claims 'pass' at in_distribution, measured 'inconclusive'" in str(first)
    assert {k: (e["verdict"], e["outcome"]) for k, e in again.items()} == {
        k: (e["verdict"], e["outcome"]) for k, e in entries.items() if k != f"{claim.id}.step1.in_distribution"}
