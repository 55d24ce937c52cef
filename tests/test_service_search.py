"""POST /v1/search through the knowledge package's hybrid search (real local embedder, real pgvector):
scoped to the caller's organisation, and to the conversations the caller may see."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.service_helpers import (
    ALICE,
    BOB,
    CAROL,
    ORG_A,
    ORG_B,
    JwksServer,
    SigningKey,
    TwoTenants,
    claims_v2,
    load_two_tenants,
    service_client,
    service_env,
)

KEY = SigningKey("kid_search")
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


@pytest.fixture
def client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, db: psycopg.Connection
) -> Iterator[TestClient]:
    seed_message_index(db, load_two_tenants(db))
    with JwksServer() as jwks:
        jwks.keys = [KEY.jwk]
        with service_client(monkeypatch, tmp_path, database_url, service_env(jwks.url)) as client:
            yield client


def search(client: TestClient, user: str, org: str, **body: object) -> list[str]:
    headers = {"Authorization": f"Bearer {KEY.sign(claims_v2(user, org))}"}
    response = client.post("/v1/search", json={"query": "refresh token rotation", **body}, headers=headers)
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]
    assert all(h["score"] > 0 and h["citation"]["kind"] == "message" for h in hits)
    return sorted(h["chunk_id"] for h in hits)


def test_search_sees_the_organization_and_only_visible_conversations(client: TestClient) -> None:
    assert search(client, ALICE, ORG_A) == ["chunk_alice_private", "chunk_alice_shared"]
    assert search(client, BOB, ORG_A) == ["chunk_alice_shared", "chunk_bob_private"]
    assert search(client, CAROL, ORG_B) == ["chunk_carol_shared"]


def test_search_hits_carry_their_citation(client: TestClient, db: psycopg.Connection) -> None:
    headers = {"Authorization": f"Bearer {KEY.sign(claims_v2(CAROL, ORG_B))}"}
    hit = client.post("/v1/search", json={"query": "refresh token", "k": 1}, headers=headers).json()["hits"][0]
    message_id, conversation_id = db.execute(
        "SELECT m.id, m.conversation_id FROM embeddings e JOIN messages m ON m.id = e.message_id "
        "WHERE e.chunk_id = 'chunk_carol_shared'"
    ).fetchone()
    assert hit["citation"]["message_id"] == message_id
    assert hit["citation"]["conversation_id"] == str(conversation_id)


def test_k_and_kinds_are_honoured(client: TestClient) -> None:
    assert len(search(client, ALICE, ORG_A, k=1)) == 1
    assert search(client, ALICE, ORG_A, kinds=["file"]) == []


def test_the_largest_k_is_served(client: TestClient) -> None:
    # k=100 asks the index for more candidates than pgvector's hnsw.ef_search allows (1,000): capped, not a 500.
    assert search(client, ALICE, ORG_A, k=100) == ["chunk_alice_private", "chunk_alice_shared"]


def test_a_worker_runs_at_most_its_search_concurrency_at_once_and_the_rest_wait_their_turn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, db: psycopg.Connection
) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    seed_message_index(db, load_two_tenants(db))
    headers = {"Authorization": f"Bearer {KEY.sign(claims_v2(ALICE, ORG_A))}"}
    with JwksServer() as jwks:
        jwks.keys = [KEY.jwk]
        env = service_env(jwks.url, COGO_SERVICE_SEARCH_CONCURRENCY="2", COGO_SERVICE_POOL_SIZE="8")
        with service_client(monkeypatch, tmp_path, database_url, env) as client:
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
                answers = list(
                    pool.map(lambda q: client.post("/v1/search", json={"query": q}, headers=headers), ["token"] * 8)
                )
            done.set()
            watcher.join()
    assert [a.status_code for a in answers] == [200] * 8
    assert max(running) == 2 and max(waiting) >= 1
