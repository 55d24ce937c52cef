"""GET /v1/graph/concepts/{name}/functions: the seed's 6.1 query, limited to the caller's repositories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from cogo.graph.ladybug_store import LadybugStore
from tests.service_helpers import (
    ALICE,
    CAROL,
    ORG_A,
    ORG_B,
    JwksServer,
    SigningKey,
    claims_v2,
    service_client,
    service_env,
)

KEY = SigningKey("kid_graph")


def build_graph(path: Path) -> None:
    store = LadybugStore(path)
    try:
        store.ensure_schema()
        store.upsert_nodes("Concept", [{"id": "concept:Authentication", "name": "Authentication"}])
        functions = [
            {
                "id": f"{repo}:auth.{name}",
                "repo": repo,
                "name": name,
                "qualified_name": f"auth.{name}",
                "path": "auth.py",
                "signature": f"def {name}(token)",
                "docstring": f"{name} doc",
            }
            for repo, name in (("repo_a", "refresh_token"), ("repo_b", "login"), ("repo_shared", "verify"))
        ]
        store.upsert_nodes("Function", functions)
        store.upsert_relationships(
            "IMPLEMENTS", "Function", "Concept", [{"src": f["id"], "dst": "concept:Authentication"} for f in functions]
        )
    finally:
        store.close()


@pytest.fixture
def client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, db: psycopg.Connection
) -> Iterator[TestClient]:
    db.execute("INSERT INTO organizations (id, name) VALUES (%s, 'A'), (%s, 'B')", (ORG_A, ORG_B))
    for org, repo in ((ORG_A, "repo_a"), (ORG_B, "repo_b"), (None, "repo_shared")):
        db.execute(
            "INSERT INTO code_embeddings (organization_id, repo, file_path, content, content_sha256, model, dims) "
            "VALUES (%s, %s, 'auth.py', 'code', 'x', 'm', 3)",
            (org, repo),
        )
    build_graph(tmp_path / "home" / "graph" / "cogo.lbug")
    with JwksServer() as jwks:
        jwks.keys = [KEY.jwk]
        with service_client(monkeypatch, tmp_path, database_url, service_env(jwks.url)) as client:
            yield client


def functions_for(client: TestClient, user: str, org: str, concept: str = "Authentication") -> list[tuple[str, str]]:
    headers = {"Authorization": f"Bearer {KEY.sign(claims_v2(user, org))}"}
    response = client.get(f"/v1/graph/concepts/{concept}/functions", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["concept"] == concept
    return [(f["repo"], f["name"]) for f in response.json()["functions"]]


def test_each_organization_sees_its_own_and_shared_repositories_only(client: TestClient) -> None:
    assert functions_for(client, ALICE, ORG_A) == [("repo_a", "refresh_token"), ("repo_shared", "verify")]
    assert functions_for(client, CAROL, ORG_B) == [("repo_b", "login"), ("repo_shared", "verify")]


def test_an_unknown_concept_is_an_empty_list(client: TestClient) -> None:
    assert functions_for(client, ALICE, ORG_A, "Nope") == []


def test_the_route_needs_a_token(client: TestClient) -> None:
    assert client.get("/v1/graph/concepts/Authentication/functions").status_code == 401
