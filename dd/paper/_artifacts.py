"""The paper's released result files: a pinned manifest, where to find them, verification, fetching.

The files are data the suite reads, never part of it. Every read goes through `ArtifactStore.path`,
which checks the file's size and sha256 against the manifest once per process, so a tampered
file is an error naming the file and both hashes, never silently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

ENV_VAR = "DD_ARTIFACTS"


class ArtifactMissing(FileNotFoundError):
    """A manifest file is not present in the artifact directory."""


class ArtifactCorrupt(RuntimeError):
    """A present file's size or hash differs from the manifest."""


@dataclass(frozen=True)
class ManifestEntry:
    """One pinned file: its path inside the paper's repository, sha256 and size in bytes."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """The pinned release: repository, commit and the files."""

    repository: str
    commit: str
    raw_url: str
    files: tuple[ManifestEntry, ...]

    def entry(self, path: str) -> ManifestEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise KeyError(f"{path!r} is not in the pinned artifact manifest")

    def url(self, path: str) -> str:
        return self.raw_url.format(repository=self.repository, commit=self.commit, path=path)


def load_manifest() -> Manifest:
    """Read the manifest shipped inside the package."""
    raw = json.loads(resources.files("dd.paper").joinpath("artifacts_manifest.json").read_text())
    files = tuple(ManifestEntry(f["path"], f["sha256"], f["size"]) for f in raw["files"])
    return Manifest(raw["repository"], raw["commit"], raw["raw_url"], files)


def default_cache_dir() -> Path:
    """Where `dd artifacts fetch` puts files when no directory is given."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dd" / "paper-artifacts"


def locate(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The artifact directory: the option, then `DD_ARTIFACTS`, then the user cache."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return default_cache_dir()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def how_to_get(root: Path) -> str:
    return (
        f"get the paper's released files with `dd artifacts fetch --dest {root}` "
        f"(or point --dd-artifacts / {ENV_VAR} at a copy)"
    )


class ArtifactStore:
    """Verified access to the paper's files under one root directory."""

    def __init__(self, root: Path, manifest: Manifest | None = None) -> None:
        self.root = Path(root)
        self.manifest = manifest or load_manifest()
        self._verified: set[str] = set()

    def path(self, rel: str) -> Path:
        """The verified path of a manifest file; raises ArtifactMissing or ArtifactCorrupt."""
        entry = self.manifest.entry(rel)
        path = self.root / rel
        if not path.is_file():
            raise ArtifactMissing(f"paper artifact {rel} not found under {self.root}: {how_to_get(self.root)}")
        if rel not in self._verified:
            verify_file(path, entry)
            self._verified.add(rel)
        return path

    def json(self, rel: str):
        return json.loads(self.path(rel).read_text(encoding="utf-8"))

    def status(self) -> dict[str, str]:
        """Per file: 'ok', 'missing' or the corruption message."""
        out: dict[str, str] = {}
        for entry in self.manifest.files:
            try:
                self.path(entry.path)
                out[entry.path] = "ok"
            except ArtifactMissing:
                out[entry.path] = "missing"
            except ArtifactCorrupt as err:
                out[entry.path] = str(err)
        return out


def verify_file(path: Path, entry: ManifestEntry) -> None:
    size = path.stat().st_size
    actual = sha256_file(path)
    if actual != entry.sha256 or size != entry.size:
        raise ArtifactCorrupt(
            f"paper artifact {entry.path} at {path} does not match the pinned manifest: "
            f"expected sha256 {entry.sha256} ({entry.size} bytes), found sha256 {actual} ({size} bytes). "
            "Refusing to use it; restore the file or re-run `dd artifacts fetch`."
        )


def fetch(
    dest: Path, manifest: Manifest | None = None, base_url: str | None = None, timeout: float = 60.0
) -> list[str]:
    """Download every manifest file that is missing or wrong into `dest`, verifying each hash.

    `base_url` replaces the repository's raw address (tests serve a copy on 127.0.0.1). A file
    is written to a temporary name and moved into place only once its hash matches, so an
    interrupted or corrupt download never leaves a bad file behind. Returns the fetched paths.
    """
    manifest = manifest or load_manifest()
    fetched = []
    for entry in manifest.files:
        target = dest / entry.path
        if target.is_file():
            try:
                verify_file(target, entry)
                continue
            except ArtifactCorrupt:
                pass
        url = f"{base_url.rstrip('/')}/{entry.path}" if base_url else manifest.url(entry.path)
        with urllib.request.urlopen(url, timeout=timeout) as response:
            payload = response.read()
        actual = hashlib.sha256(payload).hexdigest()
        if actual != entry.sha256:
            raise ArtifactCorrupt(
                f"download of {entry.path} from {url} has sha256 {actual}, expected {entry.sha256}; nothing written"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
            tmp.write(payload)
        os.replace(tmp.name, target)
        fetched.append(entry.path)
    return fetched
