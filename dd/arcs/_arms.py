"""Arms of an Arc 1 / Arc 2 comparison: a base with or without an operator, measured the same way.

Arc 1's headline (+15.3 HumanEval points at ``n_predict=512``) turned into -8.0 at a larger
budget, and Arc 2's tempering "damaged content": both claims are about what an operator does to
a base's *content*, so both arms must go through one harness. Here:

- ``arm_generations``: cached greedy generations of one arm, loading the base and applying the
  operator only on a cache miss (a warm re-run loads no model);
- ``run_humaneval_arm``: HumanEval pass@1 plus the arm's truncation statistics at one budget;
- ``compare_budgets``: ``compare_arms`` per budget and ``budget_sensitivity`` across budgets;
- ``perplexity``: teacher-forced perplexity of fixed reference answers (content damage that
  needs no judge and no code execution);
- ``tempering_sweep``: perplexity, optionally HumanEval and judged disposition, under each
  tempering lambda.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dd.arcs import _humaneval as humaneval
from dd.core import Cache, model_run_key, sha256_json
from dd.lm import Generation, GenerationConfig, cached_generate
from dd.protocol import (
    ArmComparison,
    ArmStats,
    BudgetSensitivity,
    arm_stats,
    budget_sensitivity,
    compare_arms,
)

if TYPE_CHECKING:
    from dd.arcs._attribution import HeadInputs
    from dd.arcs._disposition import JudgedArm
    from dd.judges import JudgeConfig
    from dd.lm import LazyBase, LoadedBase


def arm_generations(base: LazyBase | LoadedBase, prompts: Sequence[str], config: GenerationConfig,
                    cache: Cache, operator: Any | None = None, *, chunk: int | None = None,
                    backend: Any | None = None) -> list[Generation]:
    """Generations of ``base`` under ``operator`` through the cache, keyed by the operator itself.

    On a hit (or in offline mode, where a miss must raise) nothing is loaded; on a miss the base
    is loaded and ``cached_generate`` runs the operator's arm: a hook or adapter applied for the
    run and removed again, or a prompt operator's messages. With ``chunk``, every ``chunk``
    prompts are one cache entry, so an interrupted run loses at most the chunk it was on. ``backend``
    is where generation runs (``dd.lm.get_backend``; in-process transformers when None).
    """
    size = chunk or max(1, len(prompts))
    return [g for i in range(0, len(prompts), size)
            for g in cached_generate(base, prompts[i : i + size], config, cache, operator=operator, backend=backend)]


@dataclass(frozen=True)
class HumanEvalArm:
    """One arm at one budget: per-problem pass flags, truncation statistics, pass@1.

    Attributes:
        name: the arm (``base`` or an operator name).
        n_predict: the generation budget.
        passed: per problem, 1.0 if its completion passed every test.
        stats: truncation statistics (rate, mean response tokens).
        statuses: per problem, the sandbox status (passed/failed/timeout/error).
    """

    name: str
    n_predict: int
    passed: tuple[float, ...]
    stats: ArmStats
    statuses: tuple[str, ...] = field(default=())

    @property
    def pass_at_1(self) -> float:
        return sum(self.passed) / len(self.passed)

    def metrics(self) -> dict[str, float]:
        """The arm's numbers for a report entry (percentages for pass@1 and truncation)."""
        return {"pass_at_1_pct": 100 * self.pass_at_1, "truncation_pct": 100 * self.stats.rate,
                "mean_response_tokens": self.stats.mean_len, "n": self.stats.n}


def humaneval_prompts(problems: Sequence[humaneval.Problem]) -> list[str]:
    """The plain instruction per problem; ``generate`` wraps it in the base's chat template."""
    return [humaneval.render_prompt(p) for p in problems]


def run_humaneval_arm(base: LazyBase | LoadedBase, problems: Sequence[humaneval.Problem], n_predict: int,
                      cache: Cache, *, name: str = "base", operator: Any | None = None,
                      allow_code_exec: bool, batch_size: int = 8, timeout_s: float = 10.0,
                      workers: int = 1, enable_thinking: bool | None = None, chunk: int | None = None,
                      backend: Any | None = None) -> HumanEvalArm:
    """Generate one completion per problem at ``n_predict`` and score it in the sandbox.

    The opt-in is checked before any generation, so a refused run costs nothing and runs nothing.

    Raises:
        humaneval.CodeExecutionNotAllowed: without ``allow_code_exec``.
    """
    if not allow_code_exec:
        raise humaneval.CodeExecutionNotAllowed(
            "HumanEval scoring executes model-written code; pass --dd-allow-code-exec to allow it")
    config = GenerationConfig(n_predict=n_predict, batch_size=batch_size, enable_thinking=enable_thinking)
    gens = arm_generations(base, humaneval_prompts(problems), config, cache, operator, chunk=chunk, backend=backend)
    results = humaneval.evaluate(problems, {p.task_id: g.text for p, g in zip(problems, gens, strict=True)},
                                 allow_code_exec=True, timeout_s=timeout_s, workers=workers)
    stats = arm_stats(name, [g.finish_reason for g in gens], [len(g.token_ids) for g in gens])
    return HumanEvalArm(name, n_predict, tuple(float(r.passed) for r in results), stats,
                        tuple(r.status for r in results))


@dataclass(frozen=True)
class BudgetComparison:
    """Base vs operator at several budgets: the per-budget comparison and the sign check."""

    per_budget: dict[int, ArmComparison]
    sensitivity: BudgetSensitivity

    def metrics(self, base: Mapping[int, HumanEvalArm], op: Mapping[int, HumanEvalArm]) -> dict[str, Any]:
        """Flat report metrics: each arm's numbers, delta and verdict per budget, and sign stability."""
        out: dict[str, Any] = {}
        for budget, cmp in sorted(self.per_budget.items()):
            for arm, arms in (("base", base), ("op", op)):
                out.update({f"{arm}.n{budget}.{k}": v for k, v in arms[budget].metrics().items()})
            out[f"delta_pct.n{budget}"] = 100 * cmp.delta
            out[f"verdict.n{budget}"] = cmp.verdict.code
        out["sign_stable"] = self.sensitivity.sign_stable
        return out

    def reasons(self) -> list[str]:
        """Each budget's truncation reasons, prefixed with the budget."""
        return [f"n_predict {b}: {r}" for b, cmp in sorted(self.per_budget.items()) for r in cmp.verdict.reasons]


def compare_budgets(base: Mapping[int, HumanEvalArm], op: Mapping[int, HumanEvalArm]) -> BudgetComparison:
    """``compare_arms`` at every budget both arms ran, then whether the delta's sign survives."""
    budgets = sorted(set(base) & set(op))
    per = {b: compare_arms(base[b].stats, op[b].stats, base[b].passed, op[b].passed) for b in budgets}
    return BudgetComparison(per, budget_sensitivity({b: c.delta for b, c in per.items()}))


def perplexity(base: LoadedBase, pairs: Sequence[tuple[str, str]], *, batch_size: int = 1,
               max_length: int | None = 1024) -> float:
    """exp(mean NLL per response token) of fixed (prompt, response) pairs, teacher-forced.

    A fixed reference text measures what an edit does to the base's content model without a judge
    or code execution: if tempering only changed disposition, this would not move. The pass is
    ``dd.lm.teacher_force``, so batching does not change it. Hooks already on the model (a
    tempering handle) act.
    """
    import torch

    from dd.lm import render_pair, teacher_force

    rendered = [render_pair(base.tokenizer, p, r, max_length=max_length) for p, r in pairs]
    nll, count = 0.0, 0
    for batch, out in teacher_force(base, rendered, batch_size=batch_size, use_cache=False):
        for row, (off, (start, b)) in enumerate(zip(batch.offsets, batch.spans, strict=True)):
            # token t is predicted at position t - 1; the first response token needs a context
            a = max(start, off + 1)
            # only the response rows of the logits are normalised (a 262k vocabulary is large)
            nll += float(torch.nn.functional.cross_entropy(out.logits[row, a - 1 : b - 1].float(),
                                                           batch.input_ids[row, a:b], reduction="sum"))
            count += b - a
        del out  # one batch's logits at a time
    if count == 0:
        raise ValueError("no response tokens to score")
    return math.exp(nll / count)


def cached_head_inputs(base: LazyBase | LoadedBase, pairs: Sequence[tuple[str, str]], cache: Cache, *,
                       last_n_tokens: int = 32) -> HeadInputs:
    """``collect_head_inputs`` through the cache (npz), so attribution re-runs load no model."""
    from dd.arcs._attribution import HeadInputs, HeadSite, collect_head_inputs

    config = {"attr.last_n_tokens": last_n_tokens, "attr.kinds": "attention"}
    key = model_run_key("head_inputs", base.identity(), config,
                        {"pairs_sha256": sha256_json([list(p) for p in pairs])}, n_items=len(pairs), operator="frozen")

    def build() -> dict[str, Any]:
        got = collect_head_inputs(base.load(), pairs, last_n_tokens=last_n_tokens, batch_size=1)
        out: dict[str, Any] = {"n_tokens": got.n_tokens,
                               "sites": np.array(json.dumps([s.__dict__ for s in got.sites]))}
        for k in range(len(got.sites)):
            out[f"norms_{k}"], out[f"means_{k}"] = got.norms[k], got.means[k]
        return out

    z = cache.get_or_build(key, build, fmt="npz")
    sites = tuple(HeadSite(**s) for s in json.loads(str(z["sites"])))
    return HeadInputs(sites, tuple(z[f"norms_{k}"] for k in range(len(sites))),
                      tuple(z[f"means_{k}"] for k in range(len(sites))), z["n_tokens"], last_n_tokens)


@dataclass(frozen=True)
class DispositionProbe:
    """How a sweep measures disposition: the prompts each arm answers, their budget, the judge.

    Attributes:
        prompts: answered greedily by the base and by every tempered arm.
        n_predict: the generation budget of those answers.
        judge: the endpoint and model of the v4 judge.
        judge_cache: where judge replies are kept (``None``: ask every time).
    """

    prompts: tuple[str, ...]
    n_predict: int
    judge: JudgeConfig
    judge_cache: Cache | None = None


@dataclass(frozen=True)
class SweepPoint:
    """One arm of a tempering sweep.

    Attributes:
        lam: the scale on the chosen heads' o_proj inputs; ``None`` for the untouched base.
        perplexity: of the reference answers in this arm.
        humaneval: the HumanEval arm, when code execution was allowed.
        judged: the judged answers to the disposition prompts, when a judge was configured
            (not for lambda = 1, which is held to the base exactly on the other measures).
    """

    lam: float | None
    perplexity: float
    humaneval: HumanEvalArm | None = None
    judged: JudgedArm | None = None


@dataclass(frozen=True)
class Sweep:
    """The untouched base and one point per lambda, all measured the same way."""

    base: SweepPoint
    points: tuple[SweepPoint, ...]


def tempering_sweep(base: LazyBase | LoadedBase, heads: Sequence[tuple[int, int]], lams: Sequence[float],
                    reference_pairs: Sequence[tuple[str, str]], *, cache: Cache | None = None,
                    problems: Sequence[humaneval.Problem] = (), n_predict: int = 256,
                    allow_code_exec: bool = False, disposition: DispositionProbe | None = None,
                    workers: int = 1) -> Sweep:
    """Content damage (and, with ``disposition``, judged disposition) of tempering ``heads``.

    Perplexity always runs; HumanEval only with ``problems`` and ``allow_code_exec`` (scored by
    ``workers`` sandbox processes at a time). The base is measured with no operator first, so that
    lambda = 1 can be held to it exactly.
    """
    from dd.operators import Tempering

    cache = cache or Cache()
    loaded = base.load()
    code = bool(problems) and allow_code_exec

    def measure(lam: float | None, op: Any | None) -> SweepPoint:
        name = "base" if lam is None else f"lambda={lam}"
        if op is None:
            ppl = perplexity(loaded, reference_pairs)
        else:
            with op.apply(loaded):
                ppl = perplexity(loaded, reference_pairs)
        arm = (run_humaneval_arm(loaded, problems, n_predict, cache, name=name, operator=op, allow_code_exec=True,
                                 workers=workers) if code else None)
        judged = None
        if disposition is not None and lam != 1.0:
            from dd.arcs._disposition import judge_arm

            config = GenerationConfig(n_predict=disposition.n_predict)
            gens = arm_generations(loaded, disposition.prompts, config, cache, op)
            judged = judge_arm(name, gens, disposition.judge, disposition.judge_cache)
        return SweepPoint(lam, ppl, arm, judged)

    return Sweep(measure(None, None), tuple(measure(float(lam), Tempering(list(heads), lam)) for lam in lams))


def load_adapter(directory: str | Path) -> Any:
    """A ``Lora`` operator from a dd adapter folder or a plain peft one (e.g. the paper's DD adapter).

    A plain peft folder has no dd history: its stages are recorded as ``external-peft`` and its
    target as ``attention`` when it touches only q/k/v/o, else ``all-linear``.
    """
    from safetensors.torch import load_file

    from dd.operators import Lora, LoraAdapter, LoraTrainConfig
    from dd.operators.lora import ATTENTION_MODULES

    directory = Path(directory)
    if (directory / "dd_adapter.json").is_file():
        return Lora(directory)
    cfg = json.loads((directory / "adapter_config.json").read_text())
    targets = cfg.get("target_modules") or []
    attention_only = bool(targets) and set(targets) <= set(ATTENTION_MODULES)
    config = LoraTrainConfig(target="attention" if attention_only else "all-linear", r=int(cfg["r"]),
                             alpha=int(cfg["lora_alpha"]))
    state = load_file(str(directory / "adapter_model.safetensors"))
    return Lora(LoraAdapter(config, state, ({"method": "external-peft", "steps": None},)))


def cached_sft_adapter(base: LazyBase | LoadedBase, pairs: Sequence[tuple[str, str]], config: Any,
                       cache: Cache) -> Any:
    """A ``Lora`` operator trained by ``train_sft`` once per (base, pairs, config): an ``adapters`` entry.

    The entry holds the weights as safetensors bytes beside their config and history, so the
    cache's checksum and commit rule cover them like any other kind. Generations are keyed by the
    adapter's weights hash, so re-using the trained adapter is what makes a warm re-run load no model.

    Raises:
        CacheMiss: offline, when the adapter was never trained (training needs the model).
    """
    return _cached_stage(base, "sft", [list(p) for p in pairs], config, cache)


def cached_dpo_adapter(base: LazyBase | LoadedBase, triples: Sequence[tuple[str, str, str]], config: Any,
                       cache: Cache, after: Any | None = None) -> Any:
    """``train_dpo`` through the cache like ``cached_sft_adapter``; ``after`` (a ``Lora``) is continued.

    SFT then DPO is one adapter whose history holds both stages; the entry's key holds the
    continued adapter's weights hash, so a retrained SFT stage is a new DPO entry.
    """
    return _cached_stage(base, "dpo", [list(t) for t in triples], config, cache, after)


def _cached_stage(base: LazyBase | LoadedBase, method: str, rows: list[list[str]], config: Any, cache: Cache,
                  after: Any | None = None) -> Any:
    """One training stage (``sft`` on pairs, ``dpo`` on triples) as an ``adapters`` cache entry."""
    from dataclasses import asdict

    from safetensors.torch import load as load_state
    from safetensors.torch import save as save_state

    from dd.operators import Lora, LoraAdapter, LoraTrainConfig, train_dpo, train_sft

    items = {f"{'pairs' if method == 'sft' else 'triples'}_sha256": sha256_json(rows)}
    if after is not None:
        items["after_adapter_sha256"] = after.adapter.sha256()
    key = model_run_key("adapters", base.identity(), {f"{method}.{k}": v for k, v in asdict(config).items()},
                        items, n_items=len(rows), operator=f"train-{method}")

    def build() -> dict[str, Any]:
        init = None if after is None else after.adapter
        if method == "sft":
            adapter = train_sft(base.load(), [(p, r) for p, r in rows], config, adapter=init)
        else:
            adapter = train_dpo(base.load(), [(p, c, r) for p, c, r in rows], config, adapter=init)
        weights = save_state({k: v.contiguous() for k, v in adapter.state.items()})
        return {"safetensors": np.frombuffer(weights, dtype=np.uint8),
                "adapter": np.array(json.dumps({"config": asdict(adapter.config), "history": list(adapter.history)}))}

    z = cache.get_or_build(key, build, fmt="npz")
    meta = json.loads(str(z["adapter"]))
    return Lora(LoraAdapter(LoraTrainConfig(**meta["config"]), load_state(z["safetensors"].tobytes()),
                            tuple(meta["history"])))
