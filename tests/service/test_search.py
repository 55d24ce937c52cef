"""POST /v1/search through the knowledge package's hybrid search (real local embedder, real pgvector):
scoped to the caller's organisation, and to the conversations the caller may see."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from fastapi.testclient import TestClient

from cogo.knowledge.search import search_chunks
from cogo.tenancy import Caller
from tests.service.helpers import ALICE, BOB, CAROL, ORG_A, ORG_B, Bearer, TwoTenants

MODEL = "local:all-MiniLM-L6-v2"


def seed_message_index(db: psycopg.Connection, data: TwoTenants) -> None:
    """Each organisation's default index, with one embedded message per conversation."""
    for org in (ORG_A, ORG_B):
        db.execute(
            "INSERT INTO knowledge_indexes (organization_id, model, chunk_profile, state, ready_at) "
            "VALUES (%s, %s, 'v1/256/32', 'ready', now())",
            (org, MODEL),
        )
    vector = "[" + ",".join(["0.05103"] * 384) + "]"
    for name in ("alice_shared", "alice_private", "bob_private", "carol_shared"):
        conversation = getattr(data, name)
        message_id, org = db.execute(
            "SELECT min(id), min(organization_id) FROM messages WHERE conversation_id = %s", (conversation,)
        ).fetchone()
        db.execute(
            "INSERT INTO embeddings (organization_id, message_id, chunk_id, content, content_sha256, model, dims, "
            "embedding) VALUES (%s, %s, %s, %s, 'x', %s, 384, %s)",
            (org, message_id, f"chunk_{name}", f"How to rotate the refresh token ({name})", MODEL, vector),
        )


@pytest.fixture(autouse=True)
def indexed(db: psycopg.Connection, tenants: TwoTenants) -> None:
    seed_message_index(db, tenants)


def search(client: TestClient, bearer: Bearer, user: str, org: str, **body: object) -> list[str]:
    response = client.post("/v1/search", json={"query": "refresh token rotation", **body}, headers=bearer(user, org))
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]
    assert all(h["score"] > 0 and h["citation"]["kind"] == "message" for h in hits)
    return sorted(h["chunk_id"] for h in hits)


def test_search_sees_the_organization_and_only_visible_conversations(client: TestClient, bearer: Bearer) -> None:
    assert search(client, bearer, ALICE, ORG_A) == ["chunk_alice_private", "chunk_alice_shared"]
    assert search(client, bearer, BOB, ORG_A) == ["chunk_alice_shared", "chunk_bob_private"]
    assert search(client, bearer, CAROL, ORG_B) == ["chunk_carol_shared"]


def test_search_hits_carry_their_citation(client: TestClient, db: psycopg.Connection, bearer: Bearer) -> None:
    hit = client.post("/v1/search", json={"query": "refresh token", "k": 1}, headers=bearer(CAROL, ORG_B))
    hit = hit.json()["hits"][0]
    message_id, conversation_id = db.execute(
        "SELECT m.id, m.conversation_id FROM embeddings e JOIN messages m ON m.id = e.message_id "
        "WHERE e.chunk_id = 'chunk_carol_shared'"
    ).fetchone()
    assert hit["citation"]["message_id"] == message_id
    assert hit["citation"]["conversation_id"] == str(conversation_id)


def test_k_and_kinds_are_honoured(client: TestClient, bearer: Bearer) -> None:
    assert len(search(client, bearer, ALICE, ORG_A, k=1)) == 1
    assert search(client, bearer, ALICE, ORG_A, kinds=["file"]) == []


def test_the_largest_k_is_served(client: TestClient, bearer: Bearer) -> None:
    # k=100 asks the index for more candidates than pgvector's hnsw.ef_search allows (1,000): capped, not a 500.
    assert search(client, bearer, ALICE, ORG_A, k=100) == ["chunk_alice_private", "chunk_alice_shared"]


@pytest.fixture
def service_overrides() -> dict[str, str]:
    return {"COGO_SERVICE_SEARCH_CONCURRENCY": "2", "COGO_SERVICE_POOL_SIZE": "8"}


def test_a_worker_runs_at_most_its_search_concurrency_at_once_and_the_rest_wait_their_turn(
    client: TestClient, bearer: Bearer
) -> None:
    headers = bearer(ALICE, ORG_A)
    limiter = client.app.state.search_limiter  # type: ignore[attr-defined]
    running, waiting = [], []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            running.append(limiter.borrowed_tokens)
            waiting.append(limiter.statistics().tasks_waiting)
            done.wait(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda q: client.post("/v1/search", json={"query": q}, headers=headers), ["token"] * 8))
    done.set()
    watcher.join()
    assert [a.status_code for a in answers] == [200] * 8
    assert max(running) == 2 and max(waiting) >= 1


def test_every_search_path_applies_the_visibility_rule_to_messages_and_files(
    db: psycopg.Connection, database_url: str, tenants: TwoTenants, client: TestClient, bearer: Bearer
) -> None:
    """File chunks follow their conversation like messages do, on the service's route and on the blocking
    search_chunks; only the platform's own read (an organisation id alone) sees every conversation."""
    private_file = db.execute(
        "INSERT INTO files (organization_id, user_id, conversation_id, kind, storage_path, filename, size_bytes) "
        "VALUES (%s, %s, %s, 'upload', %s, 'secret.md', 12) RETURNING id",
        (ORG_A, ALICE, tenants.alice_private, f"{ORG_A}/{ALICE}/{tenants.alice_private}/files/uploads/secret.md"),
    ).fetchone()[0]
    vector = "[" + ",".join(["0.05103"] * 384) + "]"
    for file_id, chunk in ((private_file, "chunk_private_file"), (tenants.alice_file, "chunk_shared_file")):
        db.execute(
            "INSERT INTO embeddings (organization_id, file_id, chunk_id, content, content_sha256, model, dims, "
            "chunk_profile, embedding) VALUES (%s, %s, %s, 'How to rotate the refresh token', 'x', %s, 384, "
            "'v1/256/32', %s)",
            (ORG_A, file_id, chunk, MODEL, vector),
        )

    def via_route(user: str) -> list[str]:
        body = {"query": "refresh token rotation", "kinds": ["file"]}
        response = client.post("/v1/search", json=body, headers=bearer(user, ORG_A))
        return sorted(h["chunk_id"] for h in response.json()["hits"])

    def blocking(caller: Caller | str) -> list[str]:
        with psycopg.connect(database_url) as conn:
            hits = search_chunks(conn, caller, "refresh token rotation", 10, default_model=MODEL)
        return sorted(h.chunk_id for h in hits)

    # A file outside any conversation, attached to a message of Alice's private conversation, follows it.
    attached = db.execute(
        "INSERT INTO files (organization_id, user_id, conversation_id, kind, storage_path, filename, size_bytes) "
        "VALUES (%s, %s, NULL, 'upload', %s, 'attached.md', 12) RETURNING id",
        (ORG_A, ALICE, f"{ORG_A}/{ALICE}/loose/files/uploads/attached.md"),
    ).fetchone()[0]
    private_message = db.execute(
        "SELECT min(id) FROM messages WHERE conversation_id = %s", (tenants.alice_private,)
    ).fetchone()[0]
    db.execute(
        "INSERT INTO message_files (message_id, organization_id, file_id) VALUES (%s, %s, %s)",
        (private_message, ORG_A, attached),
    )
    db.execute(
        "INSERT INTO embeddings (organization_id, file_id, chunk_id, content, content_sha256, model, dims, "
        "chunk_profile, embedding) VALUES (%s, %s, 'chunk_attached_file', 'How to rotate the refresh token', 'x', "
        "%s, 384, 'v1/256/32', %s)",
        (ORG_A, attached, MODEL, vector),
    )
    assert via_route(ALICE) == ["chunk_attached_file", "chunk_private_file", "chunk_shared_file"]
    assert via_route(BOB) == ["chunk_shared_file"]
    db.execute("DELETE FROM message_files WHERE file_id = %s", (attached,))
    assert via_route(BOB) == ["chunk_attached_file", "chunk_shared_file"]  # a loose file is the organisation's
    db.execute("DELETE FROM embeddings WHERE file_id = %s", (attached,))
    assert blocking(Caller(ORG_A, BOB)) == ["chunk_alice_shared", "chunk_bob_private", "chunk_shared_file"]
    assert blocking(Caller(ORG_A, ALICE)) == [
        "chunk_alice_private",
        "chunk_alice_shared",
        "chunk_private_file",
        "chunk_shared_file",
    ]
    assert blocking(ORG_A) == [
        "chunk_alice_private",
        "chunk_alice_shared",
        "chunk_bob_private",
        "chunk_private_file",
        "chunk_shared_file",
    ]
