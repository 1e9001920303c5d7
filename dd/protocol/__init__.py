"""Arrays in, verdicts out: statistics, pre-registered gates, the five steps and their guards,
truncation, agreement with the paper.

This layer never sees a model, a judge or a file: it takes features, labels and per-item scores.
"""

from __future__ import annotations

from dd.protocol._agreement import (
    agree,
    combine,
)
from dd.protocol._gates import (
    gates_version,
    guard,
    judge_gate,
    tempering_bars,
    thresholds,
)
from dd.protocol._pipeline import (
    FeatureSource,
    axes_step,
    cv_step,
    fresh_step,
    pooled_step,
    second_base_step,
    split_ledger,
    surface_guard,
)
from dd.protocol._stats import (
    BALANCE_MIN_P_ASSERT_CORRECT,
    OneClassError,
    SWEEP,
    auc_is_integral,
    balanced_asymmetry,
    bootstrap_auc_ci,
    check_binary,
    check_finite,
    cross_validate,
    fit_predict,
    make_probe,
    permutation_null,
    roc_auc,
    score_null,
    sweep,
    two_by_two,
)
from dd.protocol._verdict import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    VERDICTS,
    Verdict,
    VerdictFailed,
    require_pass,
)
from dd.protocol._truncation import (
    ArmComparison,
    ArmStats,
    BudgetSensitivity,
    arm_stats,
    budget_sensitivity,
    compare_arms,
)

__all__ = [
    "ArmComparison",
    "ArmStats",
    "BALANCE_MIN_P_ASSERT_CORRECT",
    "BudgetSensitivity",
    "FAIL",
    "VERDICTS",
    "VerdictFailed",
    "require_pass",
    "FeatureSource",
    "INCONCLUSIVE",
    "OneClassError",
    "PASS",
    "SWEEP",
    "Verdict",
    "agree",
    "arm_stats",
    "auc_is_integral",
    "axes_step",
    "balanced_asymmetry",
    "bootstrap_auc_ci",
    "budget_sensitivity",
    "check_binary",
    "check_finite",
    "combine",
    "compare_arms",
    "cross_validate",
    "cv_step",
    "fit_predict",
    "fresh_step",
    "gates_version",
    "guard",
    "judge_gate",
    "make_probe",
    "permutation_null",
    "pooled_step",
    "roc_auc",
    "score_null",
    "second_base_step",
    "split_ledger",
    "surface_guard",
    "sweep",
    "tempering_bars",
    "thresholds",
    "two_by_two",
]
