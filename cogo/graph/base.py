"""One interface over the code graph: batched upserts (UNWIND) and read queries, on either backend."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

from cogo.graph.schema import check_label, check_rel

DEFAULT_BATCH = 5_000
Row = dict[str, Any]


def batched(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _group_by_keys(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, ...], list[Row]]:
    """Rows grouped by the set of keys they carry, so one batch never overwrites a property another
    row simply did not mention."""
    groups: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(dict(row))
    return groups


def node_upsert_cypher(label: str, keys: Sequence[str]) -> str:
    props = check_label(label)
    unknown = [k for k in keys if k != "id" and k not in props]
    if unknown:
        raise ValueError(f"{label} has no properties {unknown}; known: {sorted(props)}")
    sets = ", ".join(f"n.{k} = row.{k}" for k in keys if k != "id")
    return f"UNWIND $rows AS row MERGE (n:{label} {{id: row.id}})" + (f" SET {sets}" if sets else "")


def rel_upsert_cypher(rel_type: str, from_label: str, to_label: str, keys: Sequence[str]) -> str:
    rel = check_rel(rel_type, from_label, to_label)
    unknown = [k for k in keys if k not in {"src", "dst"} and k not in rel.properties]
    if unknown:
        raise ValueError(f"{rel_type} has no properties {unknown}; known: {sorted(rel.properties)}")
    sets = ", ".join(f"r.{k} = row.{k}" for k in keys if k not in {"src", "dst"})
    return (
        f"UNWIND $rows AS row MATCH (a:{from_label} {{id: row.src}}) MATCH (b:{to_label} {{id: row.dst}}) "
        f"MERGE (a)-[r:{rel_type}]->(b)" + (f" SET {sets}" if sets else "") + " RETURN count(r) AS written"
    )


def normalize_datetime(value: dt.datetime) -> dt.datetime:
    """Both backends' timestamps as aware UTC datetimes (LadybugDB returns naive UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


class GraphStore(ABC):
    """A code-graph backend. Writes are batched; reads return plain dicts keyed by RETURN columns.

    Nodes come back as {"_labels": [...], **properties} and relationships as {"_type": ..., **properties},
    without unset (null) properties, so both backends answer the same query with the same rows.
    """

    backend: str

    @abstractmethod
    def ensure_schema(self) -> None: ...

    @abstractmethod
    def query(self, cypher: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run a read query."""

    @abstractmethod
    def write(self, cypher: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run a write query in one transaction."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def clear(self) -> None:
        """Delete every node and relationship (tests, rebuilds); the schema stays."""

    def upsert_nodes(self, label: str, rows: Iterable[Mapping[str, Any]], batch_size: int = DEFAULT_BATCH) -> int:
        """MERGE nodes on `id` and set the properties each row carries. Returns rows written."""
        total = 0
        for batch in batched((dict(r) for r in rows), batch_size):
            for keys, group in _group_by_keys(batch).items():
                if "id" not in keys:
                    raise ValueError(f"{label} rows need an 'id'")
                self.write(node_upsert_cypher(label, keys), {"rows": group})
                total += len(group)
        return total

    def upsert_relationships(
        self,
        rel_type: str,
        from_label: str,
        to_label: str,
        rows: Iterable[Mapping[str, Any]],
        batch_size: int = DEFAULT_BATCH,
    ) -> int:
        """MERGE relationships between existing nodes (rows: {"src": id, "dst": id, **props}).

        Returns how many were written; a row whose endpoint does not exist writes nothing, and the
        shortfall shows in the returned count.
        """
        total = 0
        for batch in batched((dict(r) for r in rows), batch_size):
            for keys, group in _group_by_keys(batch).items():
                if not {"src", "dst"} <= set(keys):
                    raise ValueError(f"{rel_type} rows need 'src' and 'dst'")
                result = self.write(rel_upsert_cypher(rel_type, from_label, to_label, keys), {"rows": group})
                total += int(result[0]["written"]) if result else 0
        return total

    def insert_nodes(self, label: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Create nodes the caller knows do not exist yet (a repository's first build). A backend may load
        them in bulk; an id that already exists is the caller's error. By default: upsert_nodes."""
        return self.upsert_nodes(label, rows)

    def insert_relationships(
        self, rel_type: str, from_label: str, to_label: str, rows: Sequence[Mapping[str, Any]]
    ) -> int:
        """Create relationships the caller knows are new, between nodes it knows exist (bulk where the
        backend can). By default: upsert_relationships."""
        return self.upsert_relationships(rel_type, from_label, to_label, rows)

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
