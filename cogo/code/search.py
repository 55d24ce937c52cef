"""Code search: the code_embeddings nearest to a query, each with its context from the code graph
(callers, callees, concepts, the last commit that changed it and the agent task that generated it)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from cogo.config import Settings
from cogo.embed import Embedder, get_embedder
from cogo.graph.base import GraphStore

MAX_NEIGHBOURS = 10


def nearest_code(
    conn: psycopg.Connection,
    embedder: Embedder,
    *,
    organization_id: str,
    query: str,
    k: int,
    repo: str | None = None,
) -> list[dict[str, Any]]:
    """The k chunks closest to `query` among the organisation's and the shared repositories.

    The ORDER BY repeats the partial HNSW index's expression (a cast to the model's dimension) so the index
    answers it; iterative scans keep k results coming when the filters drop candidates."""
    register_vector(conn)
    vector = embedder.embed([query])[0]
    cast = sql.SQL("vector({})").format(sql.Literal(int(embedder.dims)))
    conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
    statement = sql.SQL(
        """SELECT repo, file_path, symbol, symbol_kind, start_line, end_line, content,
                  1 - (embedding::{cast} <=> %(q)s::{cast}) AS score
             FROM code_embeddings
            WHERE model = %(model)s AND embedding IS NOT NULL
              AND (organization_id = %(org)s OR organization_id IS NULL)
              AND (%(repo)s::text IS NULL OR repo = %(repo)s)
            ORDER BY embedding::{cast} <=> %(q)s::{cast}
            LIMIT %(k)s"""
    ).format(cast=cast)
    params = {"q": vector, "model": embedder.model, "org": organization_id, "repo": repo, "k": k}
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(statement, params).fetchall()
    # relaxed_order may return neighbours slightly out of order.
    return sorted(rows, key=lambda r: r["score"], reverse=True)


def _grouped(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row.pop("sid")].append(row)
    return grouped


def graph_context(graph: GraphStore, ids_by_label: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Callers, callees, concepts, last commit and task for symbol node ids, a few batched queries per label."""
    context: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"callers": [], "callees": [], "concepts": [], "last_commit": None, "task": None}
    )
    function_ids = ids_by_label.get("Function", [])
    if function_ids:
        for direction, pattern in (
            ("callers", "(n:Function)-[:CALLS]->(s:Function {id: sid})"),
            ("callees", "(s:Function {id: sid})-[:CALLS]->(n:Function)"),
        ):
            rows = graph.query(
                f"UNWIND $ids AS sid MATCH {pattern} "
                "RETURN sid, n.name AS name, n.qualified_name AS qualified_name, n.path AS path",
                {"ids": function_ids},
            )
            for sid, refs in _grouped(rows).items():
                context[sid][direction] = sorted(refs, key=lambda r: r["qualified_name"] or "")[:MAX_NEIGHBOURS]
    for label, ids in ids_by_label.items():
        if not ids:
            continue
        for sid, rows in _grouped(
            graph.query(
                f"UNWIND $ids AS sid MATCH (s:{label} {{id: sid}})-[:IMPLEMENTS]->(c:Concept) "
                "RETURN sid, c.name AS name",
                {"ids": ids},
            )
        ).items():
            context[sid]["concepts"] = sorted({r["name"] for r in rows})
        for sid, rows in _grouped(
            graph.query(
                f"UNWIND $ids AS sid MATCH (c:Commit)-[:AFFECTS]->(s:{label} {{id: sid}}) "
                "RETURN sid, c.hash AS hash, c.message AS message, c.author AS author, c.timestamp AS timestamp",
                {"ids": ids},
            )
        ).items():
            context[sid]["last_commit"] = max(rows, key=lambda r: (r["timestamp"] is not None, r["timestamp"]))
        for sid, rows in _grouped(
            graph.query(
                f"UNWIND $ids AS sid MATCH (s:{label} {{id: sid}})-[:GENERATED_BY]->(t:Task) "
                "RETURN sid, t.task_id AS task_id, t.title AS title, t.status AS status",
                {"ids": ids},
            )
        ).items():
            context[sid]["task"] = sorted(rows, key=lambda r: r["task_id"])[-1]
    return context


def attach_graph_context(graph: GraphStore, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add callers, callees, concepts, last_commit and task from the graph to each hit (in place)."""
    ids_by_label: dict[str, list[str]] = defaultdict(list)
    for hit in hits:
        if hit["symbol"]:
            label = "Class" if hit["symbol_kind"] == "class" else "Function"
            ids_by_label[label].append(f"{hit['repo']}:{hit['symbol']}")
    context = graph_context(graph, ids_by_label)
    for hit in hits:
        hit["score"] = float(hit["score"])
        hit.update(context[f"{hit['repo']}:{hit['symbol']}"] if hit["symbol"] else {})
    return hits


def search_code(
    conn: psycopg.Connection,
    graph: GraphStore,
    *,
    organization_id: str,
    query: str,
    k: int = 10,
    repo: str | None = None,
    embedder: Embedder | None = None,
) -> list[dict[str, Any]]:
    """Code hits with their graph context (the fields of the read service's CodeHit model)."""
    embedder = embedder or get_embedder(Settings.from_env().embedder)
    hits = nearest_code(conn, embedder, organization_id=organization_id, query=query, k=k, repo=repo)
    return attach_graph_context(graph, hits)
