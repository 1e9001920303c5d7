"""Groups: group-aware CV, control tasks (Hewitt & Liang 2019) and the near-duplicate report.

Prompts come in templates and topics. When labels follow the group and the features encode it,
random-fold CV puts items of one group on both sides of a fold and looks excellent. Two checks
catch it, each with its bar in `gates.toml` `[groups]`:

- a control task gives each group a random label with the labels' class balance; a probe that
  learns it nearly as well as the real label (low *selectivity* = real AUC - control AUC) may be
  memorising groups, not reading the property;
- group-aware CV far below random-fold CV means items of a seen group carry the AUC.

Without groups, `duplicate_structure` reports how clustered the training items are (repeated
hashes, near-duplicate features), so that a user sees when a grouping is needed.
"""

from __future__ import annotations

import numpy as np

from dd.protocol import _fits as fits
from dd.protocol import _gates as gates
from dd.protocol import _stats as stats


def control_labels(y, groups, seed: int = 0) -> np.ndarray:
    """One random label per group, positives filling groups in a random order up to y's positive count.

    A group is positive when its midpoint in that order falls among the first n_pos items, so
    the class balance matches y's as closely as the group sizes allow (exactly, for singletons).
    """
    y, groups = np.asarray(y), np.asarray(groups)
    names, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(names))
    midpoints = np.empty(len(names))
    midpoints[order] = np.cumsum(sizes[order]) - sizes[order] / 2
    return (midpoints < y.sum())[inverse].astype(int)


def name_groups(y, groups, k: int = 3) -> str:
    """The k groups a probe could most profit from memorising: large and lopsided in their labels."""
    y, groups = np.asarray(y), np.asarray(groups)
    names, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    rates = np.bincount(inverse, weights=y) / sizes
    top = np.argsort(-sizes * np.abs(rates - y.mean()), kind="stable")[:k]
    return ", ".join(f"'{names[i]}' ({sizes[i]} items, {rates[i]:.0%} positive)" for i in top)


def _control_aucs(draws, score) -> float | None:
    """Mean control AUC over draws whose control labels hold both classes (None when none does)."""
    aucs = []
    for labels in draws:
        try:
            aucs.append(score(labels))
        except stats.OneClassError:
            continue
    return float(np.mean(aucs)) if aucs else None


def group_cv_guard(X, y, groups, C: float, group_auc: float, *, estimator=None) -> tuple[dict, list[str]]:
    """Step 1 with groups: the gap to random-fold CV and the selectivity over a control task.

    Both AUCs of the selectivity come from random-fold CV, where memorising a group pays: that
    is the capacity a control task measures.
    """
    bars = gates.registry()["groups"]
    y, groups = stats.check_binary(y), np.asarray(groups)
    random_auc = fits.cross_validate(X, y, C, estimator=estimator).pooled_auc
    draws = [control_labels(y, groups, seed) for seed in range(bars["control_tasks"])]
    control = _control_aucs(draws, lambda c: fits.cross_validate(X, c, C, estimator=estimator).pooled_auc)
    selectivity = None if control is None else random_auc - control
    gap = random_auc - group_auc
    n_groups = len(np.unique(groups))
    metrics = {
        "groups.n": n_groups,
        "groups.largest": int(np.unique(groups, return_counts=True)[1].max()),
        "groups.auc_group_cv": group_auc,
        "groups.auc_random_cv": random_auc,
        "groups.gap": gap,
        "groups.control_auc": control,
        "groups.selectivity": selectivity,
    }
    doubts = []
    named = name_groups(y, groups)
    if gap > bars["max_group_gap"]:
        doubts.append(
            f"groups: group-aware CV AUC {group_auc:.3f} is {gap:.3f} below random-fold CV AUC {random_auc:.3f} "
            f"(> {bars['max_group_gap']}): items of groups seen in training carry the AUC "
            f"({n_groups} groups; most lopsided {named})"
        )
    if control is not None and selectivity is not None and selectivity < bars["min_selectivity"]:
        doubts.append(
            f"groups: a random label per group (control task) reaches CV AUC {control:.3f} against {random_auc:.3f} "
            f"for the real label (selectivity {selectivity:.3f} < {bars['min_selectivity']}): "
            f"the probe can memorise the {n_groups} groups ({named})"
        )
    return metrics, doubts


def group_fresh_guard(X_train, y_train, groups_train, X_fresh, y_fresh, groups_fresh, C: float,
                      fresh_auc: float, *, estimator=None) -> tuple[dict, list[str]]:
    """Step 2 with groups on both splits: selectivity of transfer over a control task.

    Control labels are drawn per group over both splits together, so a group in both splits
    carries one control label: transfer of the control task is transfer of group identity.
    """
    bars = gates.registry()["groups"]
    groups_train, groups_fresh = np.asarray(groups_train), np.asarray(groups_fresh)
    n = len(y_train)
    draws = [control_labels(np.r_[y_train, y_fresh], np.r_[groups_train, groups_fresh], seed)
             for seed in range(bars["control_tasks"])]

    def score(labels):
        p = fits.fit_predict(X_train, stats.check_binary(labels[:n]), X_fresh, C, estimator=estimator)
        return stats.roc_auc(labels[n:], p)

    control = _control_aucs(draws, score)
    selectivity = None if control is None else fresh_auc - control
    shared = len(set(groups_fresh.tolist()) & set(groups_train.tolist()))
    metrics = {"groups.shared": shared, "groups.control_auc": control, "groups.selectivity": selectivity}
    doubts = []
    if control is not None and selectivity is not None and selectivity < bars["min_selectivity"]:
        doubts.append(
            f"groups: a random label per group (control task) transfers to fresh at AUC {control:.3f} against "
            f"{fresh_auc:.3f} for the real label (selectivity {selectivity:.3f} < "
            f"{bars['min_selectivity']}; {shared} fresh groups also in train, "
            f"most lopsided {name_groups(y_fresh, groups_fresh)})"
        )
    return metrics, doubts


def duplicate_structure(X, hashes=None) -> dict:
    """How clustered a split is: repeated hashes, near-duplicate feature pairs and their clusters.

    Near duplicates are pairs above `[ledger] near_duplicate_cosine`; clusters are the connected
    components of that graph. The nearest-neighbour cosines show how close the split comes.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    bar = gates.registry()["ledger"]["near_duplicate_cosine"]
    A = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    cos = A @ A.T
    np.fill_diagonal(cos, -np.inf)
    near = cos > bar
    _, labels = connected_components(csr_matrix(near), directed=False)
    sizes = np.bincount(labels)
    nn = cos.max(axis=1)
    return {
        "dupes.hash_repeats": None if hashes is None else len(hashes) - len(set(hashes)),
        "dupes.near_pairs": int(near.sum() // 2),
        "dupes.near_items": int(near.any(axis=1).sum()),
        "dupes.clusters": int((sizes > 1).sum()),
        "dupes.largest_cluster": int(sizes.max()),
        "dupes.nn_cosine_median": float(np.median(nn)),
        "dupes.nn_cosine_max": float(nn.max()),
    }
