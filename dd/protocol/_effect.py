"""The effect protocol: what an operator does to judged behaviour, base arm against operator arm.

A read-out is gated on features (`_pipeline`); an operator that changes what a model says is gated
on what it says. Both arms answer the same prompts with the same decoding and are judged alike,
so every comparison is paired item by item: a one-sided sign-flip permutation test of the mean
per-item change in the claimed direction, reported with a paired bootstrap CI and corrected
(Holm or Bonferroni) over the axes and doses one step tests. A delta is never called an effect
when truncation can explain it (`compare_arms`) or when content was damaged (the content
anchors); arms judged or decoded differently are refused outright, as an error, never a verdict.
The operator must also beat its baselines (a random direction of matched norm, the system
prompt); dose-response and steerability are in `_dose`. Bars and alphas are pre-registered in
`gates.toml` (``[effect]``). Arrays in, verdicts out: this never sees a model, a judge or a file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np

from dd.protocol import _gates
from dd.protocol._truncation import TRUNCATION_ARTIFACT, ArmComparison, ArmStats, arm_stats, compare_arms
from dd.protocol._verdict import FAIL, INCONCLUSIVE, PASS, Verdict

K = TypeVar("K")
Correction = Literal["holm", "bonferroni"]

EFFECT, NO_EFFECT = "effect", "no_effect"
BASELINE_BEATEN, BASELINE_NOT_BEATEN = "baseline_beaten", "baseline_not_beaten"
CONTENT_INTACT, CONTENT_DAMAGED, CONTENT_UNDECIDED = "content_intact", "content_damaged", "content_undecided"


def effect_bars(bars: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    """``bars``, or the ``[effect]`` section of the gates file when None."""
    return _gates.bars("effect") if bars is None else bars


def effect_gate(bars: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """The gate a verdict records: the section, the gates file's version and the bars it used."""
    return {"name": "effect", "version": _gates.gates_version(), **{n: bars[n] for n in names}}


def _effect_gate(bars: Mapping[str, Any]) -> dict[str, Any]:
    return effect_gate(bars, "alpha", "correction", "max_factual_drop")


class ArmsNotAlike(ValueError):
    """Two arms differ in prompts, decoding or judging, so no paired comparison of them exists."""


@dataclass(frozen=True, eq=False)
class Arm:
    """One arm's judged generations, as the arrays the protocol compares.

    Attributes:
        name: the arm (``base``, ``steering x4``, ``system-prompt``).
        items: per item, a content hash of its prompt; paired arms hold the same items in order.
        scores: per judged axis, the per-item score.
        finish_reasons: per item, ``length`` (cut at the budget) or ``eos``.
        lengths: per item, generated tokens.
        judging: how the arm was judged (judge, rubric version, model, endpoint, decoding).
        decoding: how the arm was generated (budget, temperature, seed, ...), never the operator.
    """

    name: str
    items: Sequence[str]
    scores: Mapping[str, Any]
    finish_reasons: Sequence[str]
    lengths: Sequence[int]
    judging: Mapping[str, Any]
    decoding: Mapping[str, Any]

    def __post_init__(self) -> None:
        items, n = tuple(self.items), len(self.items)
        scores = {axis: np.asarray(v, dtype=float) for axis, v in self.scores.items()}
        for axis, v in scores.items():
            if v.shape != (n,) or not np.isfinite(v).all():
                raise ValueError(f"arm {self.name!r}: axis {axis!r} needs {n} finite scores, got shape {v.shape}")
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "finish_reasons", tuple(self.finish_reasons))
        object.__setattr__(self, "lengths", tuple(int(x) for x in self.lengths))

    def stats(self) -> ArmStats:
        return arm_stats(self.name, self.finish_reasons, self.lengths)


def _differences(what: str, a: Mapping[str, Any], b: Mapping[str, Any], names: tuple[str, str]) -> list[str]:
    return [f"{what} {k}: {a.get(k)!r} ({names[0]}) vs {b.get(k)!r} ({names[1]})"
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def require_alike(reference: Arm, treated: Arm, axes: Sequence[str] = ()) -> Mapping[str, Any]:
    """The shared judging identity of two arms, or `ArmsNotAlike` naming every difference.

    The arms must hold the same items in the same order, be decoded alike and judged alike, and
    both carry every axis in ``axes``.
    """
    names = (reference.name, treated.name)
    problems = _differences("judging", reference.judging, treated.judging, names)
    problems += _differences("decoding", reference.decoding, treated.decoding, names)
    if reference.items != treated.items:
        problems.append(f"items: {len(reference.items)} ({names[0]}) and {len(treated.items)} ({names[1]}), "
                        "not the same prompts in the same order")
    problems += [f"axis {a!r} missing from {arm.name!r}" for a in axes for arm in (reference, treated)
                 if a not in arm.scores]
    if problems:
        raise ArmsNotAlike(f"arms {names[0]!r} and {names[1]!r} are not comparable: " + "; ".join(problems))
    return dict(reference.judging)


# ---------------------------------------------------------------- the paired test

def sign_flip_p(diff: np.ndarray, *, n_permutations: int, seed: int = 0) -> float:
    """One-sided p that mean(diff) > 0 beyond random sign flips of the items; 1.0 when nothing changed."""
    diff = np.asarray(diff, dtype=float)
    if not diff.any():
        return 1.0
    signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(n_permutations, len(diff)))
    null = (signs * diff).mean(axis=1)
    return float((1 + np.sum(null >= diff.mean() - 1e-12)) / (n_permutations + 1))


def paired_bootstrap_ci(diff: np.ndarray, *, n_resamples: int, level: float, seed: int = 0) -> tuple[float, float]:
    """Percentile CI of mean(diff), resampling items (so both arms' answers to one prompt stay together)."""
    diff = np.asarray(diff, dtype=float)
    idx = np.random.default_rng([seed, 1]).integers(0, len(diff), size=(n_resamples, len(diff)))
    lo, hi = np.quantile(diff[idx].mean(axis=1), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class PairedTest:
    """One axis, reference arm against treated arm, item by item.

    Attributes:
        p_value: one-sided sign-flip p in the claimed ``direction`` (uncorrected).
        ci: paired bootstrap CI of ``delta`` at ``level``.
    """

    axis: str
    n: int
    base_mean: float
    op_mean: float
    direction: int
    p_value: float
    ci: tuple[float, float]
    level: float

    @property
    def delta(self) -> float:
        return self.op_mean - self.base_mean

    def describe(self) -> str:
        wrong = "" if self.direction * self.delta > 0 else ", not in the claimed direction"
        return (f"{self.axis} {self.base_mean:.3g} -> {self.op_mean:.3g} (delta {self.delta:+.3g}, "
                f"{self.level:.0%} CI [{self.ci[0]:+.3g}, {self.ci[1]:+.3g}], p {self.p_value:.3g}{wrong})")


def paired_test(axis: str, base: Any, op: Any, *, direction: int = 1, bars: Mapping[str, Any] | None = None,
                seed: int = 0) -> PairedTest:
    """The paired test of ``op`` against ``base`` on one axis (``direction`` +1: op higher is the claim)."""
    bars = effect_bars(bars)
    base, op = np.asarray(base, dtype=float), np.asarray(op, dtype=float)
    if base.shape != op.shape or base.ndim != 1 or not len(base):
        raise ValueError(f"paired arms need equal non-empty 1-d score arrays, got {base.shape} and {op.shape}")
    if direction not in (1, -1):
        raise ValueError(f"direction is +1 or -1, not {direction!r}")
    diff = op - base
    p = sign_flip_p(direction * diff, n_permutations=int(bars["permutations"]), seed=seed)
    level = float(bars["bootstrap_level"])
    ci = paired_bootstrap_ci(diff, n_resamples=int(bars["bootstrap_resamples"]), level=level, seed=seed)
    return PairedTest(axis, len(diff), float(base.mean()), float(op.mean()), direction, p, ci, level)


def bonferroni_alpha(alpha: float, family_size: int) -> float:
    """The per-test alpha of a Bonferroni correction."""
    return alpha / max(1, family_size)


def rejected(p_values: Mapping[K, float], *, alpha: float, method: Correction,
             family_size: int | None = None) -> dict[K, bool]:
    """Which nulls the correction rejects, over a family of ``family_size`` tests (default: all given).

    A family larger than the p-values given (one lambda's axes out of a whole sweep) counts the
    tests not given as unrejected: Holm's step-down then starts at alpha / family_size, which
    still bounds the family-wise error. Bonferroni takes the family size as declared.
    """
    m = len(p_values) if family_size is None else family_size
    if method == "bonferroni":
        return {k: p <= bonferroni_alpha(alpha, m) for k, p in p_values.items()}
    if method != "holm":
        raise ValueError(f"correction is 'holm' or 'bonferroni', not {method!r}")
    if m < len(p_values):
        raise ValueError(f"a Holm family of {m} tests cannot hold {len(p_values)} p-values")
    out = dict.fromkeys(p_values, False)
    for rank, (k, p) in enumerate(sorted(p_values.items(), key=lambda kv: kv[1])):
        if p > alpha / (m - rank):
            break
        out[k] = True
    return out


# ---------------------------------------------------------------- content anchors

@dataclass(frozen=True)
class ContentAnchor:
    """A content measure the operator must not damage: its change from the base arm, and its bar.

    Attributes:
        name: what was measured on (``reference``, ``HumanEval``, ``factual``); names the reasons.
        measure: the quantity (``perplexity``, ``pass@1``, ``accuracy``).
        change: operator minus base: a fraction of the base's value when ``relative``, else a share.
        bar: the largest damage allowed.
        worse: the direction of damage: ``up`` for perplexity, ``down`` for rates and accuracy.
        relative: whether ``change`` is relative (shown in percent) rather than a share (in points).
        truncation: the comparison of the generations it was measured on, when under a budget; a
            truncation artifact leaves the anchor undecided, neither damaged nor intact.
    """

    name: str
    measure: str
    change: float
    bar: float
    worse: Literal["up", "down"] = "down"
    relative: bool = False
    truncation: ArmComparison | None = None

    @property
    def decided(self) -> bool:
        return self.truncation is None or not self.truncation.artifact

    @property
    def damaged(self) -> bool:
        return (self.change if self.worse == "up" else -self.change) > self.bar

    def describe(self) -> str:
        bar = (1 if self.worse == "up" else -1) * self.bar
        if self.relative:
            return f"{self.name} {self.measure} {self.change:+.2%} (bar {f'{bar:+.0%}' if bar else '0'})"
        return f"{self.name} {self.measure} {100 * self.change:+.1f} points (bar {f'{100 * bar:+.0f}' if bar else '0'})"


def content_anchors(*, bars: Mapping[str, Any], ppl_rise: float | None = None,
                    humaneval: ArmComparison | None = None, factual: float | None = None,
                    judged: ArmComparison | None = None) -> tuple[ContentAnchor, ...]:
    """The anchors the paper holds content to, each with its bar from ``bars``.

    Args:
        bars: ``max_ppl_rise``, ``max_pass_drop`` and ``max_factual_drop`` (``[effect]`` or ``[tempering]``).
        ppl_rise: perplexity of the reference answers over the base's, minus 1.
        humaneval: the base-vs-operator pass@1 comparison.
        factual: the change of the judged factual-accuracy axis.
        judged: the truncation comparison of the judged answers ``factual`` was measured on.
    """
    anchors = []
    if ppl_rise is not None:
        anchors.append(ContentAnchor("reference", "perplexity", ppl_rise, bars["max_ppl_rise"], "up", relative=True))
    if humaneval is not None:
        anchors.append(ContentAnchor("HumanEval", "pass@1", humaneval.delta, bars["max_pass_drop"],
                                     truncation=humaneval))
    if factual is not None:
        anchors.append(ContentAnchor("factual", "accuracy", factual, bars["max_factual_drop"], truncation=judged))
    return tuple(anchors)


def content_check(anchors: Sequence[ContentAnchor]) -> Verdict:
    """fail when any decided anchor is damaged; else inconclusive while any is a truncation artifact."""
    if not anchors:
        raise ValueError("a content check needs at least one anchor")
    damaged = [f"content damaged: {a.describe()}" for a in anchors if a.decided and a.damaged]
    if damaged:
        return Verdict(FAIL, tuple(damaged), code=CONTENT_DAMAGED)
    undecided = [f"{a.name} delta is a truncation artifact: " + "; ".join(a.truncation.verdict.reasons)
                 for a in anchors if a.truncation is not None and not a.decided]
    if undecided:
        return Verdict(INCONCLUSIVE, tuple(undecided), code=CONTENT_UNDECIDED)
    return Verdict(PASS, ("content undamaged: " + "; ".join(a.describe() for a in anchors),), code=CONTENT_INTACT)


# ---------------------------------------------------------------- effect and baselines

@dataclass(frozen=True)
class ArmEffect:
    """One treated arm against its reference arm.

    Attributes:
        tests: per claimed axis, the paired test.
        significant: per claimed axis, whether the correction rejects its null.
        truncation: both arms' truncation and whether it allows a comparison at all.
        content: the content check, when anchors were given.
    """

    reference: str
    arm: str
    tests: Mapping[str, PairedTest]
    significant: Mapping[str, bool]
    truncation: ArmComparison
    content: Verdict | None
    verdict: Verdict

    def metrics(self) -> dict[str, float | str | None]:
        out: dict[str, float | str | None] = {}
        for t in self.tests.values():
            out |= {f"{t.axis}.base": t.base_mean, f"{t.axis}.op": t.op_mean, f"{t.axis}.delta": t.delta,
                    f"{t.axis}.ci_low": t.ci[0], f"{t.axis}.ci_high": t.ci[1], f"{t.axis}.p": t.p_value}
        out |= {"truncation.base": self.truncation.base_rate, "truncation.op": self.truncation.operator_rate,
                "truncation_verdict": self.truncation.verdict.code,
                "content": self.content.code if self.content else None, "verdict": self.verdict.code}
        return out


@dataclass(frozen=True)
class EffectResult:
    """Every comparison of one step, the shared judging identity, and the step's verdict."""

    comparisons: Mapping[str, ArmEffect]
    judging: Mapping[str, Any]
    verdict: Verdict

    def metrics(self) -> dict[str, float | str | None]:
        return {f"{name}.{k}": v for name, c in self.comparisons.items() for k, v in c.metrics().items()}


def _combine(verdicts: Sequence[tuple[str, Verdict]], order: tuple[str, str, str],
             gate: Mapping[str, Any] | None) -> Verdict:
    for word in order:
        deciding = next((v for _, v in verdicts if v.verdict == word), None)
        if deciding is not None:
            reasons = tuple(f"{label}: {r}" for label, v in verdicts for r in v.reasons)
            return Verdict(word, reasons, gate or {}, deciding.code)
    raise ValueError("no verdict to combine")


def any_pass(verdicts: Sequence[tuple[str, Verdict]], gate: Mapping[str, Any] | None = None) -> Verdict:
    """pass when any labelled verdict passes; else inconclusive while any is; else fail.

    The code is the first deciding verdict's. Nothing to combine is a fail: nothing passed.
    """
    return _combine(verdicts, (PASS, INCONCLUSIVE, FAIL), gate) if verdicts else Verdict(FAIL, (), gate or {})


def all_pass(verdicts: Sequence[tuple[str, Verdict]], gate: Mapping[str, Any] | None = None) -> Verdict:
    """fail when any labelled verdict fails; else inconclusive while any is; else pass.

    The code is the first deciding verdict's. Nothing to combine is an error, never a vacuous pass.
    """
    return _combine(verdicts, (FAIL, INCONCLUSIVE, PASS), gate)


def _compare(pairs: Sequence[tuple[str, Arm, Arm]], axes: Mapping[str, int], codes: tuple[str, str],
             anchors: Mapping[str, Sequence[ContentAnchor]], content_axes: Sequence[str],
             bars: Mapping[str, Any], seed: int) -> tuple[dict[str, ArmEffect], Mapping[str, Any]]:
    """Paired tests of every labelled (reference, treated) pair, one correction over all pairs x axes."""
    if not axes or not pairs:
        raise ValueError("an effect needs at least one claimed axis and one treated arm")
    if len({label for label, _, _ in pairs}) != len(pairs):
        raise ValueError(f"arm names must be unique: {[label for label, _, _ in pairs]}")
    judging = [require_alike(ref, arm, [*axes, *content_axes]) for _, ref, arm in pairs]
    tests = {(label, axis): paired_test(axis, ref.scores[axis], arm.scores[axis], direction=d, bars=bars, seed=seed)
             for label, ref, arm in pairs for axis, d in axes.items()}
    method, alpha = bars["correction"], float(bars["alpha"])
    decisions = rejected({k: t.p_value for k, t in tests.items()}, alpha=alpha, method=method)
    family = f"{method} over {len(tests)} test(s) at alpha {alpha:g}"
    gate = _effect_gate(bars)
    out = {}
    code: str | None
    for label, ref, arm in pairs:
        mine = {axis: tests[label, axis] for axis in axes}
        moved = {axis: decisions[label, axis] and t.direction * t.delta > 0 for axis, t in mine.items()}
        first = next(iter(axes))  # compare_arms only size-checks the scores; its verdict is what counts
        trunc = compare_arms(ref.stats(), arm.stats(), ref.scores[first], arm.scores[first])
        judged = [ContentAnchor(axis, "share", float(arm.scores[axis].mean() - ref.scores[axis].mean()),
                                float(bars["max_factual_drop"]), truncation=trunc) for axis in content_axes]
        measured = [*anchors.get(arm.name, ()), *judged]
        content = content_check(measured) if measured else None
        if content is not None and content.code == CONTENT_DAMAGED:
            word, code, reasons = FAIL, CONTENT_DAMAGED, content.reasons
        elif trunc.artifact:
            word, code, reasons = INCONCLUSIVE, TRUNCATION_ARTIFACT, trunc.verdict.reasons
        elif content is not None and not content.passed:
            word, code, reasons = content.verdict, content.code, content.reasons
        else:
            word, code = (PASS, codes[0]) if all(moved.values()) else (FAIL, codes[1])
            reasons = tuple(f"{t.describe()}: {'moved' if moved[a] else 'not moved'} ({family})"
                            for a, t in mine.items()) + (content.reasons if content else ())
        out[label] = ArmEffect(ref.name, arm.name, mine, moved, trunc, content, Verdict(word, reasons, gate, code))
    return out, judging[0]


def effect(base: Arm, arms: Sequence[Arm], *, axes: Mapping[str, int], content_axes: Sequence[str] = (),
           anchors: Mapping[str, Sequence[ContentAnchor]] | None = None, bars: Mapping[str, Any] | None = None,
           seed: int = 0) -> EffectResult:
    """Whether an operator moves the claimed axes, at one dose or any of several.

    Args:
        base: the untouched base's arm.
        arms: the operator's arms (one per dose), each on the base's items.
        axes: per claimed axis, its direction (+1: the operator raises it).
        content_axes: judged axes where content must not drop (bar ``max_factual_drop``).
        anchors: per arm name, content measured elsewhere (`content_anchors`: perplexity, pass@1).
        bars: defaults to ``[effect]``.

    Returns:
        Per arm, code ``effect`` (pass), ``no_effect``, ``content_damaged`` (fail),
        ``truncation_artifact`` or ``content_undecided`` (inconclusive); the step passes when any
        arm passes, after one correction over every arm and axis.

    Raises:
        ArmsNotAlike: an arm holds other items, or was decoded or judged differently.
    """
    bars = effect_bars(bars)
    pairs = [(arm.name, base, arm) for arm in arms]
    out, judging = _compare(pairs, axes, (EFFECT, NO_EFFECT), anchors or {}, content_axes, bars, seed)
    return EffectResult(out, judging, any_pass([(name, c.verdict) for name, c in out.items()], _effect_gate(bars)))


def beats_baselines(op: Arm, baselines: Sequence[Arm], *, axes: Mapping[str, int],
                    bars: Mapping[str, Any] | None = None, seed: int = 0) -> EffectResult:
    """Whether the operator's arm moves the claimed axes beyond every baseline's arm, item by item.

    The baselines (a random direction of matched norm at the same layer, the system prompt asking
    for the same disposition) answer the same prompts, so op - baseline per item is the operator's
    effect minus the baseline's. Code ``baseline_beaten`` per baseline; the step passes only when
    every one is beaten.
    """
    bars = effect_bars(bars)
    out, judging = _compare([(b.name, b, op) for b in baselines], axes, (BASELINE_BEATEN, BASELINE_NOT_BEATEN), {}, (),
                            bars, seed)
    return EffectResult(out, judging, all_pass([(name, c.verdict) for name, c in out.items()], _effect_gate(bars)))
