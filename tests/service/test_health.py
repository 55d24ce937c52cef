"""GET /health checks Postgres (on the worker's pool) and the graph for real."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from cogo.config import Settings
from cogo.graph.ladybug_store import LadybugStore
from cogo.service.app import create_app
from tests.neo4j_server import free_port


def settings_for(tmp_path: Path, database_url: str, graph_url: str | None = None) -> Settings:
    env = {"COGO_HOME": str(tmp_path), "COGO_DATABASE_URL": database_url}
    if graph_url:
        env["COGO_GRAPH_URL"] = graph_url
    return Settings.from_env(env)


def test_health_is_ok_when_both_stores_answer(tmp_path: Path, database_url: str) -> None:
    LadybugStore(tmp_path / "graph" / "cogo.lbug").close()
    with TestClient(create_app(settings_for(tmp_path, database_url))) as client:
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "postgres": "ok", "graph": "ok"}


def test_health_is_degraded_when_the_graph_is_down(tmp_path: Path, database_url: str) -> None:
    with TestClient(create_app(settings_for(tmp_path, database_url, f"bolt://127.0.0.1:{free_port()}"))) as client:
        response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["postgres"] == "ok" and body["graph"].startswith("error: cannot reach Neo4j")


def test_health_is_degraded_when_postgres_is_down(tmp_path: Path, database_url: str) -> None:
    LadybugStore(tmp_path / "graph" / "cogo.lbug").close()
    down = f"postgresql://nobody@127.0.0.1:{free_port()}/nowhere"
    with TestClient(create_app(settings_for(tmp_path, down))) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "postgres": "error: PoolTimeout", "graph": "ok"}


def test_errors_have_one_stable_shape(tmp_path: Path, database_url: str) -> None:
    with TestClient(create_app(settings_for(tmp_path, database_url))) as client:
        response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not Found"}}
