"""tools/neo4j's launcher: a clear refusal when its port is taken, a clean exit on SIGTERM, data kept."""

from __future__ import annotations

import subprocess
from pathlib import Path

from neo4j import GraphDatabase

from tests.neo4j_server import TOOLS, Neo4jServer, start_neo4j


def test_a_port_already_in_use_is_one_clear_line_and_exit_2(neo4j_server: Neo4jServer, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(TOOLS / "run.sh"), "--port", str(neo4j_server.port), "--data", str(tmp_path / "other")],
        env={"NEO4J_SKIP_BUILD": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert f"port {neo4j_server.port} on 127.0.0.1 is already in use" in result.stderr
    assert "NEO4J READY" not in result.stdout


def test_sigterm_stops_cleanly_and_the_data_survives_a_restart(tmp_path: Path) -> None:
    server = start_neo4j(tmp_path, password="pw-1")
    with GraphDatabase.driver(server.url, auth=("neo4j", "pw-1")) as driver:
        driver.execute_query("CREATE (:Concept {id: 'kept', name: 'Kept'})")
    server.stop()
    assert server.process.returncode == 0
    again = start_neo4j(tmp_path, password="pw-1")
    try:
        with GraphDatabase.driver(again.url, auth=("neo4j", "pw-1")) as driver:
            records, _, _ = driver.execute_query("MATCH (c:Concept {id: 'kept'}) RETURN c.name AS name")
        assert [r["name"] for r in records] == ["Kept"]
    finally:
        again.stop()
