"""The bottom layer: the content-addressed cache, hashing, the suite's options, and registries.

Nothing here imports torch, numpy-heavy code or anything above it.
"""

from __future__ import annotations

from dd.core._cache import (
    Cache,
    CacheKey,
    CacheMiss,
    CorruptCacheEntry,
    EntryInfo,
    canonical_json,
    model_run_key,
    sha256_bytes,
    sha256_json,
)
from dd.core._options import (
    FLAGS,
    OPTIONS,
    Settings,
    check_gen_backend,
    resolve_cache_root,
    resolve_settings,
)
from dd.core._progress import progress, set_progress
from dd.core._registry import Registry
from dd.core._retry import Backoff, RepeatWatch, retry_after, retryable

__all__ = [
    "check_gen_backend",
    "progress",
    "set_progress",
    "Cache",
    "CacheKey",
    "CacheMiss",
    "CorruptCacheEntry",
    "EntryInfo",
    "FLAGS",
    "OPTIONS",
    "Backoff",
    "Registry",
    "RepeatWatch",
    "Settings",
    "canonical_json",
    "model_run_key",
    "resolve_cache_root",
    "resolve_settings",
    "retry_after",
    "retryable",
    "sha256_bytes",
    "sha256_json",
]
