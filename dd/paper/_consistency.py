"""Internal-consistency checks for stored summaries whose inputs were never released.

The suite cannot recompute such numbers, but it can check that they could have come from a
real run: proportions are whole counts over their denominators, asym = p_w - p_c, thresholds lie
on the sweep grid, AUC x n_pos x n_neg is a (half-)integer, and a chosen minimum is minimal.
"""

from __future__ import annotations

import numpy as np

from dd.protocol import BALANCE_MIN_P_ASSERT_CORRECT, SWEEP, auc_is_integral


def _whole(p: float, n: int) -> bool:
    return abs(p * n - round(p * n)) < 1e-6


def sweep_point_problems(name: str, point: dict, n_pos: int, n_neg: int, balanced: bool = False) -> list[str]:
    problems = []
    if abs(point["asym"] - (point["p_assert_wrong"] - point["p_assert_correct"])) > 1e-9:
        problems.append(f"{name}: asym {point['asym']} != p_w - p_c")
    if not _whole(point["p_assert_wrong"], n_neg):
        problems.append(f"{name}: p_assert_wrong {point['p_assert_wrong']} is not k/{n_neg}")
    if not _whole(point["p_assert_correct"], n_pos):
        problems.append(f"{name}: p_assert_correct {point['p_assert_correct']} is not k/{n_pos}")
    if np.min(np.abs(SWEEP - point["thr"])) > 1e-9:
        problems.append(f"{name}: threshold {point['thr']} is not on the 91-point sweep")
    if balanced and point["p_assert_correct"] < BALANCE_MIN_P_ASSERT_CORRECT:
        problems.append(f"{name}: p_assert_correct {point['p_assert_correct']} < {BALANCE_MIN_P_ASSERT_CORRECT}")
    return problems


def auc_problems(name: str, auc: float, n_pos: int, n_neg: int) -> list[str]:
    if auc_is_integral(auc, n_pos, n_neg):
        return []
    return [f"{name}: AUC {auc} x {n_pos} x {n_neg} x 2 = {auc * n_pos * n_neg * 2:.6f} is not an integer"]
