"""Function- and class-level chunks of a repository's head into `code_embeddings` (the seed's
CodeEmbeddings), incrementally: a chunk whose content is unchanged keeps its vector and costs no embedding
call; chunks of symbols that no longer exist are deleted."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from pgvector.psycopg import register_vector

from cogo.code import store
from cogo.code.git import GitRepo
from cogo.embed import Embedder

MAX_CHUNK_CHARS = 6_000  # the local model reads 256 tokens; the header and the start of the code matter most
# Told the chunks done and to do (changed ones only): before the first batch and after each one.
Progress = Callable[[int, int], None]


@dataclass
class Chunk:
    file_path: str
    symbol: str
    kind: str
    start_line: int
    end_line: int
    content: str

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()


@dataclass
class EmbeddingStats:
    repo: str
    commit: str | None = None
    chunks: int = 0
    embedded: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: dict[str, str] = field(default_factory=dict)


def chunk_text(path: str, qualified_name: str, kind: str, docstring: str | None, source: str) -> str:
    header = f"{kind} {qualified_name} in {path}"
    if docstring:
        header += f"\n{docstring.strip()}"
    return f"{header}\n\n{source}"[:MAX_CHUNK_CHARS]


def head_chunks(git: GitRepo, conn: psycopg.Connection, repo: str) -> list[Chunk]:
    """Every function and class of the snapshot at the cursor, with its source lines."""
    chunks: list[Chunk] = []
    for facts in store.load_facts(conn, repo):
        if facts.skipped or not facts.symbols:
            continue
        lines = git.read_blob(facts.blob_sha).decode("utf-8", "replace").splitlines()
        for symbol in facts.symbols:
            source = "\n".join(lines[symbol.start_line - 1 : symbol.end_line])
            content = chunk_text(facts.path, symbol.qualified_name, symbol.kind, symbol.docstring, source)
            chunks.append(
                Chunk(facts.path, symbol.qualified_name, symbol.kind, symbol.start_line, symbol.end_line, content)
            )
    return chunks


def sync_code_embeddings(
    conn: psycopg.Connection, repo: str, embedder: Embedder, *, batch: int = 256, progress: Progress | None = None
) -> EmbeddingStats:
    stats = EmbeddingStats(repo=repo)
    cursor = store.load_cursor(conn, repo)
    if cursor is None or not cursor.last_sha:
        return stats
    stats.commit = cursor.last_sha
    register_vector(conn)
    with GitRepo(repo) as git:
        chunks = head_chunks(git, conn, repo)
    stats.chunks = len(chunks)
    existing = {
        (path, symbol): sha
        for path, symbol, sha in conn.execute(
            "SELECT file_path, symbol, content_sha256 FROM code_embeddings "
            "WHERE repo = %s AND model = %s AND embedding IS NOT NULL",
            (repo, embedder.model),
        ).fetchall()
    }
    todo = [c for c in chunks if existing.get((c.file_path, c.symbol)) != c.sha]
    stats.unchanged = len(chunks) - len(todo)
    if progress is not None:
        progress(0, len(todo))
    for start in range(0, len(todo), batch):
        part = todo[start : start + batch]
        outcome = embedder.embed_outcome([c.content for c in part])
        rows = []
        for i, chunk in enumerate(part):
            if i in outcome.failures:
                stats.failed[f"{chunk.file_path}:{chunk.symbol}"] = outcome.failures[i]
                continue
            rows.append(
                (
                    repo,
                    chunk.file_path,
                    chunk.symbol,
                    chunk.kind,
                    cursor.last_sha,
                    chunk.start_line,
                    chunk.end_line,
                    chunk.content,
                    chunk.sha,
                    embedder.model,
                    embedder.dims,
                    outcome.vectors[i],
                )
            )
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO code_embeddings (repo, file_path, symbol, symbol_kind, commit_hash, start_line,
                       end_line, content, content_sha256, model, dims, embedding)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (repo, file_path, symbol, model) DO UPDATE SET
                       symbol_kind = EXCLUDED.symbol_kind, commit_hash = EXCLUDED.commit_hash,
                       start_line = EXCLUDED.start_line, end_line = EXCLUDED.end_line, content = EXCLUDED.content,
                       content_sha256 = EXCLUDED.content_sha256, dims = EXCLUDED.dims,
                       embedding = EXCLUDED.embedding""",
                rows,
            )
        stats.embedded += len(rows)
        if progress is not None:
            progress(start + len(part), len(todo))
    live = [[c.file_path for c in chunks], [c.symbol for c in chunks]]
    with conn.transaction():
        deleted = conn.execute(
            """DELETE FROM code_embeddings e WHERE e.repo = %s AND e.model = %s AND NOT EXISTS (
                   SELECT 1 FROM unnest(%s::text[], %s::text[]) AS live(path, symbol)
                    WHERE live.path = e.file_path AND live.symbol = e.symbol)""",
            (repo, embedder.model, *live),
        )
        stats.deleted = deleted.rowcount
    return stats
