"""One claim file run end to end through the effect protocol's five steps.

A `ClaimRun` builds what the steps need once per session, each stage through the cache (see
`_claim_arms`): the splits (train prompts; fresh prompts checked for an independent generator and
deduplicated against the whole training split), per base the steering vector (contrastive pairs
from the first training prompts only, the base's own answers inside the file's two templates)
and the judged arms: the untouched base, the operator at each dose, and the baselines every
operator must beat (a random direction of the vector's norm at its layer, the system prompt asking
for the same disposition), all on the same prompts with the same decoding and judges. A
system-prompt claim has no vector and no dose: its arm is the base reading the claimed system
prompt, its baseline another system prompt, and every arm runs on any generation backend.

Steps: (1) the effect on the training prompts, and beating the baselines there; (2) the same on
fresh prompts; (3) every claimed axis with the content anchor (judged content axes, perplexity of
reference answers, HumanEval pass@1 per budget); (4) dose-response over the multipliers with
Tan et al.'s steerability (fresh slopes beside in-distribution ones); (5) step 2's test on a
second base of another family. A step that cannot run here raises `ClaimUnavailable` saying what
would let it run; a bad claim raises `ClaimFileError` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dd.arcs._arms import arm_generations, compare_budgets, run_humaneval_arm
from dd.arcs._claim_arms import cached_perplexity, cached_vector, decoding_of, effect_arm
from dd.arcs._claim_file import ClaimFile, ClaimFileError, PromptClaim, SteeringClaim
from dd.arcs._claim_sources import fresh_file, read_pairs, read_prompts
from dd.arcs._humaneval import humaneval_missing, load_problems
from dd.core import Cache
from dd.fresh import (
    FreshOverlap,
    FreshSet,
    GeneratorNotIndependent,
    GeneratorSpec,
    Provenance,
    fresh_from_prompts,
    generate_fresh,
)
from dd.judges import LEXICAL_CAVEAT, LEXICAL_CONFIG, JudgeConfig
from dd.lm import GenerationBackend, GenerationConfig, LazyBase, Unavailable, resolve_base
from dd.operators import ContrastivePair, Steering, SteeringVector, SystemPrompt
from dd.paper import ArtifactStore, locate
from dd.protocol import (
    Arm,
    ContentAnchor,
    EffectResult,
    Verdict,
    all_pass,
    bars,
    beats_baselines,
    content_anchors,
    dose_response,
    effect,
    steerability,
)


class ClaimUnavailable(RuntimeError):
    """A step cannot run here: a base, the artifacts, a judge endpoint, HumanEval or the opt-in is missing."""


@dataclass(frozen=True)
class ArmSpec:
    """One arm: ``base``, ``steering`` or ``random`` at a multiplier, ``system-prompt`` (the baseline) or
    ``prompt`` (a system-prompt claim's own operator)."""

    kind: str
    multiplier: float = 0.0

    @property
    def label(self) -> str:
        if self.kind in ("steering", "random"):
            return f"{self.kind} x{self.multiplier:g}"
        return "claimed system-prompt" if self.kind == "prompt" else self.kind


BASE, SYSTEM, PROMPT = ArmSpec("base"), ArmSpec("system-prompt"), ArmSpec("prompt")


@dataclass(frozen=True)
class StepOutcome:
    """A step's numbers and verdict, for one report entry."""

    step: str
    base: str
    metrics: Mapping[str, Any]
    verdict: Verdict


class ClaimRun:
    """The stages and steps of one claim file (see the module doc).

    Args:
        claim: the parsed file.
        cache: the suite's cache (offline: any miss is an error, never a call).
        artifacts: where the paper's released files are (for ``released:`` sources).
        models: ``--dd-model`` overrides of where a base's weights are.
        judge_base_url, judge_model: the LLM judges' endpoint when the file names none.
        allow_code_exec: the ``--dd-allow-code-exec`` opt-in (HumanEval runs model-written code).
        bases: how a base name becomes a `LazyBase` (the plugin's pool); resolved here when None.
        backend: where generations run (``--dd-gen-backend``; in-process transformers when None).
    """

    def __init__(self, claim: ClaimFile, cache: Cache, *, artifacts: Path | None = None,
                 models: Mapping[str, Path] | None = None, judge_base_url: str | None = None,
                 judge_model: str | None = None, allow_code_exec: bool = False,
                 bases: Callable[[str], LazyBase] | None = None, backend: GenerationBackend | None = None) -> None:
        self.claim, self.cache, self.artifacts = claim, cache, artifacts
        self.models = dict(models or {})
        self.judge_base_url, self.judge_model = judge_base_url, judge_model
        self.allow_code_exec = allow_code_exec
        self._bases = bases or self._resolve
        self.backend = backend
        self._memo: dict[Any, Any] = {}
        self.config = GenerationConfig(n_predict=claim.budgets.n_predict, batch_size=claim.budgets.batch_size)

    # ---------------------------------------------------------------- inputs
    def _error(self, table: str, key: str, why: str) -> ClaimFileError:
        return ClaimFileError(f"{self.claim.path}: [{table}] {key}: {why}")

    @cached_property
    def store(self) -> ArtifactStore:
        return ArtifactStore(locate(self.artifacts))

    def _store(self) -> ArtifactStore:
        return self.store

    def _resolve(self, name: str) -> LazyBase:
        if name not in self._memo:
            resolved = resolve_base(name, self.models, cache_root=self.cache.root)
            if isinstance(resolved, Unavailable):
                raise ClaimUnavailable(f"base {name} is not available: {resolved.reason}")
            self._memo[name] = LazyBase(resolved)
        return self._memo[name]

    @cached_property
    def judges(self) -> dict[str, JudgeConfig]:
        """Per judge, where it is asked (the lexical judge asks nobody)."""
        spec = self.claim.judge
        url, model = spec.base_url or self.judge_base_url, spec.model or self.judge_model
        if spec.needs_endpoint and not (url and model):
            raise ClaimUnavailable(f"{self.claim.path}: judges {list(spec.judges)} need an endpoint: set [judge] "
                                   "base_url and model, or pass --dd-judge-base-url and --dd-judge-model")
        return {j: LEXICAL_CONFIG if j == "lexical" else JudgeConfig(base_url=str(url), model=str(model))
                for j in spec.judges}

    @cached_property
    def train_all(self) -> tuple[str, ...]:
        """Every training prompt (dedup checks fresh prompts against all of them)."""
        return read_prompts(self.claim.train, self._store)

    @cached_property
    def train(self) -> tuple[str, ...]:
        return self.train_all[: self.claim.budgets.train]

    @cached_property
    def fresh_set(self) -> FreshSet:
        """The fresh split: independent of the training generator, disjoint from training, deduplicated."""
        claim, source = self.claim, self.claim.fresh
        try:
            if isinstance(source, GeneratorSpec):
                return generate_fresh(self.train_all, source, train_generator=claim.train_generator, cache=self.cache)
            if source.path is not None and source.path.suffix == ".json":
                given = fresh_file(source)
                provenance = given.provenance
                if claim.fresh_generator is not None and claim.fresh_generator != provenance.generator:
                    raise self._error("fresh", "generator", f"{claim.fresh_generator!r}, but {source.path} records "
                                                            f"{provenance.generator!r}")
                prompts = given.prompts
            else:
                provenance = Provenance(str(claim.fresh_generator), "released" if source.released else "file")
                prompts = read_prompts(source, self._store)
            return fresh_from_prompts(self.train_all, prompts, provenance, train_generator=claim.train_generator,
                                      what=f"fresh set {source.describe()}")
        except (FreshOverlap, GeneratorNotIndependent) as err:
            key = "generate" if isinstance(source, GeneratorSpec) else "prompts"
            raise self._error("fresh", key, str(err)) from None

    @cached_property
    def fresh(self) -> tuple[str, ...]:
        return self.fresh_set.prompts[: self.claim.budgets.fresh]

    def prompts(self, split: str) -> tuple[str, ...]:
        return self.train if split == "train" else self.fresh

    # ---------------------------------------------------------------- the operator
    @property
    def steering(self) -> SteeringClaim:
        """The claimed steering operator (a system-prompt claim has no vector, no layer and no dose)."""
        op = self.claim.operator
        if not isinstance(op, SteeringClaim):
            raise TypeError(f"{self.claim.path}: a {self.claim.operator_label()} claim has no steering vector")
        return op

    def claimed(self) -> ArmSpec:
        """The arm of the claimed operator at the claimed dose."""
        return PROMPT if isinstance(self.claim.operator, PromptClaim) else ArmSpec("steering", self.steering.multiplier)

    def layer(self, name: str) -> int:
        """The claimed layer on base ``name``, checked against its layer count before any model runs."""
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(self._bases(name).resolved.materialize())
        n = int(config.get_text_config().num_hidden_layers)
        layer = self.steering.layer
        index = n // 2 if layer == "middle" else int(layer)
        if not 0 <= index < n:
            raise self._error("operator", "layer", f"{layer} is out of range: {name} has {n} decoder layers "
                                                   f"(0..{n - 1})")
        return index

    def vector(self, name: str) -> SteeringVector:
        """The steering vector on base ``name``: diff of means over pairs from the first training prompts."""
        key = ("vector", name)
        if key not in self._memo:
            op = self.steering
            layer = self.layer(name)
            if op.pairs > len(self.train):
                raise self._error("operator", "pairs", f"{op.pairs} pairs need as many training prompts; the "
                                                       f"training subset holds {len(self.train)}")
            answers = self.generations(name, "train", BASE)[: op.pairs]
            pairs = [ContrastivePair(g.prompt, op.positive.format(response=g.text), op.negative.format(response=g.text))
                     for g in answers]
            self._memo[key] = cached_vector(self._bases(name), pairs, layer, self.cache)
        vector: SteeringVector = self._memo[key]
        return vector

    def operator(self, name: str, arm: ArmSpec) -> Any | None:
        if arm.kind == "base":
            return None
        if arm.kind == "system-prompt":
            return SystemPrompt(self.claim.system_prompt)
        if arm.kind == "prompt":
            assert isinstance(self.claim.operator, PromptClaim)
            return SystemPrompt(self.claim.operator.text)
        vector = self.vector(name)
        if arm.kind == "random":
            vector = vector.random_direction(self.steering.random_seed)
        return Steering(vector, arm.multiplier)

    # ---------------------------------------------------------------- arms
    def generations(self, name: str, split: str, arm: ArmSpec) -> list[Any]:
        return arm_generations(self._bases(name), self.prompts(split), self.config, self.cache,
                               self.operator(name, arm), chunk=self.claim.budgets.chunk, backend=self.backend)

    def arm(self, name: str, split: str, arm: ArmSpec) -> Arm:
        """One judged arm on base ``name`` and split ``train`` or ``fresh``."""
        key = ("arm", name, split, arm)
        if key not in self._memo:
            self._memo[key] = effect_arm(arm.label, self.generations(name, split, arm), self.judges, self.cache,
                                        decoding_of(name, self.config))
        result: Arm = self._memo[key]
        return result

    def baselines(self) -> tuple[ArmSpec, ...]:
        """The system prompt always; for steering, the random direction unless the file turns it off."""
        return (*((ArmSpec("random", self.steering.multiplier),) if self.claim.random_direction else ()), SYSTEM)

    # ---------------------------------------------------------------- steps
    def step(self, step: str) -> StepOutcome:
        """Run one step (``in_distribution``, ``fresh``, ``axes``, ``dose``, ``second_base``).

        Raises:
            ClaimUnavailable: the step does not apply to the claim's operator, or cannot run here.
        """
        why_not = self.claim.not_applicable(step)
        if why_not:
            raise ClaimUnavailable(f"{self.claim.path}: {why_not}")
        run = {"in_distribution": lambda: self._effect(self.claim.base, "train"),
               "fresh": lambda: self._effect(self.claim.base, "fresh"),
               "axes": self._axes, "dose": self._dose,
               "second_base": lambda: self._effect(str(self.claim.second_base), "fresh")}[step]
        base, metrics, verdict = run()
        if "lexical" in self.claim.judge.judges:
            verdict = dataclasses.replace(verdict, reasons=(*verdict.reasons, LEXICAL_CAVEAT))
            metrics["judge_caveat"] = LEXICAL_CAVEAT
        return StepOutcome(step, base, metrics, verdict)

    def _common(self, name: str, split: str) -> dict[str, Any]:
        claimed = self.operator(name, self.claimed())
        assert claimed is not None
        out = {"split": split, "n_items": len(self.prompts(split)), "base_name": name,
               "operator_key": claimed.key(), "n_predict": self.config.n_predict,
               "gen_backend": "hf" if self.backend is None else self.backend.name}
        if isinstance(self.claim.operator, SteeringClaim):
            vector = self.vector(name)
            fresh_hashes = set(self.arm(name, "fresh", BASE).items) if split == "fresh" else set()
            overlap = len(set(vector.train_hashes) & fresh_hashes)
            if overlap:  # the fresh split is disjoint from all of training, so this is a bug, never a verdict
                raise RuntimeError(f"{overlap} prompts that built the steering vector are in the fresh split")
            out |= {"layer": vector.layer, "vector_norm": vector.norm, "vector_pairs": len(vector.train_hashes)}
        if split == "fresh":
            out |= self.fresh_set.metrics()
            out["fresh_notes"] = list(self.fresh_set.notes)
        return out

    def _effect(self, name: str, split: str) -> tuple[str, dict[str, Any], Verdict]:
        axes = dict(self.claim.judge.axes)
        base = self.arm(name, split, BASE)
        op = self.arm(name, split, self.claimed())
        result = effect(base, [op], axes=axes)
        metrics = _headline(result, op.name) | self._common(name, split) | result.metrics()
        beaten = beats_baselines(op, [self.arm(name, split, b) for b in self.baselines()], axes=axes)
        metrics |= {f"vs {k}": v for k, v in beaten.metrics().items()}
        return name, metrics, all_pass([("effect", result.verdict), ("baselines", beaten.verdict)])

    def _anchors(self, name: str, op: Any) -> tuple[list[ContentAnchor], dict[str, Any]]:
        """The content measured off the judges: reference perplexity, HumanEval pass@1 per budget."""
        claim, effect_bars = self.claim, bars("effect")
        anchors: list[ContentAnchor] = []
        metrics: dict[str, Any] = {}
        base = self._bases(name)
        if claim.reference is not None:
            pairs = read_pairs(claim.reference, self._store)[: claim.budgets.reference]
            ppl = cached_perplexity(base, pairs, self.cache), cached_perplexity(base, pairs, self.cache, op)
            metrics |= {"reference.n": len(pairs), "reference.perplexity.base": ppl[0],
                        "reference.perplexity.op": ppl[1]}
            anchors += content_anchors(bars=effect_bars, ppl_rise=ppl[1] / ppl[0] - 1)
        if claim.humaneval is not None:
            n, budgets = claim.humaneval
            if not self.allow_code_exec:
                raise ClaimUnavailable(f"{claim.path}: [content] humaneval scores model-written code: pass "
                                       "--dd-allow-code-exec (or drop humaneval from the claim file)")
            if humaneval_missing():
                raise ClaimUnavailable(str(humaneval_missing()))
            problems = load_problems()[:n]
            arms = {which: {b: run_humaneval_arm(base, problems, b, self.cache, name=which, operator=o,
                                                 allow_code_exec=True, batch_size=claim.budgets.batch_size,
                                                 workers=2, chunk=claim.budgets.chunk, backend=self.backend)
                        for b in budgets}
                    for which, o in (("base", None), ("op", op))}
            compared = compare_budgets(arms["base"], arms["op"])
            metrics |= {f"humaneval.{k}": v for k, v in compared.metrics(arms["base"], arms["op"]).items()}
            for b, cmp in sorted(compared.per_budget.items()):
                anchor = content_anchors(bars=effect_bars, humaneval=cmp)[0]
                anchors.append(dataclasses.replace(anchor, name=f"HumanEval n_predict={b}"))
        return anchors, metrics

    def _axes(self) -> tuple[str, dict[str, Any], Verdict]:
        name, spec = self.claim.base, self.claimed()
        base, op = self.arm(name, "fresh", BASE), self.arm(name, "fresh", spec)
        anchors, content = self._anchors(name, self.operator(name, spec))
        result = effect(base, [op], axes=dict(self.claim.judge.axes), content_axes=self.claim.judge.content_axes,
                        anchors={op.name: anchors})
        metrics = _headline(result, op.name) | self._common(name, "fresh") | content | result.metrics()
        return name, metrics, result.verdict

    def _dose(self) -> tuple[str, dict[str, Any], Verdict]:
        name, doses = self.claim.base, self.steering.multipliers
        metrics: dict[str, Any] = {}
        labelled = []
        splits = ("train", "fresh")
        arms = {split: {m: self.arm(name, split, ArmSpec("steering", m)) for m in doses} for split in splits}
        base = {split: self.arm(name, split, BASE) for split in splits}
        for axis, direction in self.claim.judge.axes.items():
            dose = dose_response(base["train"], arms["train"], axis=axis, direction=direction)
            scores = {split: [base[split].scores[axis], *(arms[split][m].scores[axis] for m in doses)]
                      for split in splits}
            steer = steerability((0.0, *doses), np.stack(scores["train"], axis=1), np.stack(scores["fresh"], axis=1),
                                 direction=direction)
            metrics |= {f"{axis}.dose.spearman": dose.spearman, f"{axis}.steer.mean_slope": steer.mean_slope,
                        f"{axis}.dose.means": list(dose.means), f"{axis}.dose.truncation": list(dose.truncation_rates),
                        f"{axis}.dose.mean_slope": dose.mean_slope, f"{axis}.dose.p": dose.p_value,
                        f"{axis}.steer.anti_steerable": steer.anti_steerable,
                        f"{axis}.steer.anti_steerable_ci": list(steer.anti_steerable_ci),
                        f"{axis}.steer.fresh_mean_slope": steer.fresh_mean_slope,
                        f"{axis}.steer.slope_ratio": steer.slope_ratio}
            labelled += [(f"dose-response {axis}", dose.verdict), (f"steerability {axis}", steer.verdict)]
        metrics |= self._common(name, "train") | {"doses": [0.0, *doses]}
        return name, metrics, all_pass(labelled)


def _headline(result: EffectResult, arm: str) -> dict[str, Any]:
    """The claimed axes' change and p-value first: what the end-of-run table shows of a step."""
    return {f"{t.axis}.{k}": v for t in result.comparisons[arm].tests.values()
            for k, v in (("delta", t.delta), ("p", t.p_value))}
