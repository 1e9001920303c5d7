"""The bottom layer: the content-addressed cache, hashing, and the suite's options.

Nothing here imports torch, numpy-heavy code or anything above it.
"""

from __future__ import annotations

from dd.core._cache import (
    Cache,
    CacheKey,
    CacheMiss,
    CorruptCacheEntry,
    canonical_json,
    default_root,
    model_run_key,
    sha256_bytes,
    sha256_json,
)
from dd.core._options import (
    FLAGS,
    OPTIONS,
    Settings,
    resolve_settings,
)

__all__ = [
    "Cache",
    "CacheKey",
    "CacheMiss",
    "CorruptCacheEntry",
    "FLAGS",
    "OPTIONS",
    "Settings",
    "canonical_json",
    "default_root",
    "model_run_key",
    "resolve_settings",
    "sha256_bytes",
    "sha256_json",
]
