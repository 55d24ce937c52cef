"""Connecting to Postgres with errors a person can act on."""

from __future__ import annotations

import contextlib

import psycopg
from psycopg import sql

from cogo.db.urls import database_of, redact, with_database
from cogo.errors import ConfigError, ServiceUnavailable

CONNECT_TIMEOUT_S = 5


def connect(url: str, *, autocommit: bool = False, **kwargs: object) -> psycopg.Connection:
    """Open a connection, turning 'cannot connect' into one clear line."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S, **kwargs)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"{redact(url)} is not a usable Postgres URL ({_reason(exc)}).") from None
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable(
            f"cannot connect to Postgres at {redact(url)} ({_reason(exc)}). "
            "Check COGO_DATABASE_URL, or unset it to use the embedded server (`cogo up`)."
        ) from None


def _reason(exc: Exception) -> str:
    """psycopg's first line, without the server-address preamble repeated in our own message."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return first.rsplit(" failed: ", 1)[-1].strip()


def ensure_database(url: str) -> None:
    """Create the database `url` names if it does not exist (connecting through `postgres` only then,
    so a managed service that forbids that database still works when ours exists)."""
    name = database_of(url)
    try:
        psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
        return
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"{redact(url)} is not a usable Postgres URL ({_reason(exc)}).") from None
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise ServiceUnavailable(
                f"cannot connect to Postgres at {redact(url)} ({_reason(exc)}). "
                "Check COGO_DATABASE_URL, or unset it to use the embedded server (`cogo up`)."
            ) from None
    with connect(with_database(url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            # A concurrent `cogo up` may create it first.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def require_pgvector(conn: psycopg.Connection, url: str) -> None:
    row = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    if row is None:
        raise ConfigError(
            f"Postgres at {redact(url)} has no pgvector extension available: install pgvector on that "
            "server, or unset COGO_DATABASE_URL to use the embedded Postgres, which ships it."
        )
