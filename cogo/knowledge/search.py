"""Hybrid search over an organisation's knowledge: pgvector nearest neighbours fused with Postgres full-text
search by reciprocal rank fusion (RRF).

    hits = search_chunks(conn, Caller("org_acme", "user_alice"), "token refresh", k=10,
                         agent_id=None, kinds=("file", "message"))

Without an agent, the organisation's default index answers; with one, each of the agent's knowledge sources
answers from its own index (its model and chunk size, restricted to the files it selects), and the lists are
fused. Messages (message_embeddings) answer from the default model without an agent, and from the agent's
embedding_model and its conversations with one. An index being rebuilt keeps answering from the old one until
the new one is complete. Every query
is filtered by organisation: a large organisation walks its own HNSW index (cogo/knowledge/tenant_indexes.py), a
small one or a narrow selection is searched exactly, and a large one whose index is still to be built walks the
shared per-model index with pgvector's iterative scan; so k results come back whenever k exist, and never
another organisation's row. A member's search (a cogo.tenancy.Caller) keeps only what the member may see:
chunks of files and messages of another member's private conversation are left out (cogo.tenancy's rule).
Works under the read service's row-level security (role cogo_reader, read-only transaction).

The search is written once, as a plan of steps (a query, a pipeline of queries, a query's embedding) that a
driver answers: `search_chunks` on a blocking connection, embedding in place; `search_chunks_async` on an async
connection (the read service's pool), embedding in a worker thread.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import numpy as np
import psycopg
from pgvector.psycopg import register_vector, register_vector_async
from psycopg import sql
from psycopg.rows import dict_row

from cogo.config import Settings
from cogo.embed import Embedder, get_embedder
from cogo.knowledge.targets import glob_regex
from cogo.knowledge.tenant_indexes import TENANT_INDEX_MIN_ROWS
from cogo.tenancy import Caller, conversation_visible, file_attachments_visible

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


@dataclass(frozen=True)
class Query:
    """A step of a plan: run one statement; the driver sends back its rows (dicts with `dicts`)."""

    statement: Any
    params: Any = None
    dicts: bool = False


@dataclass(frozen=True)
class Pipeline:
    """A step of a plan: run these statements in one round trip; the driver sends back each one's rows."""

    queries: tuple[Query, ...]


@dataclass(frozen=True)
class Embed:
    """A step of a plan: embed `text` with `model`; the driver sends back its vector."""

    model: str
    text: str


T = TypeVar("T")
Plan = Generator[Query | Pipeline | Embed, Any, T]


def _kinds(kinds: Iterable[str] | None) -> tuple[tuple[str, ...], bool]:
    if not kinds:
        return FILE_KINDS, True
    wanted = set(kinds)
    file_kinds = FILE_KINDS if "file" in wanted else tuple(k for k in FILE_KINDS if k in wanted)
    return file_kinds, "message" in wanted


def _serving(organization_id: str, source_ids: list[uuid.UUID] | None) -> Plan[dict]:
    """(source_id -> (model, profile)) of the index that answers: the ready one, else the one building."""
    rows = yield Query(
        "SELECT source_id, model, chunk_profile, state FROM knowledge_indexes WHERE organization_id = %s "
        "AND state <> 'retired' AND (source_id = ANY(%s) OR (%s AND source_id IS NULL)) "
        "ORDER BY (state = 'ready') DESC, ready_at DESC NULLS LAST, created_at DESC",
        (organization_id, source_ids or [], source_ids is None),
    )
    serving: dict = {}
    for source, model, profile, _ in rows:
        serving.setdefault(source, (model, profile))
    return serving


def _has_messages(organization_id: str, model: str, agent_id: object) -> Plan[bool]:
    rows = yield Query(
        "SELECT EXISTS (SELECT 1 FROM embeddings WHERE organization_id = %s AND model = %s AND message_id IS NOT NULL "
        "AND (%s::uuid IS NULL OR agent_id = %s::uuid))",
        (organization_id, model, agent_id, agent_id),
    )
    return bool(rows[0][0])


def _message_leg(organization_id: str, agent_id: uuid.UUID | str | None, models: list[str]) -> Plan[Leg | None]:
    """Messages are embedded with the default model and their conversation agent's (message_embeddings): the
    first of `models` with message vectors in this organisation (and agent) answers."""
    for model in dict.fromkeys(models):
        if (yield from _has_messages(organization_id, model, agent_id)):
            return Leg(model, None, messages=True, agent_id=agent_id)
    return None


def legs_plan(
    organization_id: str, agent_id: uuid.UUID | str | None, kinds: Iterable[str] | None, default_model: str
) -> Plan[list[Leg]]:
    """The legs (indexes) a search of the organisation (and agent) reads."""
    file_kinds, messages = _kinds(kinds)
    legs: list[Leg] = []
    if agent_id is None:
        serving = yield from _serving(organization_id, None)
        if None in serving and file_kinds:
            model, profile = serving[None]
            legs.append(Leg(model, profile, file_kinds))
        if messages:
            leg = yield from _message_leg(organization_id, None, [*(m for m, _ in serving.values()), default_model])
            legs += [leg] if leg else []
        return legs
    sources = yield Query(
        "SELECT id, kind, uri, file_kinds, path_glob, embedding_model FROM agent_knowledge_sources "
        "WHERE organization_id = %s AND agent_id = %s AND is_active AND kind IN ('workspace', 'file')",
        (organization_id, agent_id),
    )
    serving = yield from _serving(organization_id, [s[0] for s in sources])
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
        agent_model = yield Query("SELECT embedding_model FROM agents WHERE id = %s", (agent_id,))
        if agent_model:
            # Vectors of a model the agent has left are removed once its new ones are complete: while any
            # remain, they answer.
            wanted = {agent_model[0][0], default_model}
            models = [m for (m,) in (yield Query("SELECT model FROM embedding_models ORDER BY created_at DESC"))]
            leaving = [m for m in models if m not in wanted]
            leg = yield from _message_leg(organization_id, agent_id, [*leaving, agent_model[0][0]])
            legs += [leg] if leg else []
    return legs


def _model_index(model: str, organization_id: str) -> Plan[tuple[str, int, bool] | None]:
    """(vector type, dimensions, whether the organisation has its own HNSW index for the model)."""
    rows = yield Query(
        "SELECT m.vector_type, m.dims, t.index_name IS NOT NULL FROM embedding_models m "
        "LEFT JOIN tenant_vector_indexes t ON t.model = m.model AND t.organization_id = %s WHERE m.model = %s",
        (organization_id, model),
    )
    return (rows[0][0], rows[0][1], rows[0][2]) if rows else None


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


def ef_search_query(ef_search: int) -> Query:
    """The transaction's hnsw.ef_search for a VectorLegQuery that is not exact."""
    return Query("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef_search),))


def set_ef_search(conn: psycopg.Connection, ef_search: int | None) -> None:
    if ef_search is not None:
        query = ef_search_query(ef_search)
        conn.execute(query.statement, query.params)


def vector_leg_sql(conn: psycopg.Connection, leg: Leg, organization_id: str, n: int) -> VectorLegQuery | None:
    """The nearest-neighbour query of one leg, its parameters after the query vector and the ef_search it needs
    (None: nothing to search). Exposed for EXPLAIN in tests and bench/."""
    return run_plan(conn, vector_leg_plan(leg, organization_id, n))


def vector_leg_plan(leg: Leg, organization_id: str, n: int) -> Plan[VectorLegQuery | None]:
    index = yield from _model_index(leg.model, organization_id)
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
        counted = yield Query(
            sql.SQL("SELECT count(*) FROM (SELECT 1 FROM embeddings e WHERE {where} LIMIT %s) m").format(where=where),
            [*params, EXACT_SEARCH_BELOW],
        )
        matching = counted[0][0]
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
    return run_plan(conn, _leg_rows_plan(leg, organization_id, query, qvec, n))


def _leg_rows_plan(
    leg: Leg, organization_id: str, query: str, qvec: np.ndarray, n: int
) -> Plan[tuple[list[tuple[int, float]], list[tuple[int, float]]]]:
    """(nearest rows, full-text rows) of one leg: its hnsw.ef_search, vector and text queries sent together in
    one pipeline, so the leg costs one round trip to Postgres."""
    planned = yield from vector_leg_plan(leg, organization_id, n)
    queries = []
    if planned is not None:
        if planned.ef_search is not None:
            queries.append(ef_search_query(planned.ef_search))
        queries.append(Query(planned.query, [qvec, *planned.params]))
    queries.append(Query(*text_leg_sql(leg, organization_id, query, n)))
    answers = yield Pipeline(tuple(queries))
    return (answers[-2] if planned is not None else []), answers[-1]


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


# A member's search fetches this many times the candidates and hits, so that dropping other members' private
# conversations still leaves k.
PRIVACY_HEADROOM = 3


def search_chunks(
    conn: psycopg.Connection,
    caller: Caller | str,
    query: str,
    k: int = 10,
    agent_id: uuid.UUID | str | None = None,
    kinds: Iterable[str] | None = None,
    *,
    embedder_for: Callable[[str], Embedder] = get_embedder,
    candidates: int | None = None,
    default_model: str | None = None,
) -> list[ChunkHit]:
    """The k best chunks for `query` (fused vector and full-text ranks): file chunks and messages (`kinds`: 'file'
    or upload/generated/attachment, and 'message'; default both). `caller`: a member (cogo.tenancy.Caller), who
    sees what cogo.tenancy's rule shows them, or an organisation id alone for the platform's own reads of all of
    it (pipelines, benchmarks). `default_model` (default: COGO_EMBEDDER) answers for messages when the
    organisation's file index does not say."""
    if conn.adapters.types.get("vector") is None:
        # pgvector's adapters send the query vector in binary (far cheaper than a list of floats); they are looked
        # up (four catalog queries) once per connection, not per search.
        register_vector(conn)
    plan = search_plan(caller, query, k, agent_id, kinds, candidates=candidates, default_model=default_model)
    # Inside the caller's transaction (a tenant-scoped one) no savepoint is needed: the settings the search makes
    # are transaction-local either way, and nothing here writes.
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
        return run_plan(conn, plan, embedder_for)
    with conn.transaction():
        return run_plan(conn, plan, embedder_for)


async def search_chunks_async(
    conn: psycopg.AsyncConnection[Any],
    caller: Caller,
    query: str,
    k: int = 10,
    agent_id: uuid.UUID | str | None = None,
    kinds: Iterable[str] | None = None,
    *,
    embed: Callable[[str, str], Awaitable[np.ndarray]],
    default_model: str | None = None,
) -> list[ChunkHit]:
    """`search_chunks` for a member on an async connection inside an open transaction; `embed(model, text)` gives
    the query's vector (the read service runs it in a worker thread)."""
    if conn.adapters.types.get("vector") is None:
        await register_vector_async(conn)
    plan = search_plan(caller, query, k, agent_id, kinds, default_model=default_model)
    return await run_plan_async(conn, plan, embed)


def search_plan(
    caller: Caller | str,
    query: str,
    k: int,
    agent_id: uuid.UUID | str | None,
    kinds: Iterable[str] | None,
    *,
    candidates: int | None = None,
    default_model: str | None = None,
) -> Plan[list[ChunkHit]]:
    if k <= 0 or not query.strip():
        return []
    member = isinstance(caller, Caller)
    organization_id = caller.organization_id if isinstance(caller, Caller) else caller
    headroom = PRIVACY_HEADROOM if member else 1
    n = candidates or candidate_count(k * headroom)
    # Filtered HNSW scans continue until enough rows pass the filter (pgvector >= 0.8).
    yield Query(
        "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
        "set_config('hnsw.scan_mem_multiplier', %s, true)",
        (str(HNSW_SCAN_MEM_MULTIPLIER),),
    )
    legs = yield from legs_plan(organization_id, agent_id, kinds, default_model or Settings.from_env().embedder)
    qvecs: dict[str, np.ndarray] = {}
    scores: dict[int, float] = {}
    vranks: dict[int, int] = {}
    tranks: dict[int, int] = {}
    for leg in legs:
        if leg.model not in qvecs:
            qvecs[leg.model] = yield Embed(leg.model, query)
        nearest, matched = yield from _leg_rows_plan(leg, organization_id, query, qvecs[leg.model], n)
        for rank, (row_id, _) in enumerate(nearest, 1):
            scores[row_id] = scores.get(row_id, 0.0) + 1.0 / (RRF_K + rank)
            vranks.setdefault(row_id, rank)
        for rank, (row_id, _) in enumerate(matched, 1):
            scores[row_id] = scores.get(row_id, 0.0) + 1.0 / (RRF_K + rank)
            tranks.setdefault(row_id, rank)
    # With one leg a row is found once; with several, the same chunk may come through two of them.
    fetch = (k * 3 if len(legs) > 1 else k) * headroom
    return (yield from _hits(caller, scores, vranks, tranks, k, fetch))


def _hits(
    caller: Caller | str,
    scores: dict[int, float],
    vranks: dict[int, int],
    tranks: dict[int, int],
    k: int,
    fetch: int,
) -> Plan[list[ChunkHit]]:
    if not scores:
        return []
    ranked = sorted(scores, key=lambda i: (-scores[i], i))
    if isinstance(caller, Caller):
        params = {"org": caller.organization_id, "me": caller.user_id}
        # A chunk of a conversation (a message's, or a file's in a conversation folder) only when the member may
        # see the conversation; a row whose conversation is not found is left out.
        visible = (
            f"AND (coalesce(f.conversation_id, m.conversation_id) IS NULL OR {conversation_visible('c')}) "
            f"AND (f.id IS NULL OR {file_attachments_visible('f')})"
        )
    else:
        params, visible = {"org": caller}, ""
    rows = yield Query(
        "SELECT e.id, e.chunk_id, e.content, e.file_id, e.message_id, e.position, e.model, e.chunk_index, "
        "f.filename, f.storage_path, f.kind AS file_kind, coalesce(f.conversation_id, m.conversation_id) "
        "AS conversation_id FROM embeddings e LEFT JOIN files f ON f.id = e.file_id "
        "LEFT JOIN messages m ON m.id = e.message_id "
        "LEFT JOIN conversations c ON c.id = coalesce(f.conversation_id, m.conversation_id) "
        "AND c.organization_id = e.organization_id "
        f"WHERE e.id = ANY(%(ids)s) AND e.organization_id = %(org)s {visible}",
        {**params, "ids": ranked[:fetch]},
        dicts=True,
    )
    by_id = {r["id"]: r for r in rows}
    hits: list[ChunkHit] = []
    seen: set[tuple] = set()
    for row_id in ranked:
        r = by_id.get(row_id)
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


def run_plan(conn: psycopg.Connection, plan: Plan[T], embedder_for: Callable[[str], Embedder] = get_embedder) -> T:
    """Drive `plan` on a blocking connection, embedding in place."""
    answer: Any = None
    try:
        while True:
            step = plan.send(answer)
            if isinstance(step, Embed):
                answer = embedder_for(step.model).embed([step.text])[0]
            elif isinstance(step, Pipeline):
                with conn.pipeline():
                    cursors = [_execute(conn, q) for q in step.queries]
                answer = [cur.fetchall() for cur in cursors]
            else:
                answer = _execute(conn, step).fetchall()
    except StopIteration as done:
        return done.value


def _execute(conn: psycopg.Connection, query: Query) -> psycopg.Cursor[Any]:
    cur = psycopg.Cursor(conn, row_factory=dict_row) if query.dicts else psycopg.Cursor(conn)
    return cur.execute(query.statement, query.params)


async def run_plan_async(
    conn: psycopg.AsyncConnection[Any], plan: Plan[T], embed: Callable[[str, str], Awaitable[np.ndarray]]
) -> T:
    """Drive `plan` on an async connection (server-side binding whatever the connection's cursor factory: the
    query vector goes in binary)."""
    answer: Any = None
    try:
        while True:
            step = plan.send(answer)
            if isinstance(step, Embed):
                answer = await embed(step.model, step.text)
            elif isinstance(step, Pipeline):
                async with conn.pipeline():
                    cursors = [await _execute_async(conn, q) for q in step.queries]
                answer = [await cur.fetchall() for cur in cursors]
            else:
                answer = await (await _execute_async(conn, step)).fetchall()
    except StopIteration as done:
        return done.value


async def _execute_async(conn: psycopg.AsyncConnection[Any], query: Query) -> psycopg.AsyncCursor[Any]:
    cur = psycopg.AsyncCursor(conn, row_factory=dict_row) if query.dicts else psycopg.AsyncCursor(conn)
    return await cur.execute(query.statement, query.params)
