"""Tests for dd.core: keys, atomic writes, corruption detection, offline misses, concurrency, every kind."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dd.cli import _cache as _cache_cli
from dd.core import Cache, CacheKey, CacheMiss, CorruptCacheEntry, resolve_cache_root, resolve_settings, sha256_json


def _key(**over) -> CacheKey:
    parts = {"base": "tiny-llama", "dtype": "float32", "n": 3, "temp": 0.0, "chat": True, "rev": None}
    parts.update(over)
    return CacheKey("features", parts)


def test_digest_is_canonical_and_order_free():
    a = CacheKey("features", {"a": 1, "b": "x"})
    b = CacheKey("features", {"b": "x", "a": 1})
    assert a.digest == b.digest and len(a.digest) == 64
    assert CacheKey("generations", {"a": 1, "b": "x"}).digest != a.digest
    assert CacheKey("features", {"a": 2, "b": "x"}).digest != a.digest


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.one_of(st.integers(), st.text(max_size=8), st.booleans(), st.none()), max_size=6))
def test_digest_ignores_insertion_order(parts):
    rev = dict(reversed(list(parts.items())))
    assert CacheKey("k", parts).digest == CacheKey("k", rev).digest


def test_key_rejects_non_scalar_parts():
    with pytest.raises(TypeError, match="scalar"):
        CacheKey("features", {"layers": [1, 2]})
    with pytest.raises(ValueError):
        CacheKey("a/b", {})


def test_explain_and_diff_name_every_part():
    k = _key()
    lines = k.explain()
    assert "base = 'tiny-llama'" in lines and "rev = None" in lines and len(lines) == 6
    assert k.diff(_key(dtype="bfloat16")) == ["dtype: 'bfloat16' -> 'float32'"]


def test_npz_and_json_roundtrip(tmp_path):
    c = Cache(tmp_path)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    c.put(_key(), {"X": x, "y": np.array([0, 1, 1])})
    got = c.get(_key())
    np.testing.assert_array_equal(got["X"], x)
    c.put(_key(n=4), {"items": [{"text": "hé", "ids": [1, 2]}]}, fmt="json")
    assert c.get(_key(n=4)) == {"items": [{"text": "hé", "ids": [1, 2]}]}
    assert c.get(_key(n=5)) is None
    assert c.contains(_key()) and not c.contains(_key(n=5))
    assert not list(tmp_path.rglob("*.tmp"))


def test_interrupted_write_leaves_no_entry(tmp_path, monkeypatch):
    c = Cache(tmp_path)
    real = os.replace

    def boom(src, dst):
        if str(dst).endswith(".meta.json"):
            raise KeyboardInterrupt  # a kill between payload and meta
        real(src, dst)

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        c.put(_key(), {"X": np.zeros(3)})
    monkeypatch.undo()
    assert c.get(_key()) is None  # the meta file is the commit point
    assert not list(tmp_path.rglob("*.tmp"))


def test_corrupt_payload_is_detected_not_loaded(tmp_path):
    c = Cache(tmp_path)
    path = c.put(_key(), {"X": np.ones((4, 4))})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCacheEntry, match=str(path.name)):
        c.get(_key())
    with pytest.raises(CorruptCacheEntry):
        c.get_or_build(_key(), lambda: {"X": np.zeros(1)})


def test_missing_payload_and_bad_meta_are_corrupt(tmp_path):
    c = Cache(tmp_path)
    path = c.put(_key(), {"X": np.ones(2)})
    path.unlink()
    with pytest.raises(CorruptCacheEntry, match="missing"):
        c.get(_key())
    path2 = c.put(_key(n=9), {"X": np.ones(2)})
    path2.with_name(path2.name.replace(".npz", ".meta.json")).write_text("{not json")
    with pytest.raises(CorruptCacheEntry, match="meta"):
        c.get(_key(n=9))


def test_a_meta_naming_no_format_is_corrupt_not_a_miss(tmp_path):
    c = Cache(tmp_path)
    path = c.put(_key(), {"X": np.ones(2)})
    meta = path.with_name(path.name.replace(".npz", ".meta.json"))
    meta.write_text(meta.read_text().replace('"npz"', '"pickle"'))
    with pytest.raises(CorruptCacheEntry, match="no known format") as err:
        c.get(_key())
    assert "dd cache clear --kind features" in str(err.value) and str(tmp_path) in str(err.value)
    assert [e.format for e in c.entries()] == ["corrupt"]  # listed as such by `dd cache ls`


def test_get_or_build_builds_once_and_never_caches_errors(tmp_path):
    c = Cache(tmp_path)
    calls = []

    def bad():
        calls.append(1)
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError):
        c.get_or_build(_key(), bad)
    assert c.get(_key()) is None
    out = c.get_or_build(_key(), lambda: {"X": np.ones(2)})
    again = c.get_or_build(_key(), bad)
    np.testing.assert_array_equal(out["X"], again["X"])
    assert len(calls) == 1


def test_offline_miss_explains_the_key(tmp_path):
    Cache(tmp_path).put(_key(dtype="bfloat16"), {"X": np.ones(1)})
    c = Cache(tmp_path, offline=True)
    with pytest.raises(CacheMiss) as err:
        c.get_or_build(_key(), lambda: pytest.fail("must not build offline"))
    msg = str(err.value)
    assert "base = 'tiny-llama'" in msg and "--dd-offline" in msg
    assert "dtype: 'bfloat16' -> 'float32'" in msg  # nearest entry's differing part
    # a hit works offline, and a builder that needs no model may still run
    assert c.get_or_build(_key(dtype="bfloat16"), lambda: pytest.fail("hit")) is not None
    assert c.get_or_build(_key(n=7), lambda: {"X": np.ones(1)}, needs_model=False)["X"].shape == (1,)


def _worker(root: str, counter: str, barrier, results) -> None:
    def build():
        with open(counter, "a") as f:
            f.write("built\n")
        time.sleep(0.4)
        return {"X": np.arange(5)}

    barrier.wait()
    out = Cache(root).get_or_build(_key(), build)
    results.put(out["X"].tolist())


def test_two_processes_build_exactly_once(tmp_path):
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    counter = tmp_path / "count.txt"
    procs = [ctx.Process(target=_worker, args=(str(tmp_path / "c"), str(counter), barrier, results)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert counter.read_text().count("built") == 1
    assert got == [[0, 1, 2, 3, 4]] * 3


def test_entries_find_clear(tmp_path):
    c = Cache(tmp_path)
    c.put(_key(), {"X": np.ones(1)})
    c.put(CacheKey("generations", {"base": "b"}), {"items": []}, fmt="json")
    infos = list(c.entries())
    assert sorted(e.kind for e in infos) == ["features", "generations"]
    assert c.find(_key().digest[:10])[0].parts["base"] == "tiny-llama"
    assert c.clear("generations") == 1 and [e.kind for e in c.entries()] == ["features"]
    assert c.clear() == 1 and list(c.entries()) == []


def test_clear_refuses_a_kind_outside_the_root(tmp_path):
    (tmp_path / "c").mkdir()
    with pytest.raises(ValueError, match="bad cache kind"):
        Cache(tmp_path / "c").clear("..")
    assert (tmp_path / "c").is_dir()


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="dd")
    _cache_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.handler(args)


def test_cli_ls_why_clear(tmp_path, capsys):
    c = Cache(tmp_path)
    c.put(_key(), {"X": np.ones(1)})
    assert _cli("cache", "--cache-dir", str(tmp_path), "ls") == 0
    out = capsys.readouterr().out
    assert _key().digest[:12] in out and "1 entries" in out
    assert _cli("cache", "why", _key().digest[:8], "--cache-dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "dtype = 'float32'" in out and "features" in out
    assert _cli("cache", "--cache-dir", str(tmp_path), "why", "ffffffff") == 1
    assert _cli("cache", "--cache-dir", str(tmp_path), "clear", "--kind", "features") == 0
    assert list(c.entries()) == []


def test_one_resolver_places_the_cache(monkeypatch, tmp_path):
    """``Cache()``, the plugin's settings and the base resolver all agree, through ``resolve_cache_root``."""
    from dd.lm import resolve_base

    def settings(**options):
        return resolve_settings(lambda dest: options.get(dest))

    monkeypatch.setenv("DD_CACHE", str(tmp_path / "x"))
    assert Cache().root == settings().cache_root == resolve_base("tiny-llama").cache_root == tmp_path / "x"
    assert settings(dd_cache=str(tmp_path / "flag")).cache_root == resolve_cache_root(tmp_path / "flag")
    monkeypatch.delenv("DD_CACHE")
    assert Cache().root == settings().cache_root == resolve_cache_root() == Path.home() / ".cache" / "dd"


def _every_kind(root: Path) -> Cache:
    """A cache holding a feature, two judge replies (as the judge client keys them) and a tiny base."""
    from dd.judges import JudgeConfig, judge_key

    c = Cache(root)
    c.put(_key(), {"X": np.ones(1)})
    config = JudgeConfig("http://127.0.0.1:1/v1", "judge-m")
    for q in ("q1", "q2"):
        c.put(judge_key(config, "v4-1", [{"role": "user", "content": q}], 8, None), {"reply": "ASSERT", "usage": {}},
              fmt="json")
    base = root / "bases" / "tiny-llama"
    base.mkdir(parents=True)
    (base / "model.safetensors").write_bytes(b"0" * 100)
    (base / "dd_tiny.json").write_text('{"name": "tiny-llama", "build_version": 3, "seed": 0}')
    return c


def test_every_kind_is_listed_and_cleared_with_true_counts(tmp_path, capsys):
    c = _every_kind(tmp_path)
    assert sorted(e.kind for e in c.entries()) == ["bases", "features", "judges", "judges"]
    (base,) = c.entries("bases")
    assert (base.digest, base.format, base.parts["build_version"]) == ("tiny-llama", "folder", 3) and base.size >= 100
    assert _cli("cache", "--cache-dir", str(tmp_path), "ls") == 0
    out = capsys.readouterr().out
    assert "4 entries" in out and "(bases 1, features 1, judges 2)" in out and "base_url=http://127.0.0.1:1/v1" in out
    assert _cli("cache", "--cache-dir", str(tmp_path), "why", "tiny-llama") == 0
    assert "build_version = 3" in capsys.readouterr().out
    assert _cli("cache", "--cache-dir", str(tmp_path), "clear", "--kind", "judges") == 0
    assert "removed 2 judges entries" in capsys.readouterr().out and not (tmp_path / "judges").exists()
    assert _cli("cache", "--cache-dir", str(tmp_path), "clear") == 0
    out = capsys.readouterr().out
    assert "removed 1 entries" in out and "kept 1 bases" in out  # bases go only when named
    assert c.clear("bases") == 1 and list(c.entries()) == []


def test_dd_cache_command_as_a_user_runs_it(tmp_path):
    """The installed ``dd`` script: ls sees every kind and marks a corrupt entry; a bad kind is refused."""
    _every_kind(tmp_path)
    bad = Cache(tmp_path).put(CacheKey("generations", {"base": "b"}), {"items": []}, fmt="json")
    bad.with_name(bad.name.replace(".json", ".meta.json")).write_text("{torn")
    env = {**os.environ, "DD_CACHE": str(tmp_path)}
    dd = [str(Path(sys.executable).with_name("dd")), "cache"]
    ls = subprocess.run([*dd, "ls"], env=env, capture_output=True, text=True, timeout=60)
    assert ls.returncode == 0, ls.stderr
    assert "(bases 1, features 1, generations 1, judges 2)" in ls.stdout and "CORRUPT" in ls.stdout
    refused = subprocess.run([*dd, "clear", "--kind", ".."], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "invalid kind value" in refused.stderr
    cleared = subprocess.run([*dd, "clear", "--kind", "judges"], env=env, capture_output=True, text=True, timeout=60)
    assert cleared.returncode == 0 and "removed 2 judges entries" in cleared.stdout


def test_adapters_are_entries_built_once_checked_and_offline_aware(tmp_path, monkeypatch):
    """``cached_sft_adapter`` stores trained weights as an ``adapters`` entry under the one rule."""
    import torch

    import dd.operators
    from dd.arcs import cached_sft_adapter
    from dd.operators import LoraAdapter, LoraTrainConfig

    class Base:  # a base is only asked for its identity unless the adapter must be trained
        def identity(self):
            return {"base": "fake", "dtype": "float32"}

    trained = []

    def train_sft(base, pairs, config, adapter=None):
        assert adapter is None  # a first stage continues no adapter
        trained.append(pairs)
        state = {"base_model.model.layers.0.q_proj.lora_A.weight": torch.arange(6, dtype=torch.bfloat16).view(2, 3)}
        return LoraAdapter(config, state, ({"method": "sft", "steps": 1},))

    monkeypatch.setattr(dd.operators, "train_sft", train_sft)
    monkeypatch.setattr(Base, "load", lambda self: self, raising=False)
    pairs, config = [("q", "a")], LoraTrainConfig(max_steps=1)
    with pytest.raises(CacheMiss, match="adapters"):
        cached_sft_adapter(Base(), pairs, config, Cache(tmp_path, offline=True))
    op = cached_sft_adapter(Base(), pairs, config, Cache(tmp_path))
    again = cached_sft_adapter(Base(), pairs, config, Cache(tmp_path, offline=True))
    assert len(trained) == 1 and again.key() == op.key() and again.spec.stages == "sft"
    assert again.adapter.state["base_model.model.layers.0.q_proj.lora_A.weight"].dtype == torch.bfloat16
    (entry,) = Cache(tmp_path).entries("adapters")
    assert entry.parts["sft.max_steps"] == 1 and entry.parts["base.base"] == "fake"
    data = bytearray(entry.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.path.write_bytes(bytes(data))
    with pytest.raises(CorruptCacheEntry, match=entry.path.name):
        cached_sft_adapter(Base(), pairs, config, Cache(tmp_path))
    assert len(trained) == 1  # a corrupt adapter is neither loaded nor silently retrained


def test_cache_imports_no_torch():
    code = "import sys, dd.core, dd.cli; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_sha256_json_is_stable():
    assert sha256_json({"b": 1, "a": [1, 2]}) == sha256_json({"a": [1, 2], "b": 1})
