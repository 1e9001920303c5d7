"""Agreement between what the suite measured and what the paper states.

A claim that the suite recomputes passes when every quoted number is matched within its
tolerance; each mismatch is a reason carrying both numbers, so a disagreement between the paper
and its own data is loud, never quietly resolved.
"""

from __future__ import annotations

from dd.protocol._verdict import FAIL, INCONCLUSIVE, PASS, Verdict


def agree(measured: dict, paper: dict, tol: float | dict[str, float] = 0.0) -> Verdict:
    """Compare each key of `paper` with `measured`; `tol` is absolute, per key or for all."""
    reasons = []
    for key, quoted in paper.items():
        if key not in measured:
            raise KeyError(f"the paper quotes {key!r} but nothing was measured for it")
        got = measured[key]
        bound = tol.get(key, 0.0) if isinstance(tol, dict) else tol
        if isinstance(quoted, (int, float)) and not isinstance(quoted, bool):
            ok = abs(got - quoted) <= bound + 1e-12
        else:
            ok = got == quoted
        if not ok:
            reasons.append(f"{key}: measured {got!r}, paper {quoted!r} (tolerance {bound})")
    if reasons:
        return Verdict(FAIL, tuple(reasons), {})
    return Verdict(PASS, (f"all {len(paper)} quoted numbers matched",), {})


def combine(**verdicts: Verdict) -> Verdict:
    """The worst of several named verdicts (fail, then inconclusive, then pass); reasons prefixed by name."""
    reasons = tuple(f"{name}: {r}" for name, v in verdicts.items() for r in v.reasons)
    words = {v.verdict for v in verdicts.values()}
    worst = next(w for w in (FAIL, INCONCLUSIVE, PASS) if w in words)
    return Verdict(worst, reasons, {})
