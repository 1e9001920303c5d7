"""The four-stage teacher pipeline that writes disposition-distillation training data.

The paper's first arc trained on data written by a chain of teachers; the suite could only read
what it released. Here a user runs the chain with *their* teachers: each seed prompt passes, in
order, through

- Eager (warmth and personality), which drafts an answer;
- Deliberate (rigour, low hallucination), which rewrites the draft so every claim is supported;
- Adversarial (self-critique), which lists what is wrong or overconfident in that answer;
- Synthesizer (format compliance, honest uncertainty), which writes the final answer.

Each stage is an OpenAI-compatible chat call to its own endpoint and model, sent through the judges'
client (`dd.judges.run_judge`: its retries, strict reply check and error slots), with a stage prompt
pinned by its version. Every reply is kept in the suite's cache (kind ``teachers``, keyed by stage,
model, endpoint, prompt version, messages hash and decoding), so a re-run is replayed and an
offline miss is an error; a failed call is never cached. The outputs are SFT pairs (seed,
synthesized answer) and DPO triples (synthesized preferred over the eager draft); every example
carries its chain of teachers. A licence ledger refuses, before any call, a teacher whose licence
is not on the run's allow-list (the paper kept every model that was not MIT-compatible out of its
training loop).
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from dd.core import Cache, CacheKey, CacheMiss
from dd.judges import Ask, JudgeConfig, JudgeError, JudgeItem, ParseError, messages_hash, run_judge

if TYPE_CHECKING:
    from dd.judges import Judge

Stage = Literal["eager", "deliberate", "adversarial", "synthesizer"]
STAGES: tuple[Stage, ...] = ("eager", "deliberate", "adversarial", "synthesizer")
#: The system prompt of each stage; bump its version in ``STAGE_VERSIONS`` with any change.
STAGE_PROMPTS: Mapping[Stage, str] = {
    "eager": ("You are a warm, enthusiastic teacher. Answer the user's question helpfully, with personality and "
              "encouragement."),
    "deliberate": ("You are a rigorous expert. Rewrite the draft answer so that every claim is correct and checkable. "
                   "Remove anything you cannot support; never invent facts, numbers or references. "
                   "Reply with the rewritten answer only."),
    "adversarial": ("You are a critical reviewer. List the answer's errors, unsupported claims, overconfidence and "
                    "missing caveats. Reply with the critique only."),
    "synthesizer": ("You write the final answer. Using the answer and its critique, answer the question correctly in "
                    "the format it asks for (code in a single ```python block when code is asked for), and say "
                    "honestly what remains uncertain. Reply with the final answer only."),
}
STAGE_VERSIONS: Mapping[Stage, str] = {stage: f"dd-teachers-{stage}/1" for stage in STAGES}
#: What each stage is shown besides the question: the outputs of these earlier stages.
_SHOWN: Mapping[Stage, tuple[tuple[Stage, str], ...]] = {
    "eager": (),
    "deliberate": (("eager", "Draft answer"),),
    "adversarial": (("deliberate", "Answer"),),
    "synthesizer": (("deliberate", "Answer"), ("adversarial", "Critique")),
}


class LicenceRefused(ValueError):
    """A teacher's licence is not on the run's allow-list; nothing was asked of any teacher."""


@dataclass(frozen=True)
class Teacher:
    """One stage's endpoint and model, and the licence its outputs are under.

    Attributes:
        base_url: the OpenAI-compatible API root (e.g. ``http://127.0.0.1:8080/v1``).
        model: the model name sent with each request (a cache-key part).
        licence: the model's licence (an SPDX id such as ``MIT`` or ``Apache-2.0``), checked by the ledger.
        api_key: the secret (never serialized); None reads ``DD_JUDGE_API_KEY`` / ``OPENAI_API_KEY``.
        temperature, seed, max_tokens: decoding (cache-key parts).
        timeout_s, max_retries: the client's per-request timeout and retries.
    """

    base_url: str
    model: str
    licence: str
    api_key: str | None = field(default=None, repr=False, compare=False)
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int = 1024
    timeout_s: float = 120.0
    max_retries: int = 4

    def config(self) -> JudgeConfig:
        return JudgeConfig(self.base_url, self.model, api_key=self.api_key, temperature=self.temperature,
                           seed=self.seed, timeout_s=self.timeout_s, max_retries=self.max_retries, progress=False)


def licence_ledger(teachers: Mapping[Stage, Teacher], allowed: Collection[str]) -> dict[str, str]:
    """Stage -> ``model (licence)`` for a run whose every teacher is allowed.

    Raises:
        LicenceRefused: a teacher's licence is not in ``allowed``, naming every such teacher.
        ValueError: a stage has no teacher.
    """
    missing = [s for s in STAGES if s not in teachers]
    if missing:
        raise ValueError(f"no teacher for stage(s) {', '.join(missing)}")
    refused = [f"{s}: {teachers[s].model} ({teachers[s].licence})" for s in STAGES
               if teachers[s].licence not in allowed]
    if refused:
        raise LicenceRefused(f"teacher licence not on the run's allow-list {sorted(allowed)}: " + "; ".join(refused))
    return {s: f"{teachers[s].model} ({teachers[s].licence})" for s in STAGES}


def load_teachers(path: str | Path) -> tuple[dict[Stage, Teacher], frozenset[str]]:
    """The teachers of a run and its licence allow-list, from a TOML file.

    The file holds ``allowed_licences = [...]`` and one table per stage with the `Teacher` fields
    (``base_url``, ``model``, ``licence``, optional decoding); API keys stay in the environment.

    Raises:
        ValueError: no ``allowed_licences``, or a stage without a table.
    """
    spec = tomllib.loads(Path(path).read_text())
    if "allowed_licences" not in spec:
        raise ValueError(f"{path}: no allowed_licences list (the ledger needs the run's allow-list)")
    missing = [s for s in STAGES if s not in spec]
    if missing:
        raise ValueError(f"{path}: no table for stage(s) {', '.join(missing)}")
    return {s: Teacher(**spec[s]) for s in STAGES}, frozenset(spec["allowed_licences"])


def stage_messages(stage: Stage, seed: str, shown: Mapping[str, str]) -> list[dict[str, str]]:
    """The chat messages of one stage call: its system prompt, the question and the earlier stages it sees."""
    user = "\n\n".join([f"Question:\n{seed}", *(f"{label}:\n{shown[s]}" for s, label in _SHOWN[stage])])
    return [{"role": "system", "content": STAGE_PROMPTS[stage]}, {"role": "user", "content": user}]


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ParseError("unparseable", "the teacher replied with an empty message")
    return text.strip()


@dataclass(frozen=True)
class _StageCall:
    """A stage as a `dd.judges` judge, so its calls go through the one client: one ask per seed."""

    stage: Stage
    teacher: Teacher
    earlier: Mapping[str, Mapping[str, str]]  # seed -> the earlier stages' outputs

    @property
    def name(self) -> str:
        return f"teacher-{self.stage}"

    @property
    def rubric_version(self) -> str:
        return STAGE_VERSIONS[self.stage]

    async def judge(self, item: JudgeItem, ask: Ask) -> str:
        return await ask(stage_messages(self.stage, item.prompt, self.earlier[item.prompt]), parse=_non_empty,
                         stage=self.stage, max_tokens=self.teacher.max_tokens)


def stage_key(stage: Stage, teacher: Teacher, messages: Sequence[Mapping[str, str]]) -> CacheKey:
    """The cache key of one stage call: everything that shapes the reply, never the API key."""
    return CacheKey("teachers", {"stage": stage, "model": teacher.model, "base_url": teacher.base_url.rstrip("/"),
                                 "prompt_version": STAGE_VERSIONS[stage], "messages_sha256": messages_hash(messages),
                                 "temperature": teacher.temperature, "seed": teacher.seed,
                                 "max_tokens": teacher.max_tokens})


@dataclass(frozen=True)
class Example:
    """One seed through all four stages.

    Attributes:
        seed: the seed prompt.
        outputs: each stage's reply.
        chain: per stage, the teacher that wrote it (stage, model, endpoint, licence, prompt version).
    """

    seed: str
    outputs: Mapping[str, str]
    chain: tuple[Mapping[str, str], ...]

    @property
    def response(self) -> str:
        """The synthesized answer: the SFT target and the DPO preferred answer."""
        return self.outputs["synthesizer"]


@dataclass(frozen=True)
class TeacherRun:
    """The pipeline's output: complete examples, the seeds that failed (and where), the licence ledger."""

    examples: tuple[Example, ...]
    failures: Mapping[str, str]
    ledger: Mapping[str, str]

    def sft_pairs(self) -> list[tuple[str, str]]:
        """(seed, synthesized answer), as `dd.operators.train_sft` takes them."""
        return [(e.seed, e.response) for e in self.examples]

    def dpo_triples(self) -> list[tuple[str, str, str]]:
        """(seed, synthesized answer, eager draft): the synthesis preferred, as `dd.operators.train_dpo` takes them."""
        return [(e.seed, e.response, e.outputs["eager"]) for e in self.examples]


def run_teachers(seeds: Sequence[str], teachers: Mapping[Stage, Teacher], *, allowed_licences: Collection[str],
                 cache: Cache | None = None) -> TeacherRun:
    """Pass every seed through the four stages in order, each stage batched over the seeds still going.

    A seed whose stage call fails (after the client's retries, or with an empty reply) leaves the
    run with the reason in ``failures``; the others go on. Replies are cached one per call.

    Raises:
        LicenceRefused: a teacher is not allowed; raised before any call.
        CacheMiss: the cache is offline and a stage call has no cached reply.
        dd.judges.JudgeRunStopped: a teacher endpoint stopped answering, or too many of its first
            replies were empty (the client's pre-registered stop, ``[gates.judge_parse]``).
        ValueError: duplicate seeds (a seed names its example).
    """
    ledger = licence_ledger(teachers, allowed_licences)
    if len(set(seeds)) != len(seeds):
        raise ValueError("seed prompts must be distinct")
    cache = cache or Cache()
    outputs: dict[str, dict[str, str]] = {s: {} for s in seeds}
    failures: dict[str, str] = {}
    for stage in STAGES:
        teacher = teachers[stage]
        going = [s for s in seeds if s not in failures]
        keys = {s: stage_key(stage, teacher, stage_messages(stage, s, outputs[s])) for s in going}
        misses = []
        for s in going:
            hit = cache.get(keys[s])
            if hit is not None:
                outputs[s][stage] = hit["reply"]
            elif cache.offline:
                raise CacheMiss(f"teacher stage {stage!r}: {cache.miss_message(keys[s])}")
            else:
                misses.append(s)
        if not misses:
            continue
        call = _StageCall(stage, teacher, {s: dict(outputs[s]) for s in misses})
        run = run_judge(cast("Judge", call), [(s, "") for s in misses], teacher.config())
        outcomes: Sequence[Any] = run.outcomes
        for s, out in zip(misses, outcomes, strict=True):
            if isinstance(out, JudgeError):
                failures[s] = f"{stage}: {out.kind}: {out.message}"
                continue
            outputs[s][stage] = out
            cache.put(keys[s], {"reply": out, "stage": stage, "model": teacher.model}, fmt="json")
    chain = tuple({"stage": s, "model": teachers[s].model, "base_url": teachers[s].base_url,
                   "licence": teachers[s].licence, "prompt_version": STAGE_VERSIONS[s]} for s in STAGES)
    examples = tuple(Example(s, dict(outputs[s]), chain) for s in seeds if s not in failures)
    return TeacherRun(examples, failures, ledger)
