"""The five-step protocol as tests, over every feature source the session has.

Sources: `--dd-features DIR` (contract 2; base `features:<DIR name>`, its claimed verdicts in
`DIR/claims.json`) and the released SmolLM2-1.7B h_last features (the paper's sidecar, C=1.0 and
C=0.1). A test asserts the verdict its source claims; where the paper reports a failure the test
is a strict xfail, so the suite turns red the day the verdict changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from dd.paper import content_hash, load_judged, load_smollm_split
from dd.lm import expected_verdicts, load_feature_dir
from dd.protocol import FeatureSource, axes_step, cv_step, fresh_step, pooled_step, second_base_step
from dd.pytest.plugin import settings_of

CLAIMS = {"cv": "pipeline.step1.cv", "fresh": "pipeline.step2.fresh", "axes": "pipeline.step3.axes",
          "pooled": "pipeline.step4.pooled", "second-base": "pipeline.step5.second_base"}
SMOLLM = "smollm2-1.7b"
SMOLLM_PAPER = {1.0: {"auc": 0.519, "balanced_asym": -0.161}, 0.1: {"auc": 0.505, "balanced_asym": -0.188}}
SMOLLM_XFAIL = {
    "fresh": "paper: SmolLM2-1.7B fresh transfer fails the gate (C={C}: AUC {auc}; asym {balanced_asym} "
             "called a class-imbalance artifact, 9 positives of 193)",
    "cv": "measured, not quoted by the paper (its Step 1 numbers are Gemma's): SmolLM2-1.7B step16 5-fold CV "
          "fails the cv gate (pooled AUC 0.578 at C=1.0, 0.573 at C=0.1, < 0.65)",
}
SMOLLM_SKIPS = {
    "axes": "the released SmolLM2-1.7B files hold one label column (gold correct); v4 per-axis labels exist "
            "only for Gemma 4 E2B's responses (judge_v4_*.json), so step 3 cannot run on SmolLM",
    "pooled": "the released SmolLM2-1.7B features are h_last only (smollm_*_features.npz hold X); no pooled-layer "
              "view was released, so step 4 needs the model",
    "second-base": "SmolLM2-1.7B is itself the paper's step-5 replication of Gemma 4 E2B, whose features were not "
                   "released; step 5 needs the Gemma model",
}
FEATURE_SKIPS = {
    "axes": ("axes", "{name} has a single label column (y); add y_<axis> arrays to train.npz and fresh.npz "
                     "for step 3"),
    "pooled": ("views", "{name} carries no extra feature view; add X_<view> arrays (e.g. X_pooled) to train.npz "
                        "and fresh.npz for step 4"),
    "second-base": ("second", "{name} has no second base; add DIR/second/ with its own train.npz and fresh.npz "
                              "for step 5"),
}
STEP_FUNCTIONS = {"cv": cv_step, "fresh": fresh_step, "axes": axes_step,
                  "pooled": pooled_step, "second-base": second_base_step}


@dataclass(frozen=True)
class SourceSpec:
    """Which source a parametrization runs on, with which probe, and the verdict it claims.

    `operator` names a third-party read-out operator (registered through the `dd.operators` entry
    point); None means the paper's sidecar probe (logistic regression at `C`).
    """

    kind: str  # 'features' or 'smollm'
    C: float
    expected: str
    root: Path | None = None
    operator: str | None = None


def third_party_readouts() -> list:
    """Read-out operators other than the paper's sidecar: each is held to its own `claims`."""
    from dd.operators import get_operator, operator_factory, operator_names

    return [get_operator(name) for name in operator_names()
            if name != "sidecar" and getattr(operator_factory(name), "kind", None) == "readout"]


def _operator_params(config: pytest.Config, step: str) -> list:
    params = []
    root = settings_of(config).features
    sources = [("smollm", None, SMOLLM)]
    if root is not None:
        sources.insert(0, ("features", Path(root), f"features:{Path(root).resolve().name}"))
    for op in third_party_readouts():
        expected = dict(getattr(op, "claims", {})).get(step, "pass")
        for kind, path, base in sources:
            mark = pytest.mark.claim(CLAIMS[step], base=base, operator=op.key(), step=step)
            params.append(pytest.param(SourceSpec(kind, 1.0, expected, path, op.name),
                                       id=f"{base.replace(':', '-')}-{op.name}", marks=mark))
    return params


def _params(config: pytest.Config, step: str) -> list:
    params = []
    root = settings_of(config).features
    if root is not None:
        name = f"features:{Path(root).resolve().name}"
        spec = SourceSpec("features", 1.0, expected_verdicts(root)[step], Path(root))
        mark = pytest.mark.claim(CLAIMS[step], base=name, operator="sidecar-logreg-C1.0", step=step)
        params.append(pytest.param(spec, id=name.replace(":", "-"), marks=mark))
    for C, quoted in SMOLLM_PAPER.items():
        marks = [pytest.mark.claim(CLAIMS[step], base=SMOLLM, operator=f"sidecar-logreg-C{C}", step=step,
                                   paper=quoted if step == "fresh" else {})]
        if step in SMOLLM_XFAIL:
            marks.append(pytest.mark.xfail(strict=True, reason=SMOLLM_XFAIL[step].format(C=C, **quoted)))
        params.append(pytest.param(SourceSpec("smollm", C, "pass"), id=f"{SMOLLM}-C{C}", marks=marks))
    return params + _operator_params(config, step)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    step = getattr(metafunc.function, "dd_step", None)
    if step is not None:
        metafunc.parametrize("spec", _params(metafunc.config, step))


@pytest.fixture(scope="module")
def smollm_source(paper) -> FeatureSource:
    """The released SmolLM2-1.7B split, with prompt hashes for the split ledger."""
    split = paper.load(load_smollm_split)
    hashes = {w: tuple(content_hash([p]) for p in paper.load(load_judged, w).responses.prompt_set.prompts)
              for w in ("step16", "fresh")}
    return FeatureSource(SMOLLM, split.train.X, split.y_train, split.fresh.X, split.y_fresh,
                                  hashes_train=hashes["step16"], hashes_fresh=hashes["fresh"])


def _run(step: str, spec: SourceSpec, request: pytest.FixtureRequest, claim) -> None:
    if spec.kind == "smollm":
        if step in SMOLLM_SKIPS:
            pytest.skip(SMOLLM_SKIPS[step])
        source = request.getfixturevalue("smollm_source")
    else:
        source = load_feature_dir(spec.root)
        if step in FEATURE_SKIPS and not getattr(source, FEATURE_SKIPS[step][0]):
            pytest.skip(FEATURE_SKIPS[step][1].format(name=source.name))
    estimator = None
    if spec.operator is not None:
        from dd.operators import get_operator

        estimator = get_operator(spec.operator).estimator()
    result = STEP_FUNCTIONS[step](source, spec.C, estimator=estimator)
    claim.record(source="recomputed", metrics={**result.metrics, "expected_verdict": spec.expected},
                 verdict=result.verdict)
    assert result.verdict.verdict == spec.expected, (
        f"{source.name} claims {spec.expected!r} at {step}, measured {result.verdict.verdict!r}: {result.reasons}"
    )


def _step(name: str):
    def mark(fn):
        fn.dd_step = name
        return fn

    return mark


@_step("cv")
def test_step1_cv(spec, request, claim):
    """Within-distribution 5-fold CV on the training split."""
    _run("cv", spec, request, claim)


@_step("fresh")
def test_step2_fresh(spec, request, claim):
    """Transfer to the fresh split from an independent generator."""
    _run("fresh", spec, request, claim)


@_step("axes")
def test_step3_axes(spec, request, claim):
    """Per-axis sweep over the source's extra label columns."""
    _run("axes", spec, request, claim)


@_step("pooled")
def test_step4_pooled(spec, request, claim):
    """Pooled-layer feature views."""
    _run("pooled", spec, request, claim)


@_step("second-base")
def test_step5_second_base(spec, request, claim):
    """Replication on a second base."""
    _run("second-base", spec, request, claim)
