"""Generation backends without a server or a GPU: selection, the ``hf`` seam's unchanged keys,
arms a remote backend refuses, bounded retries, and the vllm backend's argument and output
mapping through a stand-in ``vllm`` module (vLLM itself needs a CUDA machine)."""

from __future__ import annotations

import importlib.util
import sys
import types
from types import SimpleNamespace

import httpx
import openai
import pytest

from dd.core import Cache, RepeatWatch, resolve_settings
from dd.lm import (
    HF,
    VLLM_INSTALL,
    GenerationConfig,
    GenerationError,
    LazyBase,
    OpenAIBackend,
    VLLMBackend,
    _backends,
    cached_generate,
    generate,
    generation_key,
    get_backend,
    render_prompt,
    resolve_base,
    visible_gpus,
)
from dd.operators import Lora, SystemPrompt
from dd.operators.lora import LoraAdapter, LoraTrainConfig
from dd.pytest import _xdist

PROMPTS = ["hi", "The capital of France", "def add(a, b):"]
CONFIG = GenerationConfig(n_predict=4, batch_size=3)


class Hook:
    """A stand-in hook operator (only its kind and key matter before anything runs)."""

    kind = "hook"

    def key(self) -> str:
        return "tempering:{}"


@pytest.fixture
def lazy(root):
    return LazyBase(resolve_base("tiny-llama", cache_root=root))


def test_option_values_name_the_backends(monkeypatch):
    assert isinstance(get_backend("hf"), HF) and isinstance(get_backend("vllm"), VLLMBackend)
    assert get_backend("openai=http://127.0.0.1:8000/v1") == OpenAIBackend("http://127.0.0.1:8000/v1")
    assert get_backend("openai=http://127.0.0.1:8000/v1#Org/Model").model == "Org/Model"
    for bad in ("openai", "openai=", "sglang"):
        with pytest.raises(ValueError, match="openai=URL"):
            get_backend(bad)
    getoption = lambda dest: None  # noqa: E731
    assert resolve_settings(getoption).gen_backend is None  # not chosen: a claim file may choose, else hf
    monkeypatch.setenv("DD_GEN_BACKEND", "openai=http://127.0.0.1:9/v1")
    assert resolve_settings(getoption).gen_backend == "openai=http://127.0.0.1:9/v1"
    monkeypatch.setenv("DD_GEN_BACKEND", "transformers")
    with pytest.raises(ValueError, match="--dd-gen-backend"):
        resolve_settings(getoption)


def test_hf_backend_keeps_every_key_and_result(lazy, tmp_path):
    cache = Cache(tmp_path)
    plain = cached_generate(lazy, PROMPTS, CONFIG, cache)
    assert generation_key(lazy, PROMPTS, CONFIG, backend=HF()) == generation_key(lazy, PROMPTS, CONFIG)
    assert cached_generate(lazy, PROMPTS, CONFIG, Cache(tmp_path, offline=True), backend=HF()) == plain
    assert plain == generate(lazy.load(), PROMPTS, CONFIG)


@pytest.mark.parametrize("backend", [OpenAIBackend("http://127.0.0.1:9/v1"), VLLMBackend()], ids=["openai", "vllm"])
def test_a_hook_on_a_remote_backend_says_to_use_hf(lazy, tmp_path, backend):
    with pytest.raises(GenerationError, match="hook operator.*--dd-gen-backend hf"):
        cached_generate(lazy, PROMPTS, CONFIG, Cache(tmp_path), operator=Hook(), backend=backend)
    assert list(Cache(tmp_path).entries("generations")) == []  # refused before the cache, nothing asked


def test_an_adapter_needs_hf_or_vllm_on_a_server(lazy, tmp_path):
    lora = Lora(LoraAdapter(LoraTrainConfig(), {}))
    with pytest.raises(GenerationError, match="use --dd-gen-backend hf, or vllm"):
        OpenAIBackend("http://127.0.0.1:9/v1").check(lora)
    VLLMBackend().check(lora)  # a LoRA goes through vLLM's LoRA requests


def _status(code: int, body: str) -> openai.APIStatusError:
    response = httpx.Response(code, request=httpx.Request("POST", "http://127.0.0.1:9/v1/completions"), text=body)
    return openai.APIStatusError(body, response=response, body=None)


def _failing(errors):
    calls = []

    def send():
        calls.append(1)
        raise errors[min(len(calls), len(errors)) - 1]

    return send, calls


def test_a_repeated_identical_500_ends_the_retries_a_transient_one_does_not():
    backend = OpenAIBackend("http://127.0.0.1:9/v1", max_retries=10, backoff_s=0.001, backoff_max_s=0.002)
    send, calls = _failing([_status(500, "prompt: Input should be a valid string")])
    with pytest.raises(GenerationError, match="same HTTP 500 3 times in a row.*never answers.*valid string"):
        backend.call(send, "POST /completions")
    assert len(calls) == 3  # not 11
    send, calls = _failing([_status(500, f"overloaded #{k}") for k in range(20)])
    with pytest.raises(GenerationError, match="still failing after 11 attempts"):
        backend.call(send, "POST /completions")
    assert len(calls) == 11
    send, calls = _failing([_status(400, "bad request")])
    with pytest.raises(GenerationError, match="HTTP 400, which no retry clears"):
        backend.call(send, "POST /completions")
    assert len(calls) == 1
    assert backend.call(lambda: "ok", "x") == "ok"


def test_repeat_watch_counts_only_identical_5xx_in_a_row():
    watch = RepeatWatch(limit=3)
    assert [watch.never_clears(500, b) for b in ("a", "a", "b", "b", "b")] == [False, False, False, False, True]
    watch = RepeatWatch(limit=2)
    assert [watch.never_clears(s, "a") for s in (500, 429, 500, 500)] == [False, False, False, True]


def test_an_unknown_finish_reason_is_an_error_never_a_guess():
    with pytest.raises(GenerationError, match="content_filter"):
        _backends._finish("content_filter", "POST /completions")


def test_visible_gpus_without_touching_cuda(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,-1,1")  # CUDA stops at the first invalid entry
    assert visible_gpus() == ["0"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_each_xdist_worker_takes_one_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    assert _xdist.pin_worker_gpu(SimpleNamespace()) is None  # not a worker: nothing changes
    assert visible_gpus() == ["4", "5"]
    assert _xdist.pin_worker_gpu(SimpleNamespace(workerinput={"workerid": "gw3"})) == "5"
    assert visible_gpus() == ["5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert _xdist.pin_worker_gpu(SimpleNamespace(workerinput={"workerid": "gw0"})) is None  # no CUDA devices


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_missing_is_an_error_naming_the_install(lazy):
    with pytest.raises(GenerationError, match="vLLM, which is not installed") as err:
        VLLMBackend().generate(lazy, PROMPTS, CONFIG)
    assert VLLM_INSTALL in str(err.value)
    with pytest.raises(GenerationError, match="pip install vllm"):
        VLLMBackend().key_parts(lazy)


def test_vllm_arguments():
    backend = VLLMBackend(gpu_memory_utilization=0.5, max_model_len=4096)
    args = backend.engine_args("/models/b", "bfloat16", None)
    assert args == {"model": "/models/b", "tokenizer": "/models/b", "dtype": "bfloat16", "seed": 0,
                    "tensor_parallel_size": 1, "gpu_memory_utilization": 0.5, "enforce_eager": False,
                    "max_model_len": 4096}
    lora = backend.engine_args("/m", "bfloat16", 12)
    assert {k: lora[k] for k in ("enable_lora", "max_lora_rank", "max_loras")} == {
        "enable_lora": True, "max_lora_rank": 16, "max_loras": 1}
    with pytest.raises(GenerationError, match="LoRA ranks up to 512"):
        backend.engine_args("/m", "bfloat16", 600)
    assert VLLMBackend.sampling_args(GenerationConfig(n_predict=7), frozenset({2, 0})) == {
        "temperature": 0.0, "max_tokens": 7, "stop_token_ids": [0, 2], "skip_special_tokens": False,
        "detokenize": False}


@pytest.fixture
def fake_vllm(monkeypatch):
    """A stand-in ``vllm`` that records what it was given and stops every prompt after two tokens."""
    seen: dict = {}

    class LLM:
        def __init__(self, **kwargs):
            seen["engine"] = kwargs

        def generate(self, prompts, params, lora_request=None, use_tqdm=True):
            seen.update(prompts=prompts, sampling=params.kwargs, lora=lora_request)
            eos = params.kwargs["stop_token_ids"][0]
            return [SimpleNamespace(outputs=[SimpleNamespace(token_ids=[7, 8, eos] if i % 2 else [7, 8, 9],
                                                             finish_reason="stop" if i % 2 else "length",
                                                             stop_reason=eos if i % 2 else None)])
                    for i, _ in enumerate(prompts)]

    vllm = types.ModuleType("vllm")
    vllm.LLM = LLM
    vllm.SamplingParams = lambda **kwargs: SimpleNamespace(kwargs=kwargs)
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda **kwargs: kwargs
    for name, module in {"vllm": vllm, "vllm.lora": types.ModuleType("vllm.lora"), "vllm.lora.request": request}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(_backends, "_vllm_version", lambda: "0.33.0+fake")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    return seen


def test_vllm_path_maps_prompts_outputs_and_lora(lazy, fake_vllm, tmp_path):
    base = lazy.load()
    arm = SystemPrompt()
    gens = cached_generate(lazy, PROMPTS, CONFIG, Cache(tmp_path), operator=arm, backend=VLLMBackend(), progress=False)
    rendered = [render_prompt(base.tokenizer, p, operator=arm) for p in PROMPTS]
    assert fake_vllm["prompts"] == [{"prompt_token_ids": ids} for ids in rendered]  # the arm's render, as hf's
    assert fake_vllm["engine"]["model"] == base.location and fake_vllm["engine"]["dtype"] == "float32"
    eos = fake_vllm["sampling"]["stop_token_ids"][0]
    assert [g.finish_reason for g in gens] == ["length", "eos", "length"]
    assert gens[1].token_ids == (7, 8, eos) and gens[1].text == base.tokenizer.decode([7, 8])
    assert gens[0].token_ids == (7, 8, 9) and gens[0].n_prompt_tokens == len(rendered[0])
    (entry,) = Cache(tmp_path).entries("generations")
    assert entry.parts["gen.backend"] == "vllm" and entry.parts["gen.vllm_version"] == "0.33.0+fake"
    lora = Lora(LoraAdapter(LoraTrainConfig(r=8), {}))
    VLLMBackend().generate(lazy, PROMPTS[:1], CONFIG, operator=lora, progress=False)
    request = fake_vllm["lora"]
    assert request["lora_int_id"] == 1
    assert (lazy.resolved.cache_root / "vllm-lora" / lora.spec.adapter_sha256[:16] / "adapter_config.json").exists()
    assert request["lora_path"].endswith(lora.spec.adapter_sha256[:16])
    assert fake_vllm["engine"]["enable_lora"] and fake_vllm["engine"]["max_lora_rank"] == 8


def test_the_option_wins_over_a_claim_files_backend():
    """`--dd-gen-backend` when given, else the claim file's `[generation] backend`, else in-process."""
    from dd.core import Settings
    from dd.fixtures.bases import BasePool

    served = "openai=http://127.0.0.1:9/v1"
    assert isinstance(BasePool(Settings()).backend_for(None), HF)
    assert BasePool(Settings()).backend_for(served) == OpenAIBackend("http://127.0.0.1:9/v1")
    assert isinstance(BasePool(Settings(gen_backend="hf")).backend_for(served), HF)
    assert BasePool(Settings(gen_backend="vllm")).backend_for(None) == BasePool(Settings(gen_backend="vllm")).backend
