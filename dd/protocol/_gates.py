"""Pre-registered gates and their verdicts.

The bars live in `gates.toml` beside this module, versioned, never in tests. A verdict is
`pass`, `fail` or `inconclusive`, always with reasons. A gate never passes on evidence that a
guard rejects: too few items in the minority class, or a permutation null that clears the same
bar often (the SmolLM fresh set, 9 positives of 193, is the case this exists for).
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

from dd.protocol._verdict import FAIL, INCONCLUSIVE, PASS, Verdict


@cache
def registry() -> dict:
    """The parsed gates file."""
    return tomllib.loads(resources.files("dd.protocol").joinpath("gates.toml").read_text())


def gates_version() -> str:
    return registry()["version"]


def thresholds(name: str) -> dict[str, float]:
    """The bars of gate `name` ('cv' or 'fresh')."""
    return dict(registry()["gates"][name])


def guard(name: str):
    return registry()["guards"][name]


def truncation_bounds() -> dict[str, float]:
    return dict(registry()["truncation"])


def tempering_bars() -> dict[str, float]:
    return dict(registry()["tempering"])


def bars(section: str) -> dict[str, float]:
    """The bars of a section beyond the AUC gates ('attribution', 'separation', 'alignment')."""
    return dict(registry()[section])


def judge_gate(
    name: str,
    auc: float,
    asym: float | None,
    *,
    n_pos: int,
    n_neg: int,
    null: dict[str, float | None] | None = None,
    auc_lower: float | None = None,
) -> Verdict:
    """Hold (AUC, balanced asymmetry) to gate `name` with the power and null guards.

    Args:
        asym: the balanced asymmetry, or None when no threshold met the balance bound.
        null: a label-permutation null as `stats.score_null` gives it: per component ('auc',
            'asym'), `<c>_null_clear_rate` (share of permuted runs clearing the bar) and
            `<c>_null_p` (share reaching the observed value). A cleared bar that chance clears
            often counts only when the observed value itself beats chance.
        auc_lower: the bootstrap lower bound; when given (strict mode) the AUC bar applies to it.
    """
    bars = thresholds(name)
    gate = {"name": name, "version": gates_version(), **bars}
    failures: list[str] = []
    doubts: list[str] = []
    auc_used = auc if auc_lower is None else auc_lower
    auc_label = "AUC" if auc_lower is None else "AUC CI lower bound"
    if auc_used >= bars["auc_min"]:
        cleared = ["auc"]
    else:
        cleared = []
        failures.append(f"{auc_label} {auc_used:.4f} < {bars['auc_min']}")
    if asym is None:
        failures.append(
            f"no threshold keeps p_assert(correct) >= {guard('balance_min_p_assert_correct')}: "
            "balanced asymmetry undefined"
        )
    elif asym <= bars["asym_max"]:
        cleared.append("asym")
    else:
        failures.append(f"balanced asym {asym:+.4f} > {bars['asym_max']}")

    minority = min(n_pos, n_neg)
    if minority < guard("min_minority") and cleared:
        doubts.append(
            f"{' and '.join(cleared)} cleared with only {minority} items in the minority class "
            f"({n_pos} positive / {n_neg} negative; pre-registered minimum {guard('min_minority')}): "
            "class imbalance, not evidence"
        )
    alpha = guard("max_null_clear_rate")
    for component in cleared:
        rate = (null or {}).get(f"{component}_null_clear_rate")
        p_value = (null or {}).get(f"{component}_null_p")
        if rate is not None and rate > alpha and (p_value is None or p_value > alpha):
            doubts.append(
                f"label-permuted runs clear the {component} bar in {rate:.1%} of permutations "
                f"(> {alpha:.0%}) and reach the observed value in {p_value:.1%}: within chance"
            )
    if failures:
        return Verdict(FAIL, tuple(failures + doubts), gate)
    if doubts:
        return Verdict(INCONCLUSIVE, tuple(doubts), gate)
    return Verdict(PASS, (f"AUC {auc:.4f} and balanced asym {asym:+.4f} clear the {name} gate",), gate)
