"""Reindexing when the chunker version changes (issue 7, part 4): the real pipeline under version A, then
under version B (the current CHUNKER_VERSION) through the reindex job's assets. Stale chunks are chunked and
embedded again, content already embedded with the same model costs no embedding call, the old vectors keep
answering until the new index is complete, and are then removed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from cogo.assets.knowledge import file_chunks, file_embeddings, knowledge_embedded
from cogo.knowledge.chunk_stage import chunk_files
from cogo.knowledge.chunking import CHUNKER_VERSION
from cogo.knowledge.embed_stage import embed_files
from cogo.knowledge.search import search_chunks
from cogo.resources import PostgresResource
from cogo.resources.embedder import EmbedderResource
from cogo.resources.workspace import WorkspaceResource
from cogo.workspace.register import register_files
from tests.embeddings_server import EmbeddingsServer, embeddings_server
from tests.knowledge_helpers import ORG, files_dir, seed_tenants, write_corpus
from tests.test_knowledge_pipeline import MODEL, embedders

OLD = "c0-test"  # a chunker version other than the current one
NEW_FILE_TEXT = "# Calibration\n\nServo calibration arrives together with the new chunker."


@pytest.fixture
def server() -> Iterator[EmbeddingsServer]:
    with embeddings_server(dims=32) as s:
        yield s


def _versions_answering(conn: psycopg.Connection, server: EmbeddingsServer, query: str) -> set[str]:
    hits = search_chunks(conn, ORG, query, 5, embedder_for=embedders(server))
    assert hits
    rows = conn.execute(
        "SELECT DISTINCT chunker_version FROM embeddings WHERE chunk_id = ANY(%s)", ([h.chunk_id for h in hits],)
    )
    return {v for (v,) in rows}


def _states(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT chunk_profile, state FROM knowledge_indexes").fetchall())


def test_chunker_version_change_reembeds_stale_chunks_and_old_vectors_answer_until_complete(
    database_url: str, tmp_path: Path, server: EmbeddingsServer
) -> None:
    with psycopg.connect(database_url) as conn:
        seed_tenants(conn)
        conn.commit()
        write_corpus(tmp_path)
        embedder_for = embedders(server)
        # Version A, end to end.
        register_files(conn, tmp_path, full=True)
        chunk_files(conn, tmp_path, MODEL, chunker_version=OLD)
        first = embed_files(conn, embedder_for, MODEL, chunker_version=OLD)
        old_rows = first.rows_written
        assert old_rows > 5 and _states(conn) == {f"{OLD}/256/32": "ready"}
        assert _versions_answering(conn, server, "token") == {OLD}

        # Version B: every file is stale and chunked again; a new file arrives at the same time.
        (files_dir(tmp_path) / "calibration.md").write_text(NEW_FILE_TEXT + "\n")
        register_files(conn, tmp_path, full=True)
        rechunked = chunk_files(conn, tmp_path, MODEL)
        assert rechunked.files_extracted == rechunked.files_seen
        assert conn.execute("SELECT DISTINCT chunker_version FROM file_chunks").fetchall() == [(CHUNKER_VERSION,)]
        assert conn.execute("SELECT DISTINCT chunker_version FROM file_extractions").fetchall() == [(CHUNKER_VERSION,)]
        # Chunks are replaced, vectors not yet: version A still answers.
        assert _versions_answering(conn, server, "token") == {OLD}

        # The new file's chunk fails to embed: version B stays building and version A keeps answering.
        server.reject = {NEW_FILE_TEXT}
        requests_before = server.embedding_requests
        partial = embed_files(conn, embedder_for, MODEL)
        figures = partial.by_model[MODEL]
        assert [f["reason"] for f in partial.failures] and "HTTP 400" in partial.failures[0]["reason"]
        # Unchanged content was embedded with this model under version A: its vectors are reused, no call.
        assert figures.reused_vectors == old_rows and figures.texts_embedded == 0
        sent = [t for r in server.requests[requests_before:] for t in r["body"]["input"]]
        assert sent and set(sent) == {NEW_FILE_TEXT}
        assert _states(conn) == {f"{OLD}/256/32": "ready", f"{CHUNKER_VERSION}/256/32": "building"}
        assert conn.execute(
            "SELECT chunker_version, count(*) FROM embeddings GROUP BY 1 ORDER BY 1"
        ).fetchall() == sorted([(OLD, old_rows), (CHUNKER_VERSION, old_rows)])
        assert _versions_answering(conn, server, "token") == {OLD}

        # The reindex job (file_chunks + file_embeddings, what reindex_weekly runs) completes version B.
        server.reject = set()
        resources = {
            "postgres": PostgresResource(database_url=database_url),
            "workspace": WorkspaceResource(root=str(tmp_path)),
            "embedder": EmbedderResource(model=MODEL, openai_base_url=server.url, openai_api_key="k"),
        }
        requests_before = server.embedding_requests
        result = dg.materialize([file_chunks, file_embeddings, knowledge_embedded], resources=resources)
        assert result.success and [c.passed for c in result.get_asset_check_evaluations()] == [True]
        meta = result.asset_materializations_for_node("file_embeddings")[0].metadata
        assert meta["rows_written"].value == 1 and meta["rows_deleted_retired"].value == old_rows
        assert result.asset_materializations_for_node("file_chunks")[0].metadata["files_extracted"].value == 0
        sent = [t for r in server.requests[requests_before:] for t in r["body"]["input"]]
        assert sent == [NEW_FILE_TEXT]  # only the chunk that had failed
        assert _states(conn) == {f"{OLD}/256/32": "retired", f"{CHUNKER_VERSION}/256/32": "ready"}
        assert conn.execute("SELECT DISTINCT chunker_version FROM embeddings").fetchall() == [(CHUNKER_VERSION,)]
        assert conn.execute("SELECT count(*) FROM embeddings").fetchone() == (old_rows + 1,)
        assert _versions_answering(conn, server, "token") == {CHUNKER_VERSION}
        top = search_chunks(conn, ORG, "servo calibration", 1, embedder_for=embedder_for)
        assert [h.filename for h in top] == ["calibration.md"]

        # Nothing stale any more: another reindex changes nothing and calls nothing.
        requests_before = server.embedding_requests
        again = embed_files(conn, embedder_for, MODEL)
        assert (again.rows_written, again.embed_calls, again.rows_deleted_retired) == (0, 0, 0)
        assert server.embedding_requests == requests_before
