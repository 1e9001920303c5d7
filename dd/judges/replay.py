"""A replay judge: an OpenAI-compatible `/v1/chat/completions` server on 127.0.0.1.

It answers each request from recorded judge replies keyed by the sha256 of the request's
messages, so the suite's real client path (openai package, retries, cache, strict parsers) runs
end to end with no network and no model. `paper_recordings` builds the recordings from the
paper's released labels: for every step16 and fresh item the v4 pass-1 reply (its `cert`) and
pass-2 reply (its five scores, or a non-JSON reply where the release says `no_json`), and for
step16 the verbal reply. Faults (429, 500, a hang, a malformed body, a malformed reply, a reply
missing an axis) can be switched on globally or for matching requests to test failure handling.

The released files hold no gold checklists, so the checklist judge cannot be replayed
faithfully; `synthetic_checklist_recordings` only reproduces the released coverage numbers with
placeholder claims, to exercise the arithmetic and plumbing, and says so in every claim text.
"""

from __future__ import annotations

import functools
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from dd.judges._client import JudgeConfig, JudgeRun, run_judge
from dd.judges._protocol import V4_AXES, JudgeItem, messages_hash
from dd.judges._rubrics import (
    checklist_messages,
    claim_messages,
    get_judge,
    scores_reply,
    v4_pass1_messages,
    v4_pass2_messages,
    verbal_messages,
)
from dd.paper import FRESH, STEP16, ArtifactStore

Responder = Callable[[list[dict[str, str]]], str | None]
FAULT_KINDS = ("429", "500", "hang", "malformed", "malformed_reply", "missing_axis")
PAPER_NO_JSON_REPLY = (
    "Scores withheld: this reply deliberately holds no JSON object (the release records no_json here)."
)
SYNTHETIC_CLAIM = "SYNTHETIC placeholder claim {k} of {n}: the released files hold no checklists"


@dataclass
class Fault:
    """One switched-on fault: `kind`, how many more times (None: always) and which requests.

    `match` is None (every request), a messages sha256 (or a prefix of at least 8 hex digits),
    or any other string that must occur in one of the request's message contents.
    """

    kind: str
    times: int | None = None
    match: str | None = None

    def matches(self, digest: str, messages: list[dict[str, str]]) -> bool:
        if self.match is None:
            return True
        if len(self.match) >= 8 and digest.startswith(self.match):
            return True
        return any(self.match in m.get("content", "") for m in messages)


@dataclass(frozen=True)
class RequestRecord:
    """What the server saw and did for one request (no headers, so no key is ever logged)."""

    n: int
    messages_sha256: str
    model: str
    status: int
    fault: str | None
    structured: bool = False
    authorization: bool = False
    t: float = field(default_factory=time.time)


def _words(text: str) -> int:
    return len(text.split())


class ReplayServer:
    """The replay endpoint; use as a context manager. `.url` is the base URL ending in /v1.

    Args:
        recordings: messages sha256 -> reply text.
        responder: answers a request that has no recording (messages -> reply text, or None for a
            miss), so that newly generated answers can be judged by fixed rules in tests.
        hang_s: how long a 'hang' fault holds a request (longer than the client timeout in tests).
        host: always 127.0.0.1 unless a test needs otherwise.
        port: 0 picks a free port.
    """

    def __init__(self, recordings: Mapping[str, str], *, responder: Responder | None = None, hang_s: float = 5.0,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.recordings: dict[str, str] = dict(recordings)
        self.responder = responder
        self.hang_s = hang_s
        self.requests: list[RequestRecord] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        assert isinstance(host, str), "an AF_INET server's address is a (str, int) pair"
        return f"http://{host}:{port}/v1"

    def start(self) -> ReplayServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.02,), name="dd-replay", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ control

    def set_fault(self, kind: str, times: int | None = None, match: str | None = None) -> Fault:
        """Switch a fault on: '429' / '500' (n times then OK), 'hang', 'malformed' (broken HTTP
        body), 'malformed_reply' (broken reply text), 'missing_axis' (a JSON reply loses an axis)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        fault = Fault(kind, times, match)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def set_reply(self, messages_sha256: str, text: str) -> None:
        with self._lock:
            self.recordings[messages_sha256] = text

    def _take_fault(self, digest: str, messages: list[dict[str, str]], reply: str | None) -> str | None:
        with self._lock:
            for fault in self._faults:
                if fault.times is not None and fault.times <= 0:
                    continue
                if not fault.matches(digest, messages):
                    continue
                if fault.kind == "missing_axis" and not _is_scores(reply):
                    continue  # only a scores reply can lose an axis
                if fault.times is not None:
                    fault.times -= 1
                return fault.kind
        return None

    def _log(
        self, digest: str, model: str, status: int, fault: str | None, request: Mapping[str, Any], auth: bool
    ) -> None:
        response_format = request.get("response_format")
        structured = isinstance(response_format, dict) and response_format.get("type") == "json_schema"
        with self._lock:
            self.requests.append(RequestRecord(next(self._counter), digest, model, status, fault, structured, auth))

    # ------------------------------------------------------------ HTTP

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out in separate writes; without this, Nagle + delayed ACK
                # add ~40 ms to every keep-alive request
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
                return

            def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _error(self, status: int, message: str, kind: str, headers: Mapping[str, str] | None = None) -> None:
                body = json.dumps({"error": {"message": message, "type": kind, "code": None}}).encode()
                self._send(status, body, headers)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/").endswith("/models"):
                    models = {"object": "list", "data": [{"id": "replay", "object": "model"}]}
                    self._send(200, json.dumps(models).encode())
                else:
                    self._error(404, f"no route {self.path}", "not_found")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._error(404, f"no route {self.path}", "not_found")
                    return
                try:
                    request = json.loads(raw)
                    messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in request["messages"]]
                except (ValueError, KeyError, TypeError):
                    self._error(400, "request body is not a chat completion request", "invalid_request")
                    return
                model = str(request.get("model", ""))
                auth = bool(self.headers.get("Authorization"))
                digest = messages_hash(messages)
                with server._lock:
                    reply = server.recordings.get(digest)
                if reply is None and server.responder is not None:
                    reply = server.responder(messages)
                fault = server._take_fault(digest, messages, reply)
                if fault == "429":
                    server._log(digest, model, 429, fault, request, auth)
                    self._error(429, "rate limited (replay fault)", "rate_limit_exceeded", {"Retry-After": "0"})
                    return
                if fault == "500":
                    server._log(digest, model, 500, fault, request, auth)
                    self._error(500, "internal error (replay fault)", "server_error")
                    return
                if fault == "hang":
                    server._log(digest, model, 0, fault, request, auth)
                    server._stop.wait(server.hang_s)
                    self._error(504, "hung (replay fault)", "timeout")
                    return
                if reply is None:
                    server._log(digest, model, 404, None, request, auth)
                    self._error(404, f"replay has no recorded reply for messages sha256 {digest}", "replay_miss")
                    return
                if fault == "malformed":
                    server._log(digest, model, 200, fault, request, auth)
                    self._send(200, b'{"id": "replay-broken", "object": "chat.completion", "choices": [{"mess')
                    return
                if fault == "malformed_reply":
                    reply = reply + " }{"
                elif fault == "missing_axis":
                    obj = json.loads(reply)
                    obj.pop(V4_AXES[-1], None)
                    reply = json.dumps(obj)
                prompt_tokens = sum(_words(m["content"]) for m in messages)
                completion_tokens = _words(reply)
                body = {
                    "id": f"replay-{digest[:12]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                }
                server._log(digest, model, 200, fault, request, auth)
                self._send(200, json.dumps(body).encode())

        return Handler


def _is_scores(reply: str | None) -> bool:
    if reply is None:
        return False
    try:
        obj = json.loads(reply)
    except ValueError:
        return False
    return isinstance(obj, dict) and all(a in obj for a in V4_AXES)


# ---------------------------------------------------------------- recordings


class _Recorder:
    def __init__(self) -> None:
        self.replies: dict[str, str] = {}

    def add(self, messages: list[Any], reply: str) -> None:
        digest = messages_hash(messages)
        if self.replies.get(digest, reply) != reply:
            raise ValueError(f"two different recorded replies for one question (messages sha256 {digest})")
        self.replies[digest] = reply


def paper_recordings(store: ArtifactStore, which: tuple[str, ...] = ("step16", "fresh")) -> dict[str, str]:
    """Recorded replies that make the suite's v4 and verbal judges reproduce the released labels.

    Built at run time from the artifact files (nothing of the paper is stored in the repository).
    Items whose released scores are `{"error": "no_json"}` get a non-JSON pass-2 reply, so the
    judge yields an explicit 'unparseable' error there, as the paper's judge did.
    """
    rec = _Recorder()
    for name in which:
        for item in store.json({"step16": STEP16, "fresh": FRESH}[name])["items"]:
            prompt, response, cert = item["prompt"], item["response"], item["cert"]
            rec.add(v4_pass1_messages(prompt), cert)
            scores = item["scores"]
            reply = scores_reply(scores) if all(a in scores for a in V4_AXES) else PAPER_NO_JSON_REPLY
            rec.add(v4_pass2_messages(prompt, cert, response), reply)
            if "verbal" in item:
                rec.add(verbal_messages(prompt, response), str(item["verbal"]).upper())
    return rec.replies


def synthetic_checklist_recordings(store: ArtifactStore) -> dict[str, str]:
    """SYNTHETIC checklist replies that reproduce step16's released coverage, not its checklists.

    For coverage c the smallest n in 3..8 with c*n whole gives n placeholder claims, the first
    c*n answered YES. This tests coverage arithmetic and the correct >= 0.5 cut through the real
    client path; it says nothing about whether a checklist judge would agree with the paper.
    """
    rec = _Recorder()
    for item in store.json(STEP16)["items"]:
        frac = Fraction(item["coverage"]).limit_denominator(8)
        n = next(k for k in range(3, 9) if (frac * k).denominator == 1)
        yes = int(frac * n)
        claims = [SYNTHETIC_CLAIM.format(k=k + 1, n=n) for k in range(n)]
        rec.add(checklist_messages(item["prompt"]), json.dumps({"claims": claims}))
        for k, claim in enumerate(claims):
            rec.add(claim_messages(item["prompt"], claim, item["response"]), "YES" if k < yes else "NO")
    return rec.replies


def start_replay_server(recordings: Mapping[str, str], **kwargs: Any) -> ReplayServer:
    """A started `ReplayServer`; the caller stops it (or uses it in a `with` block)."""
    return ReplayServer(recordings, **kwargs).start()


def serve_replay(recordings: Mapping[str, str], **kwargs: Any) -> Iterator[ReplayServer]:
    """Generator for a pytest fixture: `yield from serve_replay(paper_recordings(store))`."""
    server = start_replay_server(recordings, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def replay_paper_runs(
    store: ArtifactStore,
    which: str,
    judges: tuple[str, ...] = ("v4", "verbal"),
    *,
    concurrency: int = 8,
) -> dict[str, JudgeRun]:
    """The suite's judges run over one released set through a fresh replay server and the real client.

    Memoized per process on (artifact root, set, judges): the replay is deterministic, and the
    golden and identity tests both need it. The runs use no cache, so every label comes over HTTP.
    """
    return dict(_replay_paper_runs(str(store.root.resolve()), which, tuple(judges), concurrency))


@functools.lru_cache(maxsize=8)
def _replay_paper_runs(root: str, which: str, judges: tuple[str, ...], concurrency: int) -> dict[str, JudgeRun]:
    store = ArtifactStore(Path(root))
    released = store.json({"step16": STEP16, "fresh": FRESH}[which])["items"]
    items = [JudgeItem(it["prompt"], it["response"]) for it in released]
    with ReplayServer(paper_recordings(store, (which,))) as server:
        config = JudgeConfig(
            server.url, "replay", timeout_s=10.0, max_retries=0, concurrency=concurrency, progress=False
        )
        return {name: run_judge(get_judge(name), items, config) for name in judges}
