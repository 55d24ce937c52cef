"""Per-organisation HNSW indexes: built for large tenants only once complete, used by search through the
partial-index predicate (also under the read service's row-level security), exact, dropped when a tenant
shrinks, rebuilt after an interrupted build; and the Dagster asset around it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import psycopg
import pytest

from cogo.assets.knowledge import tenant_vector_indexes
from cogo.knowledge import search as search_module
from cogo.knowledge.search import Leg, search_chunks, vector_leg_sql
from cogo.knowledge.tenant_indexes import refresh_tenant_indexes, tenant_index_name
from cogo.resources import PostgresResource
from cogo.tenancy import scope
from tests.embeddings_server import embeddings_server
from tests.knowledge_helpers import ORG, OTHER_CONV, OTHER_ORG, OTHER_USER, files_dir, seed_tenants
from tests.test_knowledge_pipeline import MODEL, embedders
from tests.test_knowledge_search import _index

MIN_ROWS = 100


def _corpus(conn: psycopg.Connection, root: Path, server) -> None:
    """ORG: 12 chunks (searched exactly); OTHER_ORG: 300 (large enough for its own index at MIN_ROWS)."""
    seed_tenants(conn)
    conn.commit()
    mine = files_dir(root)
    for i in range(12):
        (mine / f"acme{i}.md").write_text(f"# Note {i}\n\nAcme note number {i} about servo motors.\n")
    theirs = files_dir(root, org=OTHER_ORG, user=OTHER_USER, conv=OTHER_CONV)
    for i in range(300):
        (theirs / f"globex{i}.md").write_text(f"# Secret {i}\n\nservo motors and gearbox number {i} secret\n")
    _index(conn, root, embedders(server))
    conn.commit()


def _profile(conn: psycopg.Connection, org: str) -> str:
    return conn.execute(
        "SELECT chunk_profile FROM knowledge_indexes WHERE organization_id = %s AND state = 'ready'", (org,)
    ).fetchone()[0]


def _plan(conn: psycopg.Connection, org: str) -> str:
    leg = Leg(MODEL, _profile(conn, org))
    query, params, _ = vector_leg_sql(conn, leg, org, 40)
    dims = conn.execute("SELECT dims FROM embedding_models WHERE model = %s", (MODEL,)).fetchone()[0]
    rows = conn.execute(psycopg.sql.SQL("EXPLAIN ") + query, [[0.1] * dims, *params]).fetchall()
    return "\n".join(r[0] for r in rows)


def _exact(conn: psycopg.Connection, org: str, qvec: list[float], n: int) -> list[int]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT id FROM embeddings WHERE organization_id = %s AND model = %s AND file_id IS NOT NULL "
            "ORDER BY (embedding::vector(32) <=> %s::vector(32)) + 0, id LIMIT %s",
            (org, MODEL, qvec, n),
        )
    ]


def _registered(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT organization_id, index_name FROM tenant_vector_indexes").fetchall())


def _valid_index(conn: psycopg.Connection, name: str) -> bool | None:
    row = conn.execute(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s", (name,)
    ).fetchone()
    return None if row is None else row[0]


def test_large_tenant_gets_its_own_index_and_search_walks_it(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url) as conn, embeddings_server(dims=32) as server:
        _corpus(conn, tmp_path, server)
        with psycopg.connect(database_url, autocommit=True) as admin:
            report = refresh_tenant_indexes(admin, min_rows=MIN_ROWS)
        name = tenant_index_name(OTHER_ORG, MODEL)
        assert _registered(conn) == {OTHER_ORG: name}
        assert [c["organization_id"] for c in report.created] == [OTHER_ORG]
        assert report.tenants_with_index == 1 and report.tenants_without_index == 1
        assert _valid_index(conn, name) is True
        (predicate,) = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (name,)).fetchone()
        assert f"organization_id = '{OTHER_ORG}'" in predicate and f"model = '{MODEL}'" in predicate

        embedder_for = embedders(server)
        qvec = embedder_for(MODEL).embed(["servo motors gearbox"])[0]
        with conn.transaction():
            conn.execute("SET LOCAL enable_seqscan = off")
            # The large tenant walks its own graph; the small one is searched exactly (no index at all).
            assert name in _plan(conn, OTHER_ORG)
            small = _plan(conn, ORG)
            assert "hnsw" not in small.lower() and tenant_index_name(ORG, MODEL) not in small
            leg = Leg(MODEL, _profile(conn, OTHER_ORG))
            nearest, _ = search_module._leg_rows(conn, leg, OTHER_ORG, "servo motors gearbox", qvec, 10)
            got = [r[0] for r in nearest]
        assert got == _exact(conn, OTHER_ORG, qvec.tolist(), 10)

        # Under the read service's role the registry row is visible to its own tenant only, and results stay
        # inside the tenant.
        with conn.transaction():
            scope(conn, OTHER_ORG)
            assert _plan(conn, OTHER_ORG).count(name) == 1
            hits = search_chunks(conn, OTHER_ORG, "servo motors", 10, embedder_for=embedder_for)
            assert len(hits) == 10 and all(h.storage_path.startswith(f"{OTHER_ORG}/") for h in hits)
        with conn.transaction():
            scope(conn, ORG)
            assert conn.execute("SELECT count(*) FROM tenant_vector_indexes").fetchone() == (0,)
            hits = search_chunks(conn, ORG, "servo motors", 10, embedder_for=embedder_for)
            assert len(hits) == 10 and all(h.storage_path.startswith(f"{ORG}/") for h in hits)


def test_refresh_is_idempotent_and_drops_the_index_of_a_shrunk_tenant(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url) as conn, embeddings_server(dims=32) as server:
        _corpus(conn, tmp_path, server)
        with psycopg.connect(database_url, autocommit=True) as admin:
            refresh_tenant_indexes(admin, min_rows=MIN_ROWS)
            again = refresh_tenant_indexes(admin, min_rows=MIN_ROWS)
            assert again.created == [] and again.dropped == []
            # Still above half the threshold: kept (no rebuild churn around the threshold).
            admin.execute(
                "DELETE FROM embeddings WHERE id IN (SELECT id FROM embeddings WHERE organization_id = %s "
                "ORDER BY id LIMIT 200)",
                (OTHER_ORG,),
            )
            assert refresh_tenant_indexes(admin, min_rows=MIN_ROWS).dropped == []
            admin.execute(
                "DELETE FROM embeddings WHERE id IN (SELECT id FROM embeddings WHERE organization_id = %s "
                "ORDER BY id LIMIT 60)",
                (OTHER_ORG,),
            )
            name = tenant_index_name(OTHER_ORG, MODEL)
            assert refresh_tenant_indexes(admin, min_rows=MIN_ROWS).dropped == [name]
        assert _registered(conn) == {}
        assert _valid_index(conn, name) is None
        # Searched exactly again, and still complete.
        hits = search_chunks(conn, OTHER_ORG, "servo motors", 10, embedder_for=embedders(server))
        assert len(hits) == 10


def test_an_interrupted_build_is_dropped_and_built_again(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url) as conn, embeddings_server(dims=32) as server:
        _corpus(conn, tmp_path, server)
        name = tenant_index_name(OTHER_ORG, MODEL)
        with psycopg.connect(database_url, autocommit=True) as admin:
            # What a CREATE INDEX CONCURRENTLY killed half-way leaves: an invalid index, no registry row.
            admin.execute(
                f"CREATE INDEX {name} ON embeddings USING hnsw ((embedding::vector(32)) vector_cosine_ops) "
                f"WHERE model = '{MODEL}' AND organization_id = '{OTHER_ORG}'"
            )
            admin.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", (name,))
            assert _valid_index(conn, name) is False
            # Until then, search does not plan against it: the tenant has no registered index.
            with conn.transaction():
                assert name not in _plan(conn, OTHER_ORG)
            conn.rollback()  # DROP INDEX CONCURRENTLY waits for every open transaction on the table
            report = refresh_tenant_indexes(admin, min_rows=MIN_ROWS)
        assert report.invalid_dropped == [name]
        assert [c["index"] for c in report.created] == [name]
        assert _valid_index(conn, name) is True
        assert _registered(conn) == {OTHER_ORG: name}


def test_refresh_needs_an_autocommit_connection(database_url: str) -> None:
    with psycopg.connect(database_url) as conn, pytest.raises(ValueError, match="autocommit"):
        refresh_tenant_indexes(conn)


def test_asset_reports_what_it_built(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url) as conn, embeddings_server(dims=32) as server:
        _corpus(conn, tmp_path, server)
    result = dg.materialize(
        [tenant_vector_indexes],
        resources={"postgres": PostgresResource(database_url=database_url)},
        run_config={"ops": {"tenant_vector_indexes": {"config": {"min_rows": MIN_ROWS}}}},
    )
    assert result.success
    meta = result.asset_materializations_for_node("tenant_vector_indexes")[0].metadata
    assert meta["tenants_with_index"].value == 1 and meta["tenants_without_index"].value == 1
    assert [c["organization_id"] for c in meta["indexes_built"].value] == [OTHER_ORG]


def test_exact_search_matches_numpy(database_url: str, tmp_path: Path) -> None:
    """A tenant under the threshold is searched exactly: the leg's rows are the true nearest ones."""
    with psycopg.connect(database_url) as conn, embeddings_server(dims=32) as server:
        _corpus(conn, tmp_path, server)
        qvec = embedders(server)(MODEL).embed(["servo motors"])[0]
        rows = conn.execute(
            "SELECT id, embedding::text FROM embeddings WHERE organization_id = %s AND file_id IS NOT NULL",
            (OTHER_ORG,),
        ).fetchall()
        matrix = np.array([[float(x) for x in text.strip("[]").split(",")] for _, text in rows])
        distances = 1 - (matrix @ qvec) / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(qvec))
        want = [rows[i][0] for i in np.argsort(distances, kind="stable")[:5]]
        with conn.transaction():
            leg = Leg(MODEL, _profile(conn, OTHER_ORG))
            got = [r[0] for r in search_module._leg_rows(conn, leg, OTHER_ORG, "servo motors", qvec, 5)[0]]
        assert set(got) == set(want)


def test_crash_windows_between_index_and_registry_row_heal(database_url: str, tmp_path: Path) -> None:
    """A crash after CREATE INDEX but before its row: the index is registered, not built twice. A crash after
    the row went but before DROP INDEX (or an index nobody names): dropped."""
    with psycopg.connect(database_url) as conn, embeddings_server(dims=32) as server:
        _corpus(conn, tmp_path, server)
    built = tenant_index_name(OTHER_ORG, MODEL)
    stray = tenant_index_name(ORG, MODEL)  # ORG is far too small for an index of its own
    with psycopg.connect(database_url, autocommit=True) as admin:
        for name, org in ((built, OTHER_ORG), (stray, ORG)):
            admin.execute(
                f"CREATE INDEX {name} ON embeddings USING hnsw ((embedding::vector(32)) vector_cosine_ops) "
                f"WHERE model = '{MODEL}' AND organization_id = '{org}'"
            )
        report = refresh_tenant_indexes(admin, min_rows=MIN_ROWS)
        assert [c["index"] for c in report.created] == [built]
        assert report.dropped == [stray]
        assert _registered(admin) == {OTHER_ORG: built}
        assert _valid_index(admin, built) is True and _valid_index(admin, stray) is None
