"""The ``dd cache`` sub-command: list, explain and clear cache entries.

Kept separate from ``dd/cli.py`` so the cache's command line lives next to the cache; it imports
no torch, so these commands start instantly.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from collections import Counter

from dd.core import Cache, CacheKey, EntryInfo


def kind(value: str) -> str:
    """An argparse type: a kind names a folder of the cache root, never a path out of it."""
    return CacheKey(value).kind


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``cache {ls,why,clear}`` to an argparse subparsers object."""
    p = subparsers.add_parser("cache", help="inspect or clear the dd cache")
    p.add_argument("--cache-dir", dest="cache_dir", default=None, help="cache root (default $DD_CACHE or ~/.cache/dd)")
    sub = p.add_subparsers(dest="cache_command", required=True)

    ls = sub.add_parser("ls", help="list entries of every kind (judges, adapters, bases, ...) with their key summary")
    ls.add_argument("--kind", type=kind, default=None)
    ls.set_defaults(handler=cmd_ls)

    why = sub.add_parser("why", help="print the key parts of an entry (digest or prefix; a base's folder name)")
    why.add_argument("key")
    why.set_defaults(handler=cmd_why)

    clear = sub.add_parser("clear", help="delete all entries, or those of one kind (bases only when named)")
    clear.add_argument("--kind", type=kind, default=None)
    clear.set_defaults(handler=cmd_clear)
    for q in (ls, why, clear):
        q.add_argument("--cache-dir", dest="cache_dir", default=argparse.SUPPRESS)
    return p


def _cache(args: argparse.Namespace) -> Cache:
    return Cache(getattr(args, "cache_dir", None))


def _name(e: EntryInfo) -> str:
    return e.digest if e.format == "folder" else e.digest[:12]


def cmd_ls(args: argparse.Namespace) -> int:
    """List entries, a corrupt one marked as such; exit 0."""
    cache = _cache(args)
    rows = list(cache.entries(getattr(args, "kind", None)))
    for e in rows:
        created = _dt.datetime.fromtimestamp(e.created).strftime("%Y-%m-%d %H:%M")
        summary = "CORRUPT: unreadable meta, never loaded" if e.format == "corrupt" else e.summary()
        print(f"{e.kind:<12} {_name(e):<16}  {e.size:>10}  {created}  {summary}")
    counts = Counter(e.kind for e in rows)
    by_kind = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
    print(f"{len(rows)} entries in {cache.root}" + (f" ({by_kind})" if by_kind else ""))
    return 0


def cmd_why(args: argparse.Namespace) -> int:
    """Print the key parts of one entry; exit 1 when no or several entries match."""
    cache = _cache(args)
    found = cache.find(args.key)
    if len(found) != 1:
        what = "no entry" if not found else f"{len(found)} entries"
        print(f"{what} with digest starting {args.key!r} in {cache.root}", file=sys.stderr)
        return 1
    e = found[0]
    print(f"{e.kind} {e.digest}")
    print(f"  file    = {e.path}")
    print(f"  format  = {e.format}")
    print(f"  size    = {e.size}")
    print(f"  created = {_dt.datetime.fromtimestamp(e.created).isoformat(timespec='seconds')}")
    for name, value in e.parts.items():
        print(f"  {name} = {value!r}")
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    """Delete entries and say how many went; exit 0."""
    cache = _cache(args)
    which = getattr(args, "kind", None)
    n = cache.clear(which)
    print(f"removed {n} {which + ' ' if which else ''}entries from {cache.root}")
    kept = sum(1 for _ in cache.entries("bases")) if which is None else 0
    if kept:
        print(f"kept {kept} bases (converted or tiny weights); clear them with --kind bases")
    return 0
