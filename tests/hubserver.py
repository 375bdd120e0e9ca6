"""A small Hugging Face Hub on loopback: the endpoints huggingface-hub calls for ``dsv2 models pull``.

Read from huggingface_hub 2.4's own code (hf_api.model_info, file_download.http_get,
get_hf_file_metadata, utils._http.hf_raise_for_status):
- ``GET /api/models/OWNER/REPO/revision/REV?blobs=True``: JSON with ``sha`` (the commit) and
  ``siblings`` (``rfilename``, ``size``, ``lfs`` with ``sha256``/``size``/``pointerSize``);
- ``HEAD``/``GET /OWNER/REPO/resolve/REV/PATH``: ``ETag`` (the sha256), ``X-Repo-Commit``,
  ``Content-Length``, and ``Range: bytes=A-B`` answered 206 with ``Content-Range``;
- errors the way hf_raise_for_status reads them: 401 with ``X-Error-Code: GatedRepo``.

Faults a test can switch on per file: a reported size that is not the real one (``claim_size``),
a wrong sha256 in the listing (``claim_sha256``), a connection dropped halfway through the
first full GET (``drop_once``), a slow link (``seconds``). Every request is recorded in ``log``
as (method, path, Range).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    data: bytes
    claim_size: int | None = None
    claim_sha256: str | None = None
    drop_once: bool = False
    seconds: float = 0.0  # spread the body over this long (a slow link, for the progress display)

    @property
    def sha256(self) -> str:
        return self.claim_sha256 or hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return self.claim_size if self.claim_size is not None else len(self.data)


@dataclass
class FakeHub:
    repos: dict[str, dict[str, HubFile]] = field(default_factory=dict)
    gated: set[str] = field(default_factory=set)
    log: list[tuple[str, str, str | None]] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def add(self, repo: str, path: str, data: bytes | Path, **faults: Any) -> HubFile:
        raw = data.read_bytes() if isinstance(data, Path) else data
        entry = HubFile(raw, **faults)
        self.repos.setdefault(repo, {})[path] = entry
        return entry

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # http.server's naming
                hub._answer(self, head=False)

            def do_HEAD(self) -> None:
                hub._answer(self, head=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def requests(self, kind: str) -> list[tuple[str, str, str | None]]:
        return [r for r in self.log if f"/{kind}/" in r[1]]

    # --- answers ---------------------------------------------------------------------------------

    def _answer(self, h: BaseHTTPRequestHandler, *, head: bool) -> None:
        path = unquote(urlsplit(h.path).path)
        self.log.append((h.command, path, h.headers.get("Range")))
        api = re.match(r"^/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?$", path)
        resolve = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        repo = (api or resolve).group(1) if (api or resolve) else None
        if repo is None or repo not in self.repos:
            return self._error(h, 404, "RepoNotFound", "Repository not found")
        if repo in self.gated and not h.headers.get("Authorization"):
            return self._error(h, 401, "GatedRepo", "Access to this repository is restricted")
        if api:
            return self._json(h, self._info(repo))
        assert resolve is not None
        entry = self.repos[repo].get(resolve.group(3))
        if entry is None:
            return self._error(h, 404, "EntryNotFound", "Entry not found")
        self._file(h, entry, head)

    def _info(self, repo: str) -> dict[str, Any]:
        siblings = [
            {"rfilename": p, "size": f.size, "lfs": {"sha256": f.sha256, "size": f.size, "pointerSize": 134}}
            for p, f in sorted(self.repos[repo].items())
        ]
        return {"id": repo, "modelId": repo, "sha": COMMIT, "private": False, "siblings": siblings}

    def _file(self, h: BaseHTTPRequestHandler, entry: HubFile, head: bool) -> None:
        total = len(entry.data)
        start, end = 0, total - 1
        wanted = h.headers.get("Range")
        status = 200
        if wanted:
            m = re.match(r"bytes=(\d+)-(\d*)$", wanted)
            assert m, wanted
            start = int(m.group(1))
            end = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
            status = 206
        body = entry.data[start : end + 1]
        h.send_response(status)
        h.send_header("ETag", f'"{entry.sha256}"')
        h.send_header("X-Repo-Commit", COMMIT)
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Length", str(entry.size if (status == 200 and entry.claim_size) else len(body)))
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        h.end_headers()
        if head:
            return
        if entry.drop_once and not wanted:
            entry.drop_once = False
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)  # the connection drops halfway
            h.close_connection = True
            return
        if entry.seconds:
            step = max(len(body) // 20, 1)
            for i in range(0, len(body), step):
                h.wfile.write(body[i : i + step])
                h.wfile.flush()
                time.sleep(entry.seconds / 20)
            return
        h.wfile.write(body)

    def _json(self, h: BaseHTTPRequestHandler, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _error(self, h: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
        data = json.dumps({"error": message}).encode()
        h.send_response(status)
        h.send_header("X-Error-Code", code)
        h.send_header("X-Error-Message", message)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
