"""The message_embeddings stage: conversation messages in `embeddings`, so that search finds them beside files.

Every message with text is embedded with the organisation's default model (searches without an agent) and,
when its conversation has an agent, with that agent's `embedding_model` (the agent's searches); the row
carries the conversation's agent in agent_id. Long messages are cut like files (token windows with overlap),
one row per piece. Incremental: only (message, model) pairs with no row yet are read, identical content
reuses a vector already stored for the model, and a message that still fails is recorded in
message_embedding_failures (retried by later runs up to a limit). Messages are a transcript: a stored row
is not compared with its message again. When an agent's model changes, its old message vectors are removed
once every message of the organisation has its new ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

from cogo.embed import Embedder, estimated_cost_usd
from cogo.knowledge.chunking import (
    CHUNKER_VERSION,
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    TokenCounter,
    chunk_id,
    chunk_segments,
    content_sha256,
)
from cogo.knowledge.embed_stage import (
    MAX_EMBED_ATTEMPTS,
    SLICE,
    ModelFigures,
    ModelTotals,
    embed_slices,
    group_by_content,
)
from cogo.knowledge.indexes import ensure_model_index
from cogo.knowledge.segments import Segment

LOCK_KEY = 7_000_003

# (message, model) pairs wanted: the default model for every message with text, the conversation agent's too.
WANTED_SQL = """
SELECT m.id, m.organization_id, coalesce(c.agent_id, m.agent_id) AS agent_id, m.role, m.content, w.model
  FROM messages m
  JOIN conversations c ON c.id = m.conversation_id AND c.organization_id = m.organization_id
  LEFT JOIN agents a ON a.id = coalesce(c.agent_id, m.agent_id)
 CROSS JOIN LATERAL (SELECT %(default_model)s::text AS model
                     UNION SELECT a.embedding_model WHERE a.embedding_model IS NOT NULL) w
 WHERE btrim(m.content) <> ''
"""

MISSING_SQL = (
    "SELECT * FROM (" + WANTED_SQL + ") w "
    "WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.message_id = w.id AND e.model = w.model) "
    "AND NOT EXISTS (SELECT 1 FROM message_embedding_failures f WHERE f.message_id = w.id AND f.model = w.model "
    "AND f.attempts >= %(max_attempts)s) ORDER BY w.model, w.id"
)

COPY_SQL = (
    "COPY embeddings (organization_id, message_id, agent_id, chunk_id, chunk_index, content, content_sha256, "
    "position, token_count, chunker_version, model, dims, embedding) FROM STDIN WITH (FORMAT BINARY)"
)
COPY_TYPES = ["text", "int8", "uuid", "text", "int4", "text", "text", "jsonb", "int4", "text", "text", "int4", "vector"]


@dataclass
class MessageEmbedReport(ModelTotals):
    messages_embedded: int = 0
    rows_written: int = 0
    rows_deleted: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    by_model: dict[str, ModelFigures] = field(default_factory=dict)
    hnsw_indexes_created: list[str] = field(default_factory=list)
    incomplete_organizations: set[str] = field(default_factory=set)
    duration_s: float = 0.0

    def as_metadata(self, shown: int = 50) -> dict[str, Any]:
        return {
            "messages_embedded": self.messages_embedded,
            "rows_written": self.rows_written,
            "rows_deleted": self.rows_deleted,
            **self.embedding_metadata(),
            "postgres_hnsw_indexes_created": ", ".join(self.hnsw_indexes_created) or "none",
            "failed_messages": len(self.failures),
            "failures": self.failures[:shown],
            "duration_s": self.duration_s,
        }


@dataclass
class _Piece:
    message_id: int
    organization_id: str
    agent_id: Any
    index: int
    content: str
    position: dict[str, Any]
    token_count: int

    @property
    def sha(self) -> str:
        return content_sha256(self.content)


def embed_messages(
    conn: psycopg.Connection,
    embedder_for: Callable[[str], Embedder],
    default_model: str,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
    slice_size: int = SLICE,
    counter: TokenCounter | None = None,
) -> MessageEmbedReport:
    started = time.monotonic()
    report = MessageEmbedReport()
    register_vector(conn)
    params = {"default_model": default_model, "max_attempts": MAX_EMBED_ATTEMPTS}
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        missing = conn.execute(MISSING_SQL, params).fetchall()
        conn.commit()
        by_model: dict[str, list[tuple]] = {}
        for row in missing:
            by_model.setdefault(row[5], []).append(row)
        if missing:
            counter = counter or TokenCounter()
        for model, rows in by_model.items():
            embedder = embedder_for(model)
            # Windows every piece of which the model reads whole, special tokens included.
            size = min(chunk_size, embedder.chunk_budget)
            pieces = _pieces(rows, size, min(chunk_overlap, size // 2), counter, embedder)  # type: ignore[arg-type]
            _embed_model(conn, embedder, pieces, len(rows), report, slice_size)
        with conn.transaction():
            report.rows_deleted = _delete_unwanted(conn, default_model, report.incomplete_organizations)
        conn.commit()
    finally:
        conn.rollback()
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        conn.commit()
    report.duration_s = round(time.monotonic() - started, 3)
    return report


def _pieces(
    rows: list[tuple], size: int, overlap: int, counter: TokenCounter, embedder: Embedder
) -> dict[int, list[_Piece]]:
    out: dict[int, list[_Piece]] = {}
    for message_id, org, agent, role, content, _model in rows:
        chunks = chunk_segments([Segment(content.replace("\x00", ""))], size, overlap, counter, [embedder])
        out[message_id] = [
            _Piece(
                message_id,
                org,
                agent,
                c.index,
                c.content,
                {"role": role} | ({"part": c.index} if c.index else {}),
                c.token_count,
            )
            for c in chunks
        ]
    return out


def _embed_model(
    conn: psycopg.Connection,
    embedder: Embedder,
    pieces: dict[int, list[_Piece]],
    messages: int,
    report: MessageEmbedReport,
    slice_size: int,
) -> None:
    figures = report.by_model.setdefault(embedder.model, ModelFigures())
    all_pieces = [p for ps in pieces.values() for p in ps]
    by_sha, vectors = group_by_content(conn, embedder.model, all_pieces, lambda p: p.sha, figures)
    calls_before = embedder.stats.calls
    to_embed = [s for s in by_sha if s not in vectors]
    failed: dict[str, str] = {}
    texts = [by_sha[s][0].content for s in to_embed]
    for slice_vectors, slice_failed in embed_slices(embedder, texts, to_embed, slice_size, figures, truncate=False):
        vectors.update(slice_vectors)
        failed.update(slice_failed)
    figures.embed_calls += embedder.stats.calls - calls_before
    figures.estimated_cost_usd = estimated_cost_usd(embedder.model, figures.tokens)
    figures.embed_s = round(figures.embed_s, 3)
    # A message is written whole or not at all: a failed piece fails its message.
    reasons = {m: next((failed[p.sha] for p in ps if p.sha in failed), None) for m, ps in pieces.items()}
    done = [m for m, reason in reasons.items() if reason is None and pieces[m]]
    figures.failures += sum(1 for r in reasons.values() if r is not None)
    dims = len(next(iter(vectors.values()))) if vectors else 0
    with conn.transaction(), conn.cursor() as cur:
        if done:
            with cur.copy(COPY_SQL) as copy:
                copy.set_types(COPY_TYPES)
                for m in done:
                    for p in pieces[m]:
                        copy.write_row(_row(p, embedder.model, dims, vectors[p.sha]))
                        report.rows_written += 1
            cur.execute(
                "DELETE FROM message_embedding_failures WHERE model = %s AND message_id = ANY(%s)",
                (embedder.model, done),
            )
        failure_rows = [(m, pieces[m][0].organization_id, embedder.model, r) for m, r in reasons.items() if r]
        cur.executemany(
            "INSERT INTO message_embedding_failures (message_id, organization_id, model, reason) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (message_id, model) DO UPDATE SET reason = EXCLUDED.reason, "
            "attempts = message_embedding_failures.attempts + 1, failed_at = now()",
            failure_rows,
        )
        if dims and ensure_model_index(conn, embedder.model, dims):
            report.hnsw_indexes_created.append(embedder.model)
    report.messages_embedded += len(done)
    report.incomplete_organizations.update(pieces[m][0].organization_id for m, r in reasons.items() if r)
    report.failures.extend({"message_id": m, "model": model, "reason": r} for m, _, model, r in failure_rows)


def _row(p: _Piece, model: str, dims: int, vector: np.ndarray) -> tuple:
    return (
        p.organization_id,
        p.message_id,
        p.agent_id,
        chunk_id(p.content, CHUNKER_VERSION),
        p.index,
        p.content,
        p.sha,
        Jsonb(p.position),
        p.token_count,
        CHUNKER_VERSION,
        model,
        dims,
        np.asarray(vector, dtype=np.float32),
    )


def _delete_unwanted(conn: psycopg.Connection, default_model: str, incomplete: set[str]) -> int:
    """Message vectors of a model the message no longer wants (its agent changed model, or the default
    changed), outside the organisations with messages still waiting for their vectors: there, the old ones
    keep answering until the new ones are complete."""
    waiting = {r[0] for r in conn.execute("SELECT DISTINCT organization_id FROM message_embedding_failures")}
    return conn.execute(
        "DELETE FROM embeddings e WHERE e.message_id IS NOT NULL AND e.model <> %s "
        "AND e.model IS DISTINCT FROM (SELECT a.embedding_model FROM agents a WHERE a.id = e.agent_id) "
        "AND e.organization_id <> ALL(%s)",
        (default_model, sorted(incomplete | waiting)),
    ).rowcount
