"""Postgres for assets: the configured database, or the embedded server under COGO_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
from pydantic import Field

from cogo.config import Settings
from cogo.db.connect import connect


class PostgresResource(dg.ConfigurableResource):
    """cogo's system of record. Leave `database_url` empty to use COGO_DATABASE_URL, else the embedded
    Postgres under COGO_HOME (which `cogo up` starts)."""

    database_url: str | None = Field(
        default=None, description="postgresql:// URL; empty: COGO_DATABASE_URL or embedded."
    )

    def url(self) -> str:
        if self.database_url:
            return self.database_url
        from cogo.local_services import database_url

        return database_url(Settings.from_env())

    @contextmanager
    def connection(self, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        with connect(self.url(), autocommit=autocommit) as conn:
            yield conn
