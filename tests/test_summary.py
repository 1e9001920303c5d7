"""The end-of-run table: grouped by arc, 120 columns, skips folded by what would enable them."""

import textwrap

from dd.pytest._summary import compact_lines, elide, fmt_number, full_lines


def entry(nodeid, claim, outcome, verdict="fail", base="smollm2-135m", operator="sidecar-logreg-C1.0-last4",
          reasons=(), paper=None, **metrics):
    return {"nodeid": nodeid, "claim": claim, "base": base, "operator": operator, "step": "fresh", "metrics": metrics,
            "paper": paper or {}, "gate": {"name": "fresh", "auc_min": 0.63}, "verdict": verdict,
            "reasons": list(reasons), "outcome": outcome, "source": "recomputed"}


ENTRIES = [
    entry("a::t[x]", "arc3.step2.fresh.a_rather_long_claim_identifier_here", "xfailed", auc=0.50912,
          balanced_asym=0.00812, paper={"auc": 0.509, "balanced_asym": 0.008}),
    entry("a::u", "arc1.humaneval.n512", "passed", verdict="pass", delta=-8.0),
    entry("a::v", "arc3.step1.cv", "error", verdict="inconclusive",
          reasons=["error in call, not a verdict: CorruptCacheEntry: features entry 1a2b fails its sha256 check"]),
    *[entry(f"s::{b}[{i}]", "arc3.step1.cv", "skipped", verdict="inconclusive", base=b,
            reasons=[f"base {b} is not available: pass --dd-model {b}=/path/to/{b} (HF_HUB_OFFLINE=1 ...)"])
      for b in ("qwen3-0.6b", "gemma4-e2b") for i in range(3)],
    *[entry(f"s::slow[{i}]", "arc2.sweep", "skipped", verdict="inconclusive",
            reasons=["marked slow: run with --dd-slow (or DD_SLOW=1)"]) for i in range(2)],
]


def test_the_compact_table_fits_120_columns_and_groups_by_arc():
    lines = [line for line, _ in compact_lines(ENTRIES)]
    assert max(map(len, lines)) <= 120
    assert lines[0] == "11 claims: 1 errors, 1 passed, 1 xfailed, 8 skipped"
    assert [line for line in lines if line.startswith("arc")] == [
        "arc1: 1 passed", "arc3: 1 errors, 1 xfailed, 6 skipped"]
    fresh = next(line for line in lines if "auc 0.509" in line)
    assert "asym 0.008" in fresh and "0.509 0.008" in fresh and "fail (xfail)" in fresh


def test_skips_fold_into_what_would_enable_them():
    lines = [line for line, _ in compact_lines(ENTRIES)]
    assert "    6 claims need weights: gemma4-e2b, qwen3-0.6b (use --dd-model NAME=PATH)" in lines
    assert "    2 claims are slow (run with --dd-slow)" in lines
    assert not any("s::" in line for line in lines)


def test_errors_stand_out_first():
    lines = compact_lines(ENTRIES)
    attention = next(i for i, (line, _) in enumerate(lines) if line == "needs attention:")
    line, markup = lines[attention + 1]
    assert line.startswith("  ERROR   a::v: error in call") and markup == {"red": True}
    assert any(line.rstrip().endswith("ERROR") and m == {"red": True} for line, m in lines[attention + 2:])


def test_numbers_are_rounded_to_what_they_carry():
    assert fmt_number(0.50912) == "0.509" and fmt_number(55) == "55" and fmt_number(1234.5678) == "1235"
    assert fmt_number(True) == "True" and fmt_number([1, 0.25]) == "1,0.250"


def test_elision_keeps_both_ends():
    assert elide("sidecar-logreg-C1.0-last4", 15) == "sidecar~0-last4"
    assert elide("short", 15) == "short"


def test_the_full_table_keeps_every_entry_uncut():
    lines = full_lines(ENTRIES)
    assert len(lines) == 1 + len(ENTRIES)
    assert any("arc3.step2.fresh.a_rather_long_claim_identifier_here" in line for line in lines)


def test_the_table_option_in_a_run(pytester):
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        @pytest.mark.claim("arcx.demo", base="tiny", paper={"auc": 0.7})
        def test_pass(claim):
            claim.conclude(source="recomputed", metrics={"auc": 0.7}, verdict="pass")
    """))
    compact = pytester.runpytest("-p", "no:randomly")
    compact.stdout.fnmatch_lines(["*dd claims: measured vs paper*", "1 claims: 1 passed", "arcx: 1 passed",
                                  "*demo*tiny*auc 0.700*0.700*pass*"])
    full = pytester.runpytest("-p", "no:randomly", "--dd-table", "full")
    full.stdout.fnmatch_lines(["claim*base*operator*measured*paper*gate*verdict*outcome*reason",
                               "arcx.demo*tiny*pass*passed*"])
    bad = pytester.runpytest("-p", "no:randomly", "--dd-table", "wide")
    assert bad.ret == 4 and "'compact' or 'full'" in bad.stderr.str()
