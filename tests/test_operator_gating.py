"""Gating your own operator: a read-out operator registered through the `dd.operators` entry point
is run by `pytest claims/pipeline -k <name>` and held to the verdicts it claims.

The worked example of the README (`examples/dd_mlp_probe`) is registered the way `pip install`
would, by a dist-info folder with an entry_points.txt on the path, without installing anything.
"""

import os

import numpy as np
import pytest

from helpers import ROOT, read_report, run_pytest

EXAMPLE = ROOT / "examples" / "dd_mlp_probe"


@pytest.fixture
def registered(tmp_path):
    """PYTHONPATH that makes `mlp-probe` an installed `dd.operators` entry point."""
    site = tmp_path / "site"
    info = site / "dd_mlp_probe-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dd-mlp-probe\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[dd.operators]\nmlp-probe = dd_mlp_probe:MLPProbe\n")
    return {"PYTHONPATH": os.pathsep.join([str(site), str(EXAMPLE), os.environ.get("PYTHONPATH", "")])}


def feature_dir(root, fresh_signal: float, seed: int = 0):
    """240 training and 320 fresh items; positives shifted along one direction."""
    rng = np.random.default_rng(seed)
    root.mkdir()
    for name, n, signal in (("train", 240, 2.0), ("fresh", 320, fresh_signal)):
        y = np.zeros(n, int)
        y[rng.choice(n, n // 2, replace=False)] = 1
        X = rng.normal(size=(n, 16)) + signal * y[:, None] * np.eye(16)[0]
        np.savez(root / f"{name}.npz", X=X, y=y)
    return root


@pytest.mark.parametrize("fresh_signal, exit_code, fresh_verdict", [(2.0, 0, "pass"), (0.0, 1, "fail")])
def test_an_operator_is_held_to_its_own_claim(registered, tmp_path, artifact_root, fresh_signal, exit_code,
                                              fresh_verdict):
    features = feature_dir(tmp_path / "synth", fresh_signal)
    report = tmp_path / "r.json"
    code, out = run_pytest("claims/pipeline", "-k", "features-synth-mlp-probe and (step1 or step2)", "-q",
                           "--dd-features", str(features), "--dd-report", str(report),
                           artifacts_dir=artifact_root, extra_env=registered)
    assert code == exit_code, out
    entries = {e["step"]: e for e in read_report(report)["results"]}
    assert set(entries) == {"cv", "fresh"}
    assert entries["fresh"]["operator"].startswith("mlp-probe:")
    assert entries["fresh"]["base"] == "features:synth"
    assert entries["fresh"]["verdict"] == fresh_verdict
    assert entries["cv"]["verdict"] == "pass"
