"""The pinned manifest, verification, and `dd artifacts fetch` against a local server."""

import functools
import hashlib
import http.server
import threading

import pytest

from dd import cli
from dd.paper import ArtifactCorrupt, ArtifactMissing, ArtifactStore, load_manifest


def test_manifest_pins_every_released_file():
    manifest = load_manifest()
    assert len(manifest.files) == 24
    assert len(manifest.commit) == 40
    assert all(len(f.sha256) == 64 and f.size > 0 for f in manifest.files)
    assert manifest.url("eval/results/pca_rank.json").endswith(f"{manifest.commit}/eval/results/pca_rank.json")


def test_real_copy_verifies(artifact_root):
    assert set(ArtifactStore(artifact_root).status().values()) == {"ok"}


def test_one_changed_byte_is_an_error_naming_the_file_and_both_hashes(artifact_copy):
    rel = "eval/results/judge_v4_step16.json"
    path = artifact_copy / rel
    raw = bytearray(path.read_bytes())
    raw[100] ^= 1
    path.write_bytes(bytes(raw))
    store = ArtifactStore(artifact_copy)
    with pytest.raises(ArtifactCorrupt) as err:
        store.json(rel)
    message = str(err.value)
    assert rel in message
    assert store.manifest.entry(rel).sha256 in message
    assert hashlib.sha256(bytes(raw)).hexdigest() in message


def test_missing_file_says_how_to_get_it(artifact_copy):
    (artifact_copy / "eval/results/pca_rank.json").unlink()
    with pytest.raises(ArtifactMissing, match="dd artifacts fetch"):
        ArtifactStore(artifact_copy).path("eval/results/pca_rank.json")


@pytest.fixture
def served(artifact_copy):
    """An HTTP server on 127.0.0.1 serving the artifact copy, as the paper's repository would."""
    handler = functools.partial(_QuietHandler, directory=str(artifact_copy))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield artifact_copy, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_fetch_downloads_and_verifies_every_file(served, tmp_path, capsys):
    _, url = served
    dest = tmp_path / "fetched"
    assert cli.main(["artifacts", "fetch", "--dest", str(dest), "--base-url", url]) == 0
    assert set(ArtifactStore(dest).status().values()) == {"ok"}
    assert "24 file(s) fetched" in capsys.readouterr().out
    assert cli.main(["artifacts", "fetch", "--dest", str(dest), "--base-url", url]) == 0  # idempotent
    assert "0 file(s) fetched" in capsys.readouterr().out


def test_fetch_refuses_a_corrupt_download_and_writes_nothing(served, tmp_path, capsys):
    source, url = served
    (source / "eval/results/pca_rank.json").write_text("{}")
    dest = tmp_path / "fetched"
    assert cli.main(["artifacts", "fetch", "--dest", str(dest), "--base-url", url]) == 1
    assert "pca_rank.json" in capsys.readouterr().err
    assert not (dest / "eval/results/pca_rank.json").exists()


def test_verify_command_flags_the_corrupt_file(artifact_copy, capsys):
    (artifact_copy / "eval/results/v1_full_v2.json").write_text("{}")
    assert cli.main(["artifacts", "verify", "--dir", str(artifact_copy)]) == 1
    assert "CORRUPT  eval/results/v1_full_v2.json" in capsys.readouterr().out
