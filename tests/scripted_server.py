"""OpenAI-compatible endpoints on loopback whose answers a test decides.

* :class:`ScriptedModel`: answers every chat completion with the next scripted text (streamed as
  server-sent events, as real servers send them) and records each request body.
* :class:`GrammarProxy`: forwards each request to a real server (``python -m llama_cpp.server``)
  after adding a GBNF grammar that admits exactly one text, so the real model, sampling under
  the grammar, writes that text: a fixed answer that still comes out of llama.cpp.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


def sse(text: str) -> bytes:
    chunks: list[dict[str, Any]] = []
    for i in range(0, len(text), 7):  # several pieces, as a stream arrives
        chunks.append({"choices": [{"index": 0, "delta": {"content": text[i : i + 7]}, "finish_reason": None}]})
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def gbnf_literal(text: str) -> str:
    """A grammar whose only sentence is ``text``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'root ::= "{escaped}"'


class _Server:
    def __init__(self, respond: Callable[[dict[str, Any]], tuple[bytes, str]]) -> None:
        self.bodies: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.bodies.append(body)
                payload, kind = respond(body)
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ScriptedModel(_Server):
    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        super().__init__(self._reply)

    def _reply(self, body: dict[str, Any]) -> tuple[bytes, str]:
        text = self.replies[min(len(self.bodies), len(self.replies)) - 1]
        if body.get("stream"):
            return sse(text), "text/event-stream"
        message = {"role": "assistant", "content": text}
        return json.dumps({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}).encode(), (
            "application/json"
        )


class GrammarProxy(_Server):
    def __init__(self, upstream: str, *answers: str) -> None:
        self.upstream = upstream
        self.answers = list(answers)
        super().__init__(self._forward)

    def _forward(self, body: dict[str, Any]) -> tuple[bytes, str]:
        answer = self.answers[min(len(self.bodies), len(self.answers)) - 1]
        forwarded = {**body, "grammar": gbnf_literal(answer)}
        reply = httpx.post(f"{self.upstream}/chat/completions", json=forwarded, timeout=300.0)
        return reply.content, reply.headers.get("content-type", "application/json")
