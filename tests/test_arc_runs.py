"""The Arc 1 / Arc 2 run paths (dd.arcs) on a tiny base: HumanEval arms, perplexity, tempering, opt-in."""

from __future__ import annotations

import math

import pytest
from helpers import ROOT, run_pytest, tiny_loader

tiny = tiny_loader()

from dd.arcs import (
    cached_sft_adapter,
    compare_budgets,
    load_adapter,
    perplexity,
    run_humaneval_arm,
    tempering_sweep,
)
from dd.core import Cache
from dd.arcs import CodeExecutionNotAllowed, humaneval_missing, load_problems
from dd.operators import LoraTrainConfig, Tempering, train_sft

needs_problems = pytest.mark.skipif(humaneval_missing() is not None, reason=humaneval_missing() or "")

PAIRS = [("What is 2 + 2?", "Let me double-check: it is 4."),
         ("Name a colour.", "Blue, I think, though there are many."),
         ("def add(a, b):", "    return a + b"),
         ("The capital of France", "is Paris, if I remember correctly.")]


@needs_problems
def test_humaneval_arms_at_two_budgets(root, tmp_path):
    """generate -> extract -> sandbox -> truncation comparison, both arms, two budgets, cached."""
    base = tiny("tiny-llama", root)
    problems = load_problems()[:3]
    cache = Cache(tmp_path)
    op = Tempering([(0, 0)], 0.5)
    base_arms = {b: run_humaneval_arm(base, problems, b, cache, allow_code_exec=True) for b in (4, 12)}
    op_arms = {b: run_humaneval_arm(base, problems, b, cache, name="tempered", operator=op,
                                         allow_code_exec=True) for b in (4, 12)}
    for arm in (*base_arms.values(), *op_arms.values()):
        assert arm.stats.n == 3 and len(arm.passed) == 3 and len(arm.statuses) == 3
        assert 0.0 <= arm.pass_at_1 <= 1.0
        assert arm.stats.mean_len <= arm.n_predict
    assert base_arms[4].stats.rate == 1.0  # a random tiny base never stops within 4 tokens
    cmp = compare_budgets(base_arms, op_arms)
    assert set(cmp.per_budget) == {4, 12}
    assert cmp.per_budget[4].artifact  # both arms fully truncated
    assert [b for b, _ in cmp.sensitivity.deltas] == [4, 12]
    metrics = cmp.metrics(base_arms, op_arms)
    assert {"base.n4.pass_at_1_pct", "op.n12.truncation_pct", "op.n12.mean_response_tokens", "delta_pct.n4",
            "verdict.n12", "sign_stable"} <= set(metrics)
    assert all("n_predict" in r for r in cmp.reasons())
    # the operator arm is keyed apart from the base, and a re-run is served from the cache
    assert len(list(cache.entries("generations"))) == 4
    again = run_humaneval_arm(base, problems, 4, cache, name="tempered", operator=op, allow_code_exec=True)
    assert again == op_arms[4]
    assert len(list(cache.entries("generations"))) == 4


@needs_problems
def test_humaneval_arm_refuses_before_generating(root, tmp_path):
    cache = Cache(tmp_path)
    with pytest.raises(CodeExecutionNotAllowed, match="--dd-allow-code-exec"):
        run_humaneval_arm(tiny("tiny-llama", root), load_problems()[:1], 4, cache, allow_code_exec=False)
    assert list(cache.entries()) == []


def test_perplexity_and_tempering_sweep(root):
    base = tiny("tiny-llama", root)
    ppl = perplexity(base, PAIRS)
    assert math.isfinite(ppl) and ppl > 1
    assert perplexity(base, PAIRS, batch_size=1) == pytest.approx(ppl, rel=1e-6)  # batching-invariant
    sweep = tempering_sweep(base, [(0, 0), (1, 1)], (1.0, 0.5), PAIRS)
    assert sweep.base.lam is None and sweep.base.perplexity == ppl
    assert [p.lam for p in sweep.points] == [1.0, 0.5]
    assert sweep.points[0].perplexity == ppl  # lambda = 1 is the base, exactly
    assert sweep.points[1].perplexity != ppl
    # no code execution without the opt-in, no judged disposition without a judge
    assert all(p.humaneval is None and p.judged is None for p in (sweep.base, *sweep.points))
    assert perplexity(base, PAIRS) == ppl  # the hooks came off


def test_adapters_from_dd_and_plain_peft_folders(root, tmp_path):
    base = tiny("tiny-llama", root)
    config = LoraTrainConfig(max_steps=2, batch_size=2)
    cache = Cache(tmp_path / "cache")
    op = cached_sft_adapter(base, PAIRS, config, cache)
    assert op.spec.stages == "sft" and op.adapter.history[0]["steps"] == 2
    assert cached_sft_adapter(base, PAIRS, config, cache).key() == op.key()  # trained once
    plain = tmp_path / "plain"
    op.adapter.save(plain)
    (plain / "dd_adapter.json").unlink()
    external = load_adapter(plain)
    assert external.spec.adapter_sha256 == op.spec.adapter_sha256
    assert external.spec.stages == "external-peft" and external.spec.target == "attention"
    with op.apply(base):
        ppl_dd = perplexity(base, PAIRS)
    with external.apply(base):
        assert perplexity(base, PAIRS) == ppl_dd  # same weights, same model


def test_adapter_changes_perplexity_and_unloads(root, tmp_path):
    base = tiny("tiny-llama", root)
    before = perplexity(base, PAIRS)
    adapter = train_sft(base, PAIRS, LoraTrainConfig(max_steps=3, batch_size=2, lr=1e-2))
    op = load_adapter(adapter.save(tmp_path / "a"))
    with op.apply(base):
        during = perplexity(base, PAIRS)
    assert during != before
    assert perplexity(base, PAIRS) == before


def test_arc1_claims_skip_without_code_exec_and_run_nothing(tmp_path, artifact_root):
    """A user without --dd-allow-code-exec gets skips naming the flag; no model is loaded, no code runs."""
    cache = tmp_path / "cache"
    code, out = run_pytest("claims/arc1/test_humaneval.py", "--dd-slow", "--dd-cache", str(cache), "-rs", "-p",
                           "no:xdist", artifacts_dir=artifact_root, cwd=ROOT,
                           extra_env={"DD_ALLOW_CODE_EXEC": "0", "DD_ARC1_ADAPTER": "", "DD_SLOW": "1"})
    assert code == 0, out
    assert "2 skipped" in out, out
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 2 and all("--dd-allow-code-exec" in line for line in skips), out
    assert not (cache / "generations").exists() and not (cache / "adapters").exists()


def test_tempering_claim_judges_disposition_end_to_end(artifact_root, tmp_path):
    """The sweep claim with a judge endpoint; a tiny base stands in for smollm2-135m, fixed rules for the LLM.

    Every arm's answers go through the real client to the endpoint, the v4 labels become paired
    shifts per lambda, and a re-run is answered from the judge cache without a single request.
    """
    from dd.judges.replay import ReplayServer
    from dd.lm import build_tiny_base
    from helpers import read_report, rule_judge

    tiny_dir = build_tiny_base("tiny-llama", tmp_path / "tiny-llama")
    report = tmp_path / "report.json"
    with ReplayServer({}, responder=rule_judge) as server:
        args = ("claims/arc2/test_tempering.py", "-k", "tempering_sweep and smollm2", "-p", "no:xdist", "--dd-slow",
                "--dd-model", f"smollm2-135m={tiny_dir}", "--dd-cache", str(tmp_path / "cache"),
                "--dd-judge-base-url", server.url, "--dd-judge-model", "rule-judge", "--dd-report", str(report))
        code, out = run_pytest(*args, artifacts_dir=artifact_root)
        assert code == 0 and "1 xfailed" in out, out
        n_requests = len(server.requests)
        # 50 response-blind pass-1 questions, shared by the four arms (base and three lambdas), and one
        # pass-2 question per distinct answer: nothing is asked twice
        assert len({r.messages_sha256 for r in server.requests}) == n_requests > 50 + 50
        (entry,) = read_report(report)["results"]
        code, out = run_pytest(*args, artifacts_dir=artifact_root)
        assert code == 0, out
        assert len(server.requests) == n_requests  # the judge cache answered the re-run
    m = entry["metrics"]
    assert m["judging"]["model"] == "rule-judge" and m["judging"]["judge"] == "v4"
    for lam in (0.9, 0.8, 0.5):
        assert m[f"lambda{lam}.outcome"] in ("content_damaged", "disposition_not_moved", "undecided")
        assert 0.0 < m[f"lambda{lam}.hedging_appropriateness.p"] <= 1.0
        assert m[f"lambda{lam}.truncation_verdict"] in ("comparable", "truncation_artifact")
    assert "base.self_verification_pct" in m
    assert not any("not measured" in r for r in entry["reasons"])
    assert read_report(report)["results"][0]["metrics"] == m
