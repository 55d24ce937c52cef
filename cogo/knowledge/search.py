"""Hybrid search over an organisation's knowledge: pgvector nearest neighbours fused with Postgres full-text
search by reciprocal rank fusion (RRF).

    hits = search_chunks(conn, organization_id="org_acme", query="token refresh", k=10,
                         agent_id=None, kinds=("file", "message"))

Without an agent, the organisation's default index answers; with one, each of the agent's knowledge sources
answers from its own index (its model and chunk size, restricted to the files it selects), and the lists are
fused. Messages (message_embeddings) answer from the default model without an agent, and from the agent's
embedding_model and its conversations with one. An index being rebuilt keeps answering from the old one until
the new one is complete. Every query
is filtered by organisation: a large organisation walks its own HNSW index (cogo/knowledge/tenant_indexes.py), a
small one or a narrow selection is searched exactly, and a large one whose index is still to be built walks the
shared per-model index with pgvector's iterative scan; so k results come back whenever k exist, and never
another organisation's row. Works under the read service's row-level security
(role cogo_reader, read-only transaction).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import dict_row

from cogo.config import Settings
from cogo.embed import Embedder, get_embedder
from cogo.knowledge.targets import glob_regex
from cogo.knowledge.tenant_indexes import TENANT_INDEX_MIN_ROWS

RRF_K = 60
FILE_KINDS = ("upload", "generated", "attachment")


@dataclass
class ChunkHit:
    chunk_id: str
    content: str
    score: float
    kind: str  # 'file' or 'message'
    file_id: uuid.UUID | None
    filename: str | None
    storage_path: str | None
    conversation_id: uuid.UUID | None
    file_kind: str | None
    message_id: int | None
    position: dict[str, Any]
    model: str
    vector_rank: int | None = None
    text_rank: int | None = None


@dataclass
class Leg:
    """One index to search: a model and chunk profile, optionally restricted to some files."""

    model: str
    profile: str | None  # None: message rows
    file_kinds: tuple[str, ...] = FILE_KINDS
    path_regex: str | None = None
    storage_path: str | None = None
    messages: bool = False
    agent_id: uuid.UUID | str | None = None  # messages: only the conversations of this agent
    meta: dict[str, Any] = field(default_factory=dict)


def _kinds(kinds: Iterable[str] | None) -> tuple[tuple[str, ...], bool]:
    if not kinds:
        return FILE_KINDS, True
    wanted = set(kinds)
    file_kinds = FILE_KINDS if "file" in wanted else tuple(k for k in FILE_KINDS if k in wanted)
    return file_kinds, "message" in wanted


def _serving(conn: psycopg.Connection, organization_id: str, source_ids: list[uuid.UUID] | None) -> dict:
    """(source_id -> (model, profile)) of the index that answers: the ready one, else the one building."""
    rows = conn.execute(
        "SELECT source_id, model, chunk_profile, state FROM knowledge_indexes WHERE organization_id = %s "
        "AND state <> 'retired' AND (source_id = ANY(%s) OR (%s AND source_id IS NULL)) "
        "ORDER BY (state = 'ready') DESC, ready_at DESC NULLS LAST, created_at DESC",
        (organization_id, source_ids or [], source_ids is None),
    ).fetchall()
    serving: dict = {}
    for source, model, profile, _ in rows:
        serving.setdefault(source, (model, profile))
    return serving


def _has_messages(conn: psycopg.Connection, organization_id: str, model: str, agent_id: object) -> bool:
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM embeddings WHERE organization_id = %s AND model = %s AND message_id IS NOT NULL "
        "AND (%s::uuid IS NULL OR agent_id = %s::uuid))",
        (organization_id, model, agent_id, agent_id),
    ).fetchone()[0]  # type: ignore[index]


def _message_leg(
    conn: psycopg.Connection, organization_id: str, agent_id: uuid.UUID | str | None, models: list[str]
) -> Leg | None:
    """Messages are embedded with the default model and their conversation agent's (message_embeddings): the
    first of `models` with message vectors in this organisation (and agent) answers."""
    for model in dict.fromkeys(models):
        if _has_messages(conn, organization_id, model, agent_id):
            return Leg(model, None, messages=True, agent_id=agent_id)
    return None


def _legs(
    conn: psycopg.Connection,
    organization_id: str,
    agent_id: uuid.UUID | str | None,
    kinds: Iterable[str] | None,
    default_model: str,
) -> list[Leg]:
    file_kinds, messages = _kinds(kinds)
    legs: list[Leg] = []
    if agent_id is None:
        serving = _serving(conn, organization_id, None)
        if None in serving and file_kinds:
            model, profile = serving[None]
            legs.append(Leg(model, profile, file_kinds))
        if messages:
            leg = _message_leg(conn, organization_id, None, [*(m for m, _ in serving.values()), default_model])
            legs += [leg] if leg else []
        return legs
    sources = conn.execute(
        "SELECT id, kind, uri, file_kinds, path_glob, embedding_model FROM agent_knowledge_sources "
        "WHERE organization_id = %s AND agent_id = %s AND is_active AND kind IN ('workspace', 'file')",
        (organization_id, agent_id),
    ).fetchall()
    serving = _serving(conn, organization_id, [s[0] for s in sources])
    for sid, kind, uri, source_kinds, glob, _model in sources:
        if sid not in serving:
            continue
        model, profile = serving[sid]
        kinds_here = tuple(k for k in file_kinds if k in source_kinds)
        if not kinds_here:
            continue
        storage_path = (uri or "").removeprefix("workspace://").lstrip("/") if kind == "file" else None
        legs.append(Leg(model, profile, kinds_here, glob_regex(glob) if glob else None, storage_path))
    if messages:
        agent_model = conn.execute("SELECT embedding_model FROM agents WHERE id = %s", (agent_id,)).fetchone()
        if agent_model is not None:
            # Vectors of a model the agent has left are removed once its new ones are complete: while any
            # remain, they answer.
            wanted = {agent_model[0], default_model}
            models = [m for (m,) in conn.execute("SELECT model FROM embedding_models ORDER BY created_at DESC")]
            leaving = [m for m in models if m not in wanted]
            leg = _message_leg(conn, organization_id, agent_id, [*leaving, agent_model[0]])
            legs += [leg] if leg else []
    return legs


def _model_index(conn: psycopg.Connection, model: str, organization_id: str) -> tuple[str, int, bool] | None:
    """(vector type, dimensions, whether the organisation has its own HNSW index for the model)."""
    row = conn.execute(
        "SELECT m.vector_type, m.dims, t.index_name IS NOT NULL FROM embedding_models m "
        "LEFT JOIN tenant_vector_indexes t ON t.model = m.model AND t.organization_id = %s WHERE m.model = %s",
        (organization_id, model),
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None


def _filters(leg: Leg, organization_id: str, *, literal_org: bool = False) -> tuple[sql.Composable, list[Any]]:
    """The leg's WHERE clause. `literal_org`: the organisation inlined, so that the planner can prove the
    organisation's partial HNSW index (WHERE model = .. AND organization_id = ..) applies whatever plan caching
    does with parameters."""
    org: sql.Composable = sql.SQL("e.organization_id = ") + sql.Literal(organization_id)
    parts: list[sql.Composable] = [
        org if literal_org else sql.SQL("e.organization_id = %s"),
        sql.SQL("e.model = ") + sql.Literal(leg.model),
    ]
    params: list[Any] = [] if literal_org else [organization_id]
    if leg.messages:
        parts.append(sql.SQL("e.message_id IS NOT NULL"))
        if leg.agent_id is not None:
            parts.append(sql.SQL("e.agent_id = %s::uuid"))
            params.append(leg.agent_id)
        return sql.SQL(" AND ").join(parts), params
    parts.append(sql.SQL("e.chunk_profile = %s"))
    params.append(leg.profile)
    parts.append(sql.SQL("e.file_id IS NOT NULL"))
    restricted = leg.file_kinds != FILE_KINDS or leg.path_regex or leg.storage_path
    if restricted:
        # Files this leg may see; checked inside the index scan so the iterative scan keeps looking.
        sub = "SELECT f.id FROM files f WHERE f.organization_id = %s AND f.status = 'active' AND f.kind = ANY(%s)"
        params += [organization_id, list(leg.file_kinds)]
        if leg.path_regex:
            sub += " AND substring(f.storage_path FROM '^[^/]+/[^/]+/[^/]+/files/(.*)$') ~ %s"
            params.append(f"^(?:{leg.path_regex})$")
        if leg.storage_path:
            sub += " AND f.storage_path = %s"
            params.append(leg.storage_path)
        parts.append(sql.SQL("e.file_id = ANY(ARRAY(" + sub + "))"))
    return sql.SQL(" AND ").join(parts), params


class VectorLegQuery(NamedTuple):
    query: sql.Composable
    params: list[Any]  # after the query vector
    ef_search: int | None  # hnsw.ef_search to set first (None: an exact search)


def set_ef_search(conn: psycopg.Connection, ef_search: int | None) -> None:
    """The transaction's hnsw.ef_search for a VectorLegQuery (nothing for an exact one)."""
    if ef_search is not None:
        conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef_search),))


def vector_leg_sql(conn: psycopg.Connection, leg: Leg, organization_id: str, n: int) -> VectorLegQuery | None:
    """The nearest-neighbour query of one leg, its parameters after the query vector and the ef_search it needs
    (None: nothing to search). Exposed for EXPLAIN in tests and bench/."""
    index = _model_index(conn, leg.model, organization_id)
    if index is None:
        return None
    vtype, dims, own_index = index
    where, params = _filters(leg, organization_id, literal_org=own_index)
    expr = sql.SQL("(e.embedding::{t}({d}))").format(t=sql.SQL(vtype), d=sql.Literal(dims))
    qcast = sql.SQL("%s::{t}({d})").format(t=sql.SQL(vtype), d=sql.Literal(dims))
    # Few matching rows (a small organisation, one with few messages, an agent's narrow source) would make an
    # HNSW scan walk far past the nearest rows looking for matches (with none, until its scan limit): those legs
    # are searched exactly, which for so few rows is cheaper and exact. An organisation with its own index
    # (cogo/knowledge/tenant_indexes.py) is large by construction, and its whole default index is not counted.
    narrow = leg.messages or leg.file_kinds != FILE_KINDS or leg.path_regex or leg.storage_path
    matching = EXACT_SEARCH_BELOW
    if narrow or not own_index:
        matching = conn.execute(
            sql.SQL("SELECT count(*) FROM (SELECT 1 FROM embeddings e WHERE {where} LIMIT %s) m").format(where=where),
            [*params, EXACT_SEARCH_BELOW],
        ).fetchone()[0]
    if matching == 0:
        return None
    exact = matching < EXACT_SEARCH_BELOW
    ef = None
    if not exact:
        # Its own graph holds only this organisation's rows: a first pass of n candidates finds them. The shared
        # graph (an organisation whose index is still to be built) needs a far larger one.
        wanted = max(TENANT_EF_SEARCH, n) if own_index and not narrow else max(FILTERED_EF_SEARCH, n)
        ef = min(HNSW_MAX_EF_SEARCH, wanted)
    # `+ 0` keeps the planner off the HNSW index (it only serves `column <=> constant` orderings).
    distance = sql.SQL("({expr} <=> {q}) + 0" if exact else "{expr} <=> {q}").format(expr=expr, q=qcast)
    query = sql.SQL(
        "WITH nearest AS MATERIALIZED (SELECT e.id, {distance} AS distance FROM embeddings e WHERE {where} "
        "ORDER BY distance LIMIT %s) SELECT id, distance FROM nearest ORDER BY distance"
    ).format(distance=distance, where=where)
    return VectorLegQuery(query, [*params, n], ef)


def text_leg_sql(leg: Leg, organization_id: str, text: str, n: int) -> tuple[sql.Composable, list[Any]]:
    """The full-text query of one leg and its parameters (exposed for EXPLAIN in bench/)."""
    where, params = _filters(leg, organization_id)
    query = sql.SQL(
        "SELECT e.id, ts_rank_cd(e.content_tsv, q) AS rank FROM embeddings e, "
        "websearch_to_tsquery('english', %s) q WHERE e.content_tsv @@ q AND {where} ORDER BY rank DESC LIMIT %s"
    ).format(where=where)
    return query, [text, *params, n]


def _leg_rows(
    conn: psycopg.Connection, leg: Leg, organization_id: str, query: str, qvec: np.ndarray, n: int
) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(nearest rows, full-text rows) of one leg: its hnsw.ef_search, vector and text queries sent together in
    one pipeline, so the leg costs one round trip to Postgres."""
    planned = vector_leg_sql(conn, leg, organization_id, n)
    text_query, text_params = text_leg_sql(leg, organization_id, query, n)
    with conn.pipeline():
        cursors = []
        if planned is not None:
            set_ef_search(conn, planned.ef_search)
            cursors.append(conn.execute(planned.query, [qvec, *planned.params]))
        text_cursor = conn.execute(text_query, text_params)
    nearest = cursors[0].fetchall() if cursors else []
    return nearest, text_cursor.fetchall()


# pgvector refuses a larger hnsw.ef_search; iterative scans still go on past it until enough rows pass the filters.
HNSW_MAX_EF_SEARCH = 1000
# Candidates the HNSW scan keeps in its first pass. The index holds every organisation's vectors and a search keeps
# only the caller's, so the first pass must be large enough for the organisation's share of it to hold the true
# nearest neighbours: at 40 (enough without a filter) recall@10 with one organisation in ten was about 0.9
# (bench/bench_knowledge.py).
FILTERED_EF_SEARCH = 400
# First pass over an organisation's own HNSW index. At 100,000 vectors per organisation, recall@10 against exact
# search was 0.925 at 64, 0.961 at 100, 0.972 at 160 (bench/bench_knowledge.py --search-only --ef-search N).
TENANT_EF_SEARCH = 160
# An iterative scan stops when its visited set outgrows work_mem times this (pgvector's default 1): with a small
# work_mem a filtered scan could end with fewer than k rows.
HNSW_SCAN_MEM_MULTIPLIER = 8
# Legs whose filters keep fewer rows than this are searched exactly (see vector_leg_sql); organisations with at
# least this many vectors of a model get their own HNSW index (tenant_indexes.TENANT_INDEX_MIN_ROWS).
EXACT_SEARCH_BELOW = TENANT_INDEX_MIN_ROWS


def candidate_count(k: int) -> int:
    """Rows each leg (vector and full text) brings to the fusion for k results."""
    return max(k * 4, 40)


def search_chunks(
    conn: psycopg.Connection,
    organization_id: str,
    query: str,
    k: int = 10,
    agent_id: uuid.UUID | str | None = None,
    kinds: Iterable[str] | None = None,
    *,
    embedder_for: Callable[[str], Embedder] = get_embedder,
    candidates: int | None = None,
    default_model: str | None = None,
) -> list[ChunkHit]:
    """The k best chunks of `organization_id` for `query` (fused vector and full-text ranks): file chunks and
    messages (`kinds`: 'file' or upload/generated/attachment, and 'message'; default both). `default_model`
    (default: COGO_EMBEDDER) answers for messages when the organisation's file index does not say."""
    if k <= 0 or not query.strip():
        return []
    n = candidates or candidate_count(k)
    # Inside the caller's transaction (the read service's tenant-scoped one) no savepoint is needed: the settings
    # below are transaction-local either way, and nothing here writes.
    in_transaction = conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    if conn.adapters.types.get("vector") is None:
        # pgvector's adapters send the query vector in binary (a list of 384 floats costs ~0.8 ms to send); they
        # are looked up (four catalog queries) once per connection, not per search.
        register_vector(conn)
    with contextlib.nullcontext() if in_transaction else conn.transaction():
        # Filtered HNSW scans continue until enough rows pass the filter (pgvector >= 0.8).
        conn.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('hnsw.scan_mem_multiplier', %s, true)",
            (str(HNSW_SCAN_MEM_MULTIPLIER),),
        )
        legs = _legs(conn, organization_id, agent_id, kinds, default_model or Settings.from_env().embedder)
        qvecs: dict[str, np.ndarray] = {}
        scores: dict[int, float] = {}
        vranks: dict[int, int] = {}
        tranks: dict[int, int] = {}
        models: dict[int, str] = {}
        for leg in legs:
            if leg.model not in qvecs:
                qvecs[leg.model] = embedder_for(leg.model).embed([query])[0]
            nearest, matched = _leg_rows(conn, leg, organization_id, query, qvecs[leg.model], n)
            for rank, (row_id, _) in enumerate(nearest, 1):
                scores[row_id] = scores.get(row_id, 0.0) + 1.0 / (RRF_K + rank)
                vranks.setdefault(row_id, rank)
                models[row_id] = leg.model
            for rank, (row_id, _) in enumerate(matched, 1):
                scores[row_id] = scores.get(row_id, 0.0) + 1.0 / (RRF_K + rank)
                tranks.setdefault(row_id, rank)
                models[row_id] = leg.model
        # With one leg a row is found once; with several, the same chunk may come through two of them.
        return _hits(conn, organization_id, scores, vranks, tranks, k, k * 3 if len(legs) > 1 else k)


def _hits(
    conn: psycopg.Connection,
    organization_id: str,
    scores: dict[int, float],
    vranks: dict[int, int],
    tranks: dict[int, int],
    k: int,
    fetch: int,
) -> list[ChunkHit]:
    if not scores:
        return []
    ranked = sorted(scores, key=lambda i: (-scores[i], i))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT e.id, e.chunk_id, e.content, e.file_id, e.message_id, e.position, e.model, e.chunk_index, "
            "f.filename, f.storage_path, f.kind AS file_kind, coalesce(f.conversation_id, m.conversation_id) "
            "AS conversation_id FROM embeddings e LEFT JOIN files f ON f.id = e.file_id "
            "LEFT JOIN messages m ON m.id = e.message_id WHERE e.id = ANY(%s) AND e.organization_id = %s",
            (ranked[:fetch], organization_id),
        )
        rows = {r["id"]: r for r in cur.fetchall()}
    hits: list[ChunkHit] = []
    seen: set[tuple] = set()
    for row_id in ranked:
        r = rows.get(row_id)
        if r is None:
            continue
        key = (r["file_id"], r["message_id"], r["chunk_id"])
        if key in seen:  # the same chunk found through two sources of one agent
            continue
        seen.add(key)
        hits.append(
            ChunkHit(
                chunk_id=r["chunk_id"],
                content=r["content"],
                score=round(scores[row_id], 6),
                kind="message" if r["message_id"] is not None else "file",
                file_id=r["file_id"],
                filename=r["filename"],
                storage_path=r["storage_path"],
                conversation_id=r["conversation_id"],
                file_kind=r["file_kind"],
                message_id=r["message_id"],
                position=r["position"] or {},
                model=r["model"],
                vector_rank=vranks.get(row_id),
                text_rank=tranks.get(row_id),
            )
        )
        if len(hits) == k:
            break
    return hits
