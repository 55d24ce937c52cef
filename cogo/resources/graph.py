"""The code graph for assets: Neo4j when a bolt:// URL is configured, else embedded LadybugDB."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from pydantic import Field

from cogo.config import Settings
from cogo.graph import GraphStore, open_graph


class GraphResource(dg.ConfigurableResource):
    """Empty fields fall back to COGO_GRAPH_URL / NEO4J_USER / NEO4J_PASSWORD / COGO_HOME."""

    graph_url: str | None = Field(
        default=None, description="bolt:// or neo4j:// URL; empty: COGO_GRAPH_URL or embedded."
    )
    user: str | None = None
    password: str | None = None
    home: str | None = Field(default=None, description="COGO_HOME for the embedded graph.")

    def settings(self) -> Settings:
        base = Settings.from_env()
        changes: dict[str, object] = {}
        if self.graph_url:
            changes["graph_url"] = self.graph_url
        if self.user:
            changes["neo4j_user"] = self.user
        if self.password:
            changes["neo4j_password"] = self.password
        if self.home:
            changes["home"] = Path(self.home)
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]

    @contextmanager
    def open(self) -> Iterator[GraphStore]:
        store = open_graph(self.settings())
        try:
            yield store
        finally:
            store.close()
