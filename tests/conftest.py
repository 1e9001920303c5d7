"""Fixtures for the suite's own tests: the real artifact directory and a writable copy."""

import shutil
from pathlib import Path

import pytest
from syrupy.extensions.amber import AmberSnapshotExtension

from dd.paper import ArtifactStore, how_to_get, locate

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def artifact_root(dd_settings) -> Path:
    """The real artifact directory; tests that need it skip with the fetch hint when it is absent."""
    root = locate(dd_settings.artifacts)
    if not (root / "eval/results/judge_v4_step16.json").is_file():
        pytest.skip(f"paper artifacts not found under {root}: {how_to_get(root)}")
    return root


@pytest.fixture(scope="session")
def store(artifact_root) -> ArtifactStore:
    """A verified store over the real artifacts (a corrupt file fails the test that reads it)."""
    return ArtifactStore(artifact_root)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The cache root tiny bases are built under, shared by the session."""
    return tmp_path_factory.getbasetemp() / "dd-cache"


@pytest.fixture
def artifact_copy(artifact_root, tmp_path) -> Path:
    """A writable copy of the artifacts, to tamper with or delete from."""
    dest = tmp_path / "artifacts"
    shutil.copytree(artifact_root, dest)
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


class GoldenAmber(AmberSnapshotExtension):
    """Snapshots live in the top-level `golden/` folder, named after the test module."""

    @classmethod
    def dirname(cls, *, test_location) -> str:
        return str(Path(__file__).resolve().parents[1] / "golden")


@pytest.fixture
def snapshot(snapshot):
    return snapshot.use_extension(GoldenAmber)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """llama.cpp's OpenAI-compatible server on 127.0.0.1 serving SmolLM2-135M; skips with the install command."""
    from _llama_server import LlamaServer, why_unavailable

    why = why_unavailable()
    if why is not None:
        pytest.skip(why)
    server = LlamaServer(tmp_path_factory.mktemp("llama-server")).start()
    yield server
    server.stop()
