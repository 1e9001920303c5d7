"""The ``dd cache`` sub-command: list, explain and clear cache entries.

Kept separate from ``dd/cli.py`` so the cache's command line lives next to the cache; it imports
no torch, so these commands start instantly.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys

from dd.core import Cache


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``cache {ls,why,clear}`` to an argparse subparsers object."""
    p = subparsers.add_parser("cache", help="inspect or clear the dd cache")
    p.add_argument("--cache-dir", dest="cache_dir", default=None, help="cache root (default $DD_CACHE or ~/.cache/dd)")
    sub = p.add_subparsers(dest="cache_command", required=True)

    ls = sub.add_parser("ls", help="list entries: kind, digest, size, created, key summary")
    ls.add_argument("--kind", default=None)
    ls.set_defaults(handler=cmd_ls)

    why = sub.add_parser("why", help="print the key parts of an entry (digest or prefix)")
    why.add_argument("key")
    why.set_defaults(handler=cmd_why)

    clear = sub.add_parser("clear", help="delete all entries, or those of one kind")
    clear.add_argument("--kind", default=None)
    clear.set_defaults(handler=cmd_clear)
    for q in (ls, why, clear):
        q.add_argument("--cache-dir", dest="cache_dir", default=argparse.SUPPRESS)
    return p


def _cache(args: argparse.Namespace) -> Cache:
    return Cache(getattr(args, "cache_dir", None))


def cmd_ls(args: argparse.Namespace) -> int:
    """List entries; exit 0."""
    cache = _cache(args)
    rows = list(cache.entries(getattr(args, "kind", None)))
    for e in rows:
        created = _dt.datetime.fromtimestamp(e.created).strftime("%Y-%m-%d %H:%M")
        print(f"{e.kind:<12} {e.digest[:12]}  {e.size:>10}  {created}  {e.summary()}")
    print(f"{len(rows)} entries in {cache.root}")
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
    print(f"  size    = {e.size}")
    print(f"  created = {_dt.datetime.fromtimestamp(e.created).isoformat(timespec='seconds')}")
    for name, value in e.parts.items():
        print(f"  {name} = {value!r}")
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    """Delete entries; exit 0."""
    cache = _cache(args)
    n = cache.clear(getattr(args, "kind", None))
    print(f"removed {n} entries from {cache.root}")
    return 0
