"""The file_chunks stage: extract and chunk every active file whose chunks are missing or stale.

A file's chunks are current when its extraction record matches its sha256 and the chunker version, and
chunks exist for every chunk profile its index targets ask for. Anything else is redone for that file
alone: stale chunks are replaced, profiles nobody asks for any more are dropped. Unchanged files cost one
query in total, not one per file.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from cogo.knowledge.chunking import (
    CHUNKER_VERSION,
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    Chunk,
    TokenCounter,
    chunk_id,
    chunk_segments,
    content_sha256,
    parse_profile,
)
from cogo.knowledge.extract import DEFAULT_MAX_BYTES, Extraction, extract, extractor_for
from cogo.knowledge.targets import ActiveFile, active_files
from cogo.workspace.fs import ContentChanged, FileTooLarge, UnsafePath, read_registered

FILES_PER_TRANSACTION = 200


@dataclass
class ChunkReport:
    files_seen: int = 0
    files_extracted: int = 0
    files_rechunked: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    tokens: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (storage_path, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # not readable as registered, retried later
    clamped: list[str] = field(default_factory=list)  # sources whose chunk_size is over their embedder's window
    duration_s: float = 0.0

    def as_metadata(self, shown: int = 50) -> dict[str, Any]:
        """The run's figures and the first `shown` entries of each list, for the asset's materialization."""
        return {
            "files_seen": self.files_seen,
            "files_extracted": self.files_extracted,
            "chunks_written": self.chunks_written,
            "chunks_deleted": self.chunks_deleted,
            "tokens": self.tokens,
            "extraction_status": dict(self.statuses),
            "extraction_failures": [{"path": p, "reason": r} for p, r in self.failures[:shown]],
            "files_skipped": len(self.skipped),
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped[:shown]],
            "sources_clamped": self.clamped[:shown],
            "duration_s": self.duration_s,
        }


def _state(conn: psycopg.Connection) -> tuple[dict[uuid.UUID, tuple[str, str, str]], dict[uuid.UUID, set[str]]]:
    rows = conn.execute("SELECT file_id, sha256, chunker_version, status FROM file_extractions")
    extractions = {r[0]: (r[1], r[2], r[3]) for r in rows}
    profiles: dict[uuid.UUID, set[str]] = {}
    for file_id, profile in conn.execute("SELECT DISTINCT file_id, chunk_profile FROM file_chunks"):
        profiles.setdefault(file_id, set()).add(profile)
    return extractions, profiles


def chunk_files(
    conn: psycopg.Connection,
    root: Path,
    default_model: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    counter: TokenCounter | None = None,
    chunker_version: str = CHUNKER_VERSION,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
) -> ChunkReport:
    """`chunker_version` labels the chunker's output (extraction records, chunk ids, profiles): a file chunked
    under another version is stale and chunked again. `chunk_size`/`chunk_overlap` are the organisations'
    default index's (agent knowledge sources bring their own); each is clamped to what its embedder reads whole
    (see knowledge.targets), and every chunk fits the window of every embedder that reads it."""
    started = time.monotonic()
    report = ChunkReport()
    files, targets = active_files(
        conn, default_model, chunker_version=chunker_version, chunk_size=chunk_size, chunk_overlap=chunk_overlap
    )
    report.clamped = sorted({t.clamped for t in targets if t.clamped and t.source_id is not None})
    extractions, have = _state(conn)
    conn.commit()
    report.files_seen = len(files)
    todo: list[tuple[ActiveFile, bool]] = []
    for f in files:
        record = extractions.get(f.id)
        stale = record is None or record[0] != f.sha256 or record[1] != chunker_version
        wanted, present = f.profiles, have.get(f.id, set())
        if stale or (record and record[2] == "ok" and wanted - present) or (present - wanted):
            todo.append((f, stale))
    if todo:
        counter = counter or TokenCounter()  # loads the tokenizer: only when there is work
    for i in range(0, len(todo), FILES_PER_TRANSACTION):
        with conn.transaction():
            for f, stale in todo[i : i + FILES_PER_TRANSACTION]:
                _process(conn, root, f, stale, have.get(f.id, set()), counter, max_bytes, chunker_version, report)  # type: ignore[arg-type]
    report.duration_s = round(time.monotonic() - started, 3)
    return report


def _process(
    conn: psycopg.Connection,
    root: Path,
    f: ActiveFile,
    stale: bool,
    present: set[str],
    counter: TokenCounter,
    max_bytes: int,
    chunker_version: str,
    report: ChunkReport,
) -> None:
    wanted = f.profiles
    drop = present - wanted if not stale else present
    build = wanted if stale else wanted - present
    extraction: Extraction | None = None
    data = b""
    max_tokens = 0
    if build:
        max_tokens = max(parse_profile(p)[1] for p in build)
        source = _read(conn, root, f, max_bytes, report)
        if source is None:
            return  # not readable as registered: nothing changes until the workspace scan has looked again
        if isinstance(source, Extraction):
            extraction = source
        else:
            data = source
            extraction = extract(data, f.filename, f.mime_type, count_tokens=counter.count, max_tokens=max_tokens)
        report.files_extracted += 1
        report.statuses[extraction.status] += 1
        if extraction.status == "failed":
            report.failures.append((f.storage_path, extraction.reason or "unknown"))
    if drop:
        cur = conn.execute(
            "DELETE FROM file_chunks WHERE file_id = %s AND chunk_profile = ANY(%s)", (f.id, sorted(drop))
        )
        report.chunks_deleted += cur.rowcount
    if extraction is None:
        return
    if stale:
        conn.execute(
            "INSERT INTO file_extractions (file_id, organization_id, sha256, chunker_version, status, extractor, "
            "reason, segments, characters) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (file_id) DO UPDATE SET "
            "sha256 = EXCLUDED.sha256, chunker_version = EXCLUDED.chunker_version, status = EXCLUDED.status, "
            "extractor = EXCLUDED.extractor, reason = EXCLUDED.reason, segments = EXCLUDED.segments, "
            "characters = EXCLUDED.characters, extracted_at = now()",
            (
                f.id,
                f.organization_id,
                f.sha256,
                chunker_version,
                extraction.status,
                extraction.extractor,
                extraction.reason,
                len(extraction.segments),
                extraction.characters,
            ),
        )
    if extraction.status != "ok":
        return
    report.files_rechunked += 1
    rows = []
    for profile in sorted(build):
        _, size, overlap = parse_profile(profile)
        segments = extraction.segments
        if extraction.extractor == "code" and size != max_tokens:
            # Code segments depend on the chunk size (a class too big for one chunk is split by members).
            again = extract(data, f.filename, f.mime_type, count_tokens=counter.count, max_tokens=size)
            segments = again.segments if again.status == "ok" else segments
        for chunk in chunk_segments(segments, size, overlap, counter, f.embedders(profile)):
            rows.append(_row(f, profile, chunk, chunker_version))
            report.tokens += chunk.token_count
    with conn.cursor().copy(
        "COPY file_chunks (file_id, organization_id, chunk_profile, chunk_index, chunk_id, content, content_sha256, "
        "position, token_count, chunker_version) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)
    report.chunks_written += len(rows)


def _read(
    conn: psycopg.Connection, root: Path, f: ActiveFile, max_bytes: int, report: ChunkReport
) -> bytes | Extraction | None:
    """The file's registered bytes, an Extraction when there is nothing to read (no extractor, too large), or
    None when the file cannot be read as registered (gone, swapped, changed, unreadable): skipped and listed."""
    kind = extractor_for(f.filename, f.mime_type)
    if kind == "binary":
        return extract(b"", f.filename, f.mime_type, count_tokens=len, max_tokens=0)
    try:
        return read_registered(root, f.storage_path, f.sha256, max_bytes=max_bytes)
    except FileTooLarge as exc:
        return Extraction("too_large", kind, reason=str(exc))
    except (ContentChanged, UnsafePath, OSError) as exc:
        reason = str(exc) if not isinstance(exc, OSError) else f"cannot be read: {exc.strerror or exc}"
        report.skipped.append((f.storage_path, reason))
        if isinstance(exc, ContentChanged):
            # Other bytes under the registered size and mtime: the next scan that covers it hashes it again.
            conn.execute("UPDATE files SET file_mtime = NULL WHERE id = %s", (f.id,))
        return None


def _row(f: ActiveFile, profile: str, chunk: Chunk, chunker_version: str) -> tuple:
    # Postgres text cannot hold NUL; a stray one in extracted text is dropped.
    content = chunk.content.replace("\x00", "")
    return (
        f.id,
        f.organization_id,
        profile,
        chunk.index,
        chunk_id(content, chunker_version),
        content,
        content_sha256(content),
        Jsonb(chunk.position),
        chunk.token_count,
        chunker_version,
    )
