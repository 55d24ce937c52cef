"""Consistency of one repository's code graph, and of its code embeddings with the graph: cheap queries
for the code group's asset checks, each giving how many rows offend and a few of them. Both backends
answer the same Cypher."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from cogo.graph.base import GraphStore

SAMPLE = 5

# A method hangs from its class, every other function and class from its file (builder.container), so a
# symbol is in a file directly or through one class.
UNCONTAINED = {
    "Function": "MATCH (s:Function) WHERE s.repo = $repo "
    "AND NOT EXISTS { MATCH (:CodeFile)-[:CONTAINS]->(s) } "
    "AND NOT EXISTS { MATCH (:CodeFile)-[:CONTAINS]->(:Class)-[:CONTAINS]->(s) }",
    "Class": "MATCH (s:Class) WHERE s.repo = $repo AND NOT EXISTS { MATCH (:CodeFile)-[:CONTAINS]->(s) }",
}
# Calls are resolved against the head's symbols, so an end marked removed is a call the head no longer makes.
DANGLING_CALLS = (
    "MATCH (a:Function)-[:CALLS]->(b:Function) WHERE a.repo = $repo "
    "AND (a.removed_in IS NOT NULL OR b.removed_in IS NOT NULL OR b.repo <> a.repo)"
)
LIVE_SYMBOLS = "MATCH (s:{label}) WHERE s.repo = $repo AND s.removed_in IS NULL RETURN s.qualified_name AS symbol"


@dataclass
class Finding:
    count: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # the count split by kind of problem


def _count(graph: GraphStore, match: str, repo: str) -> int:
    rows = graph.query(f"{match} RETURN count(*) AS n", {"repo": repo})
    return int(rows[0]["n"]) if rows else 0


def _sample(graph: GraphStore, match: str, columns: str, order: str, repo: str, limit: int) -> list[dict[str, Any]]:
    return graph.query(f"{match} RETURN {columns} ORDER BY {order} LIMIT {int(limit)}", {"repo": repo})


def uncontained_symbols(graph: GraphStore, repo: str, limit: int = SAMPLE) -> Finding:
    """Functions and classes of `repo` that no CodeFile contains (a few of each label)."""
    finding = Finding()
    for label, match in UNCONTAINED.items():
        count = _count(graph, match, repo)
        finding.count += count
        finding.counts[label] = count
        if count:
            finding.sample += _sample(
                graph, match, f"'{label}' AS label, s.id AS id, s.path AS path", "id", repo, limit
            )
    return finding


def dangling_calls(graph: GraphStore, repo: str, limit: int = SAMPLE) -> Finding:
    """CALLS of `repo` whose caller or callee is not at the head (removed) or not of the repository."""
    count = _count(graph, DANGLING_CALLS, repo)
    columns = "a.id AS caller, b.id AS callee, a.removed_in AS caller_removed_in, b.removed_in AS callee_removed_in"
    sample = _sample(graph, DANGLING_CALLS, columns, "caller, callee", repo, limit) if count else []
    return Finding(count, sample, {"calls": count})


def live_symbols(graph: GraphStore, repo: str) -> set[str]:
    """Qualified names of the functions and classes at the repository's head."""
    names: set[str] = set()
    for label in ("Function", "Class"):
        names.update(row["symbol"] for row in graph.query(LIVE_SYMBOLS.format(label=label), {"repo": repo}))
    return names


def embeddings_out_of_step(
    graph: GraphStore, conn: psycopg.Connection, repo: str, model: str, limit: int = SAMPLE
) -> Finding:
    """Symbols at the head without a vector of `model` in code_embeddings, and code_embeddings rows of `model`
    for symbols the head no longer has. Compared by qualified name: the graph keeps one node per name."""
    live = live_symbols(graph, repo)
    rows = conn.execute(
        "SELECT symbol, file_path, embedding IS NOT NULL FROM code_embeddings "
        "WHERE repo = %s AND model = %s AND symbol IS NOT NULL ORDER BY symbol",
        (repo, model),
    ).fetchall()
    embedded = {symbol for symbol, _, has_vector in rows if has_vector}
    missing = sorted(live - embedded)
    stale = [(symbol, path) for symbol, path, _ in rows if symbol not in live]
    sample = [{"symbol": s, "problem": "not embedded"} for s in missing[:limit]]
    sample += [{"symbol": s, "file_path": p, "problem": "not in the graph"} for s, p in stale[:limit]]
    counts = {"not_embedded": len(missing), "embedded_not_in_graph": len(stale)}
    return Finding(len(missing) + len(stale), sample, counts)
