"""Bring your own features (DESIGN.md contract 2): a directory turned into a `FeatureSource`.

`DIR/train.npz` and `DIR/fresh.npz` each hold `X` (n x d float) and `y` (n, 0/1), and optionally
`surface_<name>` arrays (n,) of per-item surface facts. Optional extensions, each feeding one
guard or step when present:

- `hash` (n,) strings: item content hashes, for the split ledger;
- `generator` (a 0-d string): who produced the split's items, for the split ledger;
- `y_<axis>` (n, 0/1): extra label columns, for step 3 (per-axis);
- `X_<view>` (n x d'): extra feature views such as pooled layers, for step 4 and as the
  alternatives to `X` in every gate's specification curve;
- `group` (n,) ints or strings: per-item group ids (template, topic), for group-aware CV and
  control tasks; either split may have them;
- `DIR/second/`: a second base's directory of the same shape, for step 5;
- `DIR/claims.json`: the verdicts the source claims per step, e.g. `{"cv": "pass", "fresh": "fail"}`.

Every malformed input is an error naming the file and what is wrong, never a silent fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dd.protocol import FAIL, INCONCLUSIVE, PASS, FeatureSource

STEPS = ("cv", "fresh", "axes", "pooled", "second-base")


class FeatureDirError(ValueError):
    """A feature directory that does not follow contract 2."""


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FeatureDirError(f"{path} not found: a feature directory needs train.npz and fresh.npz (X, y)")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for key in ("X", "y"):
        if key not in arrays:
            raise FeatureDirError(f"{path} has no array {key!r} (found: {', '.join(sorted(arrays)) or 'none'})")
    return arrays


def _features(path: Path, key: str, X, n: int | None = None) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise FeatureDirError(f"{path}: {key} must be a 2-d numeric array (n x d), got shape {X.shape} {X.dtype}")
    if n is not None and len(X) != n:
        raise FeatureDirError(f"{path}: {key} has {len(X)} rows but X has {n}")
    X = X.astype(np.float64)
    bad = np.nonzero(~np.isfinite(X).all(axis=1))[0]
    if len(bad):
        raise FeatureDirError(f"{path}: {key} has NaN or infinite values in {len(bad)} row(s), first at row {bad[0]}")
    return X


def _labels(path: Path, key: str, y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise FeatureDirError(f"{path}: {key} has shape {y.shape}, expected ({n},) to match X")
    if not np.isin(y, (0, 1)).all():
        raise FeatureDirError(f"{path}: {key} must hold 0/1 labels, got values {np.unique(y)[:5].tolist()}")
    n_pos = int(y.sum())
    if n_pos in (0, n):
        raise FeatureDirError(f"{path}: {key} holds a single class ({n_pos} positives of {n}); AUC is undefined")
    return y.astype(int)


def _split(path: Path) -> dict:
    """One npz, checked: X, y, and the optional arrays by kind."""
    raw = _load_npz(path)
    X = _features(path, "X", raw["X"])
    n = len(X)
    out: dict[str, Any] = {"X": X, "y": _labels(path, "y", raw["y"], n), "surface": {}, "axes": {}, "views": {},
           "hashes": None, "generator": None, "group": None}
    for key, arr in raw.items():
        if key.startswith("surface_"):
            if arr.shape != (n,) or arr.dtype.kind not in "biuf":
                raise FeatureDirError(f"{path}: {key} must be numeric with shape ({n},), got {arr.shape} {arr.dtype}")
            out["surface"][key.removeprefix("surface_")] = _features(path, key, arr[:, None])[:, 0]
        elif key.startswith("y_"):
            out["axes"][key.removeprefix("y_")] = _labels(path, key, arr, n)
        elif key.startswith("X_"):
            out["views"][key.removeprefix("X_")] = _features(path, key, arr, n)
        elif key == "hash":
            if arr.shape != (n,):
                raise FeatureDirError(f"{path}: hash has shape {arr.shape}, expected ({n},)")
            out["hashes"] = tuple(str(h) for h in arr)
        elif key == "generator":
            out["generator"] = str(arr)
        elif key == "group":
            if arr.shape != (n,) or arr.dtype.kind not in "iuU":
                raise FeatureDirError(f"{path}: group must hold ({n},) ints or strings, got {arr.shape} {arr.dtype}")
            out["group"] = arr
    return out


def _paired(kind: str, train: dict, fresh: dict, root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    names = set(train[kind]) | set(fresh[kind])
    missing = sorted(names ^ (set(train[kind]) & set(fresh[kind])))
    if missing:
        raise FeatureDirError(f"{root}: {kind} {missing} present in only one of train.npz / fresh.npz")
    return {k: (train[kind][k], fresh[kind][k]) for k in sorted(names)}


def load_feature_dir(root: str | Path) -> FeatureSource:
    """The protocol inputs of a contract-2 directory; its base is `features:<DIR name>`."""
    root = Path(root)
    if not root.is_dir():
        raise FeatureDirError(f"--dd-features {root}: not a directory")
    train, fresh = _split(root / "train.npz"), _split(root / "fresh.npz")
    if train["X"].shape[1] != fresh["X"].shape[1]:
        raise FeatureDirError(
            f"{root}: train.npz X has {train['X'].shape[1]} columns but fresh.npz X has {fresh['X'].shape[1]}"
        )
    second = root / "second"
    return FeatureSource(
        name=f"features:{root.resolve().name}",
        X_train=train["X"], y_train=train["y"], X_fresh=fresh["X"], y_fresh=fresh["y"],
        surface_train=train["surface"], surface_fresh=fresh["surface"],
        hashes_train=train["hashes"], hashes_fresh=fresh["hashes"],
        generator_train=train["generator"], generator_fresh=fresh["generator"],
        axes=_paired("axes", train, fresh, root), views=_paired("views", train, fresh, root),
        second=load_feature_dir(second) if second.is_dir() else None,
        groups=(train["group"], fresh["group"]),
    )


def expected_verdicts(root: str | Path) -> dict[str, str]:
    """The verdict the source claims per step, from `DIR/claims.json`; unlisted steps claim pass."""
    path = Path(root) / "claims.json"
    declared = json.loads(path.read_text()) if path.is_file() else {}
    unknown = set(declared) - set(STEPS)
    bad = {k: v for k, v in declared.items() if v not in (PASS, FAIL, INCONCLUSIVE)}
    if unknown or bad:
        raise FeatureDirError(f"{path}: steps must be among {STEPS} and verdicts pass/fail/inconclusive, "
                              f"got unknown steps {sorted(unknown)} and verdicts {bad}")
    return {step: declared.get(step, PASS) for step in STEPS}
