"""Benchmark teacher-forced feature extraction with SmolLM2-135M on the released pairs.

Why: features for the paper's 293 (prompt, response) pairs are the heaviest default-CPU job of
the suite; this measures how far the batched forward is from the machine's matmul throughput,
what padding costs, and whether batching changes the features.

Usage:
    HF_HUB_OFFLINE=1 PYTHONPATH=. python bench/bench_features.py --n 24 --batch-size 8

Prints a markdown table (paste it into bench/README_features.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def load_pairs(source: str, n: int | None) -> list[tuple[str, str]]:
    """The released (prompt, response) pairs: step16 (100), fresh (193), or both."""
    root = Path(os.environ.get("DD_ARTIFACTS", "/work/shared/paper-artifacts")) / "eval" / "results"
    files = {"step16": ["judge_v4_step16.json"], "fresh": ["judge_v4_fresh.json"]}
    files["both"] = files["step16"] + files["fresh"]
    pairs: list[tuple[str, str]] = []
    for name in files[source]:
        items = json.loads((root / name).read_text())["items"]
        pairs += [(it["prompt"], it["response"]) for it in items]
    return pairs[:n] if n else pairs


def matmul_flops(m: int, k: int, n: int, seconds: float = 3.0) -> float:
    """Achieved FLOP/s of a plain float32 torch matmul (m x k) @ (k x n) on this machine."""
    import torch

    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2.0 * m * k * n * reps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=["step16", "fresh", "both"], default="step16")
    ap.add_argument("--n", type=int, default=24, help="first N pairs (0 = all)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--attn", default=None, help="attention implementation (default: eager on CPU)")
    ap.add_argument("--skip-alone", action="store_true", help="skip the one-at-a-time run")
    args = ap.parse_args()

    import torch

    from dd.lm import FeatureSpec, extract_features
    from dd.lm import load_base, resolve_base

    pairs = load_pairs(args.source, args.n)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    base = load_base(resolve_base("smollm2-135m"), attn_implementation=args.attn)
    t_load = time.perf_counter() - t0
    params = sum(p.numel() for p in base.model.parameters())
    cfg = base.model.config

    rows: list[tuple[str, str]] = []
    extract_features(base, pairs[:2], FeatureSpec(batch_size=2), progress=False)  # warm-up
    t0 = time.perf_counter()
    fs = extract_features(base, pairs, FeatureSpec(batch_size=args.batch_size), progress=False)
    t_batched = time.perf_counter() - t0
    tokens = int(fs.n_tokens.sum())
    flop = 2.0 * params * tokens
    emb = base.model.get_input_embeddings().weight.numel()
    flop_ne = 2.0 * (params - emb) * tokens
    width = int(np.ceil(tokens / len(pairs)))
    ref = matmul_flops(args.batch_size * width, cfg.hidden_size, cfg.intermediate_size)

    rows += [
        ("machine", f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"),
        ("pairs", f"{len(pairs)} ({args.source}, first {len(pairs)})"),
        ("model", f"smollm2-135m, {params / 1e6:.1f}M params, float32, attn={base.attn_implementation}"),
        ("load (converted cache)", f"{t_load:.1f} s"),
        ("tokens (real)", f"{tokens} (mean {tokens / len(pairs):.0f}/pair, max {int(fs.n_tokens.max())})"),
        (f"batched (batch {args.batch_size}, length-bucketed)", f"{t_batched:.1f} s, {tokens / t_batched:.0f} tok/s"),
        ("padding share", f"{fs.padding_share:.1%}"),
        ("achieved FLOP/s (2 x params x tokens)", f"{flop / t_batched / 1e9:.1f} GFLOP/s"),
        (f"plain matmul ({args.batch_size * width}x{cfg.hidden_size} @ {cfg.hidden_size}x{cfg.intermediate_size})", f"{ref / 1e9:.1f} GFLOP/s"),
        ("forward / matmul efficiency", f"{flop / t_batched / ref:.0%}"),
        (
            "same, non-embedding params only (the lookup is free; logits only for the last token)",
            f"{flop_ne / t_batched / 1e9:.1f} GFLOP/s, {flop_ne / t_batched / ref:.0%}",
        ),
    ]
    if not args.skip_alone:
        t0 = time.perf_counter()
        alone = [extract_features(base, [p], FeatureSpec(batch_size=1), progress=False) for p in pairs]
        t_alone = time.perf_counter() - t0
        diff = {
            k: max(float(np.abs(getattr(fs, k)[i] - getattr(a, k)[0]).max()) for i, a in enumerate(alone))
            for k in ("h_last", "last_n_mean", "response_mean")
        }
        rows += [
            ("one at a time", f"{t_alone:.1f} s, {tokens / t_alone:.0f} tok/s ({t_alone / t_batched:.2f}x batched)"),
            ("max |batched - alone|", ", ".join(f"{k} {v:.1e}" for k, v in diff.items())),
        ]
    rows.append(("load average before / after", f"{load_before:.1f} / {os.getloadavg()[0]:.1f} (2 = both cores busy)"))
    print("| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
