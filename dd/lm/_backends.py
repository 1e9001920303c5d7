"""Generation backends: where greedy decoding runs, behind one interface (``--dd-gen-backend``).

- ``hf``: in-process transformers (``dd.lm.generate``), the reference. It adds nothing to the
  cache key, so its entries are those cached before backends existed.
- ``openai``: any OpenAI-compatible ``/v1/completions`` endpoint (``vllm serve``, SGLang,
  llama.cpp). The prompt is rendered here, with the base's own tokenizer and chat template (a
  prompt operator's conversation included), and sent as text: teacher forcing later reads exactly
  that conversation, which a chat endpoint's server-side template need not reproduce. The server's
  model id, owner and revision (where it reports one) enter the key; its URL does not, so replicas
  of one model share entries.
- ``vllm``: vLLM's offline engine, one per visible GPU (data parallel: prompts are dealt out round
  robin), greedy, with LoRA adapters through vLLM's LoRA requests.

Hook operators (steering, tempering) edit a model inside this process, and a server or a separate
engine cannot run them: asking is an error that says to use ``hf``. Teacher-forced features always
run on the local transformers base (``dd.lm.extract_features``), whichever backend generated.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from dd.core import Backoff, RepeatWatch, retry_after, retryable
from dd.core import progress as progress_bar
from dd.lm._generate import FinishReason, Generation, GenerationConfig, _arm_kind, generate, render_prompt

if TYPE_CHECKING:
    import openai

    from dd.lm._models import LazyBase, LoadedBase

T = TypeVar("T")
#: How to get vLLM where it is missing (it needs a CUDA machine and brings its own torch build).
VLLM_INSTALL = "pip install vllm==0.33.0 on a CUDA machine, or serve the base with `vllm serve` and use openai=URL"
#: OpenAI finish reasons -> ours; anything else (a content filter, a tool call) is an error, never a guess.
_FINISH: dict[str, FinishReason] = {"stop": "eos", "length": "length"}
#: Ranks vLLM accepts for ``max_lora_rank``.
_VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 512)


class GenerationError(RuntimeError):
    """A generation run that did not complete; nothing of it is cached."""


@runtime_checkable
class GenerationBackend(Protocol):
    """Where a generation run happens.

    ``check`` refuses an arm the backend cannot run (before the cache is asked); ``key_parts``
    names the backend in the cache key; ``generate`` returns one ``Generation`` per prompt, in
    order, with the same fields (token ids in the base's tokenizer, finish reasons) as ``hf``.
    """

    name: ClassVar[str]

    def check(self, operator: Any | None) -> None: ...

    def key_parts(self, base: LazyBase | LoadedBase) -> dict[str, str | int | float | bool | None]: ...

    def generate(self, base: LazyBase | LoadedBase, prompts: Sequence[str], config: GenerationConfig, *,
                 operator: Any | None = None, progress: bool = True) -> list[Generation]: ...


def get_backend(spec: str = "hf") -> GenerationBackend:
    """The backend an option value names: ``hf``, ``vllm`` or ``openai=URL[#MODEL]``.

    ``MODEL`` picks one of the endpoint's models where it serves several.
    """
    if spec == "hf":
        return HF()
    if spec == "vllm":
        return VLLMBackend()
    name, sep, rest = spec.partition("=")
    url, _, model = rest.partition("#")
    if name == "openai" and sep and url:
        return OpenAIBackend(url, model or None)
    raise ValueError(f"a generation backend is 'hf', 'vllm' or 'openai=URL[#MODEL]', not {spec!r}")


def visible_gpus() -> list[str]:
    """The CUDA devices this process may use, found without initializing CUDA.

    CUDA reads ``CUDA_VISIBLE_DEVICES`` once, at initialization, so whoever pins a device (an xdist
    worker, a vLLM worker process) must count devices without touching torch.cuda: the variable's
    entries up to the first invalid one, else the driver's device folders.
    """
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        out = []
        for entry in (e.strip() for e in listed.split(",")):
            if not entry or entry.startswith("-"):
                break
            out.append(entry)
        return out
    driver = Path("/proc/driver/nvidia/gpus")
    return [str(i) for i in range(len(list(driver.iterdir())))] if driver.is_dir() else []


# ---------------------------------------------------------------- shared by the backends


def _tokenizer(base: LazyBase | LoadedBase) -> Any:
    """The base's tokenizer, without loading its model where it is not loaded yet."""
    if getattr(base, "tokenizer", None) is not None:
        return base.tokenizer  # type: ignore[union-attr]
    if getattr(base, "is_loaded", False):
        return base.load().tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base.resolved.materialize())


def _eos_ids(base: LazyBase | LoadedBase, tokenizer: Any) -> frozenset[int]:
    """End-of-turn ids as ``LoadedBase.eos_token_ids`` has them, read from the files, not the model."""
    if getattr(base, "model", None) is not None:
        return base.eos_token_ids  # type: ignore[union-attr]
    from transformers import AutoConfig
    from transformers import GenerationConfig as HFGenerationConfig

    location = base.resolved.materialize()
    try:
        gen = HFGenerationConfig.from_pretrained(location)
    except OSError:  # no generation_config.json: transformers derives it from config.json
        gen = HFGenerationConfig.from_model_config(AutoConfig.from_pretrained(location))
    ids = {int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set()
    eos = gen.eos_token_id
    ids.update([eos] if isinstance(eos, int) else [int(e) for e in eos or ()])
    return frozenset(ids)


def _remote_kind(operator: Any | None, backend: str, *, adapters: bool) -> str:
    """The arm's kind, or an error for an edit this backend cannot make (it says what can)."""
    kind = _arm_kind(operator)
    if kind in ("identity", "prompt"):
        return kind
    assert operator is not None
    if kind == "hook":
        raise GenerationError(f"{operator.key()} is a hook operator: it edits the model inside this process, "
                              f"which the {backend} backend cannot reach; generate this arm with --dd-gen-backend hf")
    if kind == "adapter" and not adapters:
        raise GenerationError(f"{operator.key()} is an adapter applied inside this process; the {backend} backend "
                              "serves its own weights: use --dd-gen-backend hf, or vllm (LoRA requests)")
    return kind


def _render(base: LazyBase | LoadedBase, prompts: Sequence[str], config: GenerationConfig,
            operator: Any | None) -> tuple[Any, frozenset[int], list[list[int]]]:
    tok = _tokenizer(base)
    rendered = [render_prompt(tok, p, chat=config.chat, enable_thinking=config.enable_thinking, operator=operator)
                for p in prompts]
    return tok, _eos_ids(base, tok), rendered


def _generation(prompt: str, tok: Any, eos: frozenset[int], ids: list[int], reason: FinishReason,
                stop_id: int | None, config: GenerationConfig, n_prompt: int) -> Generation:
    """A ``Generation`` shaped like ``hf``'s: an eos-ended run keeps its stop token last, the text omits it."""
    if reason == "eos" and (not ids or ids[-1] not in eos):
        ids = [*ids, stop_id if stop_id is not None else _eos_id(tok, eos)]
    body = ids[:-1] if reason == "eos" else ids
    return Generation(prompt=prompt, token_ids=tuple(ids), text=tok.decode(body, skip_special_tokens=False),
                      finish_reason=reason, n_predict=config.n_predict, n_prompt_tokens=n_prompt)


def _eos_id(tok: Any, eos: frozenset[int]) -> int:
    return int(tok.eos_token_id) if tok.eos_token_id in eos else min(eos)


def _finish(reason: str | None, what: str) -> FinishReason:
    if reason not in _FINISH:
        raise GenerationError(f"{what}: finish reason {reason!r} is neither 'stop' nor 'length'")
    return _FINISH[reason]


@dataclass(frozen=True)
class HF:
    """In-process transformers: ``dd.lm.generate`` on the loaded base, exactly as without a backend."""

    name: ClassVar[str] = "hf"

    def check(self, operator: Any | None) -> None:
        _arm_kind(operator)

    def key_parts(self, base: LazyBase | LoadedBase) -> dict[str, str | int | float | bool | None]:
        return {}

    def generate(self, base: LazyBase | LoadedBase, prompts: Sequence[str],
                 config: GenerationConfig, *, operator: Any | None = None,
                 progress: bool = True) -> list[Generation]:
        return generate(base.load(), prompts, config, operator=operator, progress=progress)


# ---------------------------------------------------------------- openai


@dataclass(frozen=True)
class OpenAIBackend:
    """Greedy completions at an OpenAI-compatible endpoint, concurrent and bounded.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the served model to use; None: the only one served, else the one named like the
            base's Hugging Face id.
        api_key: for servers started with a key (``vllm serve --api-key``); never serialized.
        concurrency: requests in flight at once.
        timeout_s: per request.
        max_retries: further attempts after a 408/409/429, a 5xx, a timeout or a lost connection;
            a 5xx repeated identically (``dd.core.RepeatWatch``) or another 4xx ends them early.
        backoff_s, backoff_max_s: first retry delay (doubling) and its cap.
        seed: sent along (greedy decoding does not need it; servers that batch may).
    """

    base_url: str
    model: str | None = None
    api_key: str | None = field(default=None, repr=False, compare=False)
    concurrency: int = 8
    timeout_s: float = 300.0
    max_retries: int = 4
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    seed: int | None = 0
    name: ClassVar[str] = "openai"

    def check(self, operator: Any | None) -> None:
        _remote_kind(operator, self.name, adapters=False)

    def served(self, base: LazyBase | LoadedBase) -> dict[str, str | None]:
        """The served model this base runs as: its id, owner and revision (asked once per process)."""
        return _served_model(self, base.resolved.spec.hf_id)

    def key_parts(self, base: LazyBase | LoadedBase) -> dict[str, str | int | float | bool | None]:
        served = self.served(base)
        return {"gen.backend": self.name, "gen.server_model": served["id"], "gen.server_owned_by": served["owned_by"],
                "gen.server_revision": served["revision"]}

    def client(self) -> openai.OpenAI:
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key=self.api_key or "no-key", timeout=self.timeout_s,
                             max_retries=0)

    def call(self, send: Callable[[], T], what: str) -> T:
        """``send()`` with bounded retries; a failure that will not clear says which it was."""
        import openai

        backoff, watch = Backoff(self.backoff_s, self.backoff_max_s), RepeatWatch()
        last, wait = "", None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(backoff.delay(attempt, wait))
            wait = None
            try:
                return send()
            except openai.APITimeoutError:
                last = f"no reply within {self.timeout_s}s"
            except openai.APIConnectionError as err:
                last = f"no connection ({err})"
            except openai.APIStatusError as err:
                body = err.response.text
                if not retryable(err.status_code):
                    raise GenerationError(f"{what}: HTTP {err.status_code}, which no retry clears: {body[:500]}") \
                        from None
                if watch.never_clears(err.status_code, body):
                    raise GenerationError(
                        f"{what}: the same HTTP {err.status_code} {watch.count} times in a row, a request this server "
                        f"never answers (the request is the cause, not the load): {body[:500]}") from None
                last, wait = f"HTTP {err.status_code}: {body[:200]}", retry_after(err.response.headers)
        raise GenerationError(f"{what}: still failing after {self.max_retries + 1} attempts: {last}")

    def _complete(self, client: openai.OpenAI, model: str, ids: list[int], tok: Any,
                  n_predict: int) -> tuple[str, FinishReason]:
        import openai

        what = f"POST {self.base_url}/completions ({model})"
        reply = self.call(lambda: client.completions.create(
            model=model, prompt=tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False),
            max_tokens=n_predict, temperature=0.0, seed=openai.omit if self.seed is None else self.seed,
            extra_body={"add_special_tokens": False}), what)
        if reply.usage is not None and reply.usage.prompt_tokens != len(ids):
            raise GenerationError(f"{what}: the server read the prompt as {reply.usage.prompt_tokens} tokens, the "
                                  f"base's tokenizer renders {len(ids)}: its tokenizer or BOS handling differs, so "
                                  "the response would answer another prompt than teacher forcing reads")
        choice = reply.choices[0]
        return choice.text, _finish(choice.finish_reason, what)

    def generate(self, base: LazyBase | LoadedBase, prompts: Sequence[str],
                 config: GenerationConfig, *, operator: Any | None = None,
                 progress: bool = True) -> list[Generation]:
        """Complete every prompt (``concurrency`` at a time); the first failure stops the run."""
        self.check(operator)
        model = self.served(base)["id"]
        assert model is not None
        tok, eos, rendered = _render(base, prompts, config, operator)
        replies: list[tuple[str, FinishReason] | None] = [None] * len(prompts)
        bar = progress_bar(len(prompts), f"generate {base.name} at {self.base_url}", enabled=progress)
        client = self.client()
        pool = ThreadPoolExecutor(max_workers=max(1, self.concurrency), thread_name_prefix="dd-gen")
        try:
            futures = {pool.submit(self._complete, client, model, ids, tok, config.n_predict): i
                       for i, ids in enumerate(rendered)}
            for done in as_completed(futures):
                replies[futures[done]] = done.result()
                bar.update(1)
        except GenerationError as err:
            missing = sum(r is None for r in replies)
            raise GenerationError(f"{err} ({missing} of {len(prompts)} prompts not generated; none cached)") from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
            client.close()
        out = []
        for prompt, ids, reply in zip(prompts, rendered, replies, strict=True):
            assert reply is not None
            text, reason = reply
            out.append(_generation(prompt, tok, eos, list(tok(text, add_special_tokens=False)["input_ids"]), reason,
                                   None, config, len(ids)))
        return out


@functools.cache
def _served_model(backend: OpenAIBackend, hf_id: str) -> dict[str, str | None]:
    client = backend.client()
    try:
        listing = backend.call(lambda: client.models.list(), f"GET {backend.base_url}/models")
    finally:
        client.close()
    models = {m.id: m for m in listing.data}
    if backend.model is not None:
        chosen = models.get(backend.model)
    elif len(models) == 1:
        chosen = next(iter(models.values()))
    else:
        chosen = models.get(hf_id)
    if chosen is None:
        wanted = backend.model or f"one model, or one named {hf_id}"
        raise GenerationError(f"{backend.base_url} serves {sorted(models) or 'no model'}, not {wanted}: "
                              "name one as openai=URL#MODEL")
    revision = (chosen.model_extra or {}).get("revision")
    return {"id": chosen.id, "owned_by": chosen.owned_by, "revision": None if revision is None else str(revision)}


# ---------------------------------------------------------------- vllm


def _vllm_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vllm")
    except PackageNotFoundError:
        raise GenerationError(f"the vllm backend needs vLLM, which is not installed here: {VLLM_INSTALL}") from None


@dataclass(frozen=True)
class VLLMBackend:
    """vLLM's offline ``LLM.generate``: greedy, one engine per visible GPU, LoRA through LoRA requests.

    vllm is imported only in the engine's process, never by the suite. With one GPU the engine runs
    in this process; with several, one spawned process per GPU (pinned by ``CUDA_VISIBLE_DEVICES``)
    takes every n-th prompt. The base's model is not loaded by this backend: load it (for
    features) after generation, or leave vLLM memory with ``gpu_memory_utilization``.

    Args:
        gpus: how many visible GPUs to use (None: all).
        gpu_memory_utilization, max_model_len, enforce_eager: passed to ``vllm.LLM``.
        timeout_s: the longest a run may take before its engines are stopped.
    """

    gpus: int | None = None
    gpu_memory_utilization: float = 0.85
    max_model_len: int | None = None
    enforce_eager: bool = False
    timeout_s: float = 3600.0
    name: ClassVar[str] = "vllm"

    def check(self, operator: Any | None) -> None:
        if _remote_kind(operator, self.name, adapters=True) == "adapter":
            _lora_of(operator)

    def key_parts(self, base: LazyBase | LoadedBase) -> dict[str, str | int | float | bool | None]:
        return {"gen.backend": self.name, "gen.vllm_version": _vllm_version()}

    def engine_args(self, location: str, dtype: str, lora_rank: int | None) -> dict[str, Any]:
        """Keyword arguments of ``vllm.LLM`` for one engine on one GPU."""
        args: dict[str, Any] = {"model": location, "tokenizer": location, "dtype": dtype, "seed": 0,
                                "tensor_parallel_size": 1, "gpu_memory_utilization": self.gpu_memory_utilization,
                                "enforce_eager": self.enforce_eager}
        if self.max_model_len is not None:
            args["max_model_len"] = self.max_model_len
        if lora_rank is not None:
            rank = next((r for r in _VLLM_LORA_RANKS if r >= lora_rank), None)
            if rank is None:
                raise GenerationError(f"vLLM takes LoRA ranks up to {_VLLM_LORA_RANKS[-1]}, not {lora_rank}")
            args |= {"enable_lora": True, "max_lora_rank": rank, "max_loras": 1}
        return args

    @staticmethod
    def sampling_args(config: GenerationConfig, eos: frozenset[int]) -> dict[str, Any]:
        """Keyword arguments of ``vllm.SamplingParams``: greedy, the base's stop ids, ids only (we decode)."""
        return {"temperature": 0.0, "max_tokens": config.n_predict, "stop_token_ids": sorted(eos),
                "skip_special_tokens": False, "detokenize": False}

    def generate(self, base: LazyBase | LoadedBase, prompts: Sequence[str],
                 config: GenerationConfig, *, operator: Any | None = None,
                 progress: bool = True) -> list[Generation]:
        self.check(operator)
        _vllm_version()
        devices = visible_gpus()[: self.gpus]
        if not devices:
            raise GenerationError("the vllm backend needs a CUDA GPU and none is visible (CUDA_VISIBLE_DEVICES, "
                                  "/proc/driver/nvidia/gpus); use --dd-gen-backend hf here")
        tok, eos, rendered = _render(base, prompts, config, operator)
        lora = _lora_request(base, operator)
        rank = lora.pop("rank") if lora else None
        job = {"engine": self.engine_args(base.resolved.materialize(), str(base.identity()["dtype"]), rank),
               "sampling": self.sampling_args(config, eos), "lora": lora, "prompts": rendered}
        shards = [list(range(k, len(prompts), len(devices))) for k in range(len(devices))]
        bar = progress_bar(len(prompts), f"generate {base.name} with vLLM on {len(devices)} GPU(s)", enabled=progress)
        try:
            outs = (dict(zip(shards[0], _vllm_run(job, shards[0]), strict=True)) if len(devices) == 1
                    else self._run_parallel(job, devices, shards))
        finally:
            bar.update(len(prompts))
            bar.close()
        out = []
        for i, prompt in enumerate(prompts):
            ids, reason, stop = outs[i]
            out.append(_generation(prompt, tok, eos, ids, _finish(reason, "vLLM"),
                                   stop if isinstance(stop, int) else None, config, len(rendered[i])))
        return out

    def _run_parallel(self, job: dict[str, Any], devices: list[str],
                      shards: list[list[int]]) -> dict[int, tuple[list[int], str, Any]]:
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: CUDA not yet initialized
        workers = []
        for device, shard in zip(devices, shards, strict=True):
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_vllm_child, args=(device, job, shard, send), name=f"dd-vllm-{device}")
            proc.start()
            send.close()
            workers.append((device, shard, proc, receive))
        deadline = time.monotonic() + self.timeout_s
        outs: dict[int, tuple[list[int], str, Any]] = {}
        try:
            for device, shard, proc, receive in workers:
                while not receive.poll(1.0):
                    if not proc.is_alive():
                        raise GenerationError(f"the vLLM engine on GPU {device} exited ({proc.exitcode}) "
                                              "without a result")
                    if time.monotonic() > deadline:
                        raise GenerationError(f"vLLM did not finish within {self.timeout_s}s; engines stopped")
                try:
                    status, payload = receive.recv()
                except EOFError:
                    raise GenerationError(f"the vLLM engine on GPU {device} closed without a result") from None
                if status != "ok":
                    raise GenerationError(f"vLLM on GPU {device} failed:\n{payload}")
                outs.update(zip(shard, payload, strict=True))
        finally:
            for _, _, proc, _ in workers:
                proc.join(timeout=30)
                if proc.is_alive():
                    proc.terminate()
        return outs


def _lora_of(operator: Any) -> Any:
    adapter = getattr(operator, "adapter", None)
    if adapter is None or not hasattr(adapter, "save"):
        raise GenerationError(f"{operator.key()}: the vllm backend applies adapters as LoRA requests, and this "
                              "operator has no LoRA weights to hand over; use --dd-gen-backend hf")
    return adapter


def _lora_request(base: LazyBase | LoadedBase, operator: Any | None) -> dict[str, Any] | None:
    """The LoRA request of an adapter arm: its weights saved once under the cache, by their hash."""
    if _arm_kind(operator) != "adapter":
        return None
    from filelock import FileLock

    adapter = _lora_of(operator)
    sha = adapter.sha256()
    folder = Path(base.resolved.cache_root) / "vllm-lora" / sha[:16]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder / "adapter_config.json").exists():
            adapter.save(folder)
    return {"lora_name": f"dd-{sha[:12]}", "lora_int_id": 1, "lora_path": str(folder), "rank": adapter.config.r}


def _vllm_run(job: dict[str, Any], shard: list[int]) -> list[tuple[list[int], str, Any]]:
    """One engine over the prompts ``shard`` indexes: (token ids, finish reason, stop reason) each."""
    from vllm import LLM, SamplingParams

    llm = LLM(**job["engine"])
    lora = None
    if job["lora"]:
        from vllm.lora.request import LoRARequest

        lora = LoRARequest(**job["lora"])
    outs = llm.generate([{"prompt_token_ids": job["prompts"][i]} for i in shard], SamplingParams(**job["sampling"]),
                        lora_request=lora, use_tqdm=False)
    return [(list(o.outputs[0].token_ids), o.outputs[0].finish_reason, o.outputs[0].stop_reason) for o in outs]


def _vllm_child(device: str, job: dict[str, Any], shard: list[int], send: Any) -> None:
    """A spawned engine's entry point: pin one GPU before vllm (and CUDA) is imported, answer once."""
    os.environ["CUDA_VISIBLE_DEVICES"] = device
    try:
        send.send(("ok", _vllm_run(job, shard)))
    except BaseException:  # noqa: BLE001 - every failure goes back to the parent, which raises it
        send.send(("error", traceback.format_exc()[-3000:]))
    finally:
        send.close()
