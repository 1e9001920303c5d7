"""The `dd` command: fetch and verify the paper's artifacts, inspect the cache, render and compare reports."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from dd.cli import _cache as _cache_cli
from dd.cli import _report as _report_cli
from dd.paper import ArtifactCorrupt, ArtifactStore, fetch, load_manifest, locate


def _artifacts_fetch(args) -> int:
    dest = locate(args.dest)
    fetched = fetch(dest, base_url=args.base_url)
    manifest = load_manifest()
    print(f"{len(fetched)} file(s) fetched, {len(manifest.files)} verified in {dest} "
          f"({manifest.repository} at {manifest.commit[:12]})")
    return 0


def _artifacts_verify(args) -> int:
    store = ArtifactStore(locate(args.dir))
    status = store.status()
    for path, state in status.items():
        print(f"{'ok' if state == 'ok' else 'MISSING' if state == 'missing' else 'CORRUPT'}  {path}"
              + ("" if state in ("ok", "missing") else f"\n    {state}"))
    bad = [p for p, s in status.items() if s != "ok"]
    print(f"{len(status) - len(bad)}/{len(status)} files verified in {store.root}")
    return 1 if bad else 0


def _judge_replay(args) -> int:
    """Serve the paper's released labels as an OpenAI-compatible judge until interrupted."""
    from dd.judges.replay import ReplayServer, paper_recordings

    store = ArtifactStore(locate(args.dir))
    with ReplayServer(paper_recordings(store), port=args.port) as server:
        print(f"replaying the paper's judge labels at {server.url} (Ctrl-C to stop)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    artifacts = commands.add_parser("artifacts", help="the paper's released files")
    art = artifacts.add_subparsers(dest="action", required=True)
    fetch = art.add_parser("fetch", help="download every pinned file and verify its sha256")
    fetch.add_argument("--dest", type=Path, help="target directory (default: $DD_ARTIFACTS, else the user cache)")
    fetch.add_argument("--base-url", help="serve the files from this address instead of the pinned repository")
    fetch.set_defaults(handler=_artifacts_fetch)
    verify = art.add_parser("verify", help="check every file against the pinned manifest")
    verify.add_argument("--dir", type=Path, help="artifact directory (default: $DD_ARTIFACTS, else the user cache)")
    verify.set_defaults(handler=_artifacts_verify)
    judge = commands.add_parser("judge", help="judge endpoints").add_subparsers(dest="action", required=True)
    replay = judge.add_parser("replay", help="serve the paper's released labels as a judge on 127.0.0.1")
    replay.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    replay.add_argument("--dir", type=Path, help="artifact directory (default: $DD_ARTIFACTS, else the user cache)")
    replay.set_defaults(handler=_judge_replay)
    _cache_cli.register(commands)
    _report_cli.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ArtifactCorrupt, OSError) as err:
        print(f"dd: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
