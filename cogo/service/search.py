"""POST /v1/search (messages and file chunks) and POST /v1/search/code (code plus its graph context).

The search itself belongs to the knowledge (cogo.knowledge) and code-graph (cogo.code) packages; this module
only scopes and serves it. Each adapter below is the one place that calls into those packages: it runs in a
worker thread with a blocking connection that is already tenant-scoped (RLS role + organisation).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any

import anyio.to_thread
import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request

from cogo.errors import CogoError
from cogo.service.auth import Principal, current_principal
from cogo.service.db import sync_tenant_transaction
from cogo.service.models import (
    ERROR_RESPONSES,
    Citation,
    CodeHit,
    CodeSearchRequest,
    CodeSearchResponse,
    SearchHit,
    SearchRequest,
    SearchResponse,
)

log = logging.getLogger("cogo.service.search")
router = APIRouter(prefix="/v1/search", tags=["search"], responses=ERROR_RESPONSES)
Caller = Annotated[Principal, Depends(current_principal)]


# Hits are fetched with this much headroom, so that dropping other users' private conversations still leaves k.
PRIVACY_HEADROOM = 3


def search_knowledge(conn: psycopg.Connection, caller: Principal, body: SearchRequest) -> list[SearchHit]:
    """Adapter to the knowledge package's hybrid search (issue 7): `cogo.knowledge.search.search_chunks`.

    search_chunks scopes by organisation; conversations are also private to their owner, so hits from
    another user's private conversation (its messages and its files) are dropped here."""
    from cogo.knowledge.search import search_chunks

    rows = search_chunks(
        conn,
        organization_id=caller.organization_id,
        query=body.query,
        k=body.k * PRIVACY_HEADROOM,
        agent_id=body.agent,
        kinds=tuple(body.kinds),
    )
    hits = [_search_hit(row) for row in rows]
    conversation_ids = list({h.citation.conversation_id for h in hits if h.citation.conversation_id is not None})
    visible = {
        r[0]
        for r in conn.execute(
            "SELECT id FROM conversations WHERE id = ANY(%s) AND organization_id = %s "
            "AND (visibility = 'shared' OR user_id = %s)",
            (conversation_ids, caller.organization_id, caller.user_id),
        )
    }
    kept = [h for h in hits if h.citation.conversation_id is None or h.citation.conversation_id in visible]
    return kept[: body.k]


def _search_hit(row: Any) -> SearchHit:
    r = _as_mapping(row)
    return SearchHit(
        chunk_id=str(r["chunk_id"]),
        content=r["content"],
        score=float(r["score"]),
        citation=Citation(
            kind=r.get("kind") or ("message" if r.get("message_id") is not None else "file"),
            file_id=r.get("file_id"),
            filename=r.get("filename"),
            storage_path=r.get("storage_path"),
            message_id=r.get("message_id"),
            conversation_id=r.get("conversation_id"),
            position=r.get("position") or {},
        ),
    )


def search_code(
    conn: psycopg.Connection, request: Request, caller: Principal, body: CodeSearchRequest
) -> list[CodeHit]:
    """code_embeddings nearest to the query (tenant-scoped by the connection), then callers, callees, concepts and
    last commit from the code graph, which is opened only when there are hits, and the generating task when the
    caller may see it (read from Postgres on the same connection)."""
    from cogo.code.search import attach_graph_context, nearest_code
    from cogo.embed import get_embedder
    from cogo.graph import open_graph

    settings = request.app.state.settings
    hits = nearest_code(
        conn,
        get_embedder(settings.embedder),
        organization_id=caller.organization_id,
        query=body.query,
        k=body.k,
        repo=body.repo,
    )
    if hits:
        with open_graph(settings, read_only=True) as graph:
            attach_graph_context(conn, graph, hits, organization_id=caller.organization_id, user_id=caller.user_id)
    return [CodeHit(**hit) for hit in hits]


def _as_mapping(row: Any) -> Mapping[str, Any]:
    if isinstance(row, Mapping):
        return row
    if hasattr(row, "model_dump"):
        return row.model_dump()
    return vars(row)


async def _run(request: Request, caller: Principal, adapter: Any, *args: Any) -> Any:
    pool = request.app.state.sync_pool

    def call() -> Any:
        with sync_tenant_transaction(pool, caller.organization_id) as conn:
            return adapter(conn, *args)

    try:
        # The worker's search limiter (COGO_SERVICE_SEARCH_CONCURRENCY) rather than anyio's 40 threads.
        return await anyio.to_thread.run_sync(call, limiter=request.app.state.search_limiter)
    except CogoError as exc:
        log.error("search failed: %s", exc)
        raise HTTPException(503, "search is temporarily unavailable") from None


@router.post("", response_model=SearchResponse, summary="Hybrid search over messages and file chunks")
async def search(body: SearchRequest, request: Request, caller: Caller) -> SearchResponse:
    """The k best chunks for `query` (vector and full-text, fused), each with its citation and score,
    among the caller's organization's messages and workspace files (optionally one agent's knowledge)."""
    return SearchResponse(hits=await _run(request, caller, search_knowledge, caller, body))


@router.post("/code", response_model=CodeSearchResponse, summary="Code search with graph context")
async def code_search_route(body: CodeSearchRequest, request: Request, caller: Caller) -> CodeSearchResponse:
    """The k code chunks (functions, classes) nearest to `query` in the caller's repositories, each with its
    callers, callees, concepts and last commit from the code graph, and the agent task that generated it if the
    caller may see that task (`GET /v1/tasks/{id}` would show it)."""
    return CodeSearchResponse(hits=await _run(request, caller, search_code, request, caller, body))
