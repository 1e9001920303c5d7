"""The paper's five-step protocol as composable functions over a `FeatureSource`.

Each step returns a `StepResult` (metrics, verdict, reasons). The gate bars come from
`gates.toml`; the guards around them (label-permutation null, power, bootstrap CI, surface
confounds, split ledger) only ever add reasons and downgrade pass -> inconclusive, never lift a
fail, because a gate that clears on confounded or leaked evidence is not evidence. Steps 1 and 2
also carry a specification curve (`_specs`: a pass that is one forking path of many is
`inconclusive`, code `forking_paths`), group checks (`_groups`: control-task selectivity and
group-aware CV, or the near-duplicate report without groups) and the MDL online code (`_mdl`,
reported only).

1. `cv_step`: 5-fold CV on the training split (gate 'cv').
2. `fresh_step`: fit on train, score the fresh split (gate 'fresh').
3. `axes_step`: steps 1 and 2 on each extra label column (per-axis sweep).
4. `pooled_step`: steps 1 and 2 on each extra feature view (e.g. pooled layers).
5. `second_base_step`: steps 1 and 2 on a second base's features.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from dd.protocol import _fits as fits
from dd.protocol import _gates as gates
from dd.protocol import _groups as groups
from dd.protocol import _stats as stats
from dd.protocol._agreement import combine
from dd.protocol._mdl import online_code
from dd.protocol._specs import FORKING_PATHS, SpecCurve, SpecGrid, spec_curve
from dd.protocol._verdict import FAIL, INCONCLUSIVE, PASS, Verdict

GROUP_LEAK = "group_leak"


@dataclass(frozen=True)
class FeatureSource:
    """Everything the protocol needs about one (base, operator): two labelled splits and extras.

    Attributes:
        name: the report's base, e.g. 'smollm2-1.7b' or 'features:mydir'.
        surface_train, surface_fresh: per-item surface facts (length, truncated, ...).
        hashes_train, hashes_fresh: per-item content hashes, for the split ledger.
        generator_train, generator_fresh: who produced each split's items, when known.
        axes: extra label columns, axis -> (y_train, y_fresh), for step 3.
        views: extra feature views, view -> (X_train, X_fresh), for step 4 and as the
            alternatives to X in every gate's specification curve.
        second: the same protocol inputs on a second base, for step 5.
        groups: per-item group ids (train, fresh), either may be None: group-aware CV and
            control tasks.
        view: the name of X in a specification curve (step 4 runs each view as X).
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_fresh: np.ndarray
    y_fresh: np.ndarray
    surface_train: Mapping[str, np.ndarray] = field(default_factory=dict)
    surface_fresh: Mapping[str, np.ndarray] = field(default_factory=dict)
    hashes_train: tuple[str, ...] | None = None
    hashes_fresh: tuple[str, ...] | None = None
    generator_train: str | None = None
    generator_fresh: str | None = None
    axes: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    views: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    second: FeatureSource | None = None
    groups: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    view: str = "X"


@dataclass(frozen=True)
class StepResult:
    """One protocol step: what it measured, the verdict (whose reasons include the guards') and its curve."""

    step: str
    metrics: dict
    verdict: Verdict
    curve: SpecCurve | None = None

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.verdict.reasons


def _downgrade(verdict: Verdict, doubts: list[str], code: str | None = None) -> Verdict:
    """Add guard reasons; a pass becomes inconclusive (with `code`, unless one is set), a fail stays a fail."""
    if not doubts:
        return verdict
    word = INCONCLUSIVE if verdict.verdict == PASS else verdict.verdict
    kept = () if verdict.verdict == PASS else verdict.reasons
    code = verdict.code or (code if word == INCONCLUSIVE else None)
    return Verdict(word, (*kept, *doubts), verdict.gate, code)


def _gate(gate: str, y, p, *, strict: bool, seed: int) -> tuple[dict, Verdict]:
    """AUC, balanced asym, bootstrap CI and null of one scored split, held to `gate`."""
    y = stats.check_binary(y)
    auc = stats.roc_auc(y, p)
    point = stats.balanced_asymmetry(y, p)
    lo, hi = fits.bootstrap_auc_ci(y, p, gates.guard("bootstrap_resamples"), gates.guard("bootstrap_level"), seed)
    null = stats.score_null(y, p, **gates.thresholds(gate), n_permutations=gates.guard("null_permutations"), seed=seed)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    metrics = {
        "auc": auc,
        "balanced_asym": point.asym if point else None,
        "balanced_thr": point.thr if point else None,
        "n_pos": n_pos,
        "n_neg": n_neg,
        "auc_ci_low": lo,
        "auc_ci_high": hi,
        "strict": strict,
        **null,
    }
    verdict = gates.judge_gate(
        gate, auc, point.asym if point else None, n_pos=n_pos, n_neg=n_neg,
        null=null,
        auc_lower=lo if strict else None,
    )
    return metrics, verdict


def _fact_binary(values: np.ndarray) -> np.ndarray:
    """A 0/1 fact as is; a continuous one split at its median (above = 1)."""
    return values.astype(int) if np.isin(values, (0, 1)).all() else (values > np.median(values)).astype(int)


def _features_predict(X, values, C: float) -> float | None:
    """CV AUC of the features for a surface fact, or None when the fact has too few of a class."""
    try:
        return fits.cross_validate(X, _fact_binary(values), C).pooled_auc
    except stats.OneClassError:
        return None


def _fact_predicts(y, values) -> float:
    """AUC of the raw fact as a score for the label, direction-free (>= 0.5)."""
    auc = stats.roc_auc(y, values)
    return max(auc, 1 - auc)


def surface_guard(source: FeatureSource, C: float) -> tuple[dict, list[str]]:
    """Surface facts the features encode in train that differ in fresh, or that explain the train label.

    A probe can learn response length or truncation instead of the disposition; CV then passes
    while transfer fails, or a fresh set drawn like the training set passes for the wrong reason.
    """
    bars = gates.bars("surface")
    metrics: dict = {}
    doubts: list[str] = []
    for name in sorted(set(source.surface_train) & set(source.surface_fresh)):
        tr = np.asarray(source.surface_train[name], dtype=float)
        fr = np.asarray(source.surface_fresh[name], dtype=float)
        ks_statistic, ks_p = fits.ks_2samp(tr, fr)
        m: dict[str, Any] = {
            "features_auc_train": _features_predict(source.X_train, tr, C),
            "features_auc_fresh": _features_predict(source.X_fresh, fr, C),
            "shift_ks": ks_statistic,
            "shift_p": ks_p,
            "label_auc_train": _fact_predicts(source.y_train, tr),
            "label_auc_fresh": _fact_predicts(source.y_fresh, fr),
        }
        metrics.update({f"surface.{name}.{k}": v for k, v in m.items()})
        encoded = (m["features_auc_train"] or 0) >= bars["auc_bar"]
        if encoded and m["shift_p"] < bars["shift_p"]:
            doubts.append(
                f"surface confound '{name}': train features predict it (CV AUC {m['features_auc_train']:.3f} "
                f">= {bars['auc_bar']}) and it is distributed differently in fresh (KS {m['shift_ks']:.3f}, "
                f"p {m['shift_p']:.2g})"
            )
        if m["label_auc_train"] >= bars["auc_bar"] and m["label_auc_fresh"] < bars["auc_bar"]:
            doubts.append(
                f"surface confound '{name}': it predicts the train label alone (AUC {m['label_auc_train']:.3f}) "
                f"but not the fresh label (AUC {m['label_auc_fresh']:.3f})"
            )
    metrics["surface_flags"] = len(doubts)
    return metrics, doubts


def split_ledger(source: FeatureSource) -> tuple[dict, list[str]]:
    """Train and fresh must be different items from different generators, or transfer is not tested."""
    doubts: list[str] = []
    metrics: dict = {}
    if source.hashes_train is not None and source.hashes_fresh is not None:
        overlap = len(set(source.hashes_train) & set(source.hashes_fresh))
        metrics["ledger_hash_overlap"] = overlap
        if overlap:
            doubts.append(f"split ledger: {overlap} fresh item(s) share a content hash with the training split")
    a = source.X_train / np.maximum(np.linalg.norm(source.X_train, axis=1, keepdims=True), 1e-12)
    b = source.X_fresh / np.maximum(np.linalg.norm(source.X_fresh, axis=1, keepdims=True), 1e-12)
    bar = gates.bars("ledger")["near_duplicate_cosine"]
    near = int(((a @ b.T).max(axis=0) > bar).sum())
    metrics["ledger_near_duplicates"] = near
    if near:
        doubts.append(
            f"split ledger: {near} fresh item(s) have a training row with feature cosine > {bar}"
        )
    metrics["generator_train"], metrics["generator_fresh"] = source.generator_train, source.generator_fresh
    if source.generator_train and source.generator_train == source.generator_fresh:
        doubts.append(
            f"split ledger: the fresh split comes from the training generator ({source.generator_fresh!r}); "
            "transfer needs an independent generator"
        )
    return metrics, doubts


def _family(source: FeatureSource) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The claimed features first, then every alternative view: the views of a specification curve."""
    return {source.view: (source.X_train, source.X_fresh), **source.views}


def _forking(curve: SpecCurve, verdict: Verdict) -> Verdict:
    """The curve's doubts downgrade a gate that cleared its bars; a failed gate needs no correction."""
    return verdict if verdict.verdict == FAIL else _downgrade(verdict, curve.doubts(), FORKING_PATHS)


def cv_step(source: FeatureSource, C: float = 1.0, *, strict: bool = False, seed: int = 0,
            estimator=None, grid: SpecGrid | None = None) -> StepResult:
    """Step 1: pooled out-of-fold AUC and balanced asym of 5-fold CV on the training split.

    The folds are group-aware when the training split has groups. The probe is the paper's
    logistic regression at `C` unless a read-out operator passes its own unfitted `estimator`;
    the surface guard always uses the paper's probe. `grid` is the specification curve's grid
    (`spec_grid()`, the small one, by default).
    """
    group = source.groups[0]
    cv = fits.cross_validate(source.X_train, source.y_train, C, groups=group, estimator=estimator)
    metrics, verdict = _gate("cv", source.y_train, cv.oof, strict=strict, seed=seed)
    metrics["mean_fold_auc"] = cv.mean_fold_auc
    metrics["folds"] = "stratified" if group is None else "stratified-group"
    curve = spec_curve("cv", _family(source), source.y_train, C=C, grid=grid, groups=group, estimator=estimator,
                       strict=strict, seed=seed)
    surface, doubts = surface_guard(source, C)
    group_doubts: list[str] = []
    if group is None:
        grouped = groups.duplicate_structure(source.X_train, source.hashes_train)
    else:
        grouped, group_doubts = groups.group_cv_guard(source.X_train, source.y_train, group, C, metrics["auc"],
                                                      estimator=estimator)
    mdl = online_code(source.X_train, source.y_train, C, estimator=estimator).metrics()
    verdict = _downgrade(_downgrade(_forking(curve, verdict), group_doubts, GROUP_LEAK), doubts)
    return StepResult("cv", {**metrics, **curve.metrics(), **grouped, **mdl, **surface}, verdict, curve)


def fresh_step(source: FeatureSource, C: float = 1.0, *, strict: bool = False, seed: int = 0,
               estimator=None, grid: SpecGrid | None = None) -> StepResult:
    """Step 2: fit on the training split, score the fresh split."""
    p = fits.fit_predict(source.X_train, source.y_train, source.X_fresh, C, estimator=estimator)
    metrics, verdict = _gate("fresh", source.y_fresh, p, strict=strict, seed=seed)
    curve = spec_curve("fresh", _family(source), source.y_train, source.y_fresh, C=C, grid=grid,
                       estimator=estimator, strict=strict, seed=seed)
    grouped: dict = {}
    group_doubts: list[str] = []
    if source.groups[0] is not None and source.groups[1] is not None:
        grouped, group_doubts = groups.group_fresh_guard(source.X_train, source.y_train, source.groups[0],
                                                         source.X_fresh, source.y_fresh, source.groups[1], C,
                                                         metrics["auc"], estimator=estimator)
    mdl = online_code(source.X_fresh, source.y_fresh, C, estimator=estimator).metrics()
    surface, surface_doubts = surface_guard(source, C)
    ledger, ledger_doubts = split_ledger(source)
    verdict = _downgrade(_downgrade(_forking(curve, verdict), group_doubts, GROUP_LEAK),
                         surface_doubts + ledger_doubts)
    return StepResult("fresh", {**metrics, **curve.metrics(), **grouped, **mdl, **surface, **ledger}, verdict, curve)


def member_verdict(cv: StepResult, fresh: StepResult, n_members: int = 1, what: str = "axes") -> Verdict:
    """Both gates of one of `n_members` alternatives (a label axis among several); a pass corrected across them.

    Each gate's family-wise p covers its own specification grid. A claim that some one of several
    axes carries the signal picks the best of them as well, so a pass stands only when each gate's
    p clears alpha / `n_members` (Bonferroni); else it is inconclusive with code `forking_paths`.
    """
    verdict = combine(cv=cv.verdict, fresh=fresh.verdict)
    alpha = gates.bars("specs")["alpha"]
    bar = alpha / n_members
    worst = max(cv.metrics["specs.fw_p"], fresh.metrics["specs.fw_p"])
    if not verdict.passed or worst <= bar:
        return verdict
    return _downgrade(verdict, [f"forking paths across {n_members} {what}: the worst family-wise p of the two gates "
                                f"is {worst:.4f} > {alpha}/{n_members} = {bar:.4f} (Bonferroni across the {what})"],
                      FORKING_PATHS)


def _both_gates(step: str, variants: Mapping[str, FeatureSource], C: float, strict: bool, seed: int,
                estimator=None, grid: SpecGrid | None = None, across: str | None = None) -> StepResult:
    """Steps 1 and 2 per variant; pass when some variant passes both, fail when none could.

    Any one variant passing is what the protocol asks of steps 3-5 ("does some axis / view /
    base carry the signal?"); each variant's numbers and reasons stay in the report. With
    `across` (what the variants are), a variant's pass is corrected across them (`member_verdict`);
    step 4's views need no such step, as each view's curve holds the others already.
    """
    metrics: dict = {}
    reasons: list[str] = []
    members: list[Verdict] = []
    for name, variant in variants.items():
        cv = cv_step(variant, C, strict=strict, seed=seed, estimator=estimator, grid=grid)
        fresh = fresh_step(variant, C, strict=strict, seed=seed, estimator=estimator, grid=grid)
        for r in (cv, fresh):
            metrics.update({f"{name}.{r.step}.{k}": v for k, v in r.metrics.items()})
            reasons.extend(f"{name} {r.step}: {why}" for why in r.reasons)
        member = member_verdict(cv, fresh, len(variants) if across else 1, across or "")
        if member.code == FORKING_PATHS:
            reasons.extend(f"{name}: {why}" for why in member.reasons)
        metrics[f"{name}.verdict"] = member.verdict
        members.append(member)
    words = [m.verdict for m in members]
    metrics["n_pass"] = words.count(PASS)
    metrics["n_variants"] = len(words)
    overall = PASS if PASS in words else INCONCLUSIVE if INCONCLUSIVE in words else FAIL
    gate = {"name": step, **{f"{g}.{k}": v for g in ("cv", "fresh") for k, v in gates.thresholds(g).items()}}
    forked = any(m.code == FORKING_PATHS for m in members)
    code = FORKING_PATHS if overall == INCONCLUSIVE and forked else None
    return StepResult(step, metrics, Verdict(overall, tuple(reasons), gate, code))


def axes_step(source: FeatureSource, C: float = 1.0, *, strict: bool = False, seed: int = 0,
              estimator=None, grid: SpecGrid | None = None) -> StepResult:
    """Step 3: the same features against each extra label column (the views stay its alternatives).

    Some one axis passing is the claim, so each axis's pass is corrected across the axes (`member_verdict`).
    """
    if not source.axes:
        raise ValueError(f"{source.name} has a single label column; step 3 needs several")
    variants = {a: replace(source, y_train=yt, y_fresh=yf, axes={}, second=None)
                for a, (yt, yf) in source.axes.items()}
    return _both_gates("axes", variants, C, strict, seed, estimator, grid, across="axes")


def pooled_step(source: FeatureSource, C: float = 1.0, *, strict: bool = False, seed: int = 0,
                estimator=None, grid: SpecGrid | None = None) -> StepResult:
    """Step 4: the same labels from each extra feature view (e.g. the mean of the last layers).

    Each view runs as the claimed features with X and the other views as its alternatives, so
    a view that passes only as the best of many is a forking path.
    """
    if not source.views:
        raise ValueError(f"{source.name} carries no extra feature view; step 4 needs one")
    family = _family(source)
    variants = {v: replace(source, X_train=xt, X_fresh=xf, view=v, axes={}, second=None,
                           views={w: a for w, a in family.items() if w != v})
                for v, (xt, xf) in source.views.items()}
    return _both_gates("pooled", variants, C, strict, seed, estimator, grid)


def second_base_step(source: FeatureSource, C: float = 1.0, *, strict: bool = False, seed: int = 0,
                     estimator=None, grid: SpecGrid | None = None) -> StepResult:
    """Step 5: replication of steps 1 and 2 on a second base."""
    if source.second is None:
        raise ValueError(f"{source.name} has no second-base source; step 5 needs one")
    return _both_gates("second-base", {source.second.name: source.second}, C, strict, seed, estimator, grid)
