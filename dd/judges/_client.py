"""Running a judge over items against any OpenAI-compatible endpoint.

The official `openai` client does the transport with its own retries switched off, so the retry
policy (which failures, how many times, how long to wait) is ours and testable. Every question
goes through the cache first; an offline miss raises `JudgeCacheMiss`. A reply that cannot be
parsed, or a call that still fails after the retries, becomes an explicit `JudgeError` in that
item's slot with the raw text kept: never a default label.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import openai
from tqdm.auto import tqdm

from dd.paper import ArtifactStore
from dd.paper import V4_AXES as DATA_AXES
from dd.paper import JudgedSet, load_judged
from dd.judges._cache import CacheKey, JudgeCache, schema_sha256
from dd.judges._protocol import (
    Judge,
    JudgeCacheMiss,
    JudgeError,
    JudgeFailure,
    JudgeItem,
    Message,
    Outcome,
    ParseError,
    canonical_messages,
    messages_hash,
)
from dd.judges._rubrics import get_judge

T = TypeVar("T")
KEY_ENV_VARS = ("DD_JUDGE_API_KEY", "OPENAI_API_KEY")
PROGRESS_MIN_ITEMS = 20
_RAW_LIMIT = 4000


@dataclass(frozen=True)
class JudgeConfig:
    """Where and how to ask: endpoint, model, sampling, timeouts, retries, concurrency.

    `api_key` is kept out of `repr`, comparisons and `as_dict`; when None it is read from
    `DD_JUDGE_API_KEY`, then `OPENAI_API_KEY`, at call time. Local endpoints need none.

    Args:
        base_url: the OpenAI-compatible API root, e.g. 'http://127.0.0.1:8000/v1'.
        model: the judge model name sent with each request (part of every cache key).
        api_key: the secret; never serialized.
        temperature: sampling temperature (0.0: the paper's setting).
        seed: sent where the endpoint honours it; part of the cache key.
        timeout_s: per-request timeout; a request past it counts as a 'timeout' failure.
        max_retries: further attempts after a 429, a 5xx, a timeout or a connection error.
        backoff_s: first retry delay; doubles each attempt up to `backoff_max_s`.
        backoff_max_s: cap on one delay (a Retry-After header is honoured up to this cap).
        concurrency: at most this many requests in flight.
        structured_output: send `response_format` json_schema where a judge call has a schema.
        progress: show a tqdm bar for batches over 20 items.
    """

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False, compare=False)
    temperature: float = 0.0
    seed: int | None = 0
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    concurrency: int = 5
    structured_output: bool = False
    progress: bool = True

    @classmethod
    def from_env(cls, base_url: str | None = None, model: str | None = None, **kwargs: Any) -> JudgeConfig:
        """Fill endpoint and model from arguments, else `DD_JUDGE_BASE_URL` / `DD_JUDGE_MODEL`."""
        base_url = base_url or os.environ.get("DD_JUDGE_BASE_URL")
        model = model or os.environ.get("DD_JUDGE_MODEL")
        if not base_url or not model:
            raise ValueError(
                "a judge needs an endpoint and a model: pass --dd-judge-base-url and --dd-judge-model "
                "(or set DD_JUDGE_BASE_URL / DD_JUDGE_MODEL); the key comes from DD_JUDGE_API_KEY or OPENAI_API_KEY"
            )
        return cls(base_url=base_url, model=model, **kwargs)

    def resolved_api_key(self) -> str:
        if self.api_key:
            return self.api_key
        for var in KEY_ENV_VARS:
            if os.environ.get(var):
                return os.environ[var]
        return "no-key"  # local OpenAI-compatible servers accept any token

    def as_dict(self) -> dict[str, Any]:
        """Everything but the key: safe for reports and logs."""
        return {
            "base_url": self.base_url,
            "model": self.model,
            "temperature": self.temperature,
            "seed": self.seed,
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
            "concurrency": self.concurrency,
            "structured_output": self.structured_output,
        }

    def __getstate__(self) -> dict[str, Any]:
        # pickling (xdist, multiprocessing) must not carry the key either
        state = dict(self.__dict__)
        state["api_key"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)


@dataclass
class RunStats:
    """Counts for one run: questions, cache hits, HTTP requests, retries, errors and tokens."""

    judge: str = ""
    items: int = 0
    calls: int = 0
    cache_hits: int = 0
    requests: int = 0
    retries: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    wall_s: float = 0.0

    def add_usage(self, usage: Mapping[str, int]) -> None:
        self.prompt_tokens += int(usage.get("prompt_tokens", 0) or 0)
        self.completion_tokens += int(usage.get("completion_tokens", 0) or 0)
        self.total_tokens += int(usage.get("total_tokens", 0) or 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "items": self.items,
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "requests": self.requests,
            "retries": self.retries,
            "errors": dict(sorted(self.errors.items())),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "wall_s": round(self.wall_s, 3),
        }


@dataclass(frozen=True)
class JudgeRun:
    """One judge over a batch: the outcomes in item order, with the run's stats and public config."""

    judge: str
    rubric_version: str
    items: tuple[JudgeItem, ...]
    outcomes: tuple[Outcome, ...]
    stats: RunStats
    config: Mapping[str, Any]

    @property
    def errors(self) -> list[tuple[int, JudgeError]]:
        return [(i, o) for i, o in enumerate(self.outcomes) if isinstance(o, JudgeError)]

    def by_hash(self) -> dict[str, Outcome]:
        return {item.hash: out for item, out in zip(self.items, self.outcomes)}


_RETRYABLE_STATUS = frozenset({408, 409, 429})


def _retryable(status: int) -> bool:
    return status in _RETRYABLE_STATUS or status >= 500


def _retry_after(err: openai.APIStatusError) -> float | None:
    try:
        value = err.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class _Session:
    """The `Ask` of one run: cache, then the endpoint with retries, then the strict parser."""

    def __init__(self, judge: Judge, config: JudgeConfig, cache: JudgeCache | None, stats: RunStats) -> None:
        self.judge = judge
        self.config = config
        self.cache = cache
        self.stats = stats
        self.client = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.resolved_api_key(),
            timeout=config.timeout_s,
            max_retries=0,
        )
        self.semaphore = asyncio.Semaphore(max(1, config.concurrency))

    def key(self, messages: Sequence[Message], max_tokens: int, schema: Mapping[str, Any] | None) -> CacheKey:
        cfg = self.config
        return CacheKey(
            model=cfg.model,
            base_url=cfg.base_url,
            rubric_version=self.judge.rubric_version,
            messages_sha256=messages_hash(messages),
            temperature=cfg.temperature,
            seed=cfg.seed,
            max_tokens=max_tokens,
            schema_sha256=schema_sha256(schema) if cfg.structured_output else None,
        )

    async def __call__(
        self,
        messages: Sequence[Message],
        *,
        parse: Callable[[str], T],
        stage: str,
        max_tokens: int,
        schema: Mapping[str, Any] | None = None,
    ) -> T:
        messages = canonical_messages(messages)
        key = self.key(messages, max_tokens, schema)
        self.stats.calls += 1
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                try:
                    value = parse(hit.text)
                except ParseError:
                    pass  # the parser changed since; ask again
                else:
                    self.stats.cache_hits += 1
                    return value
            if self.cache.offline:
                raise JudgeCacheMiss(
                    f"offline mode: no cached reply for judge {self.judge.name!r} ({stage}) under "
                    f"{self.cache.root}; key parts: {key}. Run once online (without --dd-offline) "
                    "against the judge endpoint to fill the cache."
                )
        text, usage = await self._request(messages, max_tokens, schema, stage)
        try:
            value = parse(text)
        except ParseError as err:
            raise JudgeFailure(JudgeError(err.kind, str(err), text[:_RAW_LIMIT], stage)) from None
        if self.cache is not None:
            self.cache.put(key, text, usage)
        return value

    async def _request(
        self, messages: list[dict[str, str]], max_tokens: int, schema: Mapping[str, Any] | None, stage: str
    ) -> tuple[str, dict[str, int]]:
        cfg = self.config
        extra: dict[str, Any] = {}
        if cfg.seed is not None:
            extra["seed"] = cfg.seed
        if cfg.structured_output and schema is not None:
            extra["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": f"{self.judge.name}_{stage}", "schema": dict(schema), "strict": True},
            }
        last: JudgeError | None = None
        wait: float | None = None
        for attempt in range(cfg.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                delay = min(cfg.backoff_max_s, cfg.backoff_s * 2 ** (attempt - 1))
                if wait is not None:
                    delay = min(cfg.backoff_max_s, max(delay, wait))
                await asyncio.sleep(delay)
            wait = None
            async with self.semaphore:
                self.stats.requests += 1
                try:
                    raw = await self.client.chat.completions.with_raw_response.create(
                        model=cfg.model,
                        messages=messages,  # type: ignore[arg-type]
                        temperature=cfg.temperature,
                        max_tokens=max_tokens,
                        **extra,
                    )
                except openai.APITimeoutError:
                    last = JudgeError("timeout", f"no reply within {cfg.timeout_s}s", "", stage)
                    continue
                except openai.APIConnectionError as err:
                    last = JudgeError("connection", str(err)[:200], "", stage)
                    continue
                except openai.APIStatusError as err:
                    last = JudgeError(f"http_{err.status_code}", err.message[:200], err.response.text[:_RAW_LIMIT], stage)
                    if _retryable(err.status_code):
                        wait = _retry_after(err)
                        continue
                    raise JudgeFailure(last) from None
                body = raw.http_response.text
            try:
                completion = raw.parse()
                text = completion.choices[0].message.content
                if not isinstance(text, str):
                    raise TypeError("no message content")
            except Exception as err:  # noqa: BLE001 - any unreadable body is one explicit error kind
                raise JudgeFailure(
                    JudgeError("unparseable", f"HTTP body is not a chat completion ({type(err).__name__})", body[:_RAW_LIMIT], stage)
                ) from None
            usage = completion.usage.model_dump() if completion.usage is not None else {}
            usage = {k: v for k, v in usage.items() if isinstance(v, int)}
            self.stats.add_usage(usage)
            return text, usage
        assert last is not None
        raise JudgeFailure(last)


def _as_item(item: JudgeItem | tuple[str, str]) -> JudgeItem:
    return item if isinstance(item, JudgeItem) else JudgeItem(*item)


async def arun_judge(
    judge: Judge,
    items: Sequence[JudgeItem | tuple[str, str]],
    config: JudgeConfig,
    cache: JudgeCache | None = None,
) -> JudgeRun:
    """Judge every item concurrently (bounded by `config.concurrency`); outcomes keep item order.

    Raises:
        JudgeCacheMiss: offline cache and a question with no cached reply.
    """
    batch = tuple(_as_item(it) for it in items)
    stats = RunStats(judge=judge.name, items=len(batch))
    session = _Session(judge, config, cache, stats)
    bar = tqdm(total=len(batch), desc=f"judge {judge.name}", disable=not config.progress or len(batch) <= PROGRESS_MIN_ITEMS)
    outcomes: list[Outcome | None] = [None] * len(batch)
    start = time.perf_counter()

    async def one(i: int, item: JudgeItem) -> None:
        try:
            outcomes[i] = await judge.judge(item, session)
        except JudgeFailure as failure:
            outcomes[i] = failure.error
            stats.errors[failure.error.kind] = stats.errors.get(failure.error.kind, 0) + 1
        bar.update(1)

    try:
        async with asyncio.TaskGroup() as group:
            for i, item in enumerate(batch):
                group.create_task(one(i, item))
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    finally:
        bar.close()
        stats.wall_s = time.perf_counter() - start
        await session.client.close()
    return JudgeRun(judge.name, judge.rubric_version, batch, tuple(outcomes), stats, config.as_dict())  # type: ignore[arg-type]


def run_judge(
    judge: Judge,
    items: Sequence[JudgeItem | tuple[str, str]],
    config: JudgeConfig,
    cache: JudgeCache | None = None,
) -> JudgeRun:
    """Synchronous `arun_judge`: runs its own event loop (in a thread if one is already running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun_judge(judge, items, config, cache))
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["run"] = asyncio.run(arun_judge(judge, items, config, cache))
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = err

    thread = threading.Thread(target=target, name="dd-judge")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["run"]


# ---------------------------------------------------------------- labels for claims

_VERBAL_WORD = {"ASSERT": "assert", "HEDGE": "hedge"}


@dataclass(frozen=True)
class JudgeLabelSet(JudgedSet):
    """A `JudgedSet` whose labels came from the judge layer, with its errors and stats.

    `scores[axis]` is NaN and `verbal[i]` / `cert[i]` are None where the judge failed (the
    item's `JudgeError` is in `errors[judge]`); `valid[judge]` is the boolean mask of items that
    judge labelled. `coverage` is NaN and `correct` False where the checklist failed: use
    `valid["checklist"]`, never the raw `correct` array, to drop those items.
    """

    cert: tuple[str | None, ...] | None = None
    valid: Mapping[str, np.ndarray] = field(default_factory=dict)
    errors: Mapping[str, tuple[tuple[int, JudgeError], ...]] = field(default_factory=dict)
    stats: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    runs: Mapping[str, JudgeRun] = field(default_factory=dict)


def judge_label_set(
    store: ArtifactStore,
    which: str,
    config: JudgeConfig,
    cache: JudgeCache | None = None,
    judges: Sequence[str] = ("v4", "verbal"),
) -> JudgeLabelSet:
    """Labels for the paper's step16 or fresh responses from the judge layer, as a `JudgedSet`.

    The prompts and responses are read from the released file (`dd.paper.load_judged`); only the
    labels are recomputed, by the named judges ('v4', 'verbal', 'checklist') against `config`'s
    endpoint (or the cache). Arc 3 claims can take this instead of the file's own labels.
    """
    source = load_judged(store, which)
    items = [JudgeItem(p, r) for p, r in source.responses.pairs()]
    runs = {name: run_judge(get_judge(name), items, config, cache) for name in judges}
    n = len(items)
    valid = {name: np.array([not isinstance(o, JudgeError) for o in run.outcomes]) for name, run in runs.items()}
    scores = {axis: np.full(n, np.nan) for axis in DATA_AXES}
    cert = verbal = coverage = correct = None
    if "v4" in runs:
        cert = tuple(None if isinstance(o, JudgeError) else o.cert for o in runs["v4"].outcomes)
        for i, out in enumerate(runs["v4"].outcomes):
            if not isinstance(out, JudgeError):
                for axis in DATA_AXES:
                    scores[axis][i] = float(out.scores[axis])
    if "verbal" in runs:
        verbal = tuple(None if isinstance(o, JudgeError) else _VERBAL_WORD[o.label] for o in runs["verbal"].outcomes)
    if "checklist" in runs:
        coverage = np.array([np.nan if isinstance(o, JudgeError) else o.coverage for o in runs["checklist"].outcomes])
        correct = np.where(valid["checklist"], coverage >= 0.5, False)
    params = {
        "source": "dd.judges",
        "judge_model": config.model,
        "base_url": config.base_url,
        "temperature": config.temperature,
        "seed": config.seed,
        "rubric_version": {name: run.rubric_version for name, run in runs.items()},
        "labels_replace": source.judge_params.get("rubric_version"),
    }
    return JudgeLabelSet(
        responses=source.responses,
        scores=scores,
        judge_params=params,
        coverage=coverage,
        correct=correct,
        verbal=verbal,
        cert=cert,
        valid=valid,
        errors={name: tuple(run.errors) for name, run in runs.items()},
        stats={name: run.stats.as_dict() for name, run in runs.items()},
        runs=runs,
    )
