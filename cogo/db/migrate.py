"""Plain-SQL migrations from sql/: applied once each, in order, each in its own transaction.

A session-level advisory lock serialises concurrent migrators; a checksum per applied file makes an
edited migration an error instead of a silent drift between databases.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from cogo.db.connect import connect, require_pgvector
from cogo.errors import CogoError

# An arbitrary constant shared by every cogo migrator: hash of "cogo.migrate".
ADVISORY_LOCK_KEY = 0x636F676F_6D696772 & 0x7FFFFFFFFFFFFFFF
FILENAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(CogoError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"


def migrations_dir() -> Path:
    override = os.environ.get("COGO_SQL_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "sql"


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    if not directory.is_dir():
        raise MigrationError(f"no migrations folder at {directory} (set COGO_SQL_DIR to the repo's sql/).")
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = FILENAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations share version {version:04d}: {found[version].filename}, {path.name}")
        found[version] = Migration(version, match.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


def _applied(conn: psycopg.Connection) -> dict[int, tuple[str, str]]:
    rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    return {version: (name, checksum) for version, name, checksum in rows}


def migrate(
    url: str,
    migrations: list[Migration] | None = None,
    on_apply: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Apply what is pending; return the migrations applied by this call."""
    migrations = discover() if migrations is None else migrations
    applied_now: list[Migration] = []
    with connect(url, autocommit=True) as conn:
        require_pgvector(conn, url)
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    integer PRIMARY KEY,
                       name       text NOT NULL,
                       checksum   text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            applied = _applied(conn)
            known = {m.version for m in migrations}
            for version, (name, _) in sorted(applied.items()):
                if version not in known:
                    raise MigrationError(
                        f"the database has migration {version:04d}_{name} applied, which is not in sql/: "
                        "this checkout is older than the database."
                    )
            for m in migrations:
                if m.version in applied and applied[m.version][1] != m.checksum:
                    raise MigrationError(
                        f"{m.filename} was edited after it was applied to this database; "
                        "restore it and put the change in a new migration."
                    )
            for m in migrations:
                if m.version in applied:
                    continue
                try:
                    with conn.transaction():
                        conn.execute(m.sql)  # type: ignore[arg-type]  # trusted file from sql/
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                            (m.version, m.name, m.checksum),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(f"{m.filename} failed and was rolled back: {exc}".strip()) from None
                applied_now.append(m)
                if on_apply:
                    on_apply(m)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied_now


def pending(url: str) -> list[Migration]:
    with connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
        applied = _applied(conn) if exists and exists[0] else {}
    return [m for m in discover() if m.version not in applied]
