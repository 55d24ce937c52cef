"""GET /v1/graph/concepts/{name}/functions: the seed's 6.1 query, limited to the caller's repositories."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cogo.config import Settings
from cogo.graph.ladybug_store import LadybugStore
from tests.service.helpers import ALICE, CAROL, ORG_A, ORG_B, Bearer


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
def app(settings: Settings, db: psycopg.Connection, app: FastAPI) -> FastAPI:
    """The service over a graph with three repositories: one of each organisation's and one of the platform's."""
    db.execute("INSERT INTO organizations (id, name) VALUES (%s, 'A'), (%s, 'B')", (ORG_A, ORG_B))
    for org, repo in ((ORG_A, "repo_a"), (ORG_B, "repo_b"), (None, "repo_shared")):
        db.execute(
            "INSERT INTO code_embeddings (organization_id, repo, file_path, content, content_sha256, model, dims) "
            "VALUES (%s, %s, 'auth.py', 'code', 'x', 'm', 3)",
            (org, repo),
        )
    build_graph(settings.graph_dir / "cogo.lbug")
    return app


def functions_for(
    client: TestClient, bearer: Bearer, user: str, org: str, concept: str = "Authentication"
) -> list[tuple[str, str]]:
    response = client.get(f"/v1/graph/concepts/{concept}/functions", headers=bearer(user, org))
    assert response.status_code == 200, response.text
    assert response.json()["concept"] == concept
    return [(f["repo"], f["name"]) for f in response.json()["functions"]]


def test_each_organization_sees_its_own_and_shared_repositories_only(client: TestClient, bearer: Bearer) -> None:
    assert functions_for(client, bearer, ALICE, ORG_A) == [("repo_a", "refresh_token"), ("repo_shared", "verify")]
    assert functions_for(client, bearer, CAROL, ORG_B) == [("repo_b", "login"), ("repo_shared", "verify")]


def test_an_unknown_concept_is_an_empty_list(client: TestClient, bearer: Bearer) -> None:
    assert functions_for(client, bearer, ALICE, ORG_A, "Nope") == []


def test_the_route_needs_a_token(client: TestClient) -> None:
    assert client.get("/v1/graph/concepts/Authentication/functions").status_code == 401
