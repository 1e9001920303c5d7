"""One claim file through two generation backends: in-process transformers and a server someone else wrote.

``examples/smollm2_prompt_claim/claim.toml`` (a hedging system prompt on SmolLM2-135M, judged by
the lexical judge) runs as a user runs it, ``pytest claims/pipeline --dd-claim FILE``, once with
``--dd-gen-backend hf`` and once with ``openai=URL`` at llama.cpp's server serving the same model
as its Q4_1 GGUF. Held: the same verdict and outcome for every step; every arm's generations within
the token-level parity bound of ``test_llama_server.py`` (``_llama_server.MIN_*``); and the two
runs' generation entries differing only by the backend's key parts, so neither run read the
other's answers. A verdict that differs between the backends fails here, naming both.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _llama_server import MIN_FIRST_DIVERGENCE, MIN_PREFIX_SHARE, parity

from dd.arcs import STEPS, ArmSpec, ClaimRun, load_claim
from dd.core import Cache, Settings
from dd.fixtures.bases import BasePool
from dd.lm import OpenAIBackend, Unavailable, resolve_base
from dd.paper import locate
from helpers import ROOT, read_report, run_pytest

pytestmark = [pytest.mark.model, pytest.mark.xdist_group("llama-server")]

CLAIM = ROOT / "examples" / "smollm2_prompt_claim" / "claim.toml"
#: The key parts a backend adds to a generation entry (hf adds none: its keys predate backends).
BACKEND_PARTS = ("gen.backend", "gen.server_model", "gen.server_owned_by", "gen.server_revision")


@pytest.fixture(scope="module")
def smollm2_folder() -> Path:
    """The converted SmolLM2-135M (the suite's cache), so the runs below convert nothing."""
    resolved = resolve_base("smollm2-135m")
    if isinstance(resolved, Unavailable):
        pytest.skip(resolved.reason)
    return Path(resolved.materialize())


def _claim_run(backend: str, cache: Path, folder: Path, report: Path, artifacts: Path) -> tuple[int, str, float]:
    """``pytest claims/pipeline --dd-claim`` in a fresh process, as a user runs it: (exit code, output, seconds)."""
    start = time.monotonic()
    code, out = run_pytest("claims/pipeline/test_claim_file.py", "-p", "no:randomly", "-p", "no:xdist",
                           "--dd-cache", str(cache), "--dd-model", f"smollm2-135m={folder}", "--dd-claim", str(CLAIM),
                           "--dd-gen-backend", backend, "--dd-report", str(report),
                           artifacts_dir=artifacts, extra_env={"OMP_NUM_THREADS": "1"})
    return code, out, time.monotonic() - start


def _entries(report: Path, claim_id: str) -> dict[str, dict]:
    return {e["claim"]: e for e in read_report(report)["results"] if e["claim"].startswith(claim_id)}


def _offline_run(cache: Path, folder: Path, backend: OpenAIBackend | None) -> ClaimRun:
    """The claim over a run's cache, offline: every arm is read back, a miss is an error, no model runs."""
    pool = BasePool(Settings(cache=cache, models={"smollm2-135m": folder}, offline=True))
    return ClaimRun(load_claim(CLAIM), pool.cache, bases=pool.get, backend=backend)


def _generations(run: ClaimRun) -> list:
    """Every arm's generations on both splits, in one order."""
    arms: tuple[ArmSpec, ...] = (ArmSpec("base"), run.claimed(), *run.baselines())
    return [g for split in ("train", "fresh") for arm in arms for g in run.generations(run.claim.base, split, arm)]


def test_the_same_claim_gives_the_same_verdicts_through_hf_and_a_llama_cpp_server(
        llama_server, smollm2_folder, tmp_path, dd_settings, record_property):
    claim, cache, artifacts = load_claim(CLAIM), tmp_path / "cache", locate(dd_settings.artifacts)
    runs = {name: _claim_run(spec, cache, smollm2_folder, tmp_path / f"{name}.json", artifacts)
            for name, spec in (("hf", "hf"), ("openai", f"openai={llama_server.url}"))}
    for name, (_, out, _) in runs.items():
        assert (tmp_path / f"{name}.json").is_file(), f"the {name} run wrote no report:\n{out}"
    reports = {name: _entries(tmp_path / f"{name}.json", claim.id) for name in runs}
    ran = [s for s in claim.steps if not claim.not_applicable(s)]
    offline = {"hf": _offline_run(cache, smollm2_folder, None),
               "openai": _offline_run(cache, smollm2_folder, OpenAIBackend(llama_server.url))}
    outcomes = {name: {s: run.step(s) for s in ran} for name, run in offline.items()}
    measured = {name: {s: {"verdict": o.verdict.verdict, "code": o.verdict.code}
                       | {m: o.metrics.get(m) for m in ("lexical_hedging.delta", "lexical_hedging.p",
                                                        "vs system-prompt.lexical_hedging.delta")}
                       for s, o in steps.items()} for name, steps in outcomes.items()}
    timing = {name: round(seconds, 1) for name, (_, _, seconds) in runs.items()}
    record_property("claim_parity", {"measured": measured, "seconds": timing})
    print("claim parity", measured, "seconds", timing)

    # every step: the same verdict and code, the same report outcome; the steps that ran went through their backend
    assert {s: (m["verdict"], m["code"]) for s, m in measured["openai"].items()} == {
        s: (m["verdict"], m["code"]) for s, m in measured["hf"].items()}, measured
    assert {k: (e["verdict"], e["outcome"]) for k, e in reports["openai"].items()} == {
        k: (e["verdict"], e["outcome"]) for k, e in reports["hf"].items()}
    for name, entries in reports.items():
        assert sorted(entries) == sorted(f"{claim.id}.{suffix}" for suffix in STEPS.values())
        for step in ran:  # as the file claims, through both backends
            entry = entries[f"{claim.id}.{STEPS[step]}"]
            assert (entry["verdict"], entry["metrics"]["gen_backend"]) == (claim.expect[step].verdict, name), entry
        assert runs[name][0] == 0, f"{name}:\n{runs[name][1]}"

    # every arm's answers within the token-level parity bound (read back: no model, no call)
    local, served = (_generations(offline[name]) for name in ("hf", "openai"))
    tokens = parity(local, served)
    record_property("token_parity", tokens)
    print("token parity", tokens)
    assert [g.n_prompt_tokens for g in served] == [g.n_prompt_tokens for g in local]  # the server read the same prompts
    assert min(tokens["first_divergence"]) >= MIN_FIRST_DIVERGENCE, tokens
    assert tokens["prefix_share"] >= MIN_PREFIX_SHARE, tokens

    # the runs' generation entries differ by the backend's parts alone: one entry per arm and split each
    parts = [e.parts for e in Cache(cache).entries("generations")]
    by_backend = {b: [p for p in parts if p.get("gen.backend") == b] for b in (None, "openai")}
    assert len(parts) == 2 * len(by_backend[None]) == 2 * len(by_backend["openai"]) == 2 * 6, parts
    assert {p["gen.server_model"] for p in by_backend["openai"]} == {llama_server.model}
    stripped = lambda p: sorted((k, str(v)) for k, v in p.items() if k not in BACKEND_PARTS)  # noqa: E731
    assert sorted(map(stripped, by_backend[None])) == sorted(map(stripped, by_backend["openai"]))
