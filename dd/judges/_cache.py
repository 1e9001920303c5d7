"""A file cache of judge replies, keyed by named parts so a miss can be explained.

Key parts: judge model, endpoint (base URL), rubric version, sha256 of the exact messages,
temperature, seed, max_tokens and the structured-output schema. The API key is never a part and
never written. Only replies that the judge's strict parser accepted are stored: an error is
never cached, so a retry after a fix asks again. Files are written atomically (temp file +
`os.replace`), which keeps concurrent xdist workers safe without locks: both write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_SCHEMA = "dd-judge-cache/1"


def default_cache_dir() -> Path:
    """`$DD_CACHE/judges`, else `~/.cache/dd/judges`."""
    root = os.environ.get("DD_CACHE")
    if root:
        return Path(root) / "judges"
    return Path(os.path.expanduser("~")) / ".cache" / "dd" / "judges"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class CacheKey:
    """The named parts of one judge question; `digest` names its file."""

    model: str
    base_url: str
    rubric_version: str
    messages_sha256: str
    temperature: float
    seed: int | None
    max_tokens: int
    schema_sha256: str | None = None

    def parts(self) -> dict[str, Any]:
        return {
            "schema": CACHE_SCHEMA,
            "model": self.model,
            "base_url": self.base_url.rstrip("/"),
            "rubric_version": self.rubric_version,
            "messages_sha256": self.messages_sha256,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "schema_sha256": self.schema_sha256,
        }

    @property
    def digest(self) -> str:
        return hashlib.sha256(_canonical(self.parts()).encode("utf-8")).hexdigest()

    def __str__(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.parts().items())


def schema_sha256(schema: Mapping[str, Any] | None) -> str | None:
    return None if schema is None else hashlib.sha256(_canonical(schema).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedReply:
    text: str
    usage: Mapping[str, int]


class JudgeCache:
    """Judge replies under one root directory; `offline=True` makes a miss an error upstream.

    Args:
        root: directory of the cache (default `default_cache_dir()`).
        offline: when true the client raises `JudgeCacheMiss` instead of calling the endpoint.
        read_only: never write (useful for a shared golden cache).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, offline: bool = False, read_only: bool = False) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.offline = offline
        self.read_only = read_only

    def _file(self, key: CacheKey) -> Path:
        digest = key.digest
        return self.root / digest[:2] / f"{digest}.json"

    def get(self, key: CacheKey) -> CachedReply | None:
        path = self._file(key)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError):
            return None  # a torn or foreign file is a miss, and the next write replaces it
        if raw.get("key") != key.parts() or not isinstance(raw.get("reply"), str):
            return None
        return CachedReply(raw["reply"], raw.get("usage", {}))

    def put(self, key: CacheKey, reply: str, usage: Mapping[str, int] | None = None) -> Path | None:
        """Store one accepted reply atomically; returns its path (None when read-only)."""
        if self.read_only:
            return None
        path = self._file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = _canonical({"key": key.parts(), "reply": reply, "usage": dict(usage or {})})
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(payload)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def files(self) -> list[Path]:
        return sorted(self.root.rglob("*.json")) if self.root.exists() else []

    def __len__(self) -> int:
        return len(self.files())
