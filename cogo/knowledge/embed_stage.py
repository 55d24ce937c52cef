"""The file_embeddings stage: embed every chunk an index needs and does not have, once per content.

1. The indexes are synced with the targets (knowledge.targets): new ones start 'building'.
2. Missing rows: (file, model, profile, chunk) that a target wants, with no row in `embeddings` and no
   failure that used up its attempts. One anti-join, so an unchanged corpus costs one query and no call.
3. Identical content is embedded once per model: a vector already stored for the same content_sha256 is
   copied; the rest is embedded in slices, and each slice is written with binary COPY by a writer thread
   while the embedder works on the next one.
4. Chunks that still fail are recorded in embedding_failures with the reason.
5. Rows no longer matching their file's chunks are deleted; complete indexes become ready and replace the
   old ones; vectors no live index uses are deleted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

from cogo.embed import Embedder, estimated_cost_usd
from cogo.knowledge.chunking import CHUNKER_VERSION, DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE
from cogo.knowledge.indexes import complete_indexes, delete_retired_vectors, ensure_model_index, sync_indexes
from cogo.knowledge.targets import active_files

MAX_EMBED_ATTEMPTS = 3
SLICE = 1024  # unique texts per embedding slice (and per written transaction)
LOCK_KEY = 7_000_002

COPY_SQL = (
    "COPY embeddings (organization_id, file_id, chunk_id, chunk_index, content, content_sha256, position, "
    "token_count, chunker_version, model, dims, embedding, chunk_profile) FROM STDIN WITH (FORMAT BINARY)"
)
COPY_TYPES = ["text", "uuid", "text", "int4", "text", "text", "jsonb", "int4", "text", "text", "int4", "vector", "text"]


@dataclass
class ModelFigures:
    rows_needed: int = 0
    unique_contents: int = 0
    reused_vectors: int = 0
    texts_embedded: int = 0
    embed_calls: int = 0
    tokens: int = 0
    failures: int = 0
    estimated_cost_usd: float = 0.0
    embed_s: float = 0.0


class ModelTotals:
    """Totals over a report's `by_model` figures (what the asset metadata shows)."""

    by_model: dict[str, ModelFigures]

    @property
    def embed_calls(self) -> int:
        return sum(m.embed_calls for m in self.by_model.values())

    @property
    def tokens(self) -> int:
        return sum(m.tokens for m in self.by_model.values())

    @property
    def estimated_cost_usd(self) -> float:
        return round(sum(m.estimated_cost_usd for m in self.by_model.values()), 6)

    def embedding_metadata(self) -> dict[str, Any]:
        """What every embedding report shows: calls, tokens, cost, and the figures per model."""
        return {
            "embedding_calls": self.embed_calls,
            "tokens": self.tokens,
            "estimated_cost_usd": self.estimated_cost_usd,
            "by_model": self.model_figures(),
        }

    def model_figures(self) -> dict[str, dict[str, Any]]:
        """`by_model` as plain values (floats rounded), for asset metadata."""
        return {
            model: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in vars(fig).items()}
            for model, fig in self.by_model.items()
        }


@dataclass
class EmbedReport(ModelTotals):
    rows_written: int = 0
    rows_deleted_stale: int = 0
    rows_deleted_retired: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    by_model: dict[str, ModelFigures] = field(default_factory=dict)
    indexes: dict[str, int] = field(default_factory=dict)
    hnsw_indexes_created: list[str] = field(default_factory=list)
    write_s: float = 0.0
    duration_s: float = 0.0

    def as_metadata(self, shown: int = 50) -> dict[str, Any]:
        """knowledge_indexes_*: rows of knowledge_indexes (an organisation's index of a model and chunk profile) by
        what happened to them; postgres_hnsw_indexes_created: the Postgres indexes built in this run."""
        return {
            "rows_written": self.rows_written,
            "rows_deleted_stale": self.rows_deleted_stale,
            "rows_deleted_retired": self.rows_deleted_retired,
            **self.embedding_metadata(),
            **{f"knowledge_{name}": count for name, count in sorted(self.indexes.items())},
            "postgres_hnsw_indexes_created": ", ".join(self.hnsw_indexes_created) or "none",
            "failed_chunks": len(self.failures),
            "failures": self.failures[:shown],
            "write_s": round(self.write_s, 3),
            "duration_s": self.duration_s,
        }


@dataclass
class _Missing:
    organization_id: str
    file_id: uuid.UUID
    model: str
    chunk_profile: str
    chunk_index: int
    chunk_id: str
    content: str
    content_sha256: str
    position: dict
    token_count: int


MISSING_SQL = """
SELECT c.organization_id, c.file_id, d.model, c.chunk_profile, c.chunk_index, c.chunk_id, c.content,
       c.content_sha256, c.position, c.token_count
  FROM _desired d
  JOIN file_chunks c ON c.file_id = d.file_id AND c.chunk_profile = d.chunk_profile
 WHERE NOT EXISTS (SELECT 1 FROM embeddings e
                    WHERE e.file_id = c.file_id AND e.model = d.model AND e.chunk_profile = c.chunk_profile
                      AND e.chunk_index = c.chunk_index AND e.chunk_id = c.chunk_id)
   AND NOT EXISTS (SELECT 1 FROM embedding_failures f
                    WHERE f.file_id = c.file_id AND f.model = d.model AND f.chunk_profile = c.chunk_profile
                      AND f.chunk_index = c.chunk_index AND f.chunk_id = c.chunk_id AND f.attempts >= %s)
 ORDER BY d.model, c.file_id, c.chunk_profile, c.chunk_index
"""


# Files an index covers that have text but no chunks under its profile yet (file_chunks has not run since
# the change): the index is not complete while there are any.
UNCHUNKED_SQL = """
SELECT DISTINCT d.organization_id, d.model, d.chunk_profile
  FROM _desired d
  JOIN files f ON f.id = d.file_id
  LEFT JOIN file_extractions x ON x.file_id = d.file_id
 WHERE (x.file_id IS NULL OR x.sha256 IS DISTINCT FROM f.sha256 OR x.chunker_version <> %s OR x.status = 'ok')
   AND NOT EXISTS (SELECT 1 FROM file_chunks c WHERE c.file_id = d.file_id AND c.chunk_profile = d.chunk_profile)
"""


def embed_files(
    conn: psycopg.Connection,
    embedder_for: Callable[[str], Embedder],
    default_model: str,
    *,
    writer: psycopg.Connection | None = None,
    slice_size: int = SLICE,
    log: Callable[[str], None] = lambda _: None,
    chunker_version: str = CHUNKER_VERSION,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
) -> EmbedReport:
    """`conn` reads and keeps the bookkeeping; `writer` (a second connection) writes vectors while the next
    slice is embedded. Without it, writes happen in line. `chunker_version`, `chunk_size` and `chunk_overlap`
    must be those file_chunks ran with (see chunk_files): they name the indexes wanted."""
    started = time.monotonic()
    report = EmbedReport()
    register_vector(conn)
    if writer is not None:
        register_vector(writer)
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        with conn.transaction():
            files, targets = active_files(
                conn, default_model, chunker_version=chunker_version, chunk_size=chunk_size, chunk_overlap=chunk_overlap
            )
            report.indexes.update(sync_indexes(conn, targets))
        _load_desired(conn, files)
        missing = [_Missing(*row) for row in conn.execute(MISSING_SQL, (MAX_EMBED_ATTEMPTS,))]
        conn.commit()
        by_model: dict[str, list[_Missing]] = {}
        for m in missing:
            by_model.setdefault(m.model, []).append(m)
        for model, rows in by_model.items():
            _embed_model(conn, writer or conn, embedder_for(model), rows, report, slice_size, chunker_version, log)
        with conn.transaction():
            report.rows_deleted_stale = _delete_stale(conn, chunker_version)
            remaining = conn.execute(
                "SELECT DISTINCT organization_id, model, chunk_profile FROM (" + MISSING_SQL + ") m "
                "UNION " + UNCHUNKED_SQL,
                (MAX_EMBED_ATTEMPTS, chunker_version),
            ).fetchall()
            report.indexes.update(complete_indexes(conn, {tuple(r) for r in remaining}))
            report.rows_deleted_retired = delete_retired_vectors(conn)
        conn.execute("DROP TABLE IF EXISTS _desired")
        conn.commit()
    finally:
        conn.rollback()  # a failed transaction must not keep the lock (or the connection) stuck
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        conn.commit()
    report.duration_s = round(time.monotonic() - started, 3)
    return report


def _load_desired(conn: psycopg.Connection, files: list) -> None:
    conn.execute("DROP TABLE IF EXISTS _desired")
    conn.execute("CREATE TEMP TABLE _desired (file_id uuid, model text, chunk_profile text, organization_id text)")
    with conn.cursor().copy("COPY _desired FROM STDIN") as copy:
        for f in files:
            for model, profile in sorted(f.model_profiles):
                copy.write_row((f.id, model, profile, f.organization_id))
    conn.execute("CREATE INDEX ON _desired (file_id, chunk_profile)")
    conn.execute("ANALYZE _desired")


def embed_slices(
    embedder: Embedder,
    texts: list[str],
    shas: list[str],
    slice_size: int,
    figures: ModelFigures,
    *,
    truncate: bool = True,
) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """Embeds `texts` (one per content hash in `shas`) a slice at a time, yielding each slice's vectors and
    failure reasons by hash; time, tokens and texts embedded are counted in `figures`. `truncate=False`: a
    text over the embedder's window fails with the reason instead of being embedded cut short."""
    for i in range(0, len(texts), slice_size):
        hashes = shas[i : i + slice_size]
        t0 = time.monotonic()
        outcome = embedder.embed_outcome(texts[i : i + slice_size], truncate=truncate)
        figures.embed_s += time.monotonic() - t0
        figures.tokens += outcome.tokens
        figures.texts_embedded += len(hashes) - len(outcome.failures)
        vectors = {h: outcome.vectors[j] for j, h in enumerate(hashes) if j not in outcome.failures}
        yield vectors, {hashes[j]: reason for j, reason in outcome.failures.items()}


R = TypeVar("R")


def group_by_content(
    conn: psycopg.Connection, model: str, rows: list[R], sha_of: Callable[[R], str], figures: ModelFigures
) -> tuple[dict[str, list[R]], dict[str, Any]]:
    """Rows grouped by content hash (identical content is embedded once), and the vectors `model` already has for
    some of those contents (reused, never embedded again); counted in `figures`."""
    by_sha: dict[str, list[R]] = {}
    for row in rows:
        by_sha.setdefault(sha_of(row), []).append(row)
    figures.rows_needed += len(rows)
    figures.unique_contents += len(by_sha)
    known = _existing_vectors(conn, model, sorted(by_sha))
    figures.reused_vectors += sum(len(by_sha[s]) for s in known)
    return by_sha, known


def _existing_vectors(conn: psycopg.Connection, model: str, shas: list[str]) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    with conn.cursor(binary=True) as cur:
        for i in range(0, len(shas), 5000):
            cur.execute(
                "SELECT DISTINCT ON (content_sha256) content_sha256, embedding FROM embeddings "
                "WHERE model = %s AND content_sha256 = ANY(%s)",
                (model, shas[i : i + 5000]),
            )
            for sha, vec in cur.fetchall():
                found[sha] = np.asarray(vec.to_numpy() if hasattr(vec, "to_numpy") else vec, dtype=np.float32)
    conn.commit()
    return found


def _embed_model(
    conn: psycopg.Connection,
    writer: psycopg.Connection,
    embedder: Embedder,
    rows: list[_Missing],
    report: EmbedReport,
    slice_size: int,
    chunker_version: str,
    log: Callable[[str], None],
) -> None:
    figures = report.by_model.setdefault(embedder.model, ModelFigures())
    by_sha, known = group_by_content(conn, embedder.model, rows, lambda r: r.content_sha256, figures)
    calls_before = embedder.stats.calls
    # An unknown model's dimension comes with its first vectors (no probe call).
    dims = len(next(iter(known.values()))) if known else embedder.dims_if_known()
    to_embed = [s for s in by_sha if s not in known]
    overlapped = writer is not conn
    pool = ThreadPoolExecutor(max_workers=1) if overlapped else None
    pending: list[Future] = []

    def write(vectors: dict[str, np.ndarray], failed: dict[str, str]) -> None:
        nonlocal dims
        if vectors:  # the vectors' own size: a compatible server may serve a known model name at another size
            dims = len(next(iter(vectors.values())))
        if pool is None:
            _write_slice(writer, embedder.model, dims, chunker_version, by_sha, vectors, failed, report)
        else:
            pending.append(
                pool.submit(
                    _write_slice, writer, embedder.model, dims, chunker_version, by_sha, vectors, failed, report
                )
            )

    try:
        if known:
            write(known, {})
        texts = [by_sha[s][0].content for s in to_embed]
        # File chunks are cut to the window: one that is not (chunked for another model) is refused, not cut.
        slices = embed_slices(embedder, texts, to_embed, slice_size, figures, truncate=False)
        for done, (vectors, failed) in enumerate(slices, 1):
            figures.failures += sum(len(by_sha[s]) for s in failed)
            write(vectors, failed)
            log(f"{embedder.model}: embedded {min(done * slice_size, len(to_embed))}/{len(to_embed)} unique chunks")
            if pending:  # keep at most one slice in flight: bounded memory, errors surface early
                while len(pending) > 1:
                    pending.pop(0).result()
        for f in pending:
            f.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    figures.embed_calls += embedder.stats.calls - calls_before
    figures.estimated_cost_usd = estimated_cost_usd(embedder.model, figures.tokens)
    figures.embed_s = round(figures.embed_s, 3)
    if dims and (figures.texts_embedded or known):
        with conn.transaction():
            if ensure_model_index(conn, embedder.model, dims):
                report.hnsw_indexes_created.append(embedder.model)


def _write_slice(
    writer: psycopg.Connection,
    model: str,
    dims: int,
    chunker_version: str,
    by_sha: dict[str, list[_Missing]],
    vectors: dict[str, np.ndarray],
    failed: dict[str, str],
    report: EmbedReport,
) -> None:
    t0 = time.monotonic()
    written = 0
    with writer.transaction(), writer.cursor() as cur:
        with cur.copy(COPY_SQL) as copy:
            copy.set_types(COPY_TYPES)
            for sha, vector in vectors.items():
                vec = np.asarray(vector, dtype=np.float32)
                for r in by_sha[sha]:
                    copy.write_row(
                        (
                            r.organization_id,
                            r.file_id,
                            r.chunk_id,
                            r.chunk_index,
                            r.content,
                            r.content_sha256,
                            Jsonb(r.position),
                            r.token_count,
                            chunker_version,
                            model,
                            dims,
                            vec,
                            r.chunk_profile,
                        )
                    )
                    written += 1
        done = [(r.file_id, model, r.chunk_profile, r.chunk_index) for s in vectors for r in by_sha[s]]
        if done:
            cur.execute(
                "DELETE FROM embedding_failures f USING unnest(%s::uuid[], %s::text[], %s::text[], %s::int[]) "
                "AS d(file_id, model, chunk_profile, chunk_index) WHERE f.file_id = d.file_id AND f.model = d.model "
                "AND f.chunk_profile = d.chunk_profile AND f.chunk_index = d.chunk_index",
                tuple(list(col) for col in zip(*done, strict=True)),
            )
        failure_rows = [
            (r.file_id, r.organization_id, model, r.chunk_profile, r.chunk_index, r.chunk_id, reason)
            for sha, reason in failed.items()
            for r in by_sha[sha]
        ]
        cur.executemany(
            "INSERT INTO embedding_failures (file_id, organization_id, model, chunk_profile, chunk_index, chunk_id, "
            "reason) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (file_id, model, chunk_profile, chunk_index) "
            "DO UPDATE SET chunk_id = EXCLUDED.chunk_id, reason = EXCLUDED.reason, failed_at = now(), "
            "attempts = CASE WHEN embedding_failures.chunk_id = EXCLUDED.chunk_id "
            "THEN embedding_failures.attempts + 1 ELSE 1 END",
            failure_rows,
        )
    report.rows_written += written
    report.failures.extend(
        {"file_id": str(f), "model": m, "chunk_index": i, "reason": reason} for f, _, m, _, i, _, reason in failure_rows
    )
    report.write_s += time.monotonic() - t0


def _delete_stale(conn: psycopg.Connection, chunker_version: str) -> int:
    """Rows of a current (file, model, profile) whose chunk is no longer among the file's chunks (the file
    changed, its new chunks now embedded), and rows of a (file, model, profile) no target wants any more
    unless an old ready index still serves them."""
    replaced = conn.execute(
        """
        DELETE FROM embeddings e USING _desired d, files f, file_extractions x
         WHERE e.file_id = d.file_id AND e.model = d.model AND e.chunk_profile = d.chunk_profile
           AND f.id = e.file_id AND x.file_id = e.file_id AND x.sha256 = f.sha256 AND x.chunker_version = %s
           AND NOT EXISTS (SELECT 1 FROM file_chunks c WHERE c.file_id = e.file_id AND c.chunk_profile = e.chunk_profile
                              AND c.chunk_index = e.chunk_index AND c.chunk_id = e.chunk_id)
        """,
        (chunker_version,),
    ).rowcount
    unwanted = conn.execute(
        """
        DELETE FROM embeddings e
         WHERE e.file_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM _desired d WHERE d.file_id = e.file_id AND d.model = e.model
                              AND d.chunk_profile = e.chunk_profile)
           AND NOT EXISTS (SELECT 1 FROM knowledge_indexes k WHERE k.organization_id = e.organization_id
                              AND k.model = e.model AND k.chunk_profile = e.chunk_profile AND k.state = 'ready'
                              AND NOT EXISTS (SELECT 1 FROM _desired d2 WHERE d2.organization_id = k.organization_id
                                                 AND d2.model = k.model AND d2.chunk_profile = k.chunk_profile))
        """
    ).rowcount
    return replaced + unwanted
