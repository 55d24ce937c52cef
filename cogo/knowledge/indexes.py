"""Knowledge indexes (what answers searches) and the per-model HNSW indexes over `embeddings`.

An index is (organisation, source or default, model, chunk profile). When a source's model or the chunker
changes, the new index is 'building' while the old one stays 'ready' and answers searches; once the new one
is complete it becomes 'ready', the old one 'retired', and the retired vectors are deleted.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from cogo.knowledge.targets import IndexTarget

HNSW_MAX_VECTOR_DIMS = 2000


def sync_indexes(conn: psycopg.Connection, targets: list[IndexTarget]) -> dict[str, int]:
    """Make every target an index ('building' if new or retired); retire indexes no target asks for, unless
    they are 'ready' and their replacement is still building (they keep answering meanwhile)."""
    desired = {t.key for t in targets}
    existing = conn.execute(
        "SELECT id, organization_id, source_id, model, chunk_profile, state FROM knowledge_indexes "
        "WHERE state <> 'retired'"
    ).fetchall()
    created = 0
    for org, source, model, profile in sorted(desired, key=str):
        cur = conn.execute(
            "INSERT INTO knowledge_indexes (organization_id, source_id, model, chunk_profile, state) "
            "VALUES (%s, %s, %s, %s, 'building') ON CONFLICT (organization_id, source_id, model, chunk_profile) "
            "DO UPDATE SET state = 'building', retired_at = NULL, ready_at = NULL "
            "WHERE knowledge_indexes.state = 'retired'",
            (org, source, model, profile),
        )
        created += cur.rowcount
    owners_with_target = {(org, source) for org, source, _, _ in desired}
    retired = 0
    for index_id, org, source, model, profile, state in existing:
        if (org, source, model, profile) in desired:
            continue
        if state == "ready" and (org, source) in owners_with_target:
            continue  # serving until its replacement is ready
        conn.execute("UPDATE knowledge_indexes SET state = 'retired', retired_at = now() WHERE id = %s", (index_id,))
        retired += 1
    return {"indexes_created": created, "indexes_retired": retired}


def complete_indexes(conn: psycopg.Connection, incomplete: set[tuple[str, str, str]]) -> dict[str, int]:
    """Building indexes whose (organisation, model, profile) has nothing left to embed become ready; the
    ready indexes they replace are retired."""
    ready = 0
    retired = 0
    building = conn.execute(
        "SELECT id, organization_id, source_id, model, chunk_profile FROM knowledge_indexes WHERE state = 'building'"
    ).fetchall()
    for index_id, org, source, model, profile in building:
        if (org, model, profile) in incomplete:
            continue
        conn.execute("UPDATE knowledge_indexes SET state = 'ready', ready_at = now() WHERE id = %s", (index_id,))
        ready += 1
        cur = conn.execute(
            "UPDATE knowledge_indexes SET state = 'retired', retired_at = now() "
            "WHERE organization_id = %s AND source_id IS NOT DISTINCT FROM %s AND state = 'ready' AND id <> %s",
            (org, source, index_id),
        )
        retired += cur.rowcount
    return {"indexes_ready": ready, "indexes_retired_on_completion": retired}


def delete_retired_vectors(conn: psycopg.Connection) -> int:
    """File vectors of a (model, profile) no live index of their organisation uses."""
    cur = conn.execute(
        "DELETE FROM embeddings e WHERE e.file_id IS NOT NULL AND NOT EXISTS ("
        "SELECT 1 FROM knowledge_indexes k WHERE k.organization_id = e.organization_id AND k.model = e.model "
        "AND k.chunk_profile = e.chunk_profile AND k.state <> 'retired')"
    )
    conn.execute(
        "DELETE FROM embedding_failures f WHERE NOT EXISTS (SELECT 1 FROM knowledge_indexes k "
        "WHERE k.organization_id = f.organization_id AND k.model = f.model AND k.chunk_profile = f.chunk_profile "
        "AND k.state <> 'retired')"
    )
    return cur.rowcount


def index_name(model: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")
    return f"embeddings_hnsw_{slug}"[:63]


def vector_type(dims: int) -> str:
    return "vector" if dims <= HNSW_MAX_VECTOR_DIMS else "halfvec"


def create_hnsw_index(
    name: str, model: str, dims: int, organization_id: str | None = None, *, concurrently: bool = False
) -> sql.Composed:
    """CREATE INDEX for a partial HNSW index over the model's vectors (cast to its dimension; halfvec above
    HNSW's 2,000-dimension limit for vector), of one organisation's when `organization_id` is given."""
    vtype = vector_type(dims)
    where = sql.SQL("model = {}").format(sql.Literal(model))
    if organization_id is not None:
        where += sql.SQL(" AND organization_id = {}").format(sql.Literal(organization_id))
    return sql.SQL(
        "CREATE INDEX {concurrently} IF NOT EXISTS {name} ON embeddings USING hnsw "
        "((embedding::{vtype}({dims})) {ops}) WHERE {where}"
    ).format(
        concurrently=sql.SQL("CONCURRENTLY" if concurrently else ""),
        name=sql.Identifier(name),
        vtype=sql.SQL(vtype),
        dims=sql.Literal(dims),
        ops=sql.SQL(f"{vtype}_cosine_ops"),
        where=where,
    )


def ensure_model_index(conn: psycopg.Connection, model: str, dims: int) -> bool:
    """The model's partial HNSW index over embeddings (created on first use). True if created now."""
    row = conn.execute("SELECT dims FROM embedding_models WHERE model = %s", (model,)).fetchone()
    if row is not None:
        if row[0] != dims:
            raise ValueError(f"model {model} was registered with {row[0]} dimensions, the embedder gives {dims}")
        return False
    vtype = vector_type(dims)
    name = index_name(model)
    conn.execute(create_hnsw_index(name, model, dims))
    conn.execute(
        "INSERT INTO embedding_models (model, dims, vector_type, index_name) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (model) DO NOTHING",
        (model, dims, vtype, name),
    )
    return True
