"""The graph on Neo4j over Bolt (production and CI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import neo4j
from neo4j import GraphDatabase, RoutingControl
from neo4j import exceptions as neo4j_errors
from neo4j.graph import Node, Path, Relationship
from neo4j.time import Date, DateTime, Duration, Time

from cogo.errors import ConfigError, ServiceUnavailable
from cogo.graph.base import GraphStore, Row, normalize_datetime
from cogo.graph.schema import LOOKUP_PROPERTIES, NODE_PROPERTIES, RETIRED_PROPERTIES


def _plain(value: Any) -> Any:
    if isinstance(value, Node):
        props = {k: _plain(v) for k, v in value.items() if v is not None}
        return {"_labels": sorted(value.labels), **props}
    if isinstance(value, Relationship):
        return {"_type": value.type, **{k: _plain(v) for k, v in value.items() if v is not None}}
    if isinstance(value, Path):
        return {"_nodes": [_plain(n) for n in value.nodes], "_relationships": [_plain(r) for r in value]}
    if isinstance(value, DateTime):
        return normalize_datetime(value.to_native())
    if isinstance(value, Date | Time | Duration):
        return value.to_native() if hasattr(value, "to_native") else str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class Neo4jStore(GraphStore):
    backend = "neo4j"

    def __init__(self, url: str, user: str = "neo4j", password: str | None = None, database: str | None = None):
        self.url = url
        self.database = database
        auth = (user, password) if password else None
        try:
            self._driver = GraphDatabase.driver(url, auth=auth, connection_timeout=5.0)
            self._driver.verify_connectivity()
        except neo4j_errors.AuthError:
            raise ConfigError(f"Neo4j at {url} refused the credentials: check NEO4J_USER and NEO4J_PASSWORD.") from None
        except (neo4j_errors.ServiceUnavailable, OSError, ValueError, neo4j_errors.ConfigurationError) as exc:
            raise ServiceUnavailable(
                f"cannot reach Neo4j at {url} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}): "
                "start it (tools/neo4j/run.sh) or unset COGO_GRAPH_URL to use the embedded LadybugDB."
            ) from None

    def _run(self, cypher: str, params: Mapping[str, Any] | None, routing: RoutingControl) -> list[Row]:
        records, _, keys = self._driver.execute_query(
            cypher, dict(params or {}), routing_=routing, database_=self.database
        )
        return [{k: _plain(record[k]) for k in keys} for record in records]

    def query(self, cypher: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        # A read session: the server refuses writes in it, so `cogo graph query` cannot change the graph.
        with self._driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS) as session:

            def work(tx: neo4j.ManagedTransaction) -> list[Row]:
                result = tx.run(cypher, dict(params or {}))
                keys = result.keys()
                return [{k: _plain(record[k]) for k in keys} for record in result]

            return session.execute_read(work)

    def write(self, cypher: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self._run(cypher, params, RoutingControl.WRITE)

    def ensure_schema(self) -> None:
        for label in NODE_PROPERTIES:
            self.write(
                f"CREATE CONSTRAINT {label.lower()}_id_unique IF NOT EXISTS FOR (n:{label}) REQUIRE n.id IS UNIQUE"
            )
            for prop in LOOKUP_PROPERTIES.get(label, ()):
                self.write(f"CREATE INDEX {label.lower()}_{prop} IF NOT EXISTS FOR (n:{label}) ON (n.{prop})")
        self.write("CALL db.awaitIndexes(60)")
        self._remove_retired_properties()

    def _remove_retired_properties(self) -> None:
        """Nodes written under an earlier schema lose the properties it no longer has (see RETIRED_PROPERTIES)."""
        for label, names in RETIRED_PROPERTIES.items():
            held = " OR ".join(f"n.{name} IS NOT NULL" for name in names)
            removed = ", ".join(f"n.{name}" for name in names)
            self.write(f"MATCH (n:{label}) WHERE {held} REMOVE {removed}")

    def clear(self) -> None:
        # CALL ... IN TRANSACTIONS needs an auto-commit transaction, hence session.run.
        with self._driver.session(database=self.database) as session:
            session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()

    def close(self) -> None:
        self._driver.close()
