"""The platform keeps its assets fresh by itself, in the production topology: a code server, `dagster-daemon`
and the webserver as separate processes on Postgres storage with the queued run coordinator, and `cogo serve`
receiving Clerk's webhooks. Nobody launches a run or toggles a sensor: a dropped file becomes searchable, a
commit reaches the graph and code embeddings, a signed webhook reaches the directory and new messages get
embedded, each within a bounded wait."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import psycopg
import pytest

from tests.clerk_fake import SECRET, clerk_user, event, signed
from tests.code_repos import Repo
from tests.conftest import create_database, drop_database
from tests.dagster_topology import Topology, _default_signals, dagster_topology, free_port
from tests.knowledge_helpers import CONV, ORG, USER, files_dir, seed_tenants

# Bounds on a hang, not timings: each flow is a sensor tick, a queued run and its work on a 2-core machine.
FLOW_LIMIT_S = 180


@pytest.fixture
def platform(pg_server_url: str, database_url: str, tmp_path: Path) -> Iterator[tuple[Topology, dict[str, Path]]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        seed_tenants(conn)
    repo = Repo(tmp_path / "repo")
    repo.write("app/first.py", "def first():\n    return 1\n")
    repo.commit("First")
    paths = {"repo": repo.path, "workspaces": tmp_path / "workspaces", "home": tmp_path / "cogo-home"}
    paths["workspaces"].mkdir()
    dagster_db = f"dagster_{uuid.uuid4().hex[:10]}"
    dagster_url = create_database(pg_server_url, dagster_db)
    env = {
        "COGO_HOME": str(paths["home"]),
        "COGO_DATABASE_URL": database_url,
        "COGO_WORKSPACES_DIR": str(paths["workspaces"]),
        "COGO_REPOS": str(repo.path),
        "CLERK_WEBHOOK_SECRET": SECRET,
    }
    try:
        with dagster_topology(tmp_path / "dagster-home", env, dagster_url) as topology:
            yield topology, paths
    finally:
        drop_database(pg_server_url, dagster_db)


def _one(conn: psycopg.Connection, sql: str, *params: object) -> object:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def test_the_daemon_keeps_every_asset_fresh_by_itself(
    platform: tuple[Topology, dict[str, Path]], database_url: str
) -> None:
    topology, paths = platform
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "cogo.cli", "serve", "--port", str(port), "--workers", "1"],
        env=topology.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_default_signals,
    )
    conn = psycopg.connect(database_url, autocommit=True)
    try:
        # Everything happens at once, as in real life: a file, a commit, a webhook, a message.
        dropped = files_dir(paths["workspaces"]) / "quarterly-plan.md"
        dropped.write_text("# Plan\n\nThe supplier portal ships in March; onboarding needs two approvals.\n")
        repo = Repo(paths["repo"], init=False, tick=100)
        repo.write("app/second.py", "def second_function_added_later():\n    return 2\n")
        repo.commit("Second")
        conn.execute(
            "INSERT INTO messages (conversation_id, organization_id, user_id, role, content) "
            "VALUES (%s, %s, %s, 'user', 'How do refresh tokens rotate in the portal?')",
            (CONV, ORG, USER),
        )
        newcomer = clerk_user("user_hands_off", updated_ms=int(time.time() * 1000) - 1000)
        body, headers = signed(event("user.created", newcomer), f"msg_{uuid.uuid4().hex}")
        url = f"http://127.0.0.1:{port}/webhooks/clerk"
        topology.wait_for(lambda: _posted(url, body, headers), "cogo serve to store the webhook", 60)

        waits = {
            "file searchable": topology.wait_for(
                lambda: bool(
                    _one(
                        conn,
                        "SELECT count(*) FROM embeddings e JOIN files f ON f.id = e.file_id WHERE f.filename = %s",
                        dropped.name,
                    )
                ),
                "the dropped file's chunks to be embedded",
                FLOW_LIMIT_S,
            ),
            "commit in code embeddings": topology.wait_for(
                lambda: bool(
                    _one(conn, "SELECT count(*) FROM code_embeddings WHERE symbol LIKE %s", "%second_function_added%")
                ),
                "the new commit's function to reach code_embeddings",
                FLOW_LIMIT_S,
            ),
            "webhook applied": topology.wait_for(
                lambda: bool(_one(conn, "SELECT count(*) FROM users WHERE id = 'user_hands_off'")),
                "the webhook's user to reach the directory",
                FLOW_LIMIT_S,
            ),
            "message embedded": topology.wait_for(
                lambda: bool(_one(conn, "SELECT count(*) FROM embeddings WHERE message_id IS NOT NULL")),
                "the new message to be embedded",
                FLOW_LIMIT_S,
            ),
        }
        print(f"hands-off waits (s): { {k: round(v, 1) for k, v in waits.items()} }")
        instance = topology.instance()
        runs = instance.get_runs()
        failed = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
        assert not failed, f"failed runs: {[(r.job_name, r.run_id) for r in failed]}\n{topology.logs()}"
        materialized = {key.to_user_string() for key in instance.get_asset_keys()}
        assert {"workspace_files", "file_chunks", "file_embeddings", "code_graph", "code_embeddings"} <= materialized
        assert {"clerk_directory", "message_embeddings"} <= materialized
    finally:
        conn.close()
        serve.terminate()
        serve.wait(timeout=30)


def _posted(url: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=5)
    except httpx.HTTPError:
        return False
    assert response.status_code < 500 or response.status_code == 503, response.text
    return response.status_code == 200
