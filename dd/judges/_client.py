"""Running a judge over items against any OpenAI-compatible endpoint.

The official `openai` client does the transport with its own retries switched off, so the retry
policy (which failures, how many times, how long to wait) is ours and testable. Every question
goes through the suite's one cache first (`dd.core.Cache`, kind `judges`); an offline miss
raises `dd.core.CacheMiss`. Only a reply the strict parser accepted is stored: a reply that cannot
be parsed, or a call that still fails after the retries, becomes an explicit `JudgeError` in that
item's slot with the raw text kept, never a default label and never a cache entry.
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

from dd.core import (
    Backoff,
    Cache,
    CacheKey,
    CacheMiss,
    RepeatWatch,
    progress,
    retry_after,
    retryable,
    sha256_json,
)
from dd.judges._protocol import (
    ChecklistLabel,
    Judge,
    JudgeError,
    JudgeFailure,
    JudgeItem,
    Message,
    Outcome,
    ParseError,
    V4Label,
    VerbalLabel,
    canonical_messages,
    messages_hash,
)
from dd.judges._rubrics import get_judge
from dd.paper import CORRECT_COVERAGE, V4_AXES, ArtifactStore, JudgedSet, load_judged
from dd.protocol import thresholds

T = TypeVar("T")
KEY_ENV_VARS = ("DD_JUDGE_API_KEY", "OPENAI_API_KEY")
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
        progress: allow a bar on the user's terminal (`dd.core.progress` decides whether one shows).
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
        return {item.hash: out for item, out in zip(self.items, self.outcomes, strict=True)}


def judge_key(config: JudgeConfig, rubric_version: str, messages: Sequence[Message], max_tokens: int,
              schema: Mapping[str, Any] | None) -> CacheKey:
    """The cache key of one judge question: everything that shapes the reply, never the API key.

    Parts: judge model, endpoint, rubric version, sha256 of the exact messages, temperature,
    seed, max_tokens, and the sha256 of the structured-output schema when one is sent.
    """
    return CacheKey("judges", {
        "model": config.model,
        "base_url": config.base_url.rstrip("/"),
        "rubric_version": rubric_version,
        "messages_sha256": messages_hash(messages),
        "temperature": config.temperature,
        "seed": config.seed,
        "max_tokens": max_tokens,
        "schema_sha256": sha256_json(schema) if config.structured_output and schema is not None else None,
    })


class JudgeRunStopped(RuntimeError):
    """A judge run stopped before every item was judged, for a cause no retry clears.

    The judge cannot follow its rubric (too many of its first replies fail the strict parser), the
    endpoint refuses every structured-output form, or it stopped answering. Replies received before
    the stop are in the cache, so a re-run asks only for the items named in ``pending``.
    """

    def __init__(self, cause: str, pending: Sequence[JudgeItem] = ()) -> None:
        self.cause = cause
        self.pending = tuple(pending)
        named = ", ".join(f"{it.hash} ({it.prompt[:40]!r})" for it in self.pending[:10])
        more = f" and {len(self.pending) - 10} more" if len(self.pending) > 10 else ""
        tail = (f"; {len(self.pending)} items not judged: {named}{more}. Every reply received is cached: "
                "a re-run asks only for these") if self.pending else ""
        super().__init__(cause + tail)

    def naming(self, pending: Sequence[JudgeItem]) -> JudgeRunStopped:
        return JudgeRunStopped(self.cause, pending)


class _Refused(JudgeFailure):
    """A request the endpoint answered with a failure that no retry clears (a 4xx, or the same 5xx again)."""


class _ParseWatch:
    """Stops a run whose judge cannot follow its rubric, instead of letting it answer every item.

    Of a run's first ``first_replies`` fresh replies (cache hits were parsed before), once
    ``stop_share`` of that number failed the strict parser the run stops with ``JudgeRunStopped``,
    quoting a raw reply and naming model and endpoint. The bars are pre-registered in
    ``dd/protocol/gates.toml`` (``[gates.judge_parse]``).
    """

    def __init__(self, judge: str, config: JudgeConfig) -> None:
        bars = thresholds("judge_parse")
        self.first = int(bars["first_replies"])
        self.share = float(bars["stop_share"])
        self.where = f"judge {judge!r} (model {config.model!r} at {config.base_url})"
        self.seen = self.failed = 0

    def record(self, error: JudgeError | None) -> None:
        if self.seen >= self.first:
            return
        self.seen += 1
        if error is None:
            return
        self.failed += 1
        if self.failed >= self.share * self.first:
            raise JudgeRunStopped(
                f"{self.where} cannot follow its rubric: {self.failed} of its first {self.seen} replies failed to "
                f"parse (the run stops at {self.share:.0%} of the first {self.first}, gates.toml [gates.judge_parse]); "
                f"a sample ({error.stage}, {error.kind}): {error.raw[:300]!r}")


#: Structured-output forms, tried in this order: OpenAI's, then the one llama.cpp's server takes
#: (it refuses the first with an HTTP 500).
_FORMS = ("json_schema", "json_object")
#: endpoint -> the form it accepted, found once per endpoint in this process.
_ACCEPTED_FORMS: dict[str, str] = {}


def _response_format(form: str, name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    if form == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": dict(schema), "strict": True}}
    return {"type": "json_object", "schema": dict(schema)}


class _Session:
    """The `Ask` of one run: cache, then the endpoint with retries, then the strict parser."""

    def __init__(self, judge: Judge, config: JudgeConfig, cache: Cache | None, stats: RunStats) -> None:
        self.judge = judge
        self.config = config
        self.cache = cache
        self.stats = stats
        import openai  # here, not at module level: claims that never ask a judge skip its second of imports

        self.client = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.resolved_api_key(),
            timeout=config.timeout_s,
            max_retries=0,
        )
        self.semaphore = asyncio.Semaphore(max(1, config.concurrency))
        self.watch = _ParseWatch(judge.name, config)
        self.probe = asyncio.Lock()  # one task at a time finds an endpoint's structured-output form

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
        key = judge_key(self.config, self.judge.rubric_version, messages, max_tokens, schema)
        self.stats.calls += 1
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                try:
                    value = parse(hit["reply"])
                except ParseError:
                    pass  # the parser changed since; ask again
                else:
                    self.stats.cache_hits += 1
                    return value
            if self.cache.offline:
                raise CacheMiss(f"judge {self.judge.name!r} ({stage}): {self.cache.miss_message(key)}")
        text, usage = await self._request(messages, max_tokens, schema, stage)
        value = self._parse(text, parse, stage)
        if self.cache is not None:
            self.cache.put(key, {"reply": text, "usage": usage}, fmt="json")
        return value

    def _parse(self, text: str, parse: Callable[[str], T], stage: str) -> T:
        """The strict parser on a fresh reply; each outcome counts toward the rubric bar (`_ParseWatch`)."""
        try:
            value = parse(text)
        except ParseError as err:
            error = JudgeError(err.kind, str(err), text[:_RAW_LIMIT], stage)
            self.watch.record(error)
            raise JudgeFailure(error) from None
        self.watch.record(None)
        return value

    async def _request(
        self, messages: list[dict[str, str]], max_tokens: int, schema: Mapping[str, Any] | None, stage: str
    ) -> tuple[str, dict[str, int]]:
        if self.config.structured_output and schema is not None:
            return await self._structured(messages, max_tokens, schema, stage)
        return await self._send(messages, max_tokens, None, stage)

    async def _structured(
        self, messages: list[dict[str, str]], max_tokens: int, schema: Mapping[str, Any], stage: str
    ) -> tuple[str, dict[str, int]]:
        """Send with the structured-output form the endpoint accepts, trying each once per endpoint.

        A form is refused by a failure no retry clears (a 4xx, or the same 5xx `IDENTICAL_LIMIT`
        times in a row); the next form is tried then. An endpoint that refuses all of them stops the
        run: no item's structured call could ever succeed there.
        """
        endpoint, name = self.config.base_url.rstrip("/"), f"{self.judge.name}_{stage}"
        if endpoint not in _ACCEPTED_FORMS:
            async with self.probe:
                if endpoint not in _ACCEPTED_FORMS:
                    refused = []
                    for form in _FORMS:
                        try:
                            reply = await self._send(messages, max_tokens, _response_format(form, name, schema), stage)
                        except _Refused as refusal:
                            refused.append(f"{form}: {refusal.error.kind}: {refusal.error.message}")
                            continue
                        _ACCEPTED_FORMS[endpoint] = form
                        return reply
                    raise JudgeRunStopped(f"{endpoint} refused every structured-output form ({'; '.join(refused)}); "
                                          "judge there with structured_output=False")
        return await self._send(messages, max_tokens, _response_format(_ACCEPTED_FORMS[endpoint], name, schema), stage)

    async def _send(
        self, messages: list[dict[str, str]], max_tokens: int, response_format: dict[str, Any] | None, stage: str
    ) -> tuple[str, dict[str, int]]:
        """One question with bounded retries (`dd.core.Backoff`); says which failure ended them.

        A 4xx other than 408/409/429, or a 5xx repeated identically (`dd.core.RepeatWatch`), ends
        the retries at once as `_Refused`; an endpoint that still cannot be reached after them
        stops the run (`JudgeRunStopped`): it is not a property of the item.
        """
        import openai

        cfg = self.config
        extra: dict[str, Any] = {}
        if cfg.seed is not None:
            extra["seed"] = cfg.seed
        if response_format is not None:
            extra["response_format"] = response_format
        backoff, watch = Backoff(cfg.backoff_s, cfg.backoff_max_s), RepeatWatch()
        last: JudgeError | None = None
        wait: float | None = None
        for attempt in range(cfg.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(backoff.delay(attempt, wait))
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
                    body = err.response.text
                    last = JudgeError(f"http_{err.status_code}", err.message[:200], body[:_RAW_LIMIT], stage)
                    if not retryable(err.status_code):
                        raise _Refused(last) from None
                    if watch.never_clears(err.status_code, body):
                        why = (f"the same HTTP {err.status_code} {watch.count} times in a row, a request this endpoint "
                               f"never answers (the request is the cause, not the load): {err.message[:200]}")
                        raise _Refused(JudgeError(last.kind, why, last.raw, stage)) from None
                    wait = retry_after(err.response.headers)
                    continue
                body = raw.http_response.text
            try:
                completion = raw.parse()
                text = completion.choices[0].message.content
                if not isinstance(text, str):
                    raise TypeError("no message content")
            except Exception as err:  # noqa: BLE001 - any unreadable body is one explicit error kind
                why = f"HTTP body is not a chat completion ({type(err).__name__})"
                raise JudgeFailure(JudgeError("unparseable", why, body[:_RAW_LIMIT], stage)) from None
            usage = completion.usage.model_dump() if completion.usage is not None else {}
            usage = {k: v for k, v in usage.items() if isinstance(v, int)}
            self.stats.add_usage(usage)
            return text, usage
        assert last is not None
        if last.kind == "connection":
            raise JudgeRunStopped(f"the judge endpoint {cfg.base_url} stopped answering: {cfg.max_retries + 1} "
                                  f"attempts found no connection ({last.message})")
        raise JudgeFailure(last)


def _stopped(group_error: BaseExceptionGroup, batch: Sequence[JudgeItem],
             outcomes: Sequence[Outcome | None]) -> BaseException:
    """The run's first error; a stop names the items that got no outcome."""
    first = group_error.exceptions[0]
    if isinstance(first, JudgeRunStopped):
        return first.naming([item for item, out in zip(batch, outcomes, strict=True) if out is None])
    return first


def _as_item(item: JudgeItem | tuple[str, str]) -> JudgeItem:
    return item if isinstance(item, JudgeItem) else JudgeItem(*item)


async def arun_judge(
    judge: Judge,
    items: Sequence[JudgeItem | tuple[str, str]],
    config: JudgeConfig,
    cache: Cache | None = None,
) -> JudgeRun:
    """Judge every item concurrently (bounded by `config.concurrency`); outcomes keep item order.

    Raises:
        CacheMiss: offline cache and a question with no cached reply.
    """
    batch = tuple(_as_item(it) for it in items)
    stats = RunStats(judge=judge.name, items=len(batch))
    session = _Session(judge, config, cache, stats)
    bar = progress(len(batch), f"judge {judge.name}", enabled=config.progress)
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
        raise _stopped(group_error, batch, outcomes) from None
    finally:
        bar.close()
        stats.wall_s = time.perf_counter() - start
        await session.client.close()
    done = tuple(out for out in outcomes if out is not None)
    assert len(done) == len(batch), "the task group ended with an item that has no outcome"
    return JudgeRun(judge.name, judge.rubric_version, batch, done, stats, config.as_dict())


def run_judge(
    judge: Judge,
    items: Sequence[JudgeItem | tuple[str, str]],
    config: JudgeConfig,
    cache: Cache | None = None,
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


def _labels_of(run: JudgeRun, kind: type[T]) -> list[T | None]:
    """The run's labels in item order, None where the judge failed; a label of another kind is a bug."""
    labels: list[T | None] = []
    for out in run.outcomes:
        if isinstance(out, JudgeError):
            labels.append(None)
        elif isinstance(out, kind):
            labels.append(out)
        else:
            raise TypeError(f"judge {run.judge!r} gave a {type(out).__name__}, not a {kind.__name__}")
    return labels


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
    cache: Cache | None = None,
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
    scores = {axis: np.full(n, np.nan) for axis in V4_AXES}
    cert: tuple[str | None, ...] | None = None
    verbal: tuple[str | None, ...] | None = None
    coverage: np.ndarray | None = None
    correct: np.ndarray | None = None
    if "v4" in runs:
        v4 = _labels_of(runs["v4"], V4Label)
        cert = tuple(None if label is None else label.cert for label in v4)
        for i, label in enumerate(v4):
            if label is not None:
                for axis in V4_AXES:
                    scores[axis][i] = float(label.scores[axis])
    if "verbal" in runs:
        verbal = tuple(
            None if label is None else _VERBAL_WORD[label.label] for label in _labels_of(runs["verbal"], VerbalLabel)
        )
    if "checklist" in runs:
        checklist = _labels_of(runs["checklist"], ChecklistLabel)
        coverage = np.array([np.nan if label is None else label.coverage for label in checklist])
        correct = np.where(valid["checklist"], coverage >= CORRECT_COVERAGE, False)
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
