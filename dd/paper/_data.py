"""Typed values for the suite's data flow, and loaders that build them from the paper's files.

A loader turns a released file into the same values a fresh run would produce (prompt sets,
responses, features, labels), each carrying its provenance, so a claim never cares whether its
inputs came from the paper or from a forward pass; the report says which.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from dd.paper._artifacts import ArtifactStore

# The paper's label definitions, here once: this is the lowest layer that reads labels, and the
# judges (which produce them) and the arcs import them from here.
#: The v4 rubric's axes, each scored 1-5, in the rubric's order.
V4_AXES: tuple[str, ...] = (
    "factual_accuracy",
    "hedging_appropriateness",
    "pedagogical_framing",
    "self_verification",
    "completeness",
)
#: A v4 axis is binarized as positive at a score of at least this.
AXIS_HIGH_SCORE = 4
#: A response is correct when it states at least this share of its gold checklist's claims.
CORRECT_COVERAGE = 0.5

STEP16 = "eval/results/judge_v4_step16.json"
FRESH = "eval/results/judge_v4_fresh.json"
GEMMA_FRESH_GOLD = "eval/results/v1_full_fresh_judged_gold.json"
SMOLLM_FRESH_GOLD = "eval/results/smollm_fresh_judged_gold.json"
SMOLLM_STEP16_NPZ = "eval/results/smollm_step16_features.npz"
SMOLLM_FRESH_NPZ = "eval/results/smollm_fresh_features.npz"
PROFILES = {
    "gemma4-e2b": None,  # Gemma's 2x2 lives in the step16 judge file, not a profile file
    "smollm2-1.7b": "eval/results/baseline_smollm_v2_disposition_profile.json",
    "qwen3.5-0.8b": "eval/results/baseline_qwen35_0.8b_v2_disposition_profile.json",
    "retracted-800": "eval/results/baseline_disposition_profile.json",
}


@dataclass(frozen=True)
class Provenance:
    """Where a value came from: a released file (with its pinned hash) or a computation."""

    source: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.source}{' (' + self.detail + ')' if self.detail else ''}"


def content_hash(texts) -> str:
    """A stable hash of an ordered sequence of strings (prompt sets, response sets)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8")).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class PromptSet:
    name: str
    prompts: tuple[str, ...]
    provenance: Provenance

    @property
    def content_hash(self) -> str:
        return content_hash(self.prompts)

    def __len__(self) -> int:
        return len(self.prompts)


@dataclass(frozen=True)
class Responses:
    """Responses to a prompt set by one generator (a base, or a base under an operator)."""

    prompt_set: PromptSet
    texts: tuple[str, ...]
    generator: str
    provenance: Provenance

    def pairs(self) -> list[tuple[str, str]]:
        return list(zip(self.prompt_set.prompts, self.texts, strict=True))


@dataclass(frozen=True)
class Labels:
    """Binary labels (1 = positive) with the indices of items a judge failed on."""

    name: str
    y: np.ndarray
    provenance: Provenance
    valid: np.ndarray | None = None  # boolean mask; None means all valid

    @property
    def mask(self) -> np.ndarray:
        return np.ones(len(self.y), bool) if self.valid is None else self.valid

    @property
    def n_pos(self) -> int:
        return int(self.y[self.mask].sum())

    @property
    def n(self) -> int:
        return int(self.mask.sum())


@dataclass(frozen=True)
class Features:
    X: np.ndarray
    provenance: Provenance


@dataclass(frozen=True)
class JudgedSet:
    """A released judge file: prompts, Gemma's responses, and whatever labels it holds."""

    responses: Responses
    scores: dict[str, np.ndarray]  # axis -> float scores, NaN where the judge reply failed
    judge_params: dict
    coverage: np.ndarray | None = None
    correct: np.ndarray | None = None
    verbal: tuple[str | None, ...] | None = None  # None in a slot where the verbal judge failed

    def axis_labels(self, axis: str) -> Labels:
        scores = self.scores[axis]
        valid = ~np.isnan(scores)
        y = np.where(valid, scores >= AXIS_HIGH_SCORE, 0).astype(int)
        return Labels(f"v4.{axis}>={AXIS_HIGH_SCORE}", y, self.responses.provenance, valid)


def _scores(items) -> dict[str, np.ndarray]:
    return {
        axis: np.array(
            [float(it["scores"][axis]) if axis in it["scores"] else np.nan for it in items], dtype=float
        )
        for axis in V4_AXES
    }


def load_judged(store: ArtifactStore, which: str) -> JudgedSet:
    """`which` is 'step16' or 'fresh'; both hold Gemma 4 E2B's responses."""
    rel = {"step16": STEP16, "fresh": FRESH}[which]
    raw = store.json(rel)
    items = raw["items"]
    prov = Provenance(rel, f"sha256 {store.manifest.entry(rel).sha256[:12]}")
    prompts = PromptSet(which, tuple(it["prompt"] for it in items), prov)
    responses = Responses(prompts, tuple(it["response"] for it in items), "gemma4-e2b", prov)
    if which != "step16":
        return JudgedSet(responses, _scores(items), raw["params"])
    return JudgedSet(
        responses,
        _scores(items),
        raw["params"],
        coverage=np.array([it["coverage"] for it in items], dtype=float),
        correct=np.array([bool(it["correct"]) for it in items]),
        verbal=tuple(it["verbal"] for it in items),
    )


@dataclass(frozen=True)
class GoldLabels:
    coverage: np.ndarray
    labels: Labels


def load_fresh_gold(store: ArtifactStore, generator: str) -> GoldLabels:
    """Gold-checklist labels of the fresh set for 'gemma4-e2b' or 'smollm2-1.7b' responses."""
    rel = {"gemma4-e2b": GEMMA_FRESH_GOLD, "smollm2-1.7b": SMOLLM_FRESH_GOLD}[generator]
    raw = store.json(rel)
    coverage = np.array(raw["coverage"], dtype=float)
    y = np.array(raw["labels"], dtype=int)
    return GoldLabels(coverage, Labels("gold.correct", y, Provenance(rel)))


@dataclass(frozen=True)
class FeatureSplit:
    """Training (step16) and fresh features with their labels, ready for the protocol."""

    name: str
    train: Features
    y_train: np.ndarray
    fresh: Features
    y_fresh: np.ndarray
    surface_train: dict[str, np.ndarray] = field(default_factory=dict)
    surface_fresh: dict[str, np.ndarray] = field(default_factory=dict)


def load_smollm_split(store: ArtifactStore) -> FeatureSplit:
    """The released SmolLM2-1.7B h_last features; step16 labels are coverage >= 0.5."""
    train = np.load(store.path(SMOLLM_STEP16_NPZ), allow_pickle=False)
    fresh = np.load(store.path(SMOLLM_FRESH_NPZ), allow_pickle=False)
    gold = load_fresh_gold(store, "smollm2-1.7b")
    return FeatureSplit(
        "smollm2-1.7b",
        Features(train["X"].astype(np.float64), Provenance(SMOLLM_STEP16_NPZ)),
        (train["coverage"] >= CORRECT_COVERAGE).astype(int),
        Features(fresh["X"].astype(np.float64), Provenance(SMOLLM_FRESH_NPZ)),
        gold.labels.y,
    )


@dataclass(frozen=True)
class Profile:
    """A 2x2 disposition profile: per sample, correct (gold) and verbal delivery (assert/hedge)."""

    name: str
    correct: np.ndarray
    asserted: np.ndarray
    provenance: Provenance


def load_samples(store: ArtifactStore, base: str) -> list[dict]:
    """The raw samples of a profile file (topic, text, coverage, verbal)."""
    rel = PROFILES[base]
    if rel is None:
        raise KeyError(f"{base!r} has no profile file: its 2x2 comes from the step16 judge file")
    return store.json(rel)["samples"]


def profile_from_judged(base: str, judged: JudgedSet) -> Profile:
    """The 2x2 profile of a judged set; a verbal label the judge failed on is an error, not a hedge."""
    verbal, correct = judged.verbal, judged.correct
    if verbal is None or correct is None:
        raise ValueError("the judged set holds no verbal or correctness labels: the 2x2 is undefined")
    failed = [i for i, v in enumerate(verbal) if v not in ("assert", "hedge")]
    if failed:
        raise ValueError(f"the verbal judge gave no label for {len(failed)} item(s) (first: {failed[0]}): "
                         "the 2x2 is undefined until they are re-judged")
    asserted = np.array([v == "assert" for v in verbal])
    return Profile(base, correct, asserted, judged.responses.provenance)


def load_profile(store: ArtifactStore, base: str) -> Profile:
    rel = PROFILES[base]
    if rel is None:
        return profile_from_judged(base, load_judged(store, "step16"))
    samples = load_samples(store, base)
    correct = np.array([bool(s["correct"]) for s in samples])
    asserted = np.array([s["verbal"] == "assert" for s in samples])
    return Profile(base, correct, asserted, Provenance(rel))


def load_summary(store: ArtifactStore, rel: str) -> dict:
    """A stored summary JSON (numbers the authors computed from inputs they did not release)."""
    return store.json(rel)



HUMANEVAL_FLAGS = {
    "base": "phase0_audit/results/humaneval_baseline.json",
    "dd": "phase0_audit/results/humaneval_dd_fp16.json",
}
MCAS = "phase0_audit/results/mcas_details.json"
PHASE0_SUMMARY = "phase0_audit/results/eval_results.json"


def load_humaneval_flags(store: ArtifactStore, arm: str) -> dict[str, bool]:
    """First-pass HumanEval pass flags per task id, for arm 'base' or 'dd'."""
    return {row["task_id"]: bool(row["passed"]) for row in store.json(HUMANEVAL_FLAGS[arm])}


def load_mcas_scores(store: ArtifactStore) -> dict[str, np.ndarray]:
    """First-pass MCAS judge scores (0/1/2 per prompt) for the base and DD arms."""
    raw = store.json(MCAS)
    return {"base": np.array(raw["baseline_scores"], dtype=float), "dd": np.array(raw["dd_fp16_scores"], dtype=float)}


ATTRIBUTION = {"gemma4-e2b": "eval/results/path_b_attribution_gemma4.json",
               "qwen3.5-0.8b": "eval/results/path_b_attribution_qwen35_0.8b.json"}


def load_attribution(store: ArtifactStore, base: str) -> dict:
    """Released magnitude attribution: cohorts, arch, and every head ranked by Cohen's d."""
    return store.json(ATTRIBUTION[base])
