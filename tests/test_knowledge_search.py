"""search_chunks: hybrid (vector + full-text, RRF) results with file and position, tenant isolation, k results
under an organisation filter, agent scoping, the read service's row-level-security role, and the real local
model end to end."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg

from cogo.embed import get_embedder
from cogo.knowledge.chunk_stage import chunk_files
from cogo.knowledge.embed_stage import embed_files
from cogo.knowledge.search import search_chunks
from cogo.tenancy import scope
from cogo.workspace.register import register_files
from tests.embeddings_server import embeddings_server
from tests.knowledge_helpers import ORG, OTHER_CONV, OTHER_ORG, OTHER_USER, files_dir, seed_tenants, write_corpus
from tests.test_knowledge_pipeline import AGENT, MODEL, embedders

LOCAL = "local:all-MiniLM-L6-v2"


def _index(conn: psycopg.Connection, root: Path, embedder_for, model: str = MODEL) -> None:
    register_files(conn, root, full=True)
    chunk_files(conn, root, model)
    embed_files(conn, embedder_for, model)


def test_tenant_isolation_and_k_results_under_the_organisation_filter(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url) as conn, embeddings_server(dims=32) as server:
        seed_tenants(conn)
        conn.commit()
        mine = files_dir(tmp_path)
        for i in range(12):
            (mine / f"acme{i}.md").write_text(f"# Note {i}\n\nAcme note number {i} about servo motors.\n")
        theirs = files_dir(tmp_path, org=OTHER_ORG, user=OTHER_USER, conv=OTHER_CONV)
        for i in range(300):  # many more rows, and closer to the query, in the other organisation
            (theirs / f"globex{i}.md").write_text(f"# Secret {i}\n\nservo motors servo motors secret {i}\n")
        embedder_for = embedders(server)
        _index(conn, tmp_path, embedder_for)
        conn.execute("SET enable_seqscan = off")  # make the planner walk the HNSW index
        hits = search_chunks(conn, ORG, "servo motors", 10, embedder_for=embedder_for)
        assert len(hits) == 10
        assert all(h.storage_path.startswith(f"{ORG}/") for h in hits)
        assert all("Secret" not in h.content for h in hits)
        other = search_chunks(conn, OTHER_ORG, "servo motors", 10, embedder_for=embedder_for)
        assert len(other) == 10 and all(h.storage_path.startswith(f"{OTHER_ORG}/") for h in other)
        assert search_chunks(conn, "org_nobody", "servo motors", 10, embedder_for=embedder_for) == []


def test_hits_carry_file_position_and_fused_score(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url) as conn, embeddings_server(dims=32) as server:
        seed_tenants(conn)
        conn.commit()
        write_corpus(tmp_path)
        embedder_for = embedders(server)
        _index(conn, tmp_path, embedder_for)
        hits = search_chunks(conn, ORG, "deployment script production", 3, embedder_for=embedder_for)
        top = hits[0]
        # The fake vectors carry no meaning: the full-text leg finds it, fused with whatever vectors rank.
        assert top.filename in ("report.pdf", "config.json") and top.text_rank == 1
        pdf = next(h for h in hits if h.filename == "report.pdf")
        assert pdf.position == {"page": 2} and pdf.kind == "file" and pdf.file_kind == "upload"
        assert pdf.conversation_id is not None and pdf.score > 0 and len(pdf.chunk_id) == 32
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        only_attachments = search_chunks(conn, ORG, "token", 10, kinds=("attachment",), embedder_for=embedder_for)
        assert only_attachments and {h.file_kind for h in only_attachments} == {"attachment"}


def test_agent_search_uses_its_sources_files_and_model(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url) as conn, embeddings_server(dims=32) as server:
        seed_tenants(conn)
        conn.execute("INSERT INTO agents (id, organization_id, slug, name) VALUES (%s, %s, 'kn', 'Kn')", (AGENT, ORG))
        conn.execute(
            "INSERT INTO agent_knowledge_sources (organization_id, agent_id, name, kind, embedding_model, path_glob) "
            "VALUES (%s, %s, 'markdown only', 'workspace', 'openai:agent-model', '**/*.md')",
            (ORG, AGENT),
        )
        conn.commit()
        write_corpus(tmp_path)
        embedder_for = embedders(server)
        _index(conn, tmp_path, embedder_for)
        hits = search_chunks(conn, ORG, "token", 10, agent_id=AGENT, embedder_for=embedder_for)
        assert hits and {h.filename for h in hits} == {"handbook.md"}
        assert {h.model for h in hits} == {"openai:agent-model"}
        other_agent = uuid.uuid4()
        assert search_chunks(conn, ORG, "token", 10, agent_id=other_agent, embedder_for=embedder_for) == []


def test_search_runs_as_the_read_services_rls_role(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url) as conn, embeddings_server(dims=32) as server:
        seed_tenants(conn)
        conn.commit()
        write_corpus(tmp_path)
        embedder_for = embedders(server)
        _index(conn, tmp_path, embedder_for)
        conn.commit()
        with conn.transaction():
            scope(conn, ORG)
            hits = search_chunks(conn, ORG, "token refresh", 5, embedder_for=embedder_for)
            assert hits and all(h.storage_path.startswith(ORG) for h in hits)
            # Asking for another organisation under this role sees nothing at all.
            assert search_chunks(conn, OTHER_ORG, "token refresh", 5, embedder_for=embedder_for) == []


def test_local_model_end_to_end_finds_the_passage_by_meaning(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url) as conn:
        seed_tenants(conn)
        conn.commit()
        write_corpus(tmp_path)
        embedder = get_embedder(LOCAL)
        _index(conn, tmp_path, get_embedder, model=LOCAL)
        calls = embedder.stats.calls
        _index(conn, tmp_path, get_embedder, model=LOCAL)
        assert embedder.stats.calls == calls  # a re-run embeds nothing
        hits = search_chunks(conn, ORG, "how often are credentials renewed?", 3)
        assert hits[0].filename in ("handbook.md", "token_service.py", "page.html")
        assert hits[0].vector_rank is not None and hits[0].model == LOCAL
        plan = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'embeddings_hnsw_local_all_minilm_l6_v2'"
        ).fetchone()
        assert plan == (1,)
