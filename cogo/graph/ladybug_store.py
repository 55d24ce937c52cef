"""The graph in embedded LadybugDB under COGO_HOME (the zero-setup default)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ladybug
import pandas as pd

from cogo.errors import ConfigError
from cogo.graph.base import GraphStore, Row, normalize_datetime
from cogo.graph.schema import NODE_PROPERTIES, REL_TYPES, RETIRED_PROPERTIES, check_label, check_rel

INTERNAL_KEYS = {"_ID", "_LABEL", "_SRC", "_DST"}
LOCK_WAIT_S = 60.0


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        if "_LABEL" in value and "_ID" in value:
            props = {k: _plain(v) for k, v in value.items() if k not in INTERNAL_KEYS and v is not None}
            key = "_type" if "_SRC" in value else "_labels"
            return {key: value["_LABEL"] if key == "_type" else [value["_LABEL"]], **props}
        if "_nodes" in value and "_rels" in value:
            return {
                "_nodes": [_plain(n) for n in value["_nodes"]],
                "_relationships": [_plain(r) for r in value["_rels"]],
            }
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat") and hasattr(value, "tzinfo"):
        return normalize_datetime(value)
    return value


def _open_database(path: Path, read_only: bool) -> ladybug.Database:
    """Open the database, waiting a while if another process holds its write lock."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            return ladybug.Database(str(path), read_only=read_only)
        except RuntimeError as exc:
            message = str(exc)
            if "lock" in message.lower() and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            if "lock" in message.lower():
                raise ConfigError(
                    f"the embedded graph {path} is held by another process (a running Dagster run or "
                    f"`cogo serve`?): {message}"
                ) from None
            raise ConfigError(
                f"cannot open the embedded graph at {path}: {message}. If COGO_HOME is corrupt, move "
                "its graph folder away (the next `cogo up` rebuilds the schema; rebuild the graph by "
                "materializing code_graph)."
            ) from None


def _frame(rows: Sequence[Mapping[str, Any]], columns: list[str]) -> pd.DataFrame:
    """The rows as a DataFrame of Python objects. LadybugDB's scan takes a column's type from its first ~1,000
    values; a pandas string column NULL there and set further down crashed the scan or stored "nan" (or
    "0.000000") in every row. Object columns are read value by value."""
    return pd.DataFrame({c: pd.Series([row.get(c) for row in rows], dtype=object) for c in columns}, columns=columns)


class LadybugStore(GraphStore):
    backend = "ladybug"

    def __init__(self, path: Path, read_only: bool = False):
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise ConfigError(f"no embedded graph at {self.path} yet: run `cogo up` first.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _open_database(self.path, read_only)
        self._conn = ladybug.Connection(self._db)

    def _execute(self, cypher: str, params: Mapping[str, Any] | None) -> list[Row]:
        result = self._conn.execute(cypher, dict(params or {}))
        results = result if isinstance(result, list) else [result]
        rows: list[Row] = []
        for res in results:  # several statements give several results; the last one answers
            columns = res.get_column_names()
            rows = [dict(zip(columns, (_plain(v) for v in values), strict=True)) for values in res.get_all()]
        return rows

    def query(self, cypher: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self._execute(cypher, params)

    def write(self, cypher: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self._execute(cypher, params)

    def insert_nodes(self, label: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """CREATE from a DataFrame scan (`LOAD FROM`): one statement, no MERGE lookups, and no fixed cost
        like COPY's. An id that exists already fails the statement as a whole (nothing is written)."""
        if not rows:
            return 0
        props = check_label(label)
        unknown = {k for row in rows for k in row} - {"id", *props}
        if unknown:
            raise ValueError(f"{label} has no properties {sorted(unknown)}; known: {sorted(props)}")
        columns = ["id", *props]
        frame = _frame(rows, columns)
        assignments = ", ".join(f"`{c}`: `{c}`" for c in columns)
        self._conn.execute(f"LOAD FROM $frame CREATE (:{label} {{{assignments}}})", {"frame": frame})
        return len(rows)

    def insert_relationships(
        self, rel_type: str, from_label: str, to_label: str, rows: Sequence[Mapping[str, Any]]
    ) -> int:
        """CREATE from a DataFrame scan, each endpoint found by its primary key (two MATCH steps: one
        MATCH of both endpoints plans as a join of every pair). A row whose endpoint does not exist
        writes nothing, as with MERGE."""
        if not rows:
            return 0
        rel = check_rel(rel_type, from_label, to_label)
        unknown = {k for row in rows for k in row} - {"src", "dst", *rel.properties}
        if unknown:
            raise ValueError(f"{rel_type} has no properties {sorted(unknown)}; known: {sorted(rel.properties)}")
        props = list(rel.properties)
        columns = ["src", "dst", *props]
        frame = _frame(rows, columns)
        carried = "".join(f", `{c}`" for c in props)
        assignments = " {" + ", ".join(f"`{c}`: `{c}`" for c in props) + "}" if props else ""
        result = self._execute(
            f"LOAD FROM $frame MATCH (a:{from_label} {{id: src}}) WITH a, dst{carried} "
            f"MATCH (b:{to_label} {{id: dst}}) CREATE (a)-[r:{rel_type}{assignments}]->(b) "
            "RETURN count(r) AS written",
            {"frame": frame},
        )
        return int(result[0]["written"]) if result else 0

    def _existing_properties(self, table: str) -> set[str]:
        return {row["name"] for row in self._execute(f"CALL table_info('{table}') RETURN *", None)}

    def ensure_schema(self) -> None:
        for label, props in NODE_PROPERTIES.items():
            columns = ", ".join(f"{name} {kind}" for name, kind in props.items())
            self.write(f"CREATE NODE TABLE IF NOT EXISTS {label}(id STRING, {columns}, PRIMARY KEY (id))")
            self._add_missing_properties(label, props)
            self._drop_retired_properties(label)
        for rel in REL_TYPES.values():
            pairs = ", ".join(f"FROM {a} TO {b}" for a, b in rel.pairs)
            columns = "".join(f", {name} {kind}" for name, kind in rel.properties.items())
            self.write(f"CREATE REL TABLE IF NOT EXISTS {rel.name}({pairs}{columns})")
            self._add_missing_properties(rel.name, rel.properties)

    def _add_missing_properties(self, table: str, props: Mapping[str, str]) -> None:
        """A property added to the schema after the table was created is added to the table."""
        existing = self._existing_properties(table)
        for name, kind in props.items():
            if name not in existing:
                self.write(f"ALTER TABLE {table} ADD {name} {kind}")

    def _drop_retired_properties(self, table: str) -> None:
        """A property the schema no longer has (see RETIRED_PROPERTIES) is dropped with its values."""
        retired = RETIRED_PROPERTIES.get(table, ())
        existing = self._existing_properties(table) if retired else set()
        for name in retired:
            if name in existing:
                self.write(f"ALTER TABLE {table} DROP {name}")

    def clear(self) -> None:
        for label in NODE_PROPERTIES:
            self.write(f"MATCH (n:{label}) DETACH DELETE n")

    def close(self) -> None:
        self._conn.close()
        self._db.close()
