"""The figures pair each base's CV AUC with its fresh AUC, whichever entries carry them."""

from dd.pytest import draw_figures, write_figures
from dd.pytest._figures import AUC, _collapse_series


def entry(nodeid, step, metrics, base="b", operator="op", source="recomputed"):
    return {"nodeid": nodeid, "claim": "x", "base": base, "operator": operator, "step": step, "metrics": metrics,
            "source": source}


def test_cv_and_fresh_entries_of_one_base_pair_up(tmp_path):
    entries = [
        entry("t::cv[b]", "cv", {"auc": 0.7, "cv_auc": 0.7}),
        entry("t::fresh[b]", "fresh", {"auc": 0.5, "auc_ci_low": 0.4, "auc_ci_high": 0.6}),
        entry("t::axis[b-hedging]", "axes", {"cv_auc": 0.6, "fresh_auc": 0.45}),
        entry("t::axis[b-factual]", "axes", {"cv_auc": 0.55, "fresh_auc": 0.5}),
        entry("t::fresh[c]", "fresh", {"auc": 0.52}, base="c"),  # no CV: not drawn
    ]
    assert _collapse_series(entries) == [
        ("b op factual (recomputed)", AUC(0.55), AUC(0.5)), ("b op hedging (recomputed)", AUC(0.6), AUC(0.45)),
        ("b op (recomputed)", AUC(0.7), AUC(0.5, 0.4, 0.6))]
    drawn = draw_figures(entries, {"pca": {"kind": "pca", "x": [0, 1], "y": [1, 0], "labels": [0, 1]}})
    written = write_figures(tmp_path, drawn)
    assert [p.name for p in written] == ["auc_collapse.png", "pca.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in written)
