"""Postgres for the read service: one async connection pool per worker, and tenant-scoped transactions.

Every request's queries run in a transaction that first switches to the row-level-security role
(`SET LOCAL ROLE cogo_reader`, sql/0040) and sets `cogo.organization_id` to the caller's organisation,
both transaction-local, so nothing survives the connection's return to the pool. The transaction is
read-only as well: this service never writes through these connections.

`tenant_queries` sends the whole transaction (BEGIN, scope, the route's statements, COMMIT) as one
simple-protocol message with client-side parameter binding (psycopg's ClientCursor quotes every value), so
a request costs one round trip to Postgres instead of four.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from fastapi import Request
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from cogo.service.responses import RawJsonLoader

READER_ROLE = "cogo_reader"
# One round trip: the same effect as SET LOCAL ROLE, SET LOCAL cogo.organization_id and SET TRANSACTION READ ONLY.
_SCOPE_SQL = (
    "SELECT set_config('role', %s, true), set_config('cogo.organization_id', %s, true), "
    "set_config('transaction_read_only', 'on', true)"
)


def make_pool(url: str, size: int) -> AsyncConnectionPool:
    """A fixed-size pool (opened by the app's lifespan)."""
    return AsyncConnectionPool(
        url,
        min_size=size,
        max_size=size,
        open=False,
        timeout=10.0,
        name="cogo-read-service",
        kwargs={
            "application_name": "cogo-read-service",
            "connect_timeout": 5,
            "autocommit": True,  # transactions are explicit: tenant_queries' BEGIN ... COMMIT, or conn.transaction()
            "cursor_factory": psycopg.AsyncClientCursor,
        },
    )


async def tenant_queries(
    pool: AsyncConnectionPool,
    organization_id: str,
    *statements: tuple[str, Mapping[str, Any]],
    raw_json: bool = False,
) -> list[list[tuple[Any, ...]]]:
    """Run `statements` (each SQL with %(name)s placeholders, and its parameters; names must not clash) in one
    read-only, tenant-scoped transaction, in one round trip. Returns each statement's rows; with `raw_json`,
    json/jsonb values come as orjson fragments (cogo.service.responses) instead of Python objects."""
    params: dict[str, Any] = {"_cogo_role": READER_ROLE, "_cogo_org": organization_id}
    for _, p in statements:
        params.update(p)
    text = "; ".join(
        [
            "BEGIN READ ONLY",
            "SELECT set_config('role', %(_cogo_role)s, true), set_config('cogo.organization_id', %(_cogo_org)s, true)",
            *(sql for sql, _ in statements),
            "COMMIT",
        ]
    )
    results: list[list[tuple[Any, ...]]] = []
    async with pool.connection() as conn:
        cur = conn.cursor()
        if raw_json:
            for type_name in ("json", "jsonb"):
                cur.adapters.register_loader(type_name, RawJsonLoader)
        await cur.execute(text, params)
        while True:
            if cur.description is not None:
                results.append(await cur.fetchall())
            if not cur.nextset():
                break
    return results[1:]  # the first is the scope's set_config row


@asynccontextmanager
async def tenant_transaction(pool: AsyncConnectionPool, organization_id: str) -> AsyncIterator[psycopg.AsyncConnection]:
    """A read-only transaction in which row-level security shows only `organization_id`'s rows.

    Concepts: Multi-tenancy, Authorization
    """
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(_SCOPE_SQL, (READER_ROLE, organization_id))
        yield conn


async def pool_of(request: Request) -> AsyncConnectionPool:
    return request.app.state.db_pool


def make_sync_pool(url: str, size: int) -> ConnectionPool:
    """For library code that takes a blocking psycopg connection (the search functions), run in threads."""
    return ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        open=False,
        timeout=10.0,
        name="cogo-read-service-sync",
        kwargs={"application_name": "cogo-read-service", "connect_timeout": 5},
    )


@contextmanager
def sync_tenant_transaction(pool: ConnectionPool, organization_id: str) -> Iterator[psycopg.Connection]:
    """`tenant_transaction` for a blocking connection."""
    with pool.connection() as conn, conn.transaction():
        scope_to_tenant(conn, organization_id)
        yield conn


def scope_to_tenant(conn: psycopg.Connection, organization_id: str) -> None:
    """Inside an open transaction: the reader role, `organization_id`'s rows only, read-only, until it ends."""
    conn.execute(_SCOPE_SQL, (READER_ROLE, organization_id))
