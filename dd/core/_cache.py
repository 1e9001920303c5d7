"""The content-addressed store: one cache for everything the suite computes or asks for.

Kinds, each a sub-folder of the root: ``generations`` and ``features`` (dd.lm), ``head_inputs``
and ``adapters`` (trained LoRA weights, dd.arcs), ``judges`` (accepted judge replies). Entries
are addressed by the sha256 of a canonical JSON of their kind and named key parts, so a miss can
always be explained part by part. ``bases/`` is the one folder kind: dd.lm materializes converted
and tiny base weights there as whole folders by name; they are listed and cleared like entries
but never looked up by key.

The corruption rule, for every kind: an entry exists once its meta JSON (key parts, format,
payload sha256) is on disk. Payload and meta are each written atomically (temp file +
``os.replace``), payload first, so the meta is the commit point: a run killed before it leaves
no entry, only a stray payload that the next write replaces, and that is a miss. A committed
entry whose meta is unreadable, whose payload is missing, fails its sha256, holds another key or
cannot be decoded is corrupt: reading it raises ``CorruptCacheEntry`` naming the files and how to
clear them. It is never loaded and never taken for a miss, since a silent rebuild would hide a
bad disk or a foreign writer. ``dd cache ls`` lists such an entry with format ``corrupt``.

Writers hold a per-key file lock, so ``get_or_build`` builds an entry exactly once across
``pytest -n`` workers; a reader takes the lock only to re-check a failed read, which a concurrent
rewrite of the same key can cause. Errors are never cached: only a payload is stored. This module
imports neither torch nor transformers: artifact-only code uses it.
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

from dd.core._options import resolve_cache_root

#: Bump when the semantics of cached features or generations change; part of their keys.
CODE_VERSION = "1"

#: Root folders holding whole folders by name rather than keyed entries (see the module doc).
FOLDER_KINDS = ("bases",)

Part = str | int | float | bool | None
Payload = dict[str, Any]
Format = Literal["npz", "json"]
FORMATS: tuple[Format, ...] = ("npz", "json")


class CacheError(RuntimeError):
    """Base class for cache errors."""


class CorruptCacheEntry(CacheError):
    """A committed entry fails its checks; it is never loaded, and the message says how to clear it."""


class CacheMiss(CacheError):
    """A miss in offline mode, where building the entry would need a model or a judge."""


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex sha256 of the canonical JSON of ``obj`` (sorted keys, no spaces)."""
    return sha256_bytes(canonical_json(obj).encode())


def canonical_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, compact separators, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _check_kind(kind: str) -> str:
    """A kind names a sub-folder of the root, so it may not climb out of it."""
    if not kind or "/" in kind or "\\" in kind or kind.startswith("."):
        raise ValueError(f"bad cache kind {kind!r}")
    return kind


def _summary(parts: Mapping[str, Part], width: int) -> str:
    text = ", ".join(f"{k}={v}" for k, v in parts.items())
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass(frozen=True)
class CacheKey:
    """A cache key made of named parts, so that a miss can be explained.

    Attributes:
        kind: the entry family ("features", "generations", "judges", ...); also its sub-folder.
        parts: scalar key parts (strings, numbers, booleans, None).
    """

    kind: str
    parts: Mapping[str, Part] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_kind(self.kind)
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
        return _summary(self.parts, width)

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
    """One stored entry (or folder of a folder kind), as listed by ``Cache.entries``.

    Attributes:
        digest: the key's digest; a folder's name for folder kinds.
        format: "npz", "json", "folder", or "corrupt" when the meta cannot be read.
        path: the payload file (the meta file when corrupt; the folder for folder kinds).
    """

    kind: str
    digest: str
    format: str
    size: int
    created: float
    parts: dict[str, Part]
    path: Path

    def summary(self, width: int = 60) -> str:
        """Short summary of key parts for listings."""
        return _summary(self.parts, width)


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
    # allow_pickle named (at numpy's default) so the arrays' ** cannot be taken for it
    np.savez(buf, allow_pickle=True, **{k: np.asarray(v) for k, v in payload.items()})
    return buf.getvalue()


def _decode(data: bytes, fmt: Format) -> Payload:
    if fmt == "json":
        return json.loads(data)
    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _folder_info(kind: str, folder: Path) -> EntryInfo:
    """A folder kind's item: its scalar ``dd_*.json`` marker fields are its parts."""
    parts: dict[str, Part] = {}
    created = folder.stat().st_mtime
    for marker in sorted(folder.glob("dd_*.json")):
        try:
            fields = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue  # a folder's marker is written last; without it the folder is rebuilt, never used
        parts.update({k: v for k, v in fields.items() if isinstance(v, str | int | float | bool | type(None))})
        created = marker.stat().st_mtime
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return EntryInfo(kind, folder.name, "folder", size, created, parts, folder)


class Cache:
    """A content-addressed store rooted at a directory.

    Args:
        root: the cache folder; ``resolve_cache_root()`` (``$DD_CACHE`` or ``~/.cache/dd``) when None.
        offline: when True, ``get_or_build`` raises ``CacheMiss`` instead of building with a
            builder that needs a model or a judge (``needs_model=True``, the default); the judge
            client raises it too.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, offline: bool = False) -> None:
        self.root = resolve_cache_root(root)
        self.offline = offline

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r}, offline={self.offline})"

    # paths -------------------------------------------------------------------------------
    def _stem(self, key: CacheKey) -> Path:
        d = key.digest
        return self.root / key.kind / d[:2] / d

    def _meta_path(self, key: CacheKey) -> Path:
        stem = self._stem(key)
        return stem.with_name(stem.name + ".meta.json")

    def _data_path(self, key: CacheKey, fmt: Format) -> Path:
        stem = self._stem(key)
        return stem.with_name(stem.name + "." + fmt)

    def lock(self, key: CacheKey) -> FileLock:
        """The per-key file lock (also usable by builders that write elsewhere)."""
        stem = self._stem(key)
        stem.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(stem) + ".lock")

    # read / write ------------------------------------------------------------------------
    def contains(self, key: CacheKey) -> bool:
        """Whether the entry is committed (its meta exists); its checks run on ``get``."""
        return self._meta_path(key).exists()

    def get(self, key: CacheKey) -> Payload | None:
        """Load an entry, or None when none was committed.

        Raises:
            CorruptCacheEntry: when a committed entry fails a check (see the module doc).
        """
        try:
            return self._read(key)
        except CorruptCacheEntry:
            # a writer replacing this entry may have swapped the payload between our two reads;
            # writers hold the key's lock, so a second read under it is definitive
            with self.lock(key):
                return self._read(key)

    def _read(self, key: CacheKey) -> Payload | None:
        meta_path = self._meta_path(key)
        try:
            raw = meta_path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            meta = json.loads(raw)
            fmt = meta["format"]
        except (ValueError, TypeError, KeyError) as exc:
            raise self._corrupt(key, f"its meta {meta_path} is unreadable ({exc!r})") from exc
        if fmt not in FORMATS:
            raise self._corrupt(key, f"its meta {meta_path} names no known format ({fmt!r})")
        data_path = self._data_path(key, fmt)
        try:
            data = data_path.read_bytes()
        except FileNotFoundError:
            raise self._corrupt(key, f"its payload {data_path} is missing") from None
        if sha256_bytes(data) != meta.get("sha256"):
            raise self._corrupt(key, f"its payload {data_path} fails its sha256 check")
        if meta.get("kind") != key.kind or meta.get("parts") != dict(key.parts):
            raise self._corrupt(key, f"its meta {meta_path} holds a different key")
        try:
            return _decode(data, fmt)
        except Exception as exc:  # any decode failure is corruption
            raise self._corrupt(key, f"its payload {data_path} cannot be decoded ({exc!r})") from exc

    def _corrupt(self, key: CacheKey, what: str) -> CorruptCacheEntry:
        return CorruptCacheEntry(
            f"corrupt {key.kind} cache entry {key.digest[:12]}: {what}. It is never loaded: delete "
            f"{self._stem(key)}.* to rebuild it, or clear the kind with "
            f"`dd cache clear --kind {key.kind} --cache-dir {self.root}`"
        )

    def put(self, key: CacheKey, payload: Payload, fmt: Format = "npz") -> Path:
        """Write an entry atomically under the key's lock; returns the payload's path."""
        with self.lock(key):
            return self._write(key, payload, fmt)

    def _write(self, key: CacheKey, payload: Payload, fmt: Format) -> Path:
        """Payload first, then its meta (the commit point); the caller holds the key's lock."""
        data = _encode(payload, fmt)
        data_path = self._data_path(key, fmt)
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
        _atomic_write(self._meta_path(key), json.dumps(meta, indent=1, sort_keys=True).encode())
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
            hit = self._read(key)
            if hit is not None:
                return hit
            payload = build()
            self._write(key, payload, fmt)
        return payload

    def miss_message(self, key: CacheKey) -> str:
        """Explain a miss: the key's parts, and how they differ from the nearest entry of its kind."""
        lines = [
            f"offline cache miss for {key.kind} entry {key.digest[:12]} in {self.root} "
            "(building it needs a model or a judge; run without --dd-offline to build it). Key parts:"
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
            if info.format != "corrupt" and same > score:
                best, score = info, same
        return best

    # listing / housekeeping --------------------------------------------------------------
    def kinds(self) -> list[str]:
        """The kinds present under the root, folder kinds included."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def entries(self, kind: str | None = None) -> Iterator[EntryInfo]:
        """Iterate stored entries (by their meta files) and folder-kind folders, optionally of one kind."""
        for name in [_check_kind(kind)] if kind else self.kinds():
            kdir = self.root / name
            if not kdir.is_dir():
                continue
            if name in FOLDER_KINDS:
                yield from (_folder_info(name, d) for d in sorted(kdir.iterdir())
                            if d.is_dir() and not d.name.endswith(".tmp"))
                continue
            for meta_path in sorted(kdir.glob("*/*.meta.json")):
                digest = meta_path.name.removesuffix(".meta.json")
                try:
                    meta = json.loads(meta_path.read_bytes())
                    fmt = meta["format"] if meta["format"] in FORMATS else None
                except (OSError, ValueError, TypeError, KeyError):
                    fmt = None
                if fmt is None:
                    yield EntryInfo(name, digest, "corrupt", 0, meta_path.stat().st_mtime, {}, meta_path)
                    continue
                yield EntryInfo(
                    kind=name,
                    digest=digest,
                    format=fmt,
                    size=int(meta.get("size", 0)),
                    created=float(meta.get("created", 0.0)),
                    parts=meta.get("parts", {}),
                    path=meta_path.with_name(f"{digest}.{fmt}"),
                )

    def find(self, digest_prefix: str) -> list[EntryInfo]:
        """Entries whose digest (a folder's name, for folder kinds) starts with ``digest_prefix``."""
        return [e for e in self.entries() if e.digest.startswith(digest_prefix)]

    def clear(self, kind: str | None = None) -> int:
        """Delete every entry of ``kind``, or of every entry kind; returns how many went.

        A kind goes as a whole folder, so stray payloads of interrupted writes and lock files go
        with it. Folder kinds (``bases``) are cleared only when named: they hold no results and
        are slow to rebuild.
        """
        names = [_check_kind(kind)] if kind else [k for k in self.kinds() if k not in FOLDER_KINDS]
        removed = 0
        for name in names:
            target = self.root / name
            if target.is_dir():
                removed += sum(1 for _ in self.entries(name))
                shutil.rmtree(target)
        return removed
