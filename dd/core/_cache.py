"""Content-addressed cache for responses, features and other expensive results.

Entries are addressed by the sha256 of a canonical JSON of named key parts, so a miss can always
be explained part by part. Writes are atomic (temp file + ``os.replace``) and each payload has a
sidecar meta JSON holding the key parts and the payload's sha256: a corrupt or half-written
entry is detected and never loaded. A file lock per key makes ``get_or_build`` build an entry
exactly once across ``pytest -n`` workers. This module imports neither torch nor transformers:
artifact-only code uses it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock

#: Bump when the semantics of cached features or generations change; part of their keys.
CODE_VERSION = "1"

Part = str | int | float | bool | None
Payload = dict[str, Any]
Format = Literal["npz", "json"]


class CacheError(RuntimeError):
    """Base class for cache errors."""


class CorruptCacheEntry(CacheError):
    """A stored entry fails its checksum or cannot be parsed; it is never loaded."""


class CacheMiss(CacheError):
    """A miss in offline mode, where building the entry would need a model or a judge."""


def default_root() -> Path:
    """The cache root: ``$DD_CACHE`` or ``~/.cache/dd``."""
    env = os.environ.get("DD_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dd"


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex sha256 of the canonical JSON of ``obj`` (sorted keys, no spaces)."""
    return sha256_bytes(canonical_json(obj).encode())


def canonical_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, compact separators, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True)
class CacheKey:
    """A cache key made of named parts, so that a miss can be explained.

    Attributes:
        kind: the entry family ("features", "generations", ...); also its sub-folder.
        parts: scalar key parts (strings, numbers, booleans, None).
    """

    kind: str
    parts: Mapping[str, Part] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.kind or "/" in self.kind or self.kind.startswith("."):
            raise ValueError(f"bad cache kind {self.kind!r}")
        for name, value in self.parts.items():
            if not isinstance(value, str | int | float | bool | type(None)):
                raise TypeError(f"key part {name!r} must be a scalar, got {type(value).__name__}")
        object.__setattr__(self, "parts", dict(sorted(self.parts.items())))

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON of kind and parts."""
        return sha256_json({"kind": self.kind, "parts": dict(self.parts)})

    def explain(self) -> list[str]:
        """One ``name = value`` line per part, for logs and miss messages."""
        return [f"{name} = {value!r}" for name, value in self.parts.items()]

    def summary(self, width: int = 80) -> str:
        """A short one-line summary of the parts."""
        text = ", ".join(f"{k}={v}" for k, v in self.parts.items())
        return text if len(text) <= width else text[: width - 3] + "..."

    def diff(self, other: CacheKey) -> list[str]:
        """The parts that differ from ``other``: why one key misses where the other hit."""
        names = sorted(set(self.parts) | set(other.parts))
        return [
            f"{n}: {other.parts.get(n)!r} -> {self.parts.get(n)!r}"
            for n in names
            if self.parts.get(n) != other.parts.get(n)
        ]


@dataclass(frozen=True)
class EntryInfo:
    """One stored entry, as listed by ``Cache.entries``."""

    kind: str
    digest: str
    format: str
    size: int
    created: float
    parts: dict[str, Part]
    path: Path

    def summary(self, width: int = 60) -> str:
        """Short summary of key parts for listings."""
        text = ", ".join(f"{k}={v}" for k, v in self.parts.items())
        return text if len(text) <= width else text[: width - 3] + "..."


def model_run_key(kind: str, identity: dict[str, Any], config: dict[str, Any], items: dict[str, str], *,
                  n_items: int, operator: str) -> CacheKey:
    """The key of a run through a base: its identity, the run's config, item hashes, operator, code version."""
    parts: dict[str, Any] = {f"base.{k}": v for k, v in identity.items()}
    parts.update(config)
    parts.update(items)
    parts.update(n_items=n_items, operator=operator, code_version=CODE_VERSION)
    return CacheKey(kind, parts)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _encode(payload: Payload, fmt: Format) -> bytes:
    if fmt == "json":
        return canonical_json(payload).encode()
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in payload.items()})
    return buf.getvalue()


def _decode(data: bytes, fmt: Format) -> Payload:
    if fmt == "json":
        return json.loads(data)
    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class Cache:
    """A content-addressed store rooted at a directory.

    Args:
        root: the cache folder; ``default_root()`` when None.
        offline: when True, ``get_or_build`` raises ``CacheMiss`` instead of building with a
            builder that needs a model (``needs_model=True``, the default).
    """

    def __init__(self, root: str | Path | None = None, *, offline: bool = False) -> None:
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.offline = offline

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r}, offline={self.offline})"

    # paths -------------------------------------------------------------------------------
    def _stem(self, key: CacheKey) -> Path:
        d = key.digest
        return self.root / key.kind / d[:2] / d

    def _paths(self, key: CacheKey, fmt: Format) -> tuple[Path, Path]:
        stem = self._stem(key)
        return stem.with_name(stem.name + "." + fmt), stem.with_name(stem.name + ".meta.json")

    def lock(self, key: CacheKey) -> FileLock:
        """The per-key file lock (also usable by builders that write elsewhere)."""
        stem = self._stem(key)
        stem.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(stem) + ".lock")

    # read / write ------------------------------------------------------------------------
    def contains(self, key: CacheKey) -> bool:
        """Whether a (meta-complete) entry exists; does not verify the checksum."""
        return any(self._paths(key, f)[1].exists() and self._paths(key, f)[0].exists() for f in ("npz", "json"))

    def get(self, key: CacheKey) -> Payload | None:
        """Load an entry, or None on a miss.

        Raises:
            CorruptCacheEntry: when the payload's sha256 or meta does not match.
        """
        for fmt in ("npz", "json"):
            data_path, meta_path = self._paths(key, fmt)  # type: ignore[arg-type]
            if not meta_path.exists():
                continue
            try:
                meta = json.loads(meta_path.read_bytes())
            except (OSError, ValueError) as exc:
                raise CorruptCacheEntry(f"unreadable cache meta {meta_path}: {exc}") from exc
            if meta.get("format") != fmt:
                continue
            if not data_path.exists():
                raise CorruptCacheEntry(f"cache entry {data_path} is missing (meta {meta_path} exists)")
            data = data_path.read_bytes()
            if sha256_bytes(data) != meta.get("sha256"):
                raise CorruptCacheEntry(
                    f"cache entry {data_path} fails its sha256 check; delete it "
                    f"(dd cache clear) or the file to rebuild"
                )
            if meta.get("kind") != key.kind or meta.get("parts") != dict(key.parts):
                raise CorruptCacheEntry(f"cache entry {data_path} holds a different key")
            try:
                return _decode(data, fmt)  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - any decode failure is corruption
                raise CorruptCacheEntry(f"cannot decode cache entry {data_path}: {exc}") from exc
        return None

    def put(self, key: CacheKey, payload: Payload, fmt: Format = "npz") -> Path:
        """Write an entry atomically: payload first, then its meta (the commit point)."""
        data = _encode(payload, fmt)
        data_path, meta_path = self._paths(key, fmt)
        meta = {
            "kind": key.kind,
            "digest": key.digest,
            "format": fmt,
            "parts": dict(key.parts),
            "created": time.time(),
            "size": len(data),
            "sha256": sha256_bytes(data),
        }
        _atomic_write(data_path, data)
        _atomic_write(meta_path, json.dumps(meta, indent=1, sort_keys=True).encode())
        return data_path

    def get_or_build(
        self,
        key: CacheKey,
        build: Callable[[], Payload],
        fmt: Format = "npz",
        *,
        needs_model: bool = True,
    ) -> Payload:
        """Return the entry for ``key``, building and storing it exactly once if missing.

        The build runs under the key's file lock after a re-check, so concurrent workers wait
        for the first one instead of building again. Errors from ``build`` propagate and are
        never cached.

        Raises:
            CacheMiss: in offline mode when the entry is missing and ``needs_model``.
            CorruptCacheEntry: when a stored entry fails its check.
        """
        hit = self.get(key)
        if hit is not None:
            return hit
        if self.offline and needs_model:
            raise CacheMiss(self.miss_message(key))
        with self.lock(key):
            hit = self.get(key)
            if hit is not None:
                return hit
            payload = build()
            self.put(key, payload, fmt)
        return payload

    def miss_message(self, key: CacheKey) -> str:
        """Explain a miss: the key's parts, and how they differ from the nearest entry of its kind."""
        lines = [
            f"offline cache miss for {key.kind} entry {key.digest[:12]} in {self.root} "
            "(building it needs a model; run without --dd-offline to build it). Key parts:"
        ]
        lines += ["  " + line for line in key.explain()]
        nearest = self._nearest(key)
        if nearest is not None:
            other = CacheKey(nearest.kind, nearest.parts)
            lines.append(f"nearest stored {key.kind} entry {nearest.digest[:12]} differs in:")
            lines += ["  " + line for line in key.diff(other)]
        return "\n".join(lines)

    def _nearest(self, key: CacheKey) -> EntryInfo | None:
        best, score = None, -1
        for info in self.entries(key.kind):
            same = sum(info.parts.get(k) == v for k, v in key.parts.items())
            if same > score:
                best, score = info, same
        return best

    # listing / housekeeping --------------------------------------------------------------
    def entries(self, kind: str | None = None) -> Iterator[EntryInfo]:
        """Iterate stored entries (by their meta files), optionally of one kind."""
        if not self.root.exists():
            return
        kinds = [self.root / kind] if kind else sorted(p for p in self.root.iterdir() if p.is_dir())
        for kdir in kinds:
            if not kdir.is_dir():
                continue
            for meta_path in sorted(kdir.glob("*/*.meta.json")):
                try:
                    meta = json.loads(meta_path.read_bytes())
                except (OSError, ValueError):
                    continue
                yield EntryInfo(
                    kind=meta.get("kind", kdir.name),
                    digest=meta.get("digest", meta_path.name.split(".")[0]),
                    format=meta.get("format", "?"),
                    size=int(meta.get("size", 0)),
                    created=float(meta.get("created", 0.0)),
                    parts=meta.get("parts", {}),
                    path=meta_path.with_name(meta_path.name.replace(".meta.json", "." + meta.get("format", "npz"))),
                )

    def find(self, digest_prefix: str) -> list[EntryInfo]:
        """Entries whose digest starts with ``digest_prefix``."""
        return [e for e in self.entries() if e.digest.startswith(digest_prefix)]

    def clear(self, kind: str | None = None) -> int:
        """Delete all entries (or all of one kind); returns how many entries were removed.

        Folders not made by this class (such as converted bases under ``bases/``) are only
        removed when named explicitly as ``kind``.
        """
        if not self.root.exists():
            return 0
        n = sum(1 for _ in self.entries(kind))
        if kind:
            target = self.root / kind
            if target.is_dir():
                shutil.rmtree(target)
            return n
        for info in list(self.entries()):
            for p in (info.path, info.path.with_name(info.digest + ".meta.json")):
                p.unlink(missing_ok=True)
        return n
