"""The hot reads' Postgres round trip made on the event loop's own thread, when Postgres is on this machine.

An async query costs the worker far more CPU than Postgres spends answering a page: the pool's checkout and
return, the driver's wait on the event loop (a reader registered, a future, the coroutine resumed) and the loop's
own turn. With Postgres on the same machine (a Unix socket or loopback) the answer to a page arrives in a fraction
of a millisecond, so each worker keeps one plain blocking connection and the short path for listings and message
pages (cogo.service.hot_reads) waits on it in place: measured with `wrk -c50` on the listing, 2 workers answered
~1.6x the requests per second at 0.6 of the p99 (bench/RESULTS.md, issue 6, session 5).

What keeps a blocking wait from stalling the worker's other connections:
- every statement on this connection has a short `statement_timeout` (`COGO_SERVICE_INLINE_TIMEOUT_MS`); a page
  that takes longer (a lock held by a migration, a cold cache) is cancelled and run again on the async pool, and
  this connection rests for a few seconds so that the next slow pages do not each pay the timeout;
- it is never opened or reopened on the loop: connecting happens in a thread, in the background, and until it
  is open (or after it broke) the pages go to the async pool as before;
- with Postgres on another machine (`COGO_SERVICE_INLINE_READS=auto`, the default) it is not used at all: each
  page would then wait a network round trip with the worker idle.

The transaction is the same as `tenant_queries`' (cogo.service.db.transaction_text): row-level-security role,
organisation, read-only, all transaction-local, so nothing of one caller outlives its page on the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict

from cogo.service.db import (
    TUPLES_OK,
    cursor_for,
    forget_connection_state,
    mark_prepared,
    transaction_text,
    unprepared_forms,
)

log = logging.getLogger("cogo.service")

RETRY_AFTER_S = 5.0  # after a timeout or a failure, the pages go to the async pool for this long
LOCAL_HOST_NAMES = {"localhost", "localhost.localdomain"}


def postgres_is_local(url: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether every host `url` names (or libpq's default, PGHOST or the Unix socket) is on this machine."""
    environ = os.environ if environ is None else environ
    params = conninfo_to_dict(url)
    hosts = str(params.get("hostaddr") or params.get("host") or environ.get("PGHOST") or "")
    for host in hosts.split(",") if hosts else [""]:
        host = host.strip()
        if not host or host.startswith("/") or host.startswith("@") or host.lower() in LOCAL_HOST_NAMES:
            continue  # a Unix socket (a directory, an abstract name, or libpq's default) or this machine's name
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return False
        except ValueError:
            return False  # a host name: another machine, as far as we can tell
    return True


class InlineReads:
    """One blocking connection for one worker's hot reads.

    `queries` answers on the calling (event loop's) thread, or returns None when the caller should use the async
    pool instead: not connected yet, resting after a slow or failed page. It never raises a database error.

    Concepts: Performance
    """

    def __init__(self, url: str, statement_timeout_ms: int, retry_after_s: float = RETRY_AFTER_S) -> None:
        self.url = url
        self.statement_timeout_ms = statement_timeout_ms
        self.retry_after_s = retry_after_s
        self._conn: psycopg.Connection[Any] | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._resting_until = 0.0
        self._closed = False
        self.answered = 0  # pages answered on this connection
        self.passed_on = 0  # pages this connection left to the async pool (not open, resting, too slow, failed)

    async def open(self) -> None:
        """Connect (in a thread); a failure is logged and retried later, in the background."""
        await self._connect()

    def close(self) -> None:
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def queries(
        self, organization_id: str, statements: tuple[tuple[str, Mapping[str, Any]], ...], prepared: bool
    ) -> list[list[tuple[Any, ...]]] | None:
        """`tenant_queries(..., raw_json=True, prepared=prepared)` on this connection, blocking, or None."""
        conn = self._conn
        if conn is None or time.monotonic() < self._resting_until:
            if conn is None:
                self._reconnect_later()
            self.passed_on += 1
            return None
        text, params = transaction_text(organization_id, statements, prepared)
        try:
            if prepared:
                for form in unprepared_forms(conn, statements):
                    with contextlib.suppress(psycopg.errors.DuplicatePreparedStatement):  # prepared before an error
                        conn.execute(form.prepare)
                    mark_prepared(conn, form)
            cur = cursor_for(conn, raw_json=True)
            cur.execute(text, params)
            results: list[list[tuple[Any, ...]]] = []
            while True:
                if cur.pgresult is not None and cur.pgresult.status == TUPLES_OK:
                    results.append(cur.fetchall())
                if not cur.nextset():
                    break
        except psycopg.Error as exc:
            self._failed(conn, exc)
            self.passed_on += 1
            return None
        self.answered += 1
        return results[1:]  # the first is the scope's set_config row

    def _failed(self, conn: psycopg.Connection[Any], exc: psycopg.Error) -> None:
        forget_connection_state(conn)
        self._resting_until = time.monotonic() + self.retry_after_s
        if isinstance(exc, psycopg.errors.QueryCanceled):
            log.warning(
                "a page took over %d ms on the inline connection: pages use the pool for %.0f s",
                self.statement_timeout_ms,
                self.retry_after_s,
            )
        elif conn.broken or conn.closed:
            log.warning("the inline connection broke (%s): pages use the pool until it reconnects", type(exc).__name__)
            self._conn = None
            with contextlib.suppress(psycopg.Error):
                conn.close()
            self._reconnect_later()
        else:
            log.warning("a page failed on the inline connection (%s): pages use the pool for a while", exc)

    def _reconnect_later(self) -> None:
        if self._closed or (self._connecting is not None and not self._connecting.done()):
            return
        self._connecting = asyncio.get_running_loop().create_task(self._connect(after_s=self.retry_after_s))

    async def _connect(self, after_s: float = 0.0) -> None:
        if after_s:
            await asyncio.sleep(after_s)
        try:
            conn = await asyncio.to_thread(self._blocking_connect)
        except psycopg.Error as exc:
            log.warning("no inline connection to Postgres (%s): pages use the pool", type(exc).__name__)
            self._resting_until = time.monotonic() + self.retry_after_s
            return
        if self._closed:
            conn.close()
            return
        self._conn = conn
        self._resting_until = 0.0

    def _blocking_connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.url,
            autocommit=True,  # each page is one self-contained message (an implicit transaction)
            cursor_factory=psycopg.ClientCursor,  # client-side binding, as the pool's connections
            application_name="cogo-read-service-inline",
            connect_timeout=5,
            # For every statement on this connection, so a slow page cannot hold up the worker's event loop for long.
            options=f"-c statement_timeout={self.statement_timeout_ms}",
        )
