"""New prompts from an independent generator, through the judge client (the openai package).

The generator is asked, request by request, for a few new prompts of the training split's
distribution (a domain description and a few training prompts as examples); each request's reply
is one entry of the suite's cache, kept only when the strict parser accepts it, so an interrupted
generation resumes where it stopped and a re-run asks nothing. The client's bounded retries,
offline mode (a miss raises ``CacheMiss``) and stop on a generator that cannot follow its rubric
come with it. Candidates are deduplicated against the whole training split (`dedup`); requests
continue until ``n`` survive, up to ``MAX_ROUNDS`` times the requests first planned.

The rubric (the messages and ``PER_REQUEST``) is versioned: change its wording only with a new
``GENERATOR_RUBRIC_VERSION``, which enters every cache key and the set's provenance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from dd.core import Cache
from dd.fresh._dedup import dedup
from dd.fresh._sets import FreshSet, Provenance, independence
from dd.judges import Ask, Judge, JudgeConfig, JudgeItem, JudgeRun, ParseError, parse_json_object, run_judge

GENERATOR_RUBRIC_VERSION = "dd-fresh-prompts/1"
PER_REQUEST = 10
MAX_ROUNDS = 3

GENERATOR_SYSTEM = """You write new prompts for testing a language model; no model has answered them yet.
Write prompts from the distribution the user describes: the same domain, kind of task, length
and difficulty as the examples, but new questions about other specifics.
Never copy, reword or lightly edit an example, and never repeat a prompt.
Reply with only a JSON object: {"prompts": ["...", "..."]}"""

GENERATOR_USER = """Domain: {domain}

Examples of the distribution:
{examples}

Write {k} new prompts. This is request {request}; every request must bring prompts of its own."""

PROMPTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"prompts": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
    "required": ["prompts"],
    "additionalProperties": False,
}


class FreshRunFailed(RuntimeError):
    """The generator or the checklist judge gave no usable reply for some items; received replies are cached."""


@dataclass(frozen=True)
class GeneratorSpec:
    """Where and how to ask for new prompts.

    Attributes:
        base_url, model: the generator's OpenAI-compatible endpoint and model.
        n: fresh prompts wanted after dedup.
        domain: what the prompts are about, in a sentence (the generator's brief).
        seed, temperature: sent with every request; recorded in the provenance.
        examples: how many training prompts the generator is shown.
    """

    base_url: str
    model: str
    n: int
    domain: str
    seed: int = 0
    temperature: float = 1.0
    examples: int = 3

    def provenance(self) -> Provenance:
        return Provenance(self.model, "generated", self.base_url.rstrip("/"), self.seed, self.temperature,
                          GENERATOR_RUBRIC_VERSION)


def parse_prompts(text: str) -> tuple[str, ...]:
    """{"prompts": [...]} with non-empty strings."""
    prompts = parse_json_object(text).get("prompts")
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ParseError("unparseable", "reply has no 'prompts' list of non-empty strings")
    return tuple(p.strip() for p in prompts)


@dataclass(frozen=True)
class PromptBatch:
    """One request's prompts."""

    prompts: tuple[str, ...]


@dataclass(frozen=True)
class PromptWriter:
    """The generator as a `Judge` of the client: its item's prompt is the request, its label the prompts."""

    name: str = "fresh-prompts"
    rubric_version: str = GENERATOR_RUBRIC_VERSION
    max_tokens: int = 3000

    async def judge(self, item: JudgeItem, ask: Ask) -> PromptBatch:
        messages = [{"role": "system", "content": GENERATOR_SYSTEM}, {"role": "user", "content": item.prompt}]
        return PromptBatch(await ask(messages, parse=parse_prompts, stage="prompts", max_tokens=self.max_tokens,
                                     schema=PROMPTS_SCHEMA))


def request_text(spec: GeneratorSpec, examples: Sequence[str], request: int) -> str:
    return GENERATOR_USER.format(domain=spec.domain, examples="\n".join(f"- {e}" for e in examples),
                                 k=PER_REQUEST, request=request + 1)


def failures(run: JudgeRun, what: str, names: Sequence[str]) -> FreshRunFailed | None:
    """An error naming (``names[i]``) every item of ``run`` that got no usable reply, or None."""
    if not run.errors:
        return None
    named = "; ".join(f"{names[i]} ({e.stage}: {e.kind}: {e.message[:80]})" for i, e in run.errors[:5])
    return FreshRunFailed(f"{len(run.errors)} of {len(run.items)} {what}s got no usable reply from "
                          f"{run.config['model']!r} at {run.config['base_url']}: {named}. Every accepted reply is "
                          "cached: a re-run asks only for these")


def generate_fresh(train: Sequence[str], spec: GeneratorSpec, *, train_generator: str,
                   cache: Cache | None = None) -> FreshSet:
    """``spec.n`` new prompts from the generator, deduplicated against ``train``.

    Raises:
        GeneratorNotIndependent: the generator is the training set's (checked before any request).
        FreshRunFailed: a request got no usable reply, or too few prompts survived dedup.
        CacheMiss: offline, for a request never answered.
    """
    provenance = spec.provenance()
    note = independence(train_generator, provenance)
    config = JudgeConfig(base_url=spec.base_url, model=spec.model, temperature=spec.temperature, seed=spec.seed,
                         progress=False)
    examples = list(train[: spec.examples])
    planned = math.ceil(spec.n / PER_REQUEST)
    candidates: list[str] = []
    asked = 0
    while (short := spec.n - len(dedup(train, candidates).kept)) > 0:
        if asked >= MAX_ROUNDS * planned:
            raise FreshRunFailed(f"{spec.model!r} at {spec.base_url}: after {asked} requests only {spec.n - short} "
                                 f"of {spec.n} new prompts survived dedup against the training split")
        items = [JudgeItem(request_text(spec, examples, asked + k), "") for k in range(math.ceil(short / PER_REQUEST))]
        run = run_judge(cast(Judge, PromptWriter()), items, config, cache)
        failed = failures(run, "request", [f"request {asked + k + 1}" for k in range(len(items))])
        if failed is not None:
            raise failed
        candidates += [p for out in run.outcomes for p in cast(PromptBatch, out).prompts]
        asked += len(items)
    ledger = dedup(train, candidates)
    last = ledger.kept[spec.n - 1]
    ledger = dedup(train, candidates[: last + 1])  # the candidates after the n-th kept one are surplus
    return FreshSet(tuple(candidates[i] for i in ledger.kept), provenance, ledger, notes=(note,) if note else ())
