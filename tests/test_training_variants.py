"""Arc 1 training variants: the verdicts on scripted arms, the cached variants on a tiny base, and
claims/arc1/test_training_variants.py as a user runs it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dd.arcs import (
    RecoveryArm,
    RecoveryItem,
    Variant,
    compare_humaneval,
    compare_variant,
    humaneval_arms,
    humaneval_missing,
    teacher_run,
    train_variant,
)
from dd.core import Cache
from dd.operators import LoraTrainConfig
from helpers import read_report, run_pytest, tiny_loader

tiny = tiny_loader()
CLAIMS = "claims/arc1/test_training_variants.py"
BUDGETS = (64, 128)


def arm(name: str, first: list[bool], second: list[bool] | None = None, finish: str = "eos") -> dict[int, RecoveryArm]:
    """Scripted arms at both budgets: per problem, whether the first answer passed and the second recovered."""
    second = second or [False] * len(first)
    items = tuple(RecoveryItem(f"T/{k}", f, finish, 10) if f else
                  RecoveryItem(f"T/{k}", f, finish, 10, second_passed=s, second_finish="eos", second_tokens=10,
                               self_correction=False, unchanged=not s)
                  for k, (f, s) in enumerate(zip(first, second, strict=True)))
    return {b: RecoveryArm(name, b, items) for b in BUDGETS}


N = 10
BASE = arm("base", [False] * N)


def test_a_variant_that_recovers_and_keeps_humaneval_passes():
    cmp = compare_variant(BASE, arm("v", [False] * N, [True] * N))
    assert cmp.verdict.verdict == "pass", cmp.verdict.reasons
    assert {c.code for c in cmp.content.values()} == {"content_intact"}
    metrics = cmp.metrics(BASE, arm("v", [False] * N, [True] * N))
    assert metrics["recovery.recovery_delta_pct.n64"] == 100 and metrics["content.n128"] == "content_intact"
    assert metrics["humaneval.delta_pct.n64"] == 0


def test_a_humaneval_drop_fails_even_when_recovery_rises():
    base = arm("base", [True] * 5 + [False] * 5)
    cmp = compare_variant(base, arm("v", [False] * N, [True] * N))
    assert cmp.verdict.verdict == "fail" and cmp.verdict.code == "content_damaged"
    assert any("HumanEval pass@1 -50.0 points" in r for r in cmp.verdict.reasons)


def test_truncation_leaves_a_variant_undecided_and_no_recovery_fails():
    cut = compare_variant(BASE, arm("v", [False] * N, [True] * N, finish="length"))
    assert cut.verdict.verdict == "inconclusive" and cut.verdict.code == "truncation_artifact"
    flat = compare_variant(BASE, arm("v", [False] * N))
    assert flat.verdict.verdict == "fail" and flat.verdict.code == "no_effect"


def test_one_variant_against_another_on_humaneval():
    cmp, verdict = compare_humaneval(BASE, arm("b", [True] * N))
    assert verdict.verdict == "pass" and set(cmp.per_budget) == set(BUDGETS)
    assert compare_humaneval(BASE, arm("b", [True] + [False] * (N - 1)))[1].verdict == "fail"
    assert compare_humaneval(BASE, arm("b", [True] * N, finish="length"))[1].verdict == "inconclusive"
    with pytest.raises(ValueError, match="two or more"):
        compare_humaneval({64: BASE[64]}, {64: arm("b", [True] * N)[64]})
    assert humaneval_arms(BASE)[64].pass_at_1 == 0.0


def test_variants_train_through_the_cache_with_distinct_keys(root, tmp_path):
    base = tiny("tiny-llama", root)
    cache = Cache(tmp_path / "cache")
    run = teacher_run(None, cache, think=True)
    assert all("<think>" in r for _, r in run.sft_pairs()) and len(run.dpo_triples()) == 4
    sft = LoraTrainConfig(r=4, alpha=8, max_steps=2, batch_size=2)
    dpo = LoraTrainConfig(r=4, alpha=8, max_steps=1, batch_size=4)
    variants = [Variant("attention", sft), Variant("all-linear", replace(sft, target="all-linear")),
                Variant("rank", replace(sft, r=8, alpha=16)),
                Variant("sft+dpo", sft, dpo),
                Variant("think-masked", replace(sft, mask_think=True))]
    ops = {v.name: train_variant(base, v, run, cache) for v in variants}
    assert len({op.key() for op in ops.values()}) == len(ops)
    assert len({op.adapter.sha256() for op in ops.values()}) == len(ops)  # the data has think spans to mask
    assert ops["sft+dpo"].spec.stages == "sft+dpo" and ops["think-masked"].spec.stages == "sft(think-masked)"
    assert ops["sft+dpo"].adapter.history[0] == ops["attention"].adapter.history[0]  # DPO continued that SFT
    offline = Cache(tmp_path / "cache", offline=True)  # a re-run trains nothing: every stage is a hit
    assert {v.name: train_variant(base, v, run, offline).key() for v in variants} == {n: o.key() for n, o in ops.items()}


def test_claims_skip_with_the_exact_options(tmp_path):
    code, out = run_pytest(CLAIMS, "-p", "no:xdist", "--dd-cache", str(tmp_path / "cache"), artifacts_dir=tmp_path)
    assert code == 0, out
    assert "needs --dd-allow-code-exec" in out and "marked slow: run with --dd-slow" in out
    assert list((tmp_path / "cache").glob("adapters/*")) == []  # a skip trained nothing


@pytest.mark.skipif(humaneval_missing() is not None, reason=humaneval_missing() or "")
def test_tiny_variants_end_to_end(tmp_path):
    report = tmp_path / "report.json"
    code, out = run_pytest(CLAIMS, "-k", "tiny", "-p", "no:xdist", "--dd-allow-code-exec", "--dd-cache",
                           str(tmp_path / "cache"), "--dd-report", str(report), artifacts_dir=tmp_path)
    assert code == 0 and "8 xfailed" in out, out
    entries = {e["claim"]: e for e in read_report(report)["results"]}
    assert len(entries) == 8 and {e["verdict"] for e in entries.values()} == {"inconclusive"}
    masked = entries["arc1.variants.think_masked"]
    assert masked["metrics"]["stages"] == "sft(think-masked)" and masked["metrics"]["sft_think_pct"] == 100
    assert masked["metrics"]["recovery.verdict.n4"] == "truncation_artifact"
    assert masked["paper"] == {"base_pass_pct": 83.5, "variant_pass_pct": 51.2}
    assert entries["arc1.variants.sft_dpo"]["metrics"]["stages"] == "sft+dpo"
    assert len({e["metrics"]["adapter"] for k, e in entries.items() if "_vs_" not in k}) == 5
    versus = entries["arc1.variants.all_linear_vs_attention"]
    assert versus["metrics"]["verdict.n8"] == "truncation_artifact" and versus["paper"]["all_modules_pass_pct"] == 62.8
