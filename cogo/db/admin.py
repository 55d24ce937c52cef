"""Creating and dropping whole databases on a server (benchmarks, tests, tooling)."""

from __future__ import annotations

from psycopg import sql

from cogo.db.connect import connect
from cogo.db.migrate import migrate
from cogo.db.urls import with_database


def recreate_database(server_url: str, name: str, *, migrated: bool = True) -> str:
    """Drop database `name` on the server of `server_url` (whatever database that URL names), create it
    anew, apply every migration unless told not to, and return its URL."""
    with connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(server_url, name)
    if migrated:
        migrate(url)
    return url
