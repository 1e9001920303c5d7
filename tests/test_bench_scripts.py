"""The benchmark scripts run: the GPU generation benchmark's code path, on a tiny model on the CPU."""

import json
import os
import subprocess
import sys

from helpers import ROOT


def test_gpu_generation_benchmark_smoke(tmp_path):
    out = tmp_path / "result.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DD_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "bench/bench_gpu_generate.py", "--smoke", "--out", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["prompts"] == 6 and result["h_last_shape"][0] == 6
    assert result["transformers_generate_s"] > 0 and result["paper_way_extrapolated_s"] > 0
    hf = result["backends"]["hf"]
    assert hf["status"] == "measured" and hf["with_h_last_s"] > hf["generate_s"] > 0 and hf["speedup_vs_transformers"] > 0
    for name in ("vllm", "openai"):  # measured on a GPU machine; here each says why not
        assert result["backends"][name]["status"] in ("measured", "unavailable"), result["backends"][name]
