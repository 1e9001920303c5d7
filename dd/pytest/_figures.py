"""PNG figures for `--dd-figures`: the AUC collapse per base and the SmolLM fresh PCA scatter.

Both are drawn from what the tests computed this run (report entries and figure payloads),
never from stored numbers.
"""

from __future__ import annotations

from pathlib import Path

from dd.protocol import thresholds


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _collapse_series(entries: list[dict]) -> list[tuple[str, float, float]]:
    """(label, CV AUC, fresh AUC) per base and operator (and label axis), from whichever entries carry them.

    An entry may carry both (`cv_auc` and `fresh_auc`, as the per-axis sweeps do), or one step
    each: a `cv` entry's AUC and a `fresh` entry's AUC for the same base and operator.
    """
    cv: dict[tuple, float] = {}
    fresh: dict[tuple, float] = {}
    for e in sorted(entries, key=lambda e: e["nodeid"]):
        m = e["metrics"]
        axis = e["nodeid"].rsplit("[", 1)[-1].rstrip("]").removeprefix(f"{e['base']}-") if e["step"] == "axes" else ""
        key = (e["base"], e["operator"] or "", axis, e["source"])
        if m.get("cv_auc") is not None:
            cv.setdefault(key, m["cv_auc"])
        if e["step"] == "cv" and m.get("auc") is not None:
            cv.setdefault(key, m["auc"])
        value = m.get("fresh_auc", m.get("auc") if e["step"] == "fresh" else None)
        if value is not None:
            fresh.setdefault(key, value)
    return [(" ".join(p for p in (*k[:3], f"({k[3]})") if p), cv[k], fresh[k]) for k in cv if k in fresh]


def auc_collapse(path: Path, entries: list[dict]) -> bool:
    """CV AUC against fresh AUC per base and operator, with both gate lines.

    Returns False (and draws nothing) when no base and operator has both.
    """
    series = _collapse_series(entries)
    if not series:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, cv, fresh in series:
        ax.plot([0, 1], [cv, fresh], marker="o", label=label)
    ax.axhline(thresholds("cv")["auc_min"], color="grey", ls="--", lw=1, label="CV gate")
    ax.axhline(thresholds("fresh")["auc_min"], color="black", ls=":", lw=1, label="fresh gate")
    ax.axhline(0.5, color="red", lw=0.5)
    ax.set_xticks([0, 1], ["within-distribution CV", "fresh transfer"])
    ax.set_ylabel("AUC")
    ax.set_title("AUC collapse from CV to fresh transfer")
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def pca_scatter(path: Path, payload: dict) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    xs, ys, labels = payload["x"], payload["y"], payload["labels"]
    for value, name, color in ((0, "wrong", "tab:red"), (1, "correct", "tab:blue")):
        pts = [(x, y) for x, y, lab in zip(xs, ys, labels) if lab == value]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=10, c=color, label=f"{name} (n={len(pts)})")
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    ax.set_title(payload.get("title", "PCA"))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_all(directory: Path, entries: list[dict], payloads: dict[str, dict]) -> list[Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if auc_collapse(directory / "auc_collapse.png", entries):
        written.append(directory / "auc_collapse.png")
    for name, payload in payloads.items():
        if payload.get("kind") == "pca":
            pca_scatter(directory / f"{name}.png", payload)
            written.append(directory / f"{name}.png")
    return written
