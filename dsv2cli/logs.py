"""The log of every run: one SQLite file under DSV2_HOME, in the shape simonw/llm users know.

Two tables. ``conversations``: one row per conversation (an ``ask`` and its ``-c`` follow-ups, a
``chat`` session, a ``summarize``), with the documents it was opened on so ``chat -c`` can read
them again. ``responses``: one row per model answer (a question of ``ask``, a chat turn, a
summary, an extraction batch, a ``prompt``): command, model, backend, inputs with content hashes,
sources sent, system prompt, prompt, output, prompt/cached/output tokens, timings, cost,
``answered_by`` and the exit status.

Several processes may write at once: the file is in WAL mode, every write is one ``BEGIN
IMMEDIATE`` transaction, and a writer waits up to :data:`BUSY_TIMEOUT_S` for the lock instead
of failing. The file is bounded: past :data:`MAX_BYTES` the oldest responses (and conversations
left empty) are deleted and their pages returned to the file system (incremental vacuum). Text
fields are cut at :data:`MAX_FIELD_CHARS` characters. Secret-looking values are redacted in every
text stored, as in prompts (sources.secrets.redact).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .sources.secrets import redact

if TYPE_CHECKING:
    from .engines.base import Usage
    from .engines.handle import ModelHandle
    from .sources.base import Document

LOG_FILE = "logs.db"
OFF_FILE = "logs-off"  # present: nothing is recorded (``dsv2 logs off``)
MAX_BYTES = 64 * 1024 * 1024  # the file's bound; the oldest responses go first
MAX_FIELD_CHARS = 200_000  # one prompt or output longer than this is cut, with a marker
BUSY_TIMEOUT_S = 30.0
PRUNE_FRACTION = 0.1  # share of responses deleted per pruning step
CONVERSING = ("ask", "chat", "prompt")  # the commands whose conversations -c / --cid continue

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    created_utc TEXT NOT NULL,
    command TEXT NOT NULL,
    name TEXT,
    model TEXT,
    system TEXT,
    documents TEXT  -- JSON: {"paths": [...], "repo": ..., "include": [...], "exclude": [...]}
);
CREATE TABLE IF NOT EXISTS responses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    datetime_utc TEXT NOT NULL,
    command TEXT NOT NULL,
    model TEXT,
    backend TEXT,  -- JSON
    system TEXT,
    prompt TEXT,
    output TEXT,
    inputs TEXT,  -- JSON: [{"source", "kind", "sha256"}]
    sources TEXT,  -- JSON: what was sent (citations, retrieved passages)
    prompt_tokens INTEGER,
    cached_tokens INTEGER,
    output_tokens INTEGER,
    duration_ms INTEGER,
    timings TEXT,  -- JSON
    cost_usd REAL,
    answered_by TEXT,  -- JSON
    exit_status INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    options TEXT,  -- JSON: strategy, max_tokens, temperature, ...
    redacted INTEGER NOT NULL DEFAULT 0  -- secret values replaced in the texts above
);
CREATE INDEX IF NOT EXISTS responses_conversation ON responses(conversation_id);
"""


def log_path(home: Path) -> Path:
    return home / LOG_FILE


def logging_enabled(home: Path) -> bool:
    return not (home / OFF_FILE).exists()


def set_logging(home: Path, enabled: bool) -> None:
    """``dsv2 logs on|off``."""
    off = home / OFF_FILE
    if enabled:
        off.unlink(missing_ok=True)
    else:
        home.mkdir(parents=True, exist_ok=True)
        off.write_text("dsv2 records nothing while this file exists (dsv2 logs on removes it)\n", encoding="utf-8")


def new_conversation_id() -> str:
    """Time-ordered and unique: 12 hex digits of milliseconds, then 8 random."""
    return f"{int(time.time() * 1000):012x}{uuid.uuid4().hex[:8]}"


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Conversation:
    id: str
    command: str
    name: str | None = None
    model: str | None = None
    system: str | None = None
    documents: dict[str, Any] = field(default_factory=dict)
    created_utc: str = field(default_factory=now_utc)


@dataclass
class Response:
    """One row of ``responses`` (``id`` and ``datetime_utc`` are set when it is written)."""

    conversation_id: str
    command: str
    model: str | None = None
    backend: Mapping[str, Any] | None = None
    system: str | None = None
    prompt: str | None = None
    output: str | None = None
    inputs: Sequence[Mapping[str, Any]] = ()
    sources: Sequence[Mapping[str, Any]] = ()
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    output_tokens: int | None = None
    duration_ms: int | None = None
    timings: Mapping[str, Any] | None = None
    cost_usd: float | None = None
    answered_by: Mapping[str, Any] | None = None
    exit_status: int = 0
    error: str | None = None
    options: Mapping[str, Any] | None = None
    redacted: int = 0
    id: int | None = None
    datetime_utc: str | None = None


_JSON_FIELDS = ("backend", "inputs", "sources", "timings", "answered_by", "options")
_TEXT_FIELDS = ("system", "prompt", "output", "error")


def _clean(text: str | None) -> tuple[str | None, int]:
    """Redacted and bounded text, and how many secret values were replaced."""
    if text is None:
        return None, 0
    cleaned, findings = redact(text)
    if len(cleaned) > MAX_FIELD_CHARS:
        cut = len(cleaned) - MAX_FIELD_CHARS
        cleaned = cleaned[:MAX_FIELD_CHARS] + f"\n[... {cut:,} more characters not logged]"
    return cleaned, len(findings)


def input_record(source: str, kind: str, sha256: str, tokens: int | None = None) -> dict[str, Any]:
    return {"source": source, "kind": kind, "sha256": sha256, **({"tokens": tokens} if tokens is not None else {})}


def document_inputs(docs: Sequence[Document]) -> list[dict[str, Any]]:
    """The ``inputs`` of documents read: source, kind and content hash."""
    return [input_record(d.source, d.kind, d.content_hash) for d in docs]


def answered(
    handle: ModelHandle,
    usage: Usage,
    plan: Any,
    *,
    prompt: str | None,
    output: str | None,
    docs: Sequence[Document],
    options: Mapping[str, Any],
    answered_by: Mapping[str, Any] | None = None,
    plan_s: float | None = None,
) -> dict[str, Any]:
    """The columns of one model answer (a question of ``ask``, a chat or ``ask -c`` turn, a
    ``prompt``), for ``Response(conversation_id, command, **answered(...))``: ``plan`` is what was
    sent (its ``prompt`` and ``sources``); ``answered_by`` defaults to the handle's backend, not
    escalated; ``plan_s`` is timed where the caller measured it."""
    from .chat import system_of

    backend = handle.describe()
    timings = {"load_s": round(handle.load_s, 4)}
    if plan_s is not None:
        timings["plan_s"] = round(plan_s, 4)
    timings |= {"prompt_eval_s": round(usage.prompt_eval_s, 4), "generation_s": round(usage.generation_s, 4)}
    return {
        "model": handle.name,
        "backend": backend,
        "system": system_of(plan.prompt),
        "prompt": prompt,
        "output": output,
        "inputs": document_inputs(docs),
        "sources": plan.sources,
        "prompt_tokens": usage.prompt_tokens,
        "cached_tokens": int(usage.extra.get("prefix_reused_tokens", 0)),
        "output_tokens": usage.output_tokens,
        "timings": timings,
        "cost_usd": handle.cost(usage.prompt_tokens, usage.output_tokens),
        "answered_by": answered_by
        if answered_by is not None
        else {"backend": backend.get("backend"), "escalated": False, "reason": None},
        "options": options,
    }


class LogStore:
    """The log file. Open per use; every method is one short transaction."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        with closing(conn):
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before the first table; no-op after
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'responses'").fetchone():
                with _transaction(conn):  # two first writers: one creates, the other finds it made
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        conn.execute(statement)
            yield conn

    def write(self, conversation: Conversation, responses: Sequence[Response]) -> list[int]:
        """Record responses of ``conversation`` (created if new); returns their row ids."""
        ids: list[int] = []
        with self._connect() as conn, _transaction(conn):
            system, _ = _clean(conversation.system)
            name, _ = _clean(conversation.name)
            conn.execute(
                "INSERT OR IGNORE INTO conversations (id, created_utc, command, name, model, system, documents) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation.id,
                    conversation.created_utc,
                    conversation.command,
                    (name or "")[:200] or None,
                    conversation.model,
                    system,
                    json.dumps(conversation.documents),
                ),
            )
            for response in responses:
                row = asdict(response)
                row.pop("id")
                row["datetime_utc"] = row["datetime_utc"] or now_utc()
                redacted = 0
                for name_ in _TEXT_FIELDS:
                    row[name_], found = _clean(row[name_])
                    redacted += found
                row["redacted"] = response.redacted + redacted
                for name_ in _JSON_FIELDS:
                    row[name_] = json.dumps(row[name_], ensure_ascii=False) if row[name_] is not None else None
                columns = ", ".join(row)
                cursor = conn.execute(
                    f"INSERT INTO responses ({columns}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
                )
                ids.append(int(cursor.lastrowid or 0))
        self.prune()
        return ids

    def size(self) -> int:
        """Bytes in use (pages not on the free list), WAL included."""
        with self._connect() as conn:
            pages = (
                conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
            )
            return int(pages * conn.execute("PRAGMA page_size").fetchone()[0])

    def prune(self) -> int:
        """Delete the oldest responses until the file is within ``max_bytes``; returns how many went."""
        removed = 0
        with self._connect() as conn:
            for _ in range(64):
                page = conn.execute("PRAGMA page_size").fetchone()[0]
                used = (
                    conn.execute("PRAGMA page_count").fetchone()[0]
                    - conn.execute("PRAGMA freelist_count").fetchone()[0]
                ) * page
                if used <= self.max_bytes:
                    break
                with _transaction(conn):
                    total = conn.execute("SELECT count(*) FROM responses").fetchone()[0]
                    if total <= 1:
                        break
                    drop = max(1, int(total * PRUNE_FRACTION))
                    conn.execute(
                        "DELETE FROM responses WHERE id IN (SELECT id FROM responses ORDER BY id LIMIT ?)", (drop,)
                    )
                    conn.execute(
                        "DELETE FROM conversations WHERE id NOT IN (SELECT DISTINCT conversation_id FROM responses)"
                    )
                    removed += drop
                conn.execute("PRAGMA incremental_vacuum")
            if removed:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    # --- reading ------------------------------------------------------------------------------

    def responses(
        self, *, limit: int | None = 3, query: str | None = None, conversation_id: str | None = None
    ) -> list[Response]:
        """The newest ``limit`` responses (None: all), oldest first; ``query`` matches prompt,
        output or system text (case-insensitive substring)."""
        if not self.path.exists():
            return []
        where: list[str] = []
        args: list[Any] = []
        if query:
            where.append("(prompt LIKE ? OR output LIKE ? OR system LIKE ?)")
            like = f"%{query}%"
            args += [like, like, like]
        if conversation_id:
            where.append("conversation_id = ?")
            args.append(conversation_id)
        sql = "SELECT * FROM responses" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [_response(row) for row in reversed(rows)]

    def conversation(self, conversation_id: str) -> Conversation | None:
        if not self.path.exists():
            return None
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if row is None:
            return None
        return Conversation(
            row["id"],
            row["command"],
            row["name"],
            row["model"],
            row["system"],
            json.loads(row["documents"] or "{}"),
            row["created_utc"],
        )

    def last_conversation(self, commands: Sequence[str]) -> Conversation | None:
        """The conversation of the newest successful response of one of ``commands``."""
        if not self.path.exists():
            return None
        marks = ", ".join("?" * len(commands))
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT conversation_id FROM responses WHERE command IN ({marks}) AND exit_status = 0 "
                "ORDER BY id DESC LIMIT 1",
                tuple(commands),
            ).fetchone()
        return self.conversation(row[0]) if row else None


def _response(row: sqlite3.Row) -> Response:
    values = dict(row)
    for name in _JSON_FIELDS:
        values[name] = json.loads(values[name]) if values[name] is not None else None
    values["inputs"] = values["inputs"] or []
    values["sources"] = values["sources"] or []
    return Response(**values)


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE``: the write lock up front, so two writers queue (busy timeout) instead of
    one failing on upgrade from a read lock."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def to_dict(response: Response) -> dict[str, Any]:
    """The --json shape of one response (every column)."""
    return asdict(response)


def environ_home(environ: Mapping[str, str]) -> Path:
    from .settings import default_home

    return default_home(environ)


__all__ = [
    "CONVERSING",
    "LOG_FILE",
    "MAX_BYTES",
    "Conversation",
    "LogStore",
    "Response",
    "answered",
    "document_inputs",
    "input_record",
    "log_path",
    "logging_enabled",
    "new_conversation_id",
    "set_logging",
    "to_dict",
]
