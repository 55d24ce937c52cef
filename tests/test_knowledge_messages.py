"""message_embeddings: conversation messages embedded incrementally (default model, and the conversation
agent's model), failures recorded, an agent's model change, and search_chunks fusing message hits with file
hits, scoped to the organisation and the agent; the Dagster asset and new_messages_sensor."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from cogo.assets.knowledge import message_embeddings, new_messages_sensor
from cogo.knowledge.chunk_stage import chunk_files
from cogo.knowledge.embed_stage import embed_files
from cogo.knowledge.messages import embed_messages
from cogo.knowledge.search import search_chunks
from cogo.resources import PostgresResource
from cogo.resources.embedder import EmbedderResource
from cogo.tenancy import scope
from cogo.workspace.register import register_files
from tests.embeddings_server import EmbeddingsServer, embeddings_server
from tests.knowledge_helpers import CONV, ORG, OTHER_CONV, OTHER_ORG, OTHER_USER, USER, files_dir, seed_tenants
from tests.test_knowledge_pipeline import AGENT, MODEL, embedders

AGENT_MODEL = "openai:agent-model"
AGENT_CONV = uuid.UUID("7a3e0000-0000-4000-8000-0000000000a1")
LONG = " ".join(f"servo{i}" for i in range(700))  # several token windows


@pytest.fixture
def server() -> Iterator[EmbeddingsServer]:
    with embeddings_server(dims=32) as s:
        yield s


def _message(conn: psycopg.Connection, conv: uuid.UUID, org: str, user: str, role: str, content: str) -> int:
    return conn.execute(
        "INSERT INTO messages (conversation_id, organization_id, user_id, role, content) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (conv, org, user, role, content),
    ).fetchone()[0]  # type: ignore[index]


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as c:
        seed_tenants(c)
        c.execute(
            "INSERT INTO agents (id, organization_id, slug, name, embedding_model) VALUES (%s, %s, 'kn', 'Kn', %s)",
            (AGENT, ORG, AGENT_MODEL),
        )
        c.execute(
            "INSERT INTO conversations (id, organization_id, user_id, agent_id) VALUES (%s, %s, %s, %s)",
            (AGENT_CONV, ORG, USER, AGENT),
        )
        _message(c, CONV, ORG, USER, "user", "When does the robot arm ship?")
        _message(c, CONV, ORG, USER, "assistant", "The robot arm ships in April.")
        _message(c, CONV, ORG, USER, "user", "   ")  # nothing to embed
        _message(c, AGENT_CONV, ORG, USER, "user", "How do refresh tokens work here?")
        _message(c, AGENT_CONV, ORG, USER, "assistant", "Refresh tokens rotate on every use.")
        _message(c, AGENT_CONV, ORG, USER, "assistant", LONG)
        for i in range(30):  # more, and closer to the query, in another organisation
            _message(c, OTHER_CONV, OTHER_ORG, OTHER_USER, "user", f"Globex secret {i}: refresh tokens rotate")
        c.commit()
        yield c


def _sent(server: EmbeddingsServer, since: int) -> list[str]:
    return [t for r in server.requests[since:] for t in r["body"]["input"]]


def test_messages_are_embedded_once_per_model_they_need(conn: psycopg.Connection, server: EmbeddingsServer) -> None:
    embedder_for = embedders(server)
    report = embed_messages(conn, embedder_for, MODEL)
    # 5 + 30 messages with text under the default model, the agent conversation's 3 under the agent's too.
    assert report.messages_embedded == 35 + 3 and not report.failures
    pieces = conn.execute(
        "SELECT count(*) FROM embeddings e JOIN messages m ON m.id = e.message_id "
        "WHERE m.content = %s AND e.model = %s",
        (LONG, MODEL),
    ).fetchone()[0]
    assert pieces > 1  # a long message is cut into windows, one row each
    counts = dict(conn.execute("SELECT model, count(*) FROM embeddings GROUP BY 1").fetchall())
    assert counts == {MODEL: 34 + pieces, AGENT_MODEL: 2 + pieces}
    assert conn.execute("SELECT DISTINCT agent_id FROM embeddings WHERE model = %s", (AGENT_MODEL,)).fetchall() == [
        (AGENT,)
    ]
    assert conn.execute("SELECT file_id FROM embeddings WHERE file_id IS NOT NULL").fetchall() == []
    roles = {r[0]["role"] for r in conn.execute("SELECT position FROM embeddings WHERE organization_id = %s", (ORG,))}
    assert roles == {"user", "assistant"}

    # Nothing new: no call, no row. One new message: only it is sent.
    before = server.embedding_requests
    again = embed_messages(conn, embedder_for, MODEL)
    assert (again.embed_calls, again.rows_written, server.embedding_requests) == (0, 0, before)
    _message(conn, CONV, ORG, USER, "user", "And the gear box?")
    conn.commit()
    later = embed_messages(conn, embedder_for, MODEL)
    assert _sent(server, before) == ["And the gear box?"] and later.rows_written == 1
    # A message repeating stored content reuses its vector: no call.
    before = server.embedding_requests
    _message(conn, CONV, ORG, USER, "user", "When does the robot arm ship?")
    conn.commit()
    reused = embed_messages(conn, embedder_for, MODEL)
    assert (reused.rows_written, reused.embed_calls, server.embedding_requests) == (1, 0, before)


def test_a_failing_message_is_recorded_and_embedded_by_a_later_run(
    conn: psycopg.Connection, server: EmbeddingsServer
) -> None:
    server.reject = {"Refresh tokens rotate on every use."}
    report = embed_messages(conn, embedders(server), MODEL)
    assert {(f["model"], "HTTP 400" in f["reason"]) for f in report.failures} == {(MODEL, True), (AGENT_MODEL, True)}
    assert conn.execute("SELECT count(*) FROM message_embedding_failures").fetchone() == (2,)
    server.reject = set()
    later = embed_messages(conn, embedders(server), MODEL)
    assert later.messages_embedded == 2 and not later.failures
    assert conn.execute("SELECT count(*) FROM message_embedding_failures").fetchone() == (0,)


def test_search_fuses_messages_with_files_scoped_to_organisation_and_agent(
    conn: psycopg.Connection, server: EmbeddingsServer, tmp_path: Path
) -> None:
    embedder_for = embedders(server)
    (files_dir(tmp_path) / "security.md").write_text("# Security\n\nRefresh tokens rotate on every use.\n")
    register_files(conn, tmp_path, full=True)
    chunk_files(conn, tmp_path, MODEL)
    embed_files(conn, embedder_for, MODEL)
    embed_messages(conn, embedder_for, MODEL)

    def search(org: str, **kw: object) -> list:
        return search_chunks(
            conn, org, "refresh tokens rotate", 10, embedder_for=embedder_for, default_model=MODEL, **kw
        )

    both = search(ORG)
    assert {h.kind for h in both} == {"file", "message"}
    top_two = {(h.kind, h.content) for h in both[:2]}
    assert top_two == {
        ("file", "# Security\n\nRefresh tokens rotate on every use."),
        ("message", "Refresh tokens rotate on every use."),
    }
    assert all("Globex" not in h.content for h in both)
    message = next(h for h in both if h.kind == "message")
    assert message.conversation_id == AGENT_CONV and message.message_id and message.position["role"] == "assistant"
    assert message.file_id is None and message.model == MODEL

    only_messages = search(ORG, kinds=("message",))
    assert only_messages and {h.kind for h in only_messages} == {"message"}
    assert {h.conversation_id for h in only_messages} <= {CONV, AGENT_CONV}
    # Another organisation sees only its own messages, an unknown one nothing.
    theirs = search(OTHER_ORG, kinds=("message",))
    assert len(theirs) == 10 and all(h.content.startswith("Globex") for h in theirs)
    assert {h.conversation_id for h in theirs} == {OTHER_CONV}
    assert search("org_nobody") == []
    # The agent's search: its conversations only, with its model.
    agent_hits = search(ORG, agent_id=AGENT, kinds=("message",))
    assert agent_hits and {h.conversation_id for h in agent_hits} == {AGENT_CONV}
    assert {h.model for h in agent_hits} == {AGENT_MODEL}


def test_an_agents_model_change_replaces_its_message_vectors_once_complete(
    conn: psycopg.Connection, server: EmbeddingsServer
) -> None:
    embedder_for = embedders(server)
    embed_messages(conn, embedder_for, MODEL)
    conn.execute("UPDATE agents SET embedding_model = 'openai:agent-model-2' WHERE id = %s", (AGENT,))
    conn.commit()
    server.reject = {"How do refresh tokens work here?"}
    partial = embed_messages(conn, embedder_for, MODEL)
    assert partial.failures and partial.rows_deleted == 0  # the old vectors still answer
    hits = search_chunks(
        conn, ORG, "refresh tokens", 5, AGENT, ("message",), embedder_for=embedder_for, default_model=MODEL
    )
    assert hits and {h.model for h in hits} == {AGENT_MODEL}
    server.reject = set()
    done = embed_messages(conn, embedder_for, MODEL)
    assert not done.failures and done.rows_deleted > 0
    models = {m for (m,) in conn.execute("SELECT DISTINCT model FROM embeddings")}
    assert models == {MODEL, "openai:agent-model-2"}
    hits = search_chunks(
        conn, ORG, "refresh tokens", 5, AGENT, ("message",), embedder_for=embedder_for, default_model=MODEL
    )
    assert hits and {h.model for h in hits} == {"openai:agent-model-2"}


def test_asset_and_sensor(database_url: str, conn: psycopg.Connection, server: EmbeddingsServer) -> None:
    postgres = PostgresResource(database_url=database_url)
    resources = {"postgres": postgres, "embedder": EmbedderResource(model=MODEL, openai_base_url=server.url)}
    with dg.build_sensor_context(
        cursor=None, instance=dg.DagsterInstance.ephemeral(), resources={"postgres": postgres}
    ) as context:
        request = new_messages_sensor(context)
        newest = conn.execute("SELECT max(id) FROM messages").fetchone()[0]  # type: ignore[index]
        assert isinstance(request, dg.RunRequest) and context.cursor == str(newest)
        assert isinstance(new_messages_sensor(context), dg.SkipReason)
    result = dg.materialize([message_embeddings], resources=resources)
    meta = result.asset_materializations_for_node("message_embeddings")[0].metadata
    assert meta["messages_embedded"].value == 38 and meta["embedding_calls"].value >= 1
    assert meta["tokens"].value > 0 and meta["failed_messages"].value == 0
    again = dg.materialize([message_embeddings], resources=resources)
    assert again.asset_materializations_for_node("message_embeddings")[0].metadata["embedding_calls"].value == 0


def test_message_search_runs_as_the_read_services_rls_role(conn: psycopg.Connection, server: EmbeddingsServer) -> None:
    embedder_for = embedders(server)
    embed_messages(conn, embedder_for, MODEL)
    conn.commit()
    with conn.transaction():
        scope(conn, ORG)
        hits = search_chunks(
            conn, ORG, "refresh tokens rotate", 5, kinds=("message",), embedder_for=embedder_for, default_model=MODEL
        )
        assert hits and {h.conversation_id for h in hits} <= {CONV, AGENT_CONV}
        agent_hits = search_chunks(
            conn, ORG, "refresh tokens", 5, AGENT, ("message",), embedder_for=embedder_for, default_model=MODEL
        )
        assert agent_hits and {h.conversation_id for h in agent_hits} == {AGENT_CONV}
        # Asking for another organisation under this role sees nothing at all.
        assert search_chunks(conn, OTHER_ORG, "refresh tokens", 5, embedder_for=embedder_for, default_model=MODEL) == []
