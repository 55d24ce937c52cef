"""Code search: the code_embeddings nearest to a query, each with its context from the code graph
(callers, callees, concepts, the last commit that changed it and the agent task that generated it).

The graph is shared by every organisation that sees a repository, while an agent task belongs to one
organisation and, within it, is visible to some of its members. So the graph gives only the ids of the tasks
a symbol's commits named; which of them the caller may see, and their title and status, come from Postgres
(`cogo_task_visible` in sql/, the rule GET /v1/tasks/{id} applies) for the caller's organisation and user.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from cogo.config import Settings
from cogo.embed import Embedder, get_embedder
from cogo.graph.base import GraphStore
from cogo.tenancy import code_visible, task_visible

MAX_NEIGHBOURS = 10
# Newest first, so a symbol several tasks changed shows the latest one the caller may see.
VISIBLE_TASKS = f"""SELECT t.id::text AS task_id, t.title, t.status::text AS status FROM agent_tasks t
 WHERE t.id = ANY(%(ids)s::uuid[]) AND t.organization_id = %(org)s AND {task_visible("t")}
 ORDER BY t.created_at DESC, t.id DESC"""
# Iterative scans keep k results coming when the filters drop candidates.
ITERATIVE_SCAN = "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)"


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
    answers it."""
    register_vector(conn)
    vector = embedder.embed([query])[0]
    conn.execute(ITERATIVE_SCAN)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(*nearest_code_query(embedder, vector, organization_id, k, repo)).fetchall()
    return by_score(rows)


def nearest_code_query(
    embedder: Embedder, vector: Any, organization_id: str, k: int, repo: str | None
) -> tuple[sql.Composed, dict[str, Any]]:
    """The query of `nearest_code` and its parameters (run after ITERATIVE_SCAN, in the same transaction)."""
    cast = sql.SQL("vector({})").format(sql.Literal(int(embedder.dims)))
    statement = sql.SQL(
        """SELECT repo, file_path, symbol, symbol_kind, start_line, end_line, content,
                  1 - (embedding::{cast} <=> %(q)s::{cast}) AS score
             FROM code_embeddings e
            WHERE model = %(model)s AND embedding IS NOT NULL AND {visible}
              AND (%(repo)s::text IS NULL OR repo = %(repo)s)
            ORDER BY embedding::{cast} <=> %(q)s::{cast}
            LIMIT %(k)s"""
    ).format(cast=cast, visible=sql.SQL(code_visible("e")))
    return statement, {"q": vector, "model": embedder.model, "org": organization_id, "repo": repo, "k": k}


def by_score(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # relaxed_order may return neighbours slightly out of order.
    return sorted(rows, key=lambda r: r["score"], reverse=True)


def _grouped(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row.pop("sid")].append(row)
    return grouped


def graph_context(graph: GraphStore, ids_by_label: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Callers, callees, concepts, last commit and the ids of the generating tasks (`task_ids`) for symbol node
    ids, a few batched queries per label."""
    context: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"callers": [], "callees": [], "concepts": [], "last_commit": None, "task_ids": []}
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
                "RETURN sid, t.task_id AS task_id",
                {"ids": ids},
            )
        ).items():
            context[sid]["task_ids"] = [r["task_id"] for r in rows]
    return context


def visible_tasks(
    conn: psycopg.Connection, task_ids: list[str], *, organization_id: str, user_id: str | None
) -> list[dict[str, Any]]:
    """Of `task_ids`, the tasks the caller (`user_id` in `organization_id`) may see: task_id, title, status,
    newest first."""
    ids = task_uuids(task_ids)
    if not ids:
        return []
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(VISIBLE_TASKS, {"ids": ids, "org": organization_id, "me": user_id}).fetchall()


def task_uuids(task_ids: list[str]) -> list[str]:
    """The task ids the graph named that can be ids of agent_tasks rows, once each."""
    return [task_id for task_id in dict.fromkeys(task_ids) if _is_uuid(task_id)]


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def attach_graph_context(
    conn: psycopg.Connection,
    graph: GraphStore,
    hits: list[dict[str, Any]],
    *,
    organization_id: str,
    user_id: str | None,
) -> list[dict[str, Any]]:
    """Add callers, callees, concepts and last_commit from the graph to each hit (in place), and `task`: the newest
    task that generated it among those the caller may see, else None."""
    context = graph_context(graph, symbol_ids(hits))
    tasks = visible_tasks(conn, named_tasks(context), organization_id=organization_id, user_id=user_id)
    return with_context(hits, context, tasks)


def symbol_ids(hits: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The graph node ids of the hits' symbols, by label."""
    ids_by_label: dict[str, list[str]] = defaultdict(list)
    for hit in hits:
        if hit["symbol"]:
            label = "Class" if hit["symbol_kind"] == "class" else "Function"
            ids_by_label[label].append(f"{hit['repo']}:{hit['symbol']}")
    return ids_by_label


def named_tasks(context: dict[str, dict[str, Any]]) -> list[str]:
    return [task_id for c in context.values() for task_id in c["task_ids"]]


def with_context(
    hits: list[dict[str, Any]], context: dict[str, dict[str, Any]], tasks: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The hits (in place) with their graph context and the newest visible task among those that generated them."""
    for hit in hits:
        hit["score"] = float(hit["score"])
        if hit["symbol"]:
            found = dict(context[f"{hit['repo']}:{hit['symbol']}"])
            generated_by = set(found.pop("task_ids"))
            hit.update(found, task=next((t for t in tasks if t["task_id"] in generated_by), None))
    return hits


def search_code(
    conn: psycopg.Connection,
    graph: GraphStore,
    *,
    organization_id: str,
    user_id: str | None,
    query: str,
    k: int = 10,
    repo: str | None = None,
    embedder: Embedder | None = None,
) -> list[dict[str, Any]]:
    """Code hits with their graph context (the fields of the read service's CodeHit model), for `user_id` of
    `organization_id` (None: a member who owns nothing, who sees only the tasks the whole organisation sees)."""
    embedder = embedder or get_embedder(Settings.from_env().embedder)
    hits = nearest_code(conn, embedder, organization_id=organization_id, query=query, k=k, repo=repo)
    return attach_graph_context(conn, graph, hits, organization_id=organization_id, user_id=user_id)
