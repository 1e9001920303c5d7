"""MDL probing on synthetic data: a learnable label compresses, noise does not, and no verdict moves."""

from __future__ import annotations

import numpy as np
import pytest
from test_pipeline import source

from dd.protocol import OnlineCode, _pipeline, cv_step, fresh_step, online_code
from dd.protocol._mdl import _interleaved


def test_a_learnable_label_compresses_and_noise_does_not():
    src = source()
    signal = online_code(src.X_train, src.y_train)
    noise = online_code(src.X_train, np.random.default_rng(0).permutation(src.y_train))
    assert signal.uniform_bits == 240 and signal.online_bits < 0.8 * signal.uniform_bits and signal.compression > 1.25
    assert noise.compression < 1.05 < signal.compression
    assert signal.n_blocks == 6 and signal.prior_bits == pytest.approx(240)


def test_less_data_needed_means_fewer_bits():
    """The same AUC ceiling reached from fewer items costs fewer bits: what MDL adds to AUC."""
    strong, weak = source(train_signal=3.0), source(train_signal=1.0)
    assert online_code(strong.X_train, strong.y_train).online_bits < online_code(weak.X_train, weak.y_train).online_bits


def test_blocks_keep_the_class_balance_and_a_one_class_prefix_is_sent_by_frequency():
    y = np.r_[np.ones(30, int), np.zeros(70, int)]
    order = _interleaved(y, seed=0)
    assert sorted(order) == list(range(100))
    assert all(abs(y[order][:k].mean() - 0.3) < 0.1 for k in (10, 20, 40, 60))
    rng = np.random.default_rng(1)
    rare = np.r_[np.ones(3, int), np.zeros(97, int)]  # no positive in the first blocks
    code = online_code(rng.normal(size=(100, 4)), rare)
    assert np.isfinite(code.online_bits) and code.prior_bits < 25 < code.uniform_bits


def test_mdl_is_reported_next_to_auc_and_changes_no_verdict(monkeypatch):
    src = source()
    cv = cv_step(src)
    assert {"mdl.online_bits", "mdl.uniform_bits", "mdl.compression", "mdl.prior_bits"} <= set(cv.metrics)
    hopeless = OnlineCode(online_bits=1e6, uniform_bits=240.0, prior_bits=240.0, n_blocks=6)
    monkeypatch.setattr(_pipeline, "online_code", lambda *a, **k: hopeless)
    for step in (cv_step(src), fresh_step(src)):
        assert step.metrics["mdl.compression"] < 0.001
        assert step.verdict.verdict == "pass" and not any("mdl" in r.lower() for r in step.reasons)
