"""PNG figures for `--dd-figures`: the AUC collapse per base and the SmolLM fresh PCA scatter.

Both are drawn from what the tests computed this run (report entries and figure payloads),
never from stored numbers.
"""

from __future__ import annotations

from pathlib import Path

from dd import gates


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def auc_collapse(path: Path, entries: list[dict]) -> bool:
    """One line per entry that measured both a CV AUC and a fresh AUC, with both gate lines.

    Returns False (and draws nothing) when no entry carries both.
    """
    series = []
    for e in sorted(entries, key=lambda e: e["nodeid"]):
        m = e["metrics"]
        fresh = m.get("fresh_auc", m.get("auc"))
        if m.get("cv_auc") is not None and fresh is not None:
            label = f"{e['base']} {e['operator'] or ''} {e['claim'].split('.')[-2] if e['source'] == 'summary' else ''}"
            label = f"{label.strip()} ({e['source']})"
            if label not in {s[0] for s in series}:
                series.append((label, m["cv_auc"], fresh))
    if not series:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, cv, fresh in series:
        ax.plot([0, 1], [cv, fresh], marker="o", label=label)
    ax.axhline(gates.thresholds("cv")["auc_min"], color="grey", ls="--", lw=1, label="CV gate")
    ax.axhline(gates.thresholds("fresh")["auc_min"], color="black", ls=":", lw=1, label="fresh gate")
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
