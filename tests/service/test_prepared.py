"""Prepared statements in the service's tenant transactions (cogo.service.db.Tenant.read(prepared=True)):
prepared once per connection, still under row-level security for each caller, nothing left on the connection
but the prepared statement, and a connection that lost its statements prepares them again."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from cogo.service.db import Tenant, make_pool, prepared_form
from cogo.tenancy import Caller
from tests.service.helpers import ORG_A, ORG_B, load_two_tenants

# No organisation filter on purpose: row-level security alone must scope it.
UNFILTERED = "SELECT organization_id, title FROM conversations WHERE title LIKE %(pattern)s ORDER BY title"


def read(pool: Any, organization_id: str, *statements: Any, prepared: bool = True) -> Any:
    return Tenant(pool, Caller(organization_id, "user_test_reader")).read(*statements, prepared=prepared)


def run_on_one_connection(database_url: str, steps: Any) -> Any:
    async def run() -> Any:
        pool = make_pool(database_url, 1)
        await pool.open()
        try:
            return await steps(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


def test_a_prepared_statement_sees_only_the_callers_rows_each_time(database_url: str, db: psycopg.Connection) -> None:
    load_two_tenants(db)

    async def steps(pool: Any) -> Any:
        seen = []
        for org in (ORG_A, ORG_B, ORG_A):
            (rows,) = await read(pool, org, (UNFILTERED, {"pattern": "%"}))
            seen.append(rows)
        async with pool.connection() as conn:  # the same (only) connection, back from the pool
            state = await (
                await conn.execute(
                    "SELECT current_user, nullif(current_setting('cogo.organization_id', true), ''), "
                    "current_setting('plan_cache_mode'), current_setting('transaction_read_only')"
                )
            ).fetchone()
            prepared = await (await conn.execute("SELECT name, generic_plans FROM pg_prepared_statements")).fetchall()
        return seen, state, prepared

    seen, state, prepared = run_on_one_connection(database_url, steps)
    assert seen[0] == seen[2] == [(ORG_A, "alice_private"), (ORG_A, "alice_shared"), (ORG_A, "bob_private")]
    assert seen[1] == [(ORG_B, "carol_shared")]
    assert state[0] != "cogo_reader" and state[1:] == (None, "auto", "off")  # transaction-local settings only
    # Prepared once, and run with its generic plan (neither parsed nor planned per request).
    assert prepared == [(prepared_form(UNFILTERED).name, 3)]


def test_a_connection_that_lost_its_statements_prepares_them_again(database_url: str, db: psycopg.Connection) -> None:
    load_two_tenants(db)

    async def steps(pool: Any) -> Any:
        statement = (UNFILTERED, {"pattern": "carol%"})
        (first,) = await read(pool, ORG_B, statement)
        async with pool.connection() as conn:
            await conn.execute("DEALLOCATE ALL")
        with pytest.raises(psycopg.errors.InvalidSqlStatementName):
            await read(pool, ORG_B, statement)
        (again,) = await read(pool, ORG_B, statement)
        # An error in the transaction makes the service forget what the connection prepared (the statements
        # survive it): preparing again finds the statement there.
        with pytest.raises(psycopg.errors.DivisionByZero):
            await read(pool, ORG_B, statement, ("SELECT 1 / %(zero)s", {"zero": 0}))
        (after_error,) = await read(pool, ORG_B, statement)
        return first, again, after_error

    first, again, after_error = run_on_one_connection(database_url, steps)
    assert first == again == after_error == [(ORG_B, "carol_shared")]


def test_prepared_form_numbers_the_named_parameters_in_order_of_appearance() -> None:
    form = prepared_form("SELECT %(b)s, %(a)s, %(b)s")
    assert form.prepare == f"PREPARE {form.name} AS SELECT $1, $2, $1"
    assert form.execute == f"EXECUTE {form.name}(%(b)s, %(a)s)"
    assert prepared_form("SELECT 1").execute == f"EXECUTE {prepared_form('SELECT 1').name}"
    assert form.name != prepared_form("SELECT %(b)s, %(a)s").name
