"""A repository's code graph as plain, comparable sets: ids without the repository prefix, commits by the
step name that made them."""

from __future__ import annotations

from typing import Any

from cogo.graph.base import GraphStore

VOLATILE = {"code_hash", "content_hash", "timestamp"}


def _short(value: Any, repo: str, steps: dict[str, str]) -> Any:
    if isinstance(value, str):
        value = value.removeprefix(f"{repo}:")
        return steps.get(value, value)
    return value


def nodes(graph: GraphStore, repo: str, steps: dict[str, str]) -> set[tuple]:
    """(label, id, removed_in) for every node; steps maps commit sha -> step name."""
    out = set()
    for row in graph.query("MATCH (n) RETURN n"):
        n = row["n"]
        out.add((n["_labels"][0], _short(n["id"], repo, steps), _short(n.get("removed_in"), repo, steps)))
    return out


def relationships(graph: GraphStore, repo: str, steps: dict[str, str]) -> set[tuple]:
    """(src, type, dst, sorted properties) for every relationship."""
    out = set()
    for row in graph.query("MATCH (a)-[r]->(b) RETURN a.id AS a, r, b.id AS b"):
        rel = dict(row["r"])
        rel_type = rel.pop("_type")
        props = tuple(sorted((k, v) for k, v in rel.items() if k not in VOLATILE))
        out.add((_short(row["a"], repo, steps), rel_type, _short(row["b"], repo, steps), props))
    return out


def full(graph: GraphStore) -> tuple[list[Any], list[Any]]:
    """Every node with every property, every relationship: for comparing two builds exactly."""
    node_rows = sorted(str(sorted(r["n"].items())) for r in graph.query("MATCH (n) RETURN n"))
    rel_rows = sorted(
        str((r["a"], sorted(r["r"].items()), r["b"]))
        for r in graph.query("MATCH (a)-[r]->(b) RETURN a.id AS a, r, b.id AS b")
    )
    return node_rows, rel_rows
