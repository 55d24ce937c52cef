"""One HNSW index per large organisation and model, so a tenant's search walks only its own vectors.

The per-model HNSW index over `embeddings` holds every organisation's vectors. A filtered search keeps only the
caller's, so with one organisation in ten the graph walk must visit ten times the candidates for the same
recall (bench/bench_knowledge.py: recall@10 0.928 at ef_search 400 over 1,000,000 vectors). An organisation with
at least `min_rows` vectors of a model gets a partial index `WHERE model = .. AND organization_id = ..`; smaller
ones are searched exactly (cogo/knowledge/search.py), which below that size is both exact and fast.

    report = refresh_tenant_indexes(conn, min_rows=20_000)   # conn in autocommit: CREATE INDEX CONCURRENTLY

Indexes are built CONCURRENTLY (searches and writes go on) and registered in `tenant_vector_indexes` only once
complete, so a search never plans against a half-built index. An organisation that shrinks below half the
threshold (or is deleted) loses its index: the row goes first, then the index. A build that crashed half-way
leaves an invalid index behind; the next refresh drops it and builds again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from cogo.knowledge.indexes import create_hnsw_index

# Below this many vectors an organisation is searched exactly (search.EXACT_SEARCH_BELOW is the same figure):
# every organisation is then either searched exactly or through its own graph, never through a shared one.
TENANT_INDEX_MIN_ROWS = 20_000
PREFIX = "embeddings_hnsw_org_"


@dataclass
class TenantIndexReport:
    tenants_with_index: int = 0
    tenants_without_index: int = 0  # searched exactly (or, above min_rows until built, through the shared index)
    created: list[dict[str, object]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    invalid_dropped: list[str] = field(default_factory=list)
    duration_s: float = 0.0


def tenant_index_name(organization_id: str, model: str) -> str:
    """A stable name within Postgres's 63 characters whatever the ids look like."""
    digest = hashlib.sha256(f"{model}\0{organization_id}".encode()).hexdigest()[:20]
    return PREFIX + digest


def _vector_counts(conn: psycopg.Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        "SELECT e.organization_id, e.model, count(*) FROM embeddings e JOIN embedding_models m USING (model) "
        "GROUP BY 1, 2"
    ).fetchall()
    return {(org, model): n for org, model, n in rows}


def _our_indexes(conn: psycopg.Connection, *, valid: bool) -> list[str]:
    """Organisation indexes on embeddings; invalid ones are what a crashed CREATE INDEX CONCURRENTLY leaves
    (never used by the planner)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'embeddings'::regclass AND i.indisvalid = %s AND c.relname LIKE %s ORDER BY 1",
        (valid, PREFIX + "%"),
    ).fetchall()
    return [r[0] for r in rows]


def _drop(conn: psycopg.Connection, name: str) -> None:
    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))


def refresh_tenant_indexes(
    conn: psycopg.Connection,
    *,
    min_rows: int = TENANT_INDEX_MIN_ROWS,
    build_memory: str = "1GB",
    log: Callable[[str], None] = lambda _: None,
) -> TenantIndexReport:
    """Give every (organisation, model) with at least `min_rows` vectors its own HNSW index, and drop those of
    organisations under half of it. `conn` must be in autocommit mode (CONCURRENTLY runs outside a transaction)."""
    if not conn.autocommit:
        raise ValueError("refresh_tenant_indexes needs an autocommit connection (CREATE INDEX CONCURRENTLY)")
    started = time.monotonic()
    report = TenantIndexReport()
    # An HNSW build whose graph outgrows maintenance_work_mem goes on on disk, several times slower.
    conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (build_memory,))
    for name in _our_indexes(conn, valid=False):
        log(f"dropping {name}: left invalid by an interrupted build")
        conn.execute("DELETE FROM tenant_vector_indexes WHERE index_name = %s", (name,))
        _drop(conn, name)
        report.invalid_dropped.append(name)
    counts = _vector_counts(conn)
    dims = dict(conn.execute("SELECT model, dims FROM embedding_models").fetchall())
    registered = {
        (org, model): name
        for org, model, name in conn.execute("SELECT organization_id, model, index_name FROM tenant_vector_indexes")
    }
    for (org, model), name in sorted(registered.items()):
        if counts.get((org, model), 0) >= min_rows // 2:
            continue
        log(f"dropping {name} of {org} / {model}: {counts.get((org, model), 0)} vectors left")
        conn.execute("DELETE FROM tenant_vector_indexes WHERE index_name = %s", (name,))
        _drop(conn, name)
        report.dropped.append(name)
        del registered[(org, model)]
    wanted = [key for key, n in counts.items() if n >= min_rows and key not in registered]
    wanted.sort(key=lambda key: -counts[key])  # the largest tenants gain the most
    for i, (org, model) in enumerate(wanted, 1):
        name = tenant_index_name(org, model)
        log(f"building {name} for {org} / {model} over {counts[(org, model)]} vectors ({i} of {len(wanted)})")
        t0 = time.monotonic()
        conn.execute(create_hnsw_index(name, model, dims[model], org, concurrently=True))
        seconds = round(time.monotonic() - t0, 2)
        conn.execute(
            "INSERT INTO tenant_vector_indexes (organization_id, model, index_name, rows_at_build, build_seconds) "
            "VALUES (%s, %s, %s, %s, %s)",
            (org, model, name, counts[(org, model)], seconds),
        )
        registered[(org, model)] = name
        report.created.append(
            {"index": name, "organization_id": org, "model": model, "rows": counts[(org, model)], "seconds": seconds}
        )
    # An index no row names: its model was unregistered, or it is a leftover of an organisation whose row
    # went before its DROP (a crash in between). (One built but not yet registered, the other crash window, was
    # kept above: CREATE INDEX ... IF NOT EXISTS found it and the row was written.)
    for name in _our_indexes(conn, valid=True):
        if name not in registered.values():
            log(f"dropping {name}: no organisation's index any more")
            _drop(conn, name)
            report.dropped.append(name)
    report.tenants_with_index = len(registered)
    report.tenants_without_index = sum(1 for key in counts if key not in registered)
    report.duration_s = round(time.monotonic() - started, 3)
    return report
