"""The code knowledge graph's schema (COGO seed section 5), shared by both backends.

Every label has one unique `id` key. Code nodes' ids are repository-qualified so that two repositories
never collide; the seed's own key properties (path, name, hash, task_id) are kept beside it, so the
seed's Cypher runs as written.
"""

from __future__ import annotations

from dataclasses import dataclass

# Property types in LadybugDB's vocabulary; Neo4j is schemaless beyond the unique key.
STRING, INT, FLOAT, BOOL, TIMESTAMP = "STRING", "INT64", "DOUBLE", "BOOLEAN", "TIMESTAMP"
STRING_LIST = "STRING[]"

_CODE_SYMBOL = {
    "repo": STRING,
    "name": STRING,
    "qualified_name": STRING,
    "path": STRING,
    "docstring": STRING,
    "code_hash": STRING,
    "start_line": INT,
    "end_line": INT,
    "decorators": STRING_LIST,
    # The commit that removed the symbol; NULL while it exists at the head.
    "removed_in": STRING,
}

NODE_PROPERTIES: dict[str, dict[str, str]] = {
    "CodeFile": {
        "repo": STRING,
        "path": STRING,
        "language": STRING,
        "summary": STRING,
        "size_bytes": INT,
        "content_hash": STRING,
        "removed_in": STRING,
        # Why the file was not parsed ("too_large", "binary"); NULL when it was.
        "skipped": STRING,
        "parse_errors": INT,
    },
    "Function": {**_CODE_SYMBOL, "signature": STRING, "is_method": BOOL},
    "Class": dict(_CODE_SYMBOL),
    "Library": {"name": STRING, "version": STRING, "ecosystem": STRING},
    "Concept": {"name": STRING, "description": STRING},
    # Only the id a commit's `Task-Id:` trailer names: the graph is shared by every organisation that sees the
    # repository, a task belongs to one. Its title, prompt and status are read from Postgres for each caller.
    "Task": {"task_id": STRING},
    "Commit": {
        "repo": STRING,
        "hash": STRING,
        "message": STRING,
        "author": STRING,
        "timestamp": TIMESTAMP,
        "is_merge": BOOL,
    },
}


# Properties an earlier schema stored and this one must not keep: ensure_schema removes them from an existing graph.
RETIRED_PROPERTIES: dict[str, tuple[str, ...]] = {"Task": ("title", "prompt", "status")}


@dataclass(frozen=True)
class RelType:
    name: str
    pairs: tuple[tuple[str, str], ...]
    properties: dict[str, str]


REL_TYPES: dict[str, RelType] = {
    r.name: r
    for r in (
        RelType("CONTAINS", (("CodeFile", "Function"), ("CodeFile", "Class"), ("Class", "Function")), {}),
        RelType("CALLS", (("Function", "Function"),), {"resolution": STRING, "confidence": FLOAT}),
        RelType("IMPORTS", (("CodeFile", "Library"),), {"alias": STRING}),
        RelType("USES", (("Function", "Library"), ("Class", "Library")), {}),
        RelType("IMPLEMENTS", (("Function", "Concept"), ("Class", "Concept")), {"score": FLOAT, "source": STRING}),
        RelType("RELATED_TO", (("Concept", "Concept"),), {}),
        RelType("MODIFIED_IN", (("CodeFile", "Commit"),), {"change": STRING, "old_path": STRING}),
        RelType("AFFECTS", (("Commit", "Function"), ("Commit", "Class")), {"change": STRING}),
        RelType("GENERATED_BY", (("CodeFile", "Task"), ("Function", "Task"), ("Class", "Task")), {}),
    )
}

# Secondary lookups the seed's queries use (Neo4j range indexes; LadybugDB scans, which is fine there).
LOOKUP_PROPERTIES: dict[str, tuple[str, ...]] = {
    "CodeFile": ("path", "repo"),
    "Function": ("name", "qualified_name"),
    "Class": ("name", "qualified_name"),
    "Library": ("name",),
    "Concept": ("name",),
    "Task": ("task_id",),
    "Commit": ("hash",),
}


def check_label(label: str) -> dict[str, str]:
    try:
        return NODE_PROPERTIES[label]
    except KeyError:
        raise ValueError(f"unknown node label {label!r}; known: {', '.join(NODE_PROPERTIES)}") from None


def check_rel(rel_type: str, from_label: str, to_label: str) -> RelType:
    rel = REL_TYPES.get(rel_type)
    if rel is None:
        raise ValueError(f"unknown relationship type {rel_type!r}; known: {', '.join(REL_TYPES)}")
    if (from_label, to_label) not in rel.pairs:
        raise ValueError(f"{rel_type} does not go from {from_label} to {to_label}; it joins {rel.pairs}")
    return rel
