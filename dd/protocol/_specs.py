"""Specification curves: each gate re-run over a pre-registered grid of alternative specifications.

A probe result depends on choices made after looking at data (which feature view, which C,
which fold split). A gate held to one such choice can pass by luck of the choice: on the
released SmolLM2-1.7B step16 features the pooled CV AUC ranges from 0.52 to 0.63 over ten fold
seeds, and of 25 noise views the best on a small fresh set clears the fresh gate. So every gate
is re-run over the grid in `gates.toml` (`[specs.small]` by default, `[specs.full]` under
`--dd-slow`): every feature view x C, and for the cv gate x fold seed. A model-run source's
views are the grid's token positions x layer pools x response caps.

The curve reports the share of specifications that pass, the median AUC with its spread, and a
family-wise p-value per specification from a max-statistic permutation null (one permutation of
the evaluation labels applied to every specification's scores). Its guard (`doubts`) makes a
pass `inconclusive` with code `forking_paths` when the claimed specification does not survive
that correction, or, for the cv gate, when the median over fold seeds misses the AUC bar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from dd.protocol import _fits as fits
from dd.protocol import _gates as gates
from dd.protocol import _stats as stats

FORKING_PATHS = "forking_paths"


@dataclass(frozen=True)
class SpecGrid:
    """The alternatives a gate is re-run over (the claimed C and fold seed always join them).

    `positions`, `layers` and `response_caps` name the feature views of a model-run source (one
    read-out per token position x layer pool x response cap, None = the whole response); the
    source builds those views (the protocol never sees a model), and the claimed reading's cap
    always joins the caps.
    """

    C: tuple[float, ...]
    fold_seeds: tuple[int, ...]
    positions: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()
    response_caps: tuple[int | None, ...] = ()


def _cap(value) -> int | None:
    """A response cap as gates.toml writes it: a token count, or "none" for the whole response."""
    return None if value == "none" else int(value)


def spec_grid(full: bool = False) -> SpecGrid:
    """The pre-registered grid: `[specs.small]`, or `[specs.full]` (what `--dd-slow` runs)."""
    grid = gates.registry()["specs"]["full" if full else "small"]
    return SpecGrid(tuple(float(c) for c in grid["C"]), tuple(int(s) for s in grid["fold_seeds"]),
                    tuple(grid["positions"]), tuple(grid["layers"]), tuple(_cap(c) for c in grid["response_caps"]))


@dataclass(frozen=True)
class Spec:
    """One specification: a feature view, a C (None: a read-out operator's own estimator), a fold seed (cv only)."""

    view: str
    C: float | None
    fold_seed: int | None = None

    @property
    def label(self) -> str:
        parts = [self.view, "own probe" if self.C is None else f"C={self.C:g}"]
        if self.fold_seed is not None:
            parts.append(f"seed={self.fold_seed}")
        return " ".join(parts)


@dataclass(frozen=True)
class SpecCurve:
    """A gate's AUCs over its grid, with bootstrap CIs, per-spec gate passes and family-wise p-values."""

    gate: str
    specs: tuple[Spec, ...]
    auc: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    passed: np.ndarray
    fw_p: np.ndarray
    claimed: int

    def _seed_aucs(self) -> np.ndarray:
        """AUCs over fold seeds at the claimed view and C (empty for a gate without folds)."""
        c = self.specs[self.claimed]
        return np.array([a for s, a in zip(self.specs, self.auc, strict=True)
                         if s.fold_seed is not None and (s.view, s.C) == (c.view, c.C)])

    def metrics(self) -> dict:
        q25, median, q75 = np.quantile(self.auc, [0.25, 0.5, 0.75])
        best = int(np.argmax(self.auc))
        out = {
            "specs.n": len(self.specs),
            "specs.share_pass": float(self.passed.mean()),
            "specs.auc_median": float(median),
            "specs.auc_q25": float(q25),
            "specs.auc_q75": float(q75),
            "specs.auc_min": float(self.auc.min()),
            "specs.auc_max": float(self.auc.max()),
            "specs.claimed": self.specs[self.claimed].label,
            "specs.fw_p": float(self.fw_p[self.claimed]),
            "specs.best": self.specs[best].label,
            "specs.best_fw_p": float(self.fw_p[best]),
        }
        seeds = self._seed_aucs()
        if len(seeds):
            out |= {"seeds.n": len(seeds), "seeds.auc_median": float(np.median(seeds)),
                    "seeds.auc_min": float(seeds.min()), "seeds.auc_max": float(seeds.max()),
                    "seeds.auc_sd": float(seeds.std(ddof=1)) if len(seeds) > 1 else 0.0}
        return out

    def doubts(self) -> list[str]:
        """Why a pass of the claimed specification is a forking path (empty when it is not)."""
        alpha = gates.bars("specs")["alpha"]
        bar = gates.thresholds(self.gate)["auc_min"]
        claimed = self.specs[self.claimed]
        out = []
        if self.fw_p[self.claimed] > alpha:
            out.append(
                f"forking paths: the claimed specification ({claimed.label}, AUC {self.auc[self.claimed]:.3f}) does "
                f"not survive the family-wise correction over {len(self.specs)} specifications (max-statistic "
                f"permutation p {self.fw_p[self.claimed]:.3f} > {alpha}; {self.passed.sum()} of {len(self.specs)} pass)"
            )
        seeds = self._seed_aucs()
        if len(seeds) > 1 and np.median(seeds) < bar:
            out.append(
                f"forking paths: the median AUC over {len(seeds)} fold seeds is {np.median(seeds):.3f} "
                f"(range {seeds.min():.3f}-{seeds.max():.3f}) < {bar}: the claimed split is a lucky one"
            )
        return out

    def payload(self, title: str) -> dict:
        """What `dd.pytest`'s figures draw: AUCs sorted, with CIs, the claimed spec and the gate line."""
        order = np.argsort(self.auc)
        return {
            "kind": "spec_curve", "title": title, "gate": self.gate,
            "bar": gates.thresholds(self.gate)["auc_min"],
            "labels": [self.specs[i].label for i in order],
            "auc": self.auc[order].tolist(), "ci_low": self.ci_low[order].tolist(),
            "ci_high": self.ci_high[order].tolist(), "passed": self.passed[order].tolist(),
            "claimed": int(np.nonzero(order == self.claimed)[0][0]),
        }


def _specs(gate: str, views: list[str], C: float, grid: SpecGrid, estimator) -> list[Spec]:
    """Every view x C x fold seed, the claimed specification (first view, C, fold seed) first."""
    Cs = [None] if estimator is not None else list(dict.fromkeys([C, *grid.C]))
    seeds = list(dict.fromkeys([stats.CV_RANDOM_STATE, *grid.fold_seeds])) if gate == "cv" else [None]
    return [Spec(v, c, s) for v in views for c in Cs for s in seeds]


def spec_curve(
    gate: str,
    family: Mapping[str, tuple[np.ndarray, np.ndarray]],
    y_train,
    y_fresh=None,
    *,
    C: float = 1.0,
    grid: SpecGrid | None = None,
    groups=None,
    estimator=None,
    strict: bool = False,
    seed: int = 0,
) -> SpecCurve:
    """Re-run gate `gate` ('cv' or 'fresh') over every view of `family` x the grid.

    Args:
        family: view -> (X_train, X_fresh); the first view is the claimed one.
        y_fresh: the fresh labels (the 'fresh' gate only).
        C: the claimed C; a read-out operator's `estimator` replaces C by its own hyperparameters.
        groups: the training split's groups; the cv gate's folds are then group-aware.
        strict: a specification passes only when its bootstrap lower bound clears the AUC bar.
    """
    grid = grid or spec_grid()
    specs = _specs(gate, list(family), C, grid, estimator)
    y_eval = stats.check_binary(y_train if gate == "cv" else y_fresh)
    rows = []
    for s in specs:
        X_train, X_fresh = family[s.view]
        c = C if s.C is None else s.C
        if gate == "cv":
            seed_of = stats.CV_RANDOM_STATE if s.fold_seed is None else s.fold_seed
            cv = fits.cross_validate(X_train, y_train, c, random_state=seed_of, groups=groups, estimator=estimator)
            rows.append(cv.oof)
        else:
            rows.append(fits.fit_predict(X_train, y_train, X_fresh, c, estimator=estimator))
    scores = np.stack(rows)
    n_pos, n_neg = int(y_eval.sum()), int(len(y_eval) - y_eval.sum())
    auc = np.array([stats.roc_auc(y_eval, p) for p in scores])
    cis = fits.bootstrap_auc_cis(y_eval, scores, gates.guard("bootstrap_resamples"), gates.guard("bootstrap_level"),
                                 seed)
    passed = []
    for a, p, lo in zip(auc, scores, cis[:, 0], strict=True):
        point = stats.balanced_asymmetry(y_eval, p)
        passed.append(gates.judge_gate(gate, a, point.asym if point else None, n_pos=n_pos, n_neg=n_neg,
                                       auc_lower=lo if strict else None).passed)
    null_max = stats.max_auc_null(y_eval, scores, gates.registry()["specs"]["permutations"], seed)
    fw_p = ((null_max[None, :] >= auc[:, None] - 1e-12).sum(axis=1) + 1) / (len(null_max) + 1)
    return SpecCurve(gate, tuple(specs), auc, cis[:, 0], cis[:, 1], np.array(passed), fw_p, 0)
