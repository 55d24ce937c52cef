"""Agent tasks and the shared code graph. A commit's `Task-Id:` trailer links code to a task of one organisation,
while a repository's graph serves every organisation that sees the repository: the graph keeps the task's id only,
and code search shows a task's title and status only to the callers who may see that task."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from cogo.code.builder import build_repository
from cogo.code.embeddings import sync_code_embeddings
from cogo.config import Settings
from cogo.embed import get_embedder
from cogo.graph.base import GraphStore
from cogo.graph.ladybug_store import LadybugStore
from cogo.service.app import create_app
from tests.code_repos import TASK_ID, build_history
from tests.service.helpers import (
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
    service_env,
)

MODEL = "local:all-MiniLM-L6-v2"
KEY = SigningKey("kid_code_tasks")
TITLE, PROMPT = "Harden login for Acme's SSO", "Acme's secret plan: make passwords stricter"


@dataclass(frozen=True)
class Service:
    client: TestClient
    tenants: TwoTenants


def build_graph_on(
    backend: str, request: pytest.FixtureRequest, repo: str, db: psycopg.Connection, home: Path
) -> dict[str, str]:
    """Build the repository's graph on `backend`; returns the settings that lead the service to that graph."""
    if backend == "neo4j":
        server = request.getfixturevalue("neo4j_server")
        build_repository(repo, request.getfixturevalue("neo4j_graph"), db)
        return {"COGO_GRAPH_URL": server.url, "NEO4J_PASSWORD": server.password}
    # The embedded graph where the service looks for it, closed again so that the service can open it.
    with LadybugStore(home / "graph" / "cogo.lbug") as graph:
        graph.ensure_schema()
        build_repository(repo, graph, db)
    return {}


@pytest.fixture(params=["ladybug", "neo4j"])
def service(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database_url: str,
    db: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Service]:
    """One platform-shared repository (code_embeddings rows with no organisation, as the code assets write them)
    whose commit names org A's task, Alice's, started in her private conversation. The task exists before the
    build, so a build that copied task details into the graph would have them."""
    tenants = load_two_tenants(db)
    db.execute(
        "INSERT INTO agent_tasks (id, organization_id, conversation_id, user_id, title, prompt, status) "
        "VALUES (%s, %s, %s, %s, %s, %s, 'COMPLETED')",
        (TASK_ID, ORG_A, tenants.alice_private, ALICE, TITLE, PROMPT),
    )
    repo = str(tmp_path / "demo")
    build_history(Path(repo))
    graph_env = build_graph_on(request.param, request, repo, db, tmp_path / "home")
    sync_code_embeddings(db, repo, get_embedder(MODEL))
    with JwksServer() as jwks:
        jwks.keys = [KEY.jwk]
        for name, value in service_env(jwks.url).items():
            monkeypatch.setenv(name, value)
        env = {"COGO_HOME": str(tmp_path / "home"), "COGO_DATABASE_URL": database_url, **graph_env}
        with TestClient(create_app(Settings.from_env(env))) as client:
            yield Service(client, tenants)


def verify_task(client: TestClient, user: str, org: str) -> tuple[dict | None, str]:
    """The task shown with app.auth.verify (which the task's commit changed) to this caller, and the whole body."""
    headers = {"Authorization": f"Bearer {KEY.sign(claims_v2(user, org))}"}
    response = client.post("/v1/search/code", json={"query": "verify the password length", "k": 10}, headers=headers)
    assert response.status_code == 200, response.text
    hits = {h["symbol"]: h for h in response.json()["hits"]}
    assert "app.auth.verify" in hits  # the repository is shared: every caller finds the code
    return hits["app.auth.verify"]["task"], response.text


def test_code_search_shows_a_task_only_to_the_callers_who_may_see_it(service: Service, db: psycopg.Connection) -> None:
    seen = {"task_id": TASK_ID, "title": TITLE, "status": "COMPLETED"}
    assert verify_task(service.client, ALICE, ORG_A)[0] == seen
    # Bob is in org A but the task's conversation is Alice's private one; Carol is in org B.
    for user, org in ((BOB, ORG_A), (CAROL, ORG_B)):
        task, body = verify_task(service.client, user, org)
        assert task is None and TITLE not in body and PROMPT not in body

    # Decided when reading, by the task rule: in a shared conversation all of org A sees it, org B still nothing.
    db.execute("UPDATE agent_tasks SET conversation_id = %s WHERE id = %s", (service.tenants.alice_shared, TASK_ID))
    assert verify_task(service.client, BOB, ORG_A)[0] == seen
    task, body = verify_task(service.client, CAROL, ORG_B)
    assert task is None and TITLE not in body


def test_an_older_graph_loses_task_details_when_its_schema_is_ensured(graph: GraphStore) -> None:
    """A graph built before Task nodes kept only their id: ensure_schema (`cogo up`, every code_graph run)
    removes what they held, on both backends, and the node stays with its links."""
    retired = ("title", "prompt", "status")
    if graph.backend == "ladybug":  # the columns an older schema created
        existing = {r["name"] for r in graph.query("CALL table_info('Task') RETURN *")}
        for name in set(retired) - existing:
            graph.write(f"ALTER TABLE Task ADD {name} STRING")
    task_id = str(uuid.uuid4())
    graph.upsert_nodes("Function", [{"id": "demo:app.login", "repo": "demo", "name": "login"}])
    graph.write(
        "CREATE (:Task {id: $id, task_id: $id, title: $title, prompt: $prompt, status: 'COMPLETED'})",
        {"id": task_id, "title": TITLE, "prompt": PROMPT},
    )
    graph.upsert_relationships("GENERATED_BY", "Function", "Task", [{"src": "demo:app.login", "dst": task_id}])

    graph.ensure_schema()

    rows = graph.query("MATCH (f:Function)-[:GENERATED_BY]->(t:Task) RETURN f.id AS f, t")
    assert rows == [{"f": "demo:app.login", "t": {"_labels": ["Task"], "id": task_id, "task_id": task_id}}]
    if graph.backend == "ladybug":
        columns = {r["name"] for r in graph.query("CALL table_info('Task') RETURN *")}
        assert columns.isdisjoint(retired)
