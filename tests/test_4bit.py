"""4-bit loading: the paper ran Gemma 4 E2B in 4-bit (bitsandbytes). Where that cannot load, asking
for it is a clear error, and the default falls back to full precision with the choice in the identity,
so a 4-bit run and a full-precision run never share a cache entry.

The 4-bit load itself needs a CUDA GPU and the ``gpu`` extra; these tests cover every refusal and
the identity on a CPU, with ``gemma4-e2b`` (a base that allows 4-bit) pointed at a tiny Gemma 4.
"""

from __future__ import annotations

import importlib.util

import pytest

from dd.lm import LazyBase, _models, build_tiny_base, load_base, resolve_base


@pytest.fixture
def gemma4(root):
    """``gemma4-e2b``'s spec (allow_4bit) over a tiny random-init Gemma 4 folder."""
    folder = build_tiny_base("tiny-gemma4", root / "bases" / "tiny-gemma4")
    return resolve_base("gemma4-e2b", {"gemma4-e2b": folder}, cache_root=root)


def _bitsandbytes(monkeypatch, present: bool) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: (real("json") if present else None) if n == "bitsandbytes" else real(n, *a))


def test_asking_for_4bit_on_cpu_is_refused_before_loading(gemma4):
    assert gemma4.spec.allow_4bit
    with pytest.raises(RuntimeError, match="needs bitsandbytes and a CUDA GPU; this run's device is cpu"):
        load_base(gemma4, "cpu", load_in_4bit=True)
    with pytest.raises(RuntimeError, match="this run's device is cpu"):
        LazyBase(gemma4, "cpu", load_in_4bit=True)


def test_without_bitsandbytes_the_error_names_the_install(gemma4, monkeypatch):
    _bitsandbytes(monkeypatch, present=False)
    with pytest.raises(RuntimeError, match=r"bitsandbytes is missing: pip install 'dd-falsify\[gpu\]'"):
        LazyBase(gemma4, "cuda", load_in_4bit=True)
    assert not LazyBase(gemma4, "cuda").load_in_4bit  # the default falls back


def test_a_base_without_4bit_is_refused_even_on_a_gpu(root, monkeypatch):
    _bitsandbytes(monkeypatch, present=True)
    with pytest.raises(RuntimeError, match="4-bit loading of tiny-llama is not offered"):
        LazyBase(resolve_base("tiny-llama", cache_root=root), "cuda", load_in_4bit=True)


def test_the_cpu_fallback_loads_full_precision_and_says_so(gemma4):
    lazy = LazyBase(gemma4, "cpu")
    assert not lazy.load_in_4bit
    assert lazy.identity()["quant"] == "none"
    loaded = lazy.load()
    assert loaded.identity()["quant"] == "none" and loaded.identity() == lazy.identity()


def test_4bit_enters_the_identity_and_so_the_cache_key(gemma4, monkeypatch):
    """Where bitsandbytes and CUDA are present the default is the paper's 4-bit; no model is loaded here."""
    _bitsandbytes(monkeypatch, present=True)
    four = LazyBase(gemma4, "cuda")
    full = LazyBase(gemma4, "cuda", load_in_4bit=False)
    assert four.load_in_4bit and not full.load_in_4bit
    assert four.identity()["quant"] == _models.QUANT_4BIT and full.identity()["quant"] == "none"
    assert {k: v for k, v in four.identity().items() if k != "quant"} == {
        k: v for k, v in full.identity().items() if k != "quant"}
