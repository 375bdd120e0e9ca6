"""A scriptable OpenAI-compatible server on loopback (port 0) for tests that must count requests,
answer a server type's metadata endpoint, or send a chosen usage block.

``routes`` answers GET/POST metadata paths with JSON; ``POST .../chat/completions`` streams the
text ``answer(body)`` returns (with ``usage``), or the next scripted error status.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    body: Any
    authorization: str | None = None  # the Authorization header, as received


def sse(text: str, usage: dict[str, Any] | None = None) -> bytes:
    """One answer as a chat-completions event stream, ending with a usage chunk when given."""
    chunks: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    if usage is not None:
        chunks.append({"choices": [], "usage": usage})
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def last_user_message(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


@dataclass
class Server:
    url: str = ""  # http://127.0.0.1:PORT/v1
    root: str = ""  # http://127.0.0.1:PORT
    routes: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    answer: Callable[[dict[str, Any]], str] = lambda body: "A short summary."
    usage: Callable[[dict[str, Any]], dict[str, Any] | None] = lambda body: None
    # statuses (with headers) to answer the next chat requests with, before answering normally
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    delay_s: float = 0.0  # before each chat answer (a slow server)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def chats(self) -> list[dict[str, Any]]:
        """Bodies of the chat requests received, in order."""
        with self.lock:
            return [r.body for r in self.requests if r.path.endswith("/chat/completions")]

    def hits(self, path: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.path == path)


@contextmanager
def serve(**config: Any) -> Iterator[Server]:
    state = Server(**config)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, payload: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            with state.lock:
                state.requests.append(Request(method, self.path, body, self.headers.get("Authorization")))
                failure = state.failures.pop(0) if state.failures and self.path.endswith("/chat/completions") else None
            if self.path.endswith("/chat/completions") and method == "POST":
                if failure is not None:
                    status, headers = failure
                    error = json.dumps({"error": {"message": f"status {status}"}}).encode()
                    self._reply(status, error, "application/json", headers)
                    return
                if state.delay_s:
                    time.sleep(state.delay_s)
                self._reply(200, sse(state.answer(body), state.usage(body)), "text/event-stream")
                return
            found = state.routes.get((method, self.path))
            if found is None:
                self._reply(404, b'{"error": "not found"}', "application/json")
                return
            status, payload = found
            self._reply(status, json.dumps(payload).encode(), "application/json")

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.root = f"http://127.0.0.1:{httpd.server_address[1]}"
    state.url = state.root + "/v1"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
