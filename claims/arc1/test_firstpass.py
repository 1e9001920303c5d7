"""Arc 1 first-pass numbers (Qwen3-0.6B, SFT/DPO LoRA 'DD' arm), recomputed from the audit files.

The first-pass HumanEval flags do not give the paper's percentages: the suite says so with both
numbers rather than picking one.
"""

import pytest

from dd.paper import PHASE0_SUMMARY, load_humaneval_flags, load_judged, load_mcas_scores, load_summary, paper_numbers
from dd.protocol import agree, combine
from dd.pytest import claim_test

QUOTED = paper_numbers("arc1")
MCAS_PAPER = QUOTED["firstpass"]["mcas"]
HUMANEVAL_PAPER = QUOTED["firstpass"]["humaneval"]


def mcas(scores) -> float:
    """MCAS = mean judge score (0/1/2) / 2 x 100."""
    return float(scores.mean() / 2 * 100)


@claim_test("arc1.firstpass.mcas", base="qwen3-0.6b", operator="lora-sft-dpo", step="firstpass", paper=MCAS_PAPER)
def test_firstpass_mcas(paper, claim):
    scores = paper.load(load_mcas_scores)
    summary = paper.load(load_summary, PHASE0_SUMMARY)
    measured = {"base_mcas": mcas(scores["base"]), "dd_mcas": mcas(scores["dd"]), "n": len(scores["base"])}
    measured["delta"] = measured["dd_mcas"] - measured["base_mcas"]
    verdict = combine(
        paper=agree(measured, {**MCAS_PAPER, "n": QUOTED["firstpass"]["mcas_prompts"]},
                    {"base_mcas": 0.05, "dd_mcas": 0.05, "delta": 0.1}),
        stored_summary=agree(measured, {"base_mcas": summary["baseline_mcas"], "dd_mcas": summary["dd_fp16_mcas"]}, 0.05),
    )
    claim.conclude(source="recomputed", metrics=measured, verdict=verdict)


def humaneval_rates(paper) -> dict:
    base = paper.load(load_humaneval_flags, "base")
    dd = paper.load(load_humaneval_flags, "dd")
    out = {"n": len(base), "base_passed": sum(base.values()), "dd_passed": sum(dd.values()),
           "same_tasks": sorted(base) == sorted(dd)}
    out["base_pass_pct"] = 100 * out["base_passed"] / len(base)
    out["dd_pass_pct"] = 100 * out["dd_passed"] / len(dd)
    out["delta"] = out["dd_pass_pct"] - out["base_pass_pct"]
    return out


@claim_test("arc1.firstpass.humaneval.flags", base="qwen3-0.6b", operator="lora-sft-dpo", step="firstpass")
def test_firstpass_humaneval_flags_match_authors_summary(paper, claim):
    """The released flags agree with the authors' own summary file (12.8% and 30.5%)."""
    measured = humaneval_rates(paper)
    summary = paper.load(load_summary, PHASE0_SUMMARY)
    verdict = agree(measured, {"n": 164, "same_tasks": True, "base_pass_pct": summary["baseline_humaneval"],
                               "dd_pass_pct": summary["dd_fp16_humaneval"]}, {"base_pass_pct": 1e-9, "dd_pass_pct": 1e-9})
    claim.conclude(source="recomputed", metrics=measured, verdict=verdict)


@claim_test("arc1.firstpass.humaneval", base="qwen3-0.6b", operator="lora-sft-dpo", step="firstpass",
            paper=HUMANEVAL_PAPER, expected="fail",
            why=f"paper says {HUMANEVAL_PAPER['base_pass_pct']}% -> {HUMANEVAL_PAPER['dd_pass_pct']}% "
                f"(+{HUMANEVAL_PAPER['delta']}); the released flags give 21/164 = 12.8% -> 50/164 = 30.5% (+17.7)")
def test_firstpass_humaneval_matches_paper(paper, claim):
    measured = humaneval_rates(paper)
    claim.conclude(source="recomputed", metrics=measured, verdict=agree(measured, HUMANEVAL_PAPER, 0.05))


@claim_test("arc1.gemma.chef.base", base="gemma4-e2b", operator="frozen", step="coverage",
            paper=QUOTED["chef"]["base"])
def test_chef_base_coverage(paper, claim):
    judged = paper.load(load_judged, "step16")
    measured = {"mean_coverage": float(judged.coverage.mean()), "n": len(judged.coverage)}
    claim.conclude(source="recomputed", metrics=measured, verdict=agree(measured, QUOTED["chef"]["base"], 5e-4))


@claim_test("arc1.gemma.chef.dd", base="gemma4-e2b", operator="lora-sft-dpo", step="coverage",
            paper=QUOTED["chef"]["dd"])
def test_chef_dd_coverage(claim):
    pytest.skip("needs an LLM judge (--dd-judge-base-url) and the gold checklists, which the paper did not "
                "release: the DD responses (eval_full_ddv2.json) cannot be scored for coverage without them")
