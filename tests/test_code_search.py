"""Code search (POST /v1/search/code): nearest code_embeddings plus their graph context, scoped to the
caller's organisation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from fastapi.testclient import TestClient

from cogo.assets.code import code_embeddings, code_graph, concept_links
from cogo.code.search import search_code
from cogo.embed import get_embedder
from cogo.resources import GraphResource, PostgresResource
from cogo.resources.embedder import EmbedderResource
from tests.code_repos import TASK_ID, build_history
from tests.service.helpers import (
    ALICE,
    CAROL,
    ORG_A,
    ORG_B,
    JwksServer,
    SigningKey,
    claims_v2,
    load_two_tenants,
    service_client,
    service_env,
)

MODEL = "local:all-MiniLM-L6-v2"
KEY = SigningKey("kid_code_search")


@pytest.fixture
def indexed_repo(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, str]]:
    repo = tmp_path / "demo"
    commits = build_history(repo)
    monkeypatch.setenv("COGO_REPOS", str(repo))
    monkeypatch.setenv("COGO_HOME", str(tmp_path / "home"))
    resources = {
        "postgres": PostgresResource(database_url=database_url),
        "graph": GraphResource(home=str(tmp_path / "home")),
        "embedder": EmbedderResource(model=MODEL),
    }
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("repositories", [str(repo)])  # code assets: one partition per repository
    code_assets = [code_graph, code_embeddings, concept_links]
    assert dg.materialize(code_assets, resources=resources, instance=instance, partition_key=str(repo)).success
    return str(repo), commits


def test_hits_carry_callers_callees_concepts_commit_and_task(
    indexed_repo: tuple[str, dict[str, str]], database_url: str, tmp_path: Path, db: psycopg.Connection
) -> None:
    repo, commits = indexed_repo
    db.execute("INSERT INTO organizations (id, name) VALUES (%s, 'A')", (ORG_A,))
    db.execute(
        "INSERT INTO agent_tasks (id, organization_id, title, status) VALUES (%s, %s, 'Harden login', 'COMPLETED')",
        (TASK_ID, ORG_A),
    )
    with psycopg.connect(database_url) as conn, GraphResource(home=str(tmp_path / "home")).open() as graph:
        hits = search_code(
            conn,
            graph,
            organization_id=ORG_A,
            user_id=ALICE,
            query="log a user in with a password",
            k=5,
            embedder=get_embedder(MODEL),
        )
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
        login = next(h for h in hits if h["symbol"] == "app.auth.login")
        assert login["repo"] == repo and login["file_path"] == "app/auth.py" and login["symbol_kind"] == "function"
        assert {c["qualified_name"] for c in login["callers"]} == {"app.auth.TokenService.check", "app.feature.feature"}
        assert "app.auth.verify" in {c["qualified_name"] for c in login["callees"]}
        assert login["concepts"] and "Authentication" in login["concepts"]
        assert login["last_commit"]["hash"] in commits.values()

        newest = graph.query(
            "MATCH (c:Commit)-[:AFFECTS]->(f:Function {id: $id}) RETURN c.hash AS hash ORDER BY c.timestamp DESC",
            {"id": f"{repo}:app.auth.verify"},
        )[0]["hash"]
        verify = search_code(
            conn,
            graph,
            organization_id=ORG_A,
            user_id=ALICE,
            query="verify the password length",
            k=10,
            embedder=get_embedder(MODEL),
        )
        verify_hit = next(h for h in verify if h["symbol"] == "app.auth.verify")
        assert verify_hit["last_commit"]["hash"] == newest
        assert verify_hit["task"] == {"task_id": TASK_ID, "title": "Harden login", "status": "COMPLETED"}


def test_code_of_another_organisation_is_not_searched(
    indexed_repo: tuple[str, dict[str, str]], database_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'A'), (%s, 'B')", (ORG_A, ORG_B))
        conn.execute("UPDATE code_embeddings SET organization_id = %s", (ORG_A,))
    with psycopg.connect(database_url) as conn, GraphResource(home=str(tmp_path / "home")).open() as graph:
        embedder = get_embedder(MODEL)
        for org, user, found in ((ORG_A, ALICE, True), (ORG_B, CAROL, False)):
            hits = search_code(conn, graph, organization_id=org, user_id=user, query="login", k=3, embedder=embedder)
            assert bool(hits) is found


@pytest.fixture
def client(
    indexed_repo: tuple[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    database_url: str,
    db: psycopg.Connection,
) -> Iterator[TestClient]:
    load_two_tenants(db)
    db.execute("UPDATE code_embeddings SET organization_id = %s", (ORG_A,))
    with JwksServer() as jwks:
        jwks.keys = [KEY.jwk]
        with service_client(monkeypatch, tmp_path, database_url, service_env(jwks.url)) as client:
            yield client


def test_the_route_answers_with_graph_context_for_its_tenant_only(client: TestClient) -> None:
    def post(user: str, org: str) -> list[dict]:
        headers = {"Authorization": f"Bearer {KEY.sign(claims_v2(user, org))}"}
        response = client.post("/v1/search/code", json={"query": "refresh a token", "k": 3}, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()["hits"]

    hits = post(ALICE, ORG_A)
    assert len(hits) == 3 and any(h["symbol"] == "app.auth.TokenService.refresh" for h in hits)
    refresh = next(h for h in hits if h["symbol"] == "app.auth.TokenService.refresh")
    assert {c["qualified_name"] for c in refresh["callees"]} == {"app.auth.TokenService.check"}
    assert post(CAROL, ORG_B) == []
