"""Fixtures on real components: the embedded Postgres (or COGO_TEST_DATABASE_URL), LadybugDB and the
Neo4j server from tools/neo4j. Each test gets its own database and its own graph."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from cogo.db import embedded
from cogo.db.migrate import migrate
from cogo.db.urls import with_database
from cogo.graph.base import GraphStore
from cogo.graph.ladybug_store import LadybugStore
from tests.neo4j_server import Neo4jServer, start_neo4j

TEMPLATE = f"cogo_template_{os.getpid()}"


@contextmanager
def server_dir(prefix: str) -> Iterator[Path]:
    """A folder for an embedded Postgres, outside pytest's basetemp: the server runs as another user
    when tests run as root, and any pytest session that starts resets /tmp/pytest-of-<user> to 0700,
    which would cut a running server off its own data."""
    folder = Path(tempfile.mkdtemp(prefix=f"cogo-test-{prefix}-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        embedded.stop(folder / "pg")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a Postgres server's `postgres` database, with pgvector available."""
    external = os.environ.get("COGO_TEST_DATABASE_URL")
    if external:
        yield with_database(external, "postgres")
        return
    with server_dir("session") as folder:
        info = embedded.start(folder / "pg")
        yield embedded.server_url(info, "postgres")


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        conn.execute(query)
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_database(pg_server_url: str) -> Iterator[str]:
    """A database with every migration applied, copied for each test (fast: a file copy)."""
    drop_database(pg_server_url, TEMPLATE)
    url = create_database(pg_server_url, TEMPLATE)
    migrate(url)
    try:
        yield TEMPLATE
    finally:
        drop_database(pg_server_url, TEMPLATE)


@pytest.fixture
def empty_database_url(pg_server_url: str) -> Iterator[str]:
    """A fresh database with nothing in it (for migration tests)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name)
    try:
        yield url
    finally:
        drop_database(pg_server_url, name)


@pytest.fixture
def database_url(pg_server_url: str, template_database: str) -> Iterator[str]:
    """A fresh, fully migrated database of this test's own."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name, template=template_database)
    try:
        yield url
    finally:
        drop_database(pg_server_url, name)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jServer]:
    server = start_neo4j(tmp_path_factory.mktemp("neo4j"), password="cogo-test-pw")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ladybug_graph(tmp_path: Path) -> Iterator[GraphStore]:
    store = LadybugStore(tmp_path / "graph" / "cogo.lbug")
    store.ensure_schema()
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def neo4j_graph(neo4j_server: Neo4jServer) -> Iterator[GraphStore]:
    from cogo.graph.neo4j_store import Neo4jStore

    store = Neo4jStore(neo4j_server.url, "neo4j", neo4j_server.password)
    store.clear()  # one server per session: each test starts from an empty graph
    store.ensure_schema()
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(params=["ladybug", "neo4j"])
def graph(request: pytest.FixtureRequest) -> GraphStore:
    """The same test on both backends."""
    return request.getfixturevalue(f"{request.param}_graph")


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection (not autocommit) to a fresh database with the knowledge tests' two tenants."""
    from tests.knowledge_helpers import seed_tenants

    with psycopg.connect(database_url) as c:
        seed_tenants(c)
        c.commit()
        yield c
