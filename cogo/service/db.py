"""Postgres for the read service: one async connection pool per worker, and tenant-scoped transactions.

Every request's queries run in a transaction that first switches to the row-level-security role
(`SET LOCAL ROLE cogo_reader`, sql/0040) and sets `cogo.organization_id` to the caller's organisation,
both transaction-local, so nothing survives the connection's return to the pool. The transaction is
read-only as well: this service never writes through these connections.

`tenant_queries` sends the whole transaction (the scope, then the route's statements) as one simple-protocol
message with client-side parameter binding (psycopg's ClientCursor quotes every value): Postgres runs the
statements of one such message as one implicit transaction, so a request costs one round trip to Postgres
instead of four, and no BEGIN or COMMIT.

With `prepared=True` (the hot page queries), each statement is prepared once per connection (PREPARE, in its own
round trip the first time a connection meets it) and the transaction runs it by name (EXECUTE) with a generic
plan: Postgres then neither parses nor plans it per request, about half of its CPU for a page. Row-level
security still applies: Postgres re-applies the policies of a prepared statement for the role it runs under.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg.errors
from fastapi import Request
from psycopg import pq
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from cogo.service.responses import RawJsonLoader

READER_ROLE = "cogo_reader"
TUPLES_OK = pq.ExecStatus.TUPLES_OK
AnyConnection = psycopg.Connection[Any] | psycopg.AsyncConnection[Any]  # the pool's, or cogo.service.inline_reads'
# One round trip: the same effect as SET LOCAL ROLE, SET LOCAL cogo.organization_id and SET TRANSACTION READ ONLY.
_SCOPE_SQL = (
    "SELECT set_config('role', %s, true), set_config('cogo.organization_id', %s, true), "
    "set_config('transaction_read_only', 'on', true)"
)


def make_pool(url: str, size: int, timeout_s: float = 10.0) -> AsyncConnectionPool:
    """A fixed-size pool (opened by the app's lifespan)."""
    return AsyncConnectionPool(
        url,
        min_size=size,
        max_size=size,
        open=False,
        timeout=timeout_s,
        name="cogo-read-service",
        kwargs={
            "application_name": "cogo-read-service",
            "connect_timeout": 5,
            "autocommit": True,  # transactions are explicit: tenant_queries' BEGIN ... COMMIT, or conn.transaction()
            "cursor_factory": psycopg.AsyncClientCursor,
        },
    )


# Sent as the first statement of a multi-statement simple query, which Postgres runs as one implicit transaction:
# the settings last until its end, like SET LOCAL in an explicit one, without a BEGIN and a COMMIT to send and answer.
_SCOPE = (
    "SELECT set_config('role', %(_cogo_role)s, true), set_config('cogo.organization_id', %(_cogo_org)s, true), "
    "set_config('transaction_read_only', 'on', true)"
)
# Prepared statements are planned for their parameters' values the first five times and then, by default, only
# if that looks cheaper than a generic plan, which a parameterised LIMIT never does: ask for the generic plan.
_SCOPE_PREPARED = _SCOPE + ", set_config('plan_cache_mode', 'force_generic_plan', true)"


async def tenant_queries(
    pool: AsyncConnectionPool,
    organization_id: str,
    *statements: tuple[str, Mapping[str, Any]],
    raw_json: bool = False,
    prepared: bool = False,
) -> list[list[tuple[Any, ...]]]:
    """Run `statements` (each SQL with %(name)s placeholders, and its parameters; names must not clash) in one
    read-only, tenant-scoped transaction, in one round trip. Returns each statement's rows; with `raw_json`,
    json/jsonb values come as orjson fragments (cogo.service.responses) instead of Python objects; with
    `prepared`, the statements run as prepared statements (for a few fixed, frequent statement texts only:
    each distinct text is prepared on every connection)."""
    text, params = transaction_text(organization_id, statements, prepared)
    results: list[list[tuple[Any, ...]]] = []
    # getconn/putconn rather than pool.connection(): that context manager also enters the connection's own (commit
    # or rollback at exit), which an autocommit connection running one self-contained message does not need: ~0.04
    # ms of CPU a page, a sixth of what the page costs past HTTP. putconn checks the connection (a broken one, or
    # one left mid-query by a cancelled request, is replaced).
    conn = await pool.getconn()
    try:
        if prepared:
            for form in unprepared_forms(conn, statements):
                with contextlib.suppress(psycopg.errors.DuplicatePreparedStatement):  # prepared before an error
                    await conn.execute(form.prepare)
                mark_prepared(conn, form)
        cur = cursor_for(conn, raw_json)
        try:
            await cur.execute(text, params)
        except psycopg.Error:
            forget_connection_state(conn)
            raise
        while True:
            if cur.pgresult is not None and cur.pgresult.status == TUPLES_OK:  # cheaper than building .description
                results.append(await cur.fetchall())
            if not cur.nextset():
                break
    finally:
        await pool.putconn(conn)
    return results[1:]  # the first is the scope's set_config row


# Whether the caller's user, organisation or membership is known deleted (sql/0071; the function, not the tables,
# since row-level security hides a deleted user from the reader role).
_REVOCATION_SQL = "SELECT cogo_session_revocation(%(revocation_user_id)s, %(revocation_organization_id)s)"


async def directory_revocation(pool: AsyncConnectionPool, user_id: str, organization_id: str) -> str | None:
    """'user_deleted', 'organization_deleted' or 'membership_ended'; None when the directory knows nothing against
    this caller. One round trip, in the caller's tenant scope like every read of the service."""
    params = {"revocation_user_id": user_id, "revocation_organization_id": organization_id}
    [[(verdict,)]] = await tenant_queries(pool, organization_id, (_REVOCATION_SQL, params))
    return verdict


def transaction_text(
    organization_id: str, statements: tuple[tuple[str, Mapping[str, Any]], ...], prepared: bool
) -> tuple[str, dict[str, Any]]:
    """The one simple-protocol message of `tenant_queries` (the scope, then the statements or their EXECUTEs),
    and its parameters. Its first result is the scope's row."""
    params: dict[str, Any] = {"_cogo_role": READER_ROLE, "_cogo_org": organization_id}
    for _, p in statements:
        params.update(p)
    texts = [prepared_form(sql).execute if prepared else sql for sql, _ in statements]
    return "; ".join([_SCOPE_PREPARED if prepared else _SCOPE, *texts]), params


def unprepared_forms(conn: AnyConnection, statements: tuple[tuple[str, Mapping[str, Any]], ...]) -> list[_PreparedForm]:
    """The statements `conn` has not prepared yet. Each is prepared in autocommit, outside any tenant scope: its text
    holds no caller's value, and row-level security is applied when it is executed, for the role it runs as."""
    done = _state(conn).prepared
    return [form for form in map(prepared_form, (sql for sql, _ in statements)) if form.name not in done]


def mark_prepared(conn: AnyConnection, form: _PreparedForm) -> None:
    _state(conn).prepared.add(form.name)


def forget_connection_state(conn: AnyConnection) -> None:
    """After an error: whatever it did to the session, new cursors and prepare again (a statement prepared before
    is found there: DuplicatePreparedStatement)."""
    setattr(conn, _STATE, None)


@dataclass
class _ConnectionState:
    """What the service keeps per pooled connection, on the connection itself (a cursor refers to its connection,
    so a weak-keyed map would keep replaced connections alive forever)."""

    # Its two cursors (plain, raw JSON), reused request after request: a new cursor, and the raw JSON loaders
    # registered on it, cost a tenth of a page's CPU in the service.
    cursors: dict[bool, Any] = field(default_factory=dict)
    prepared: set[str] = field(default_factory=set)  # names of the statements prepared on it


_STATE = "_cogo_state"


def _state(conn: AnyConnection) -> _ConnectionState:
    state: _ConnectionState | None = getattr(conn, _STATE, None)
    if state is None:
        state = _ConnectionState()
        setattr(conn, _STATE, state)
    return state


def cursor_for(conn: AnyConnection, raw_json: bool) -> Any:
    """The connection's cursor for plain or raw-JSON rows (a psycopg.Cursor or psycopg.AsyncCursor, as `conn`)."""
    cursors = _state(conn).cursors
    cur = cursors.get(raw_json)
    if cur is None:
        cur = cursors[raw_json] = conn.cursor()
        if raw_json:
            for type_name in ("json", "jsonb"):
                cur.adapters.register_loader(type_name, RawJsonLoader)
    return cur


@dataclass(frozen=True)
class _PreparedForm:
    name: str
    prepare: str  # PREPARE name AS <the statement with $1, $2...>
    execute: str  # EXECUTE name(%(a)s, %(b)s...), for the client-side binding of the transaction's text


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_forms: dict[str, _PreparedForm] = {}


def prepared_form(sql: str) -> _PreparedForm:
    """`sql` (with %(name)s placeholders) as a PREPARE and an EXECUTE; the name is derived from the text."""
    form = _forms.get(sql)
    if form is None:
        names = list(dict.fromkeys(_PLACEHOLDER.findall(sql)))
        positional = _PLACEHOLDER.sub(lambda m: f"${names.index(m.group(1)) + 1}", sql)
        name = "cogo_" + hashlib.blake2b(sql.encode(), digest_size=10).hexdigest()
        arguments = ", ".join(f"%({n})s" for n in names)
        form = _forms[sql] = _PreparedForm(
            name, f"PREPARE {name} AS {positional}", f"EXECUTE {name}({arguments})" if names else f"EXECUTE {name}"
        )
    return form


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


def make_sync_pool(url: str, size: int, timeout_s: float = 10.0) -> ConnectionPool:
    """For library code that takes a blocking psycopg connection (the search functions), run in threads."""
    return ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        open=False,
        timeout=timeout_s,
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
