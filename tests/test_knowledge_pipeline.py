"""file_chunks and file_embeddings on real files of every supported type: extraction with positions and
recorded failures, zero embedding calls on a re-run, changed and deleted files, identical content embedded
once, reindexing on a model change, and the Dagster assets with their metadata."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from cogo.assets.knowledge import file_chunks, file_embeddings, knowledge_embedded
from cogo.assets.workspace import workspace_files
from cogo.embed import Embedder
from cogo.embed.openai_compat import OpenAIEmbedder
from cogo.knowledge.chunk_stage import chunk_files
from cogo.knowledge.chunking import chunk_profile
from cogo.knowledge.embed_stage import embed_files
from cogo.knowledge.search import search_chunks
from cogo.resources import PostgresResource
from cogo.resources.embedder import EmbedderResource
from cogo.resources.workspace import WorkspaceResource
from cogo.workspace.register import register_files
from tests.embeddings_server import EmbeddingsServer, embeddings_server
from tests.knowledge_helpers import ORG, files_dir, seed_tenants, write_corpus

MODEL = "openai:test-embed"
AGENT = uuid.UUID("5a5a0000-0000-4000-8000-000000000001")
SMALL = chunk_profile(40, 8)


@pytest.fixture
def server() -> Iterator[EmbeddingsServer]:
    with embeddings_server(dims=32) as s:
        yield s


def embedders(server: EmbeddingsServer) -> Callable[[str], Embedder]:
    made: dict[str, Embedder] = {}

    def embedder_for(model: str) -> Embedder:
        if model not in made:
            made[model] = OpenAIEmbedder(
                model.split(":", 1)[1], api_key="k", base_url=server.url, sleep=lambda _: None, max_retries=1
            )
        return made[model]

    return embedder_for


def run_all(db: psycopg.Connection, root: Path, embedder_for: Callable[[str], Embedder], **kw: object):
    register_files(db, root, full=True)
    chunks = chunk_files(db, root, MODEL, **kw)  # type: ignore[arg-type]
    embedded = embed_files(db, embedder_for, MODEL)
    return chunks, embedded


def _chunks(conn: psycopg.Connection, filename: str) -> list[tuple]:
    return conn.execute(
        "SELECT c.content, c.position FROM file_chunks c JOIN files f ON f.id = c.file_id "
        "WHERE f.filename = %s ORDER BY c.chunk_profile, c.chunk_index",
        (filename,),
    ).fetchall()


def test_every_type_is_extracted_with_positions_and_failures_recorded(
    conn: psycopg.Connection, tmp_path: Path, server: EmbeddingsServer
) -> None:
    write_corpus(tmp_path)
    (files_dir(tmp_path) / "too_big.txt").write_text("x " * 40_000)
    report, _ = run_all(conn, tmp_path, embedders(server), max_bytes=60_000)
    status = dict(
        conn.execute(
            "SELECT f.filename, x.status || coalesce(': ' || x.reason, '') FROM file_extractions x "
            "JOIN files f ON f.id = x.file_id"
        ).fetchall()
    )
    for name in ("notes.txt", "handbook.md", "token_service.py", "report.pdf", "approval.docx", "page.html"):
        assert status[name] == "ok", name
    for name in ("stock.csv", "config.json", "legacy.txt"):
        assert status[name] == "ok", name
    assert status["logo.png"].startswith("no_text") and status["empty.txt"] == "no_text: empty file"
    assert status["broken.pdf"].startswith("failed: ") and len(status["broken.pdf"]) > 10
    assert status["too_big.txt"].startswith("too_large")
    assert report.failures == [
        (
            f"{ORG}/user_kn_alice/7a3e0000-0000-4000-8000-000000000001/files/uploads/broken.pdf",
            status["broken.pdf"].removeprefix("failed: "),
        )
    ]
    pdf = _chunks(conn, "report.pdf")
    assert [p["page"] for _, p in pdf] == [1, 2] and "deployment script" in pdf[1][0]
    docx = _chunks(conn, "approval.docx")
    assert docx[0][1]["heading"] == "Supplier approval" and "ringi" in docx[0][0] and "finance" in docx[0][0]
    code = _chunks(conn, "token_service.py")
    assert code[0][1]["start_line"] == 1 and "TokenService" in code[0][1]["symbols"]
    html = _chunks(conn, "page.html")
    assert html[0][1]["heading"] == "Release notes" and "var x" not in html[0][0]
    assert "item: servo motor; quantity: 120" in _chunks(conn, "stock.csv")[0][0]
    assert "deploy.target: production" in _chunks(conn, "config.json")[0][0]
    assert "Café crème brûlée" in _chunks(conn, "legacy.txt")[0][0]
    assert _chunks(conn, "logo.png") == [] and _chunks(conn, "empty.txt") == []


def test_small_chunks_split_code_by_definitions_and_text_with_overlap(
    conn: psycopg.Connection, tmp_path: Path, server: EmbeddingsServer
) -> None:
    write_corpus(tmp_path)
    long_text = " ".join(f"word{i}" for i in range(300))
    (files_dir(tmp_path) / "long.txt").write_text(long_text)
    conn.execute("INSERT INTO agents (id, organization_id, slug, name) VALUES (%s, %s, 'kn', 'Kn')", (AGENT, ORG))
    conn.execute(
        "INSERT INTO agent_knowledge_sources (organization_id, agent_id, name, kind, embedding_model, chunk_size, "
        "chunk_overlap, file_kinds) VALUES (%s, %s, 'small', 'workspace', %s, 40, 8, '{upload,generated}')",
        (ORG, AGENT, MODEL),
    )
    conn.commit()
    run_all(conn, tmp_path, embedders(server))
    small = [
        (c, p)
        for c, p in conn.execute(
            "SELECT c.content, c.position FROM file_chunks c JOIN files f ON f.id = c.file_id "
            "WHERE f.filename = 'token_service.py' AND c.chunk_profile = %s ORDER BY c.chunk_index",
            (SMALL,),
        )
    ]
    symbols = [s for _, p in small for s in p.get("symbols", [p.get("symbol")])]
    assert {"TokenService", "TokenService.refresh_token", "TokenService.revoke", "helper"} <= set(symbols)
    refresh = next(c for c, p in small if p.get("symbol") == "TokenService.refresh_token")
    assert refresh.lstrip().startswith("def refresh_token")
    windows = [
        c
        for (c,) in conn.execute(
            "SELECT c.content FROM file_chunks c JOIN files f ON f.id = c.file_id "
            "WHERE f.filename = 'long.txt' AND c.chunk_profile = %s ORDER BY c.chunk_index",
            (SMALL,),
        )
    ]
    assert len(windows) > 5 and windows[0].split()[-1] in windows[1]  # overlap between neighbours
    # Attachments are not this source's: no small-profile chunks for them.
    assert _chunks(conn, "approval.docx") and all(
        p != SMALL
        for (p,) in conn.execute(
            "SELECT chunk_profile FROM file_chunks c JOIN files f ON f.id = c.file_id WHERE f.kind = 'attachment'"
        )
    )


def test_rerun_on_unchanged_files_makes_zero_embedding_calls_and_ids_are_deterministic(
    conn: psycopg.Connection, tmp_path: Path, server: EmbeddingsServer
) -> None:
    write_corpus(tmp_path)
    _, first = run_all(conn, tmp_path, embedders(server))
    assert first.embed_calls >= 1 and first.rows_written > 0 and server.embedding_requests == first.embed_calls
    ids = conn.execute("SELECT chunk_id FROM file_chunks ORDER BY chunk_id").fetchall()
    chunks, second = run_all(conn, tmp_path, embedders(server))
    assert (chunks.files_extracted, second.embed_calls, second.rows_written) == (0, 0, 0)
    assert server.embedding_requests == first.embed_calls  # the server saw nothing new
    # Chunking again from scratch gives the same ids.
    conn.execute("DELETE FROM file_extractions")
    conn.execute("DELETE FROM file_chunks")
    conn.commit()
    chunk_files(conn, tmp_path, MODEL)
    assert conn.execute("SELECT chunk_id FROM file_chunks ORDER BY chunk_id").fetchall() == ids
    assert embed_files(conn, embedders(server), MODEL).embed_calls == 0


def test_identical_content_is_embedded_once(conn: psycopg.Connection, tmp_path: Path, server: EmbeddingsServer) -> None:
    for i in range(5):
        (files_dir(tmp_path) / f"copy{i}.md").write_text("# Same\n\nThe very same paragraph in five files.\n")
    _, report = run_all(conn, tmp_path, embedders(server))
    figures = report.by_model[MODEL]
    assert (figures.rows_needed, figures.unique_contents, figures.texts_embedded) == (5, 1, 1)
    assert sum(len(r["body"]["input"]) for r in server.requests) == 1
    assert conn.execute("SELECT count(*) FROM embeddings").fetchone() == (5,)
    # A sixth copy later reuses the stored vector: no call at all.
    (files_dir(tmp_path, "generated") / "copy5.md").write_text("# Same\n\nThe very same paragraph in five files.\n")
    _, later = run_all(conn, tmp_path, embedders(server))
    assert later.embed_calls == 0 and later.by_model[MODEL].reused_vectors == 1 and later.rows_written == 1


def test_changed_file_replaces_its_chunks_and_deleted_file_leaves_none(
    conn: psycopg.Connection, tmp_path: Path, server: EmbeddingsServer
) -> None:
    up = files_dir(tmp_path)
    (up / "plan.md").write_text("# Plan\n\nShip the robot arm in March.\n")
    (up / "gone.md").write_text("# Gone\n\nThis file will be deleted.\n")
    run_all(conn, tmp_path, embedders(server))
    (up / "plan.md").write_text("# Plan\n\nShip the robot arm in April instead.\n")
    (up / "gone.md").unlink()
    _, report = run_all(conn, tmp_path, embedders(server))
    contents = [c for (c,) in conn.execute("SELECT content FROM file_chunks")]
    assert contents == ["# Plan\n\nShip the robot arm in April instead."]
    vectors = [c for (c,) in conn.execute("SELECT content FROM embeddings")]
    assert vectors == contents and report.rows_deleted_stale == 1
    assert conn.execute(
        "SELECT count(*) FROM file_extractions x JOIN files f ON f.id = x.file_id WHERE f.status = 'deleted'"
    ).fetchone() == (0,)
    hits = search_chunks(conn, ORG, "robot arm March", 5, embedder_for=embedders(server))
    assert [h.content for h in hits] == contents


def test_reindex_on_model_change_keeps_old_vectors_answering_until_new_ones_are_complete(
    conn: psycopg.Connection, tmp_path: Path, server: EmbeddingsServer
) -> None:
    write_corpus(tmp_path)
    conn.execute("INSERT INTO agents (id, organization_id, slug, name) VALUES (%s, %s, 'kn', 'Kn')", (AGENT, ORG))
    conn.execute(
        "INSERT INTO agent_knowledge_sources (organization_id, agent_id, name, kind, embedding_model) "
        "VALUES (%s, %s, 'docs', 'workspace', 'openai:model-a')",
        (ORG, AGENT),
    )
    conn.commit()
    embedder_for = embedders(server)
    run_all(conn, tmp_path, embedder_for)
    assert [h.model for h in search_chunks(conn, ORG, "token", 3, agent_id=AGENT, embedder_for=embedder_for)] == [
        "openai:model-a"
    ] * 3
    conn.execute("UPDATE agent_knowledge_sources SET embedding_model = 'openai:model-b'")
    conn.commit()
    server.script = [(500, {})] * 2  # model-b's first attempt fails (after its retry): recorded, not skipped
    failed = embed_files(conn, embedder_for, MODEL)
    assert failed.failures and "HTTP 500" in failed.failures[0]["reason"]
    assert conn.execute("SELECT count(*) FROM embedding_failures WHERE model = 'openai:model-b'").fetchone()[0] > 0
    states = dict(conn.execute("SELECT model, state FROM knowledge_indexes WHERE source_id IS NOT NULL").fetchall())
    assert states == {"openai:model-a": "ready", "openai:model-b": "building"}
    hits = search_chunks(conn, ORG, "token", 3, agent_id=AGENT, embedder_for=embedder_for)
    assert {h.model for h in hits} == {"openai:model-a"}  # the old index still answers
    done = embed_files(conn, embedder_for, MODEL)  # what reindex_weekly runs
    assert not done.failures and done.rows_deleted_retired > 0
    states = dict(conn.execute("SELECT model, state FROM knowledge_indexes WHERE source_id IS NOT NULL").fetchall())
    assert states == {"openai:model-a": "retired", "openai:model-b": "ready"}
    assert conn.execute("SELECT count(*) FROM embeddings WHERE model = 'openai:model-a'").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM embedding_failures").fetchone() == (0,)
    hits = search_chunks(conn, ORG, "token", 3, agent_id=AGENT, embedder_for=embedder_for)
    assert {h.model for h in hits} == {"openai:model-b"}
    assert conn.execute("SELECT dims FROM embedding_models WHERE model = 'openai:model-b'").fetchone() == (32,)
    assert conn.execute(
        "SELECT count(*) FROM pg_indexes WHERE indexname = 'embeddings_hnsw_openai_model_b'"
    ).fetchone() == (1,)
    # Back to a model this organisation's files are already embedded with (its default index's): the new index
    # is complete at once from the stored vectors, without a single embedding call, and model-b's go.
    conn.execute("UPDATE agent_knowledge_sources SET embedding_model = %s", (MODEL,))
    conn.commit()
    requests_before = server.embedding_requests
    reused = embed_files(conn, embedder_for, MODEL)
    assert (reused.embed_calls, server.embedding_requests - requests_before) == (0, 0)
    states = dict(conn.execute("SELECT model, state FROM knowledge_indexes WHERE source_id IS NOT NULL").fetchall())
    assert states == {"openai:model-a": "retired", "openai:model-b": "retired", MODEL: "ready"}
    assert conn.execute("SELECT DISTINCT model FROM embeddings").fetchall() == [(MODEL,)]
    hits = search_chunks(conn, ORG, "token", 3, agent_id=AGENT, embedder_for=embedder_for)
    assert {h.model for h in hits} == {MODEL}


def test_assets_materialize_with_tokens_and_cost_in_metadata(
    database_url: str, tmp_path: Path, server: EmbeddingsServer
) -> None:
    with psycopg.connect(database_url, autocommit=True) as c:
        seed_tenants(c)
    write_corpus(tmp_path)
    resources = {
        "postgres": PostgresResource(database_url=database_url),
        "workspace": WorkspaceResource(root=str(tmp_path)),
        "embedder": EmbedderResource(
            model="openai:text-embedding-3-small", openai_base_url=server.url, openai_api_key="k"
        ),
    }
    result = dg.materialize([workspace_files, file_chunks, file_embeddings, knowledge_embedded], resources=resources)
    assert result.success
    assert [c.passed for c in result.get_asset_check_evaluations()] == [True, True]  # nothing held, all embedded
    chunks = result.asset_materializations_for_node("file_chunks")[0].metadata
    assert chunks["extraction_status"].value["failed"] == 1 and chunks["chunks_written"].value > 5
    meta = result.asset_materializations_for_node("file_embeddings")[0].metadata
    assert meta["embedding_calls"].value >= 1 and meta["tokens"].value > 0
    assert meta["estimated_cost_usd"].value > 0
    assert meta["by_model"].value["openai:text-embedding-3-small"]["texts_embedded"] > 5
    # The knowledge index of the organisation's default model became ready in this run; the Postgres HNSW index
    # of the model is counted apart (named, or "none" when it already existed).
    assert meta["knowledge_indexes_ready"].value == 1
    assert isinstance(meta["postgres_hnsw_indexes_created"].value, str)
    again = dg.materialize([workspace_files, file_chunks, file_embeddings], resources=resources)
    assert again.asset_materializations_for_node("file_embeddings")[0].metadata["embedding_calls"].value == 0


def test_an_index_is_not_ready_while_files_wait_for_their_chunks(
    conn: psycopg.Connection, tmp_path: Path, server: EmbeddingsServer
) -> None:
    (files_dir(tmp_path) / "a.md").write_text("# A\n\nFirst file.\n")
    register_files(conn, tmp_path, full=True)
    embed_files(conn, embedders(server), MODEL)  # before file_chunks ran: nothing to embed, nothing complete
    assert conn.execute("SELECT state FROM knowledge_indexes").fetchall() == [("building",)]
    chunk_files(conn, tmp_path, MODEL)
    embed_files(conn, embedders(server), MODEL)
    assert conn.execute("SELECT state FROM knowledge_indexes").fetchall() == [("ready",)]
