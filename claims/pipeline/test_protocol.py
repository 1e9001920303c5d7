"""The five-step protocol as tests, over every feature source the session has.

Sources: `--dd-features DIR` (contract 2; base `features:<DIR name>`, its claimed verdicts in
`DIR/claims.json`) and the released SmolLM2-1.7B h_last features (the paper's sidecar, C=1.0 and
C=0.1). A test concludes with the verdict it measured; where the source claims (or the paper
reports) anything but a pass, the test is a strict xfail pinned to `dd.VerdictFailed` (through
`claim_param`), so the suite turns red the day the verdict changes, and a measured failure other
than the claimed one (inconclusive where fail was claimed) fails the test.

Steps 1 and 2 carry their specification curve (`[specs.small]`, or `[specs.full]` under
`--dd-slow`; drawn as a figure), the group checks (the SmolLM step16 prompts are grouped by the
dish of their released topic) and the MDL online code in the entry's metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from dd.lm import expected_verdicts, load_feature_dir
from dd.paper import content_hash, load_judged, load_smollm_split, paper_numbers, step16_groups
from dd.protocol import (
    PASS,
    FeatureSource,
    axes_step,
    cv_step,
    fresh_step,
    pooled_step,
    second_base_step,
    spec_grid,
)
from dd.pytest import claim_param
from dd.pytest.plugin import settings_of

CLAIMS = {"cv": "pipeline.step1.cv", "fresh": "pipeline.step2.fresh", "axes": "pipeline.step3.axes",
          "pooled": "pipeline.step4.pooled", "second-base": "pipeline.step5.second_base"}
SMOLLM = "smollm2-1.7b"
SMOLLM_QUOTED = paper_numbers("arc3")["smollm"]
CS = (1.0, 0.1)
SMOLLM_XFAIL = {
    "fresh": "paper: SmolLM2-1.7B fresh transfer fails the gate (C={C}: AUC {auc}; asym {balanced_asym} "
             "called a class-imbalance artifact, {n_pos_fresh} positives of {n_fresh})",
    "cv": "measured, not quoted by the paper (its Step 1 numbers are Gemma's): SmolLM2-1.7B step16 5-fold CV, "
          "group-aware over 34 dish topics, fails the cv gate (pooled AUC 0.615 at C=1.0, 0.617 at C=0.1, < 0.65; "
          "balanced asym -0.187 > -0.20; random folds: 0.578, 0.573)",
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

    @property
    def declared(self) -> bool:
        """Whether the source or its operator declared `expected` (`DIR/claims.json`, an operator's
        `claims`), rather than it being the paper's sidecar claim on the released SmolLM features."""
        return self.kind == "features" or self.operator is not None


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
        expected = dict(getattr(op, "claims", {})).get(step, PASS)
        for kind, path, base in sources:
            params.append(claim_param(SourceSpec(kind, 1.0, expected, path, op.name),
                                      id=f"{base.replace(':', '-')}-{op.name}", claim_id=CLAIMS[step], base=base,
                                      operator=op.key(), step=step, expected=expected,
                                      why=f"{op.name} claims {expected!r} at {step}"))
    return params


def _smollm_quoted(C: float) -> dict:
    """The paper's SmolLM2-1.7B fresh AUC and balanced asym at one C, as its text rounds them."""
    fresh = SMOLLM_QUOTED["fresh"][f"C={C}"]
    return {"auc": fresh["auc"], "balanced_asym": fresh["balanced_asym"]}


def _params(config: pytest.Config, step: str) -> list:
    params = []
    root = settings_of(config).features
    if root is not None:
        name = f"features:{Path(root).resolve().name}"
        spec = SourceSpec("features", 1.0, expected_verdicts(root)[step], Path(root))
        params.append(claim_param(spec, id=name.replace(":", "-"), claim_id=CLAIMS[step], base=name,
                                  operator="sidecar-logreg-C1.0", step=step, expected=spec.expected,
                                  why=f"{name} claims {spec.expected!r} at {step} (claims.json)"))
    for C in CS:
        quoted = _smollm_quoted(C)
        why = SMOLLM_XFAIL.get(step, "").format(C=C, **quoted, **SMOLLM_QUOTED["labels"])
        params.append(claim_param(SourceSpec("smollm", C, PASS), id=f"{SMOLLM}-C{C}", claim_id=CLAIMS[step],
                                  base=SMOLLM, operator=f"sidecar-logreg-C{C}", step=step,
                                  paper=quoted if step == "fresh" else {},
                                  expected="fail" if step in SMOLLM_XFAIL else PASS, why=why))
    return params + _operator_params(config, step)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    step = getattr(metafunc.function, "dd_step", None)
    if step is not None:
        metafunc.parametrize("spec", _params(metafunc.config, step))


@pytest.fixture(scope="module")
def smollm_source(paper) -> FeatureSource:
    """The released SmolLM2-1.7B split, with prompt hashes for the split ledger and dish groups for step 1.

    SmolLM2-1.7B answered the released step16 prompts in their order, so its training items are
    those prompts; the fresh set carries no topic, so fresh has no groups (`dd.paper.step16_groups`).
    """
    split = paper.load(load_smollm_split)
    prompts = {w: paper.load(load_judged, w).responses.prompt_set.prompts for w in ("step16", "fresh")}
    if len(prompts["step16"]) != len(split.y_train):
        raise ValueError(f"the released SmolLM2-1.7B step16 features hold {len(split.y_train)} items, "
                         f"not the {len(prompts['step16'])} step16 prompts")
    hashes = {w: tuple(content_hash([p]) for p in ps) for w, ps in prompts.items()}
    groups = paper.load(step16_groups, prompts["step16"])
    return FeatureSource(SMOLLM, split.train.X, split.y_train, split.fresh.X, split.y_fresh,
                         hashes_train=hashes["step16"], hashes_fresh=hashes["fresh"], groups=(groups, None))


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
    grid = spec_grid(full=settings_of(request.config).slow)
    result = STEP_FUNCTIONS[step](source, spec.C, estimator=estimator, grid=grid)
    if result.curve is not None:
        probe = spec.operator or f"sidecar C={spec.C}"
        claim.figure(f"spec_curve-{step}-{request.node.callspec.id}",
                     result.curve.payload(f"{source.name}, {probe}: {step} gate over {len(result.curve.specs)} "
                                          "specifications"))
    claim.conclude(source="recomputed", metrics={**result.metrics, "expected_verdict": spec.expected},
                   verdict=result.verdict, claimed=spec.expected if spec.declared else None)


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
