"""PNG figures: the AUC collapse per base and operator, the SmolLM fresh PCA scatter, and each
gate's specification curve.

Both are drawn from what the tests computed this run (report entries and figure payloads),
never from stored numbers. `figures()` returns PNG bytes by name, so the same drawings go to
`--dd-figures` files and into the self-contained HTML report.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from dd.protocol import thresholds

# Where each AUC's bootstrap interval is recorded, by the metric that holds the AUC.
CI_KEYS = {"auc": ("auc_ci_low", "auc_ci_high"), "cv_auc": ("cv.auc_ci_low", "cv.auc_ci_high"),
           "fresh_auc": ("fresh.auc_ci_low", "fresh.auc_ci_high")}


@dataclass(frozen=True)
class AUC:
    """An AUC with its bootstrap interval, where the entry recorded one."""

    value: float
    low: float | None = None
    high: float | None = None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _auc(metrics: dict, key: str) -> AUC | None:
    if metrics.get(key) is None:
        return None
    low, high = (metrics.get(k) for k in CI_KEYS[key])
    return AUC(metrics[key], low, high)


def _collapse_series(entries: list[dict]) -> list[tuple[str, AUC, AUC]]:
    """(label, CV AUC, fresh AUC) per base and operator (and label axis), from whichever entries carry them.

    An entry may carry both (`cv_auc` and `fresh_auc`, as the per-axis sweeps do), or one step
    each: a `cv` entry's AUC and a `fresh` entry's AUC for the same base and operator.
    """
    cv: dict[tuple, AUC] = {}
    fresh: dict[tuple, AUC] = {}
    for e in sorted(entries, key=lambda e: e["nodeid"]):
        m = e["metrics"]
        axis = e["nodeid"].rsplit("[", 1)[-1].rstrip("]").removeprefix(f"{e['base']}-") if e["step"] == "axes" else ""
        key = (e["base"], e["operator"] or "", axis, e["source"])
        for found in (_auc(m, "cv_auc"), _auc(m, "auc") if e["step"] == "cv" else None):
            if found is not None:
                cv.setdefault(key, found)
        value = _auc(m, "fresh_auc") or (_auc(m, "auc") if e["step"] == "fresh" else None)
        if value is not None:
            fresh.setdefault(key, value)
    return [(" ".join(p for p in (*k[:3], f"({k[3]})") if p), cv[k], fresh[k]) for k in cv if k in fresh]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def auc_collapse(entries: list[dict]) -> bytes | None:
    """One row per base and operator: CV and fresh AUC with their intervals, and both gate lines.

    Rows instead of a legend keep it readable with any number of series. None when no base and
    operator has both AUCs.
    """
    series = _collapse_series(entries)
    if not series:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 1.5 + 0.32 * len(series)), layout="constrained")
    for row, (_, cv, fresh) in enumerate(series):
        ax.plot([cv.value, fresh.value], [row, row], color="lightgrey", lw=2, zorder=1)
        for auc, color, name in ((cv, "tab:blue", "CV"), (fresh, "tab:orange", "fresh")):
            err = None
            if auc.low is not None and auc.high is not None:
                err = [[auc.value - auc.low], [auc.high - auc.value]]
            ax.errorbar(auc.value, row, xerr=err, fmt="o", color=color, capsize=3, zorder=2,
                        label=name if row == 0 else None)
    ax.axvline(thresholds("cv")["auc_min"], color="tab:blue", ls="--", lw=1, label="CV gate")
    ax.axvline(thresholds("fresh")["auc_min"], color="tab:orange", ls=":", lw=1, label="fresh gate")
    ax.axvline(0.5, color="red", lw=0.5)
    ax.set_yticks(range(len(series)), [label for label, _, _ in series], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("AUC (bootstrap 95% CI where recorded)")
    ax.set_title("AUC collapse from within-distribution CV to fresh transfer")
    fig.legend(fontsize=7, loc="outside lower center", ncol=4)  # below the x label, never over it
    return _png(fig)


def pca_scatter(payload: dict) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    xs, ys, labels = payload["x"], payload["y"], payload["labels"]
    for value, name, color in ((0, "wrong", "tab:red"), (1, "correct", "tab:blue")):
        pts = [(x, y) for x, y, lab in zip(xs, ys, labels, strict=True) if lab == value]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=10, c=color, label=f"{name} (n={len(pts)})")
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    ax.set_title(payload.get("title", "PCA"))
    ax.legend()
    fig.tight_layout()
    return _png(fig)


def spec_curve(payload: dict) -> bytes:
    """A gate's AUCs over its grid of specifications, sorted, with their CIs and the gate line.

    Passing specifications are filled, the claimed one is marked: a claimed pass far out on
    the right of a curve that sits mostly below the line is a forking path.
    """
    plt = _pyplot()
    n = len(payload["auc"])
    fig, ax = plt.subplots(figsize=(min(12.0, max(5.0, 0.22 * n + 2)), 3.6))
    xs = range(n)
    auc, low, high = payload["auc"], payload["ci_low"], payload["ci_high"]
    ax.vlines(xs, low, high, color="lightgrey", lw=2, zorder=1)
    size = 18 if n <= 200 else 4  # thousands of specifications: small marks, or the passing ones vanish
    for passed, face, edge in ((False, "white", "tab:blue"), (True, "tab:green", "tab:green")):
        idx = [i for i in xs if bool(payload["passed"][i]) is passed]
        if not idx:
            continue
        ax.scatter(idx, [auc[i] for i in idx], s=size, facecolors=face, edgecolors=edge, zorder=3 if passed else 2,
                   label=f"passes the gate ({len(idx)})" if passed else f"does not pass ({len(idx)})")
    c = payload["claimed"]
    ax.scatter([c], [auc[c]], s=90, marker="*", color="tab:red", zorder=4, label=f"claimed: {payload['labels'][c]}")
    ax.axhline(payload["bar"], color="black", ls="--", lw=1, label=f"{payload['gate']} gate {payload['bar']}")
    ax.axhline(0.5, color="red", lw=0.5)
    if n <= 40:
        ax.set_xticks(list(xs), payload["labels"], rotation=90, fontsize=6)
    else:
        ax.set_xticks([])
    ax.set_xlabel(f"{n} specifications, sorted by AUC")
    ax.set_ylabel("AUC (bootstrap 95% CI)")
    ax.set_title(payload.get("title", "specification curve"), fontsize=9)
    ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return _png(fig)


DRAWERS = {"pca": pca_scatter, "spec_curve": spec_curve}


def figures(entries: list[dict], payloads: dict[str, dict]) -> dict[str, bytes]:
    """Every figure this run can draw, as PNG bytes by name."""
    out = {}
    collapse = auc_collapse(entries)
    if collapse is not None:
        out["auc_collapse"] = collapse
    for name, payload in payloads.items():
        if payload.get("kind") in DRAWERS:
            out[name] = DRAWERS[payload["kind"]](payload)
    return out


def write_all(directory: Path, drawn: dict[str, bytes]) -> list[Path]:
    """Write each drawn figure as `<name>.png` in `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, png in drawn.items():
        path = directory / f"{name}.png"
        path.write_bytes(png)
        written.append(path)
    return written
