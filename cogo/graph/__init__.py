"""The code knowledge graph store: Neo4j when COGO_GRAPH_URL is bolt:// or neo4j://, else LadybugDB."""

from __future__ import annotations

from cogo.config import Settings
from cogo.errors import ConfigError
from cogo.graph.base import GraphStore


def open_graph(settings: Settings | None = None, *, read_only: bool = False) -> GraphStore:
    settings = settings or Settings.from_env()
    if settings.graph_url:
        if not settings.uses_neo4j:
            raise ConfigError(
                f"COGO_GRAPH_URL={settings.graph_url!r} is not a bolt:// or neo4j:// URL; "
                "unset it to use the embedded LadybugDB."
            )
        from cogo.graph.neo4j_store import Neo4jStore

        return Neo4jStore(settings.graph_url, settings.neo4j_user, settings.neo4j_password)
    from cogo.graph.ladybug_store import LadybugStore

    return LadybugStore(settings.graph_dir / "cogo.lbug", read_only=read_only)


__all__ = ["GraphStore", "open_graph"]
