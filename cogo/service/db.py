"""Postgres for the read service: one async connection pool per worker, and reads in the caller's tenant scope.

Every read of a caller runs in a transaction that starts with cogo.tenancy's scope (row-level-security role,
organisation, read-only; all transaction-local, so nothing survives the connection's return to the pool).

`Tenant.read` sends a whole read (the scope, then the route's statements) as one simple-protocol message with
client-side parameter binding: Postgres runs the statements of one such message as one implicit transaction, so a
read costs one round trip instead of four, and no BEGIN or COMMIT. With `prepared=True` (the frequent page
queries), each statement is prepared once per connection and run by name with a generic plan: Postgres then
neither parses nor plans it per request. Row-level security still applies: Postgres re-applies a prepared
statement's policies for the role it runs under.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg.errors
from psycopg import pq
from psycopg_pool import AsyncConnectionPool

from cogo.service.responses import RawJsonLoader
from cogo.tenancy import SCOPE, Caller, scope_params

TUPLES_OK = pq.ExecStatus.TUPLES_OK
Statement = tuple[str, Mapping[str, Any]]
# Prepared statements are planned for their parameters' values the first five times and then, by default, only if
# that looks cheaper than a generic plan, which a parameterised LIMIT never does: ask for the generic plan.
_SCOPE_PREPARED = SCOPE + ", set_config('plan_cache_mode', 'force_generic_plan', true)"


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
            "autocommit": True,  # transactions are explicit: one self-contained message, or conn.transaction()
            "cursor_factory": psycopg.AsyncClientCursor,
            # The frequent statements are prepared by name (Tenant.read(prepared=True)); psycopg's own automatic
            # preparing would only add bookkeeping to every query.
            "prepare_threshold": None,
        },
    )


@dataclass(frozen=True)
class Tenant:
    """The caller and the worker's pool: every read through it is in the caller's tenant scope."""

    pool: AsyncConnectionPool
    caller: Caller

    async def read(
        self, *statements: Statement, raw_json: bool = False, prepared: bool = False
    ) -> list[list[tuple[Any, ...]]]:
        """Each statement's rows (SQL with %(name)s placeholders and its parameters; names must not clash), read in
        one tenant-scoped transaction in one round trip. With `raw_json`, json/jsonb values come as orjson
        fragments (cogo.service.responses); `prepared` is for a few fixed, frequent statement texts only (each
        distinct text is prepared on every connection)."""
        return await scoped_read(self.pool, self.caller.organization_id, statements, raw_json, prepared)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection in a read-only transaction scoped to the caller, for reads of several steps (search)."""
        async with tenant_transaction(self.pool, self.caller.organization_id) as conn:
            yield conn


@asynccontextmanager
async def tenant_transaction(
    pool: AsyncConnectionPool, organization_id: str
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(SCOPE, scope_params(organization_id))
        yield conn


async def scoped_read(
    pool: AsyncConnectionPool,
    organization_id: str,
    statements: tuple[Statement, ...],
    raw_json: bool = False,
    prepared: bool = False,
) -> list[list[tuple[Any, ...]]]:
    text, params = _transaction_text(organization_id, statements, prepared)
    results: list[list[tuple[Any, ...]]] = []
    # getconn/putconn rather than pool.connection(): that context manager also enters the connection's own
    # transaction handling, which an autocommit connection running one self-contained message does not need.
    # putconn checks the connection (a broken one, or one left mid-query by a cancelled request, is replaced).
    conn = await pool.getconn()
    try:
        if prepared:
            for form in _unprepared_forms(conn, statements):
                with contextlib.suppress(psycopg.errors.DuplicatePreparedStatement):  # prepared before an error
                    await conn.execute(form.prepare)
                _state(conn).prepared.add(form.name)
        cur = _cursor_for(conn, raw_json)
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
    [[(verdict,)]] = await scoped_read(pool, organization_id, ((_REVOCATION_SQL, params),))
    return verdict


def _transaction_text(
    organization_id: str, statements: tuple[Statement, ...], prepared: bool
) -> tuple[str, dict[str, Any]]:
    """The one message of a read (the scope, then the statements or their EXECUTEs) and its parameters."""
    params: dict[str, Any] = scope_params(organization_id)
    for _, p in statements:
        params.update(p)
    texts = [prepared_form(sql).execute if prepared else sql for sql, _ in statements]
    return "; ".join([_SCOPE_PREPARED if prepared else SCOPE, *texts]), params


def _unprepared_forms(conn: psycopg.AsyncConnection[Any], statements: tuple[Statement, ...]) -> list[_PreparedForm]:
    """The statements `conn` has not prepared yet. Each is prepared in autocommit, outside any tenant scope: its text
    holds no caller's value, and row-level security is applied when it is executed, for the role it runs as."""
    done = _state(conn).prepared
    return [form for form in map(prepared_form, (sql for sql, _ in statements)) if form.name not in done]


def forget_connection_state(conn: psycopg.AsyncConnection[Any]) -> None:
    """After an error: whatever it did to the session, new cursors and prepare again (a statement prepared before
    is found there: DuplicatePreparedStatement)."""
    setattr(conn, _STATE, None)


@dataclass
class _ConnectionState:
    """What the service keeps per pooled connection, on the connection itself (a cursor refers to its connection,
    so a weak-keyed map would keep replaced connections alive forever)."""

    # Its two cursors (plain, raw JSON), reused request after request: a new cursor and the raw JSON loaders
    # registered on it are a noticeable share of a page's CPU in the service.
    cursors: dict[bool, Any] = field(default_factory=dict)
    prepared: set[str] = field(default_factory=set)  # names of the statements prepared on it


_STATE = "_cogo_state"


def _state(conn: psycopg.AsyncConnection[Any]) -> _ConnectionState:
    state: _ConnectionState | None = getattr(conn, _STATE, None)
    if state is None:
        state = _ConnectionState()
        setattr(conn, _STATE, state)
    return state


def _cursor_for(conn: psycopg.AsyncConnection[Any], raw_json: bool) -> Any:
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
