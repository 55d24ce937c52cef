"""The hot reads' inline connection (cogo.service.inline_reads): the same tenant-scoped transaction as the pool's,
nothing of a caller left on the connection, a slow page cancelled and answered by the pool, a broken connection
replaced in the background, and used by default only when Postgres is on this machine."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from cogo.service.db import prepared_form
from cogo.service.inline_reads import InlineReads, postgres_is_local
from cogo.service.settings import ServiceSettings
from tests.service_helpers import (
    ALICE,
    ORG_A,
    ORG_B,
    JwksServer,
    SigningKey,
    claims_v2,
    load_two_tenants,
    service_env,
    wait_until,
)
from tests.service_helpers import service_client as make_service_client

KEY = SigningKey("kid_inline")
UNFILTERED = "SELECT organization_id, title FROM conversations WHERE title LIKE %(pattern)s ORDER BY title"


def backends(db: psycopg.Connection, application: str, where: str = "true", count: str = "*") -> int:
    """count(`count`) over this database's backends of `application` that meet `where` (tests run side by side)."""
    pids = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
    return db.execute(f"SELECT count({count}) FROM ({pids} AND {where}) AS b", (application,)).fetchone()[0]


def test_only_a_postgres_on_this_machine_counts_as_local() -> None:
    no_pghost: dict[str, str] = {}
    for url in (
        "postgresql://postgres:@/cogo?host=/tmp/cogo/pg",
        "postgresql:///cogo",
        "postgresql://u@localhost:5432/cogo",
        "postgresql://u@127.0.0.1/cogo",
        "postgresql://u@127.0.0.2/cogo",
        "postgresql://u@[::1]:5432/cogo",
        "host=/var/run/postgresql,localhost dbname=cogo",
    ):
        assert postgres_is_local(url, no_pghost), url
    for url in (
        "postgresql://u@db.internal:5432/cogo",
        "postgresql://u@10.0.0.5/cogo",
        "host=localhost,db.internal dbname=cogo",  # one of them elsewhere
        "postgresql://u@localhost/cogo?hostaddr=10.0.0.5",
    ):
        assert not postgres_is_local(url, no_pghost), url
    assert not postgres_is_local("postgresql:///cogo", {"PGHOST": "db.internal"})
    assert postgres_is_local("postgresql:///cogo", {"PGHOST": "/run/postgresql"})


def test_the_mode_is_checked() -> None:
    assert ServiceSettings.from_env({}).inline_reads == "auto"
    assert ServiceSettings.from_env({"COGO_SERVICE_INLINE_READS": " Off "}).inline_reads == "off"
    with pytest.raises(ValueError, match="COGO_SERVICE_INLINE_READS"):
        ServiceSettings.from_env({"COGO_SERVICE_INLINE_READS": "sometimes"})


def test_each_page_sees_only_its_callers_rows_and_leaves_nothing_on_the_connection(
    database_url: str, db: psycopg.Connection
) -> None:
    load_two_tenants(db)

    async def run() -> Any:
        inline = InlineReads(database_url, statement_timeout_ms=1000)
        await inline.open()
        try:
            statements = ((UNFILTERED, {"pattern": "%"}),)  # no organisation filter: row-level security alone
            seen = [inline.queries(org, statements, prepared) for org, prepared in ((ORG_A, True), (ORG_B, True))]
            seen.append(inline.queries(ORG_A, statements, False))
            conn = inline._conn
            assert conn is not None
            state = conn.execute(
                "SELECT current_user, nullif(current_setting('cogo.organization_id', true), ''), "
                "current_setting('transaction_read_only'), current_setting('statement_timeout')"
            ).fetchone()
            prepared = conn.execute("SELECT name FROM pg_prepared_statements").fetchall()
            return seen, state, prepared, inline.answered
        finally:
            inline.close()

    seen, state, prepared, answered = asyncio.run(run())
    org_a = [[(ORG_A, "alice_private"), (ORG_A, "alice_shared"), (ORG_A, "bob_private")]]
    assert seen == [org_a, [[(ORG_B, "carol_shared")]], org_a]
    assert state[0] != "cogo_reader" and state[1:3] == (None, "off") and state[3] == "1s"
    assert prepared == [(prepared_form(UNFILTERED).name,)] and answered == 3


@dataclass
class Service:
    """The service with the inline connection on (100 ms timeout), and Alice's token (signed when it starts)."""

    client: TestClient
    headers: dict[str, str]

    @property
    def inline(self) -> InlineReads:
        return self.client.app.state.inline_reads  # type: ignore[attr-defined,no-any-return]

    def titles(self) -> list[str]:
        """Alice's listing; the first call verifies the token (the route), later ones take the short path."""
        response = self.client.get("/v1/conversations", headers=self.headers)
        assert response.status_code == 200, response.text
        return [c["title"] for c in response.json()["items"]]


@pytest.fixture
def service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, db: psycopg.Connection
) -> Iterator[Service]:
    load_two_tenants(db)
    with JwksServer() as jwks:
        jwks.keys = [KEY.jwk]
        env = service_env(jwks.url, COGO_SERVICE_INLINE_READS="on", COGO_SERVICE_INLINE_TIMEOUT_MS="100")
        with make_service_client(monkeypatch, tmp_path, database_url, env) as client:
            yield Service(client, {"Authorization": f"Bearer {KEY.sign(claims_v2(ALICE, ORG_A))}"})


def test_a_page_slower_than_the_timeout_is_answered_by_the_pool_and_the_connection_rests(
    service: Service, db: psycopg.Connection, database_url: str
) -> None:
    expected = service.titles()  # verifies the token (the route); later pages take the short path
    inline = service.inline
    assert service.titles() == expected and inline.answered == 1
    answers: list[list[str]] = []
    with psycopg.connect(database_url) as locker:
        locker.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")  # held until this transaction ends
        reader = threading.Thread(target=lambda: answers.append(service.titles()))
        reader.start()
        # The inline statement is cancelled after 100 ms; the page then waits for the lock on the pool.
        wait_until(lambda: inline.passed_on == 1, "the inline connection to give the page up")
        wait_until(lambda: backends(db, "cogo-read-service", "wait_event_type = 'Lock'") == 1, "the pool to wait")
        locker.rollback()
    reader.join(timeout=30)
    assert answers == [expected] and inline.answered == 1
    # Resting: the next page goes straight to the pool (no second timeout to wait for).
    assert service.titles() == expected and inline.passed_on == 2 and inline.answered == 1
    inline._resting_until = 0.0  # the rest over (RETRY_AFTER_S later)
    assert service.titles() == expected and inline.answered == 2


def test_a_broken_connection_is_replaced_in_the_background_and_no_page_fails(
    service: Service, db: psycopg.Connection
) -> None:
    expected = service.titles()
    inline = service.inline
    inline.retry_after_s = 0.1
    assert service.titles() == expected and inline.answered == 1
    killed = backends(db, "cogo-read-service-inline", count="pg_terminate_backend(pid)")
    assert killed == 1
    assert service.titles() == expected  # the pool answers it
    assert inline.passed_on == 1 and not inline.connected
    wait_until(lambda: inline.connected, "the inline connection to be replaced")
    assert service.titles() == expected and inline.answered == 2
