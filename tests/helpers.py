"""Helpers for the suite's own tests that run pytest as a user would."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_pytest(*args, artifacts_dir: Path, cwd: Path = ROOT, extra_env: dict | None = None):
    """Run pytest in a fresh process (as a user would) and return (exit code, output)."""
    env = {**os.environ, "DD_ARTIFACTS": str(artifacts_dir), "HF_HUB_OFFLINE": "1", **(extra_env or {})}
    env.pop("PYTEST_XDIST_WORKER", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def read_report(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def tiny_loader():
    """A loader with its own memo: each test module gets its own models (tests hook and cast them).

    Tiny bases are built under ``root``; real ones come from the default cache.
    """
    from dd.lm import load_base, resolve_base

    loaded: dict = {}

    def tiny(name: str, root):
        if name not in loaded:
            loaded[name] = load_base(resolve_base(name, cache_root=root) if name.startswith("tiny-") else resolve_base(name))
        return loaded[name]

    return tiny


HEDGE_MARKERS = ("maybe", "might", "not sure", "double-check", "perhaps")


def rule_judge(messages: list[dict]) -> str | None:
    """A fixed-rule stand-in for an LLM judge, for a replay server's ``responder`` (tests only).

    Pass 1 calls every question UNCERTAIN; pass 2 scores hedging and self-verification 5 when the
    answer holds a hedge marker, else 2, and every other axis 4. Other questions are a miss.
    """
    from dd.judges import V4_AXES

    system = messages[0]["content"]
    if system.startswith("You classify questions"):
        return "UNCERTAIN"
    if not system.startswith("You grade one answer"):
        return None
    answer = messages[-1]["content"].split("\n\nAnswer:\n", 1)[1].lower()
    hedged = 5 if any(m in answer for m in HEDGE_MARKERS) else 2
    scores = dict.fromkeys(V4_AXES, 4) | {"hedging_appropriateness": hedged, "self_verification": hedged}
    return json.dumps(scores)


def edited_example(example: Path, tmp_path: Path, edits: dict[str, str] | None = None, extra: str = "") -> Path:
    """A claim-file example folder copied to ``tmp_path``, its ``claim.toml`` with ``edits`` (old -> new) and
    ``extra`` appended; every ``old`` must be in the file, so an edit can never silently miss."""
    import shutil

    folder = tmp_path / "claim"
    shutil.copytree(example, folder)
    text = (folder / "claim.toml").read_text()
    for old, new in (edits or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    (folder / "claim.toml").write_text(text + extra)
    return folder / "claim.toml"
