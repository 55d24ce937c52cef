"""POST /v1/search (messages and file chunks) and POST /v1/search/code (code with its graph context).

The searches belong to cogo.knowledge and cogo.code; this module scopes and serves them. Their reads go through
the caller's tenant transaction on the worker's pool; the query's embedding (CPU) and the graph lookup (a
blocking client) run in worker threads. Each worker runs COGO_SERVICE_SEARCH_CONCURRENCY searches at once and
queues the rest in arrival order: dozens at once would only take turns at the GIL and the cores.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import numpy as np
import psycopg
from fastapi import APIRouter, HTTPException, Request
from pgvector.psycopg import register_vector_async
from psycopg.rows import dict_row

from cogo.code.search import (
    ITERATIVE_SCAN,
    VISIBLE_TASKS,
    by_score,
    graph_context,
    named_tasks,
    nearest_code_query,
    symbol_ids,
    task_uuids,
    with_context,
)
from cogo.embed import get_embedder
from cogo.errors import CogoError
from cogo.knowledge.search import ChunkHit, search_chunks_async
from cogo.service.db import Tenant
from cogo.service.deps import CallerTenant
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
from cogo.tenancy import rule_params

log = logging.getLogger("cogo.service.search")
router = APIRouter(prefix="/v1/search", tags=["search"], responses=ERROR_RESPONSES)


@router.post("", response_model=SearchResponse, summary="Hybrid search over messages and file chunks")
async def search(body: SearchRequest, request: Request, db: CallerTenant) -> SearchResponse:
    """The k best chunks for `query` (vector and full-text, fused), each with its citation and score,
    among the caller's organization's messages and workspace files (optionally one agent's knowledge)."""
    async with _searching(request, db) as conn:
        rows = await search_chunks_async(
            conn, db.caller, body.query, body.k, body.agent, body.kinds, embed=_embed, default_model=_model(request)
        )
    return SearchResponse(hits=[_search_hit(row) for row in rows])


@router.post("/code", response_model=CodeSearchResponse, summary="Code search with graph context")
async def code_search(body: CodeSearchRequest, request: Request, db: CallerTenant) -> CodeSearchResponse:
    """The k code chunks (functions, classes) nearest to `query` in the caller's repositories, each with its
    callers, callees, concepts and last commit from the code graph, and the agent task that generated it if the
    caller may see that task (`GET /v1/tasks/{id}` would show it)."""
    async with _searching(request, db) as conn:
        embedder = await anyio.to_thread.run_sync(get_embedder, _model(request))  # loads the model on first use
        vector = await anyio.to_thread.run_sync(lambda: embedder.embed([body.query])[0])
        await conn.execute(ITERATIVE_SCAN)
        query = nearest_code_query(embedder, vector, db.caller.organization_id, body.k, body.repo)
        hits = by_score(await _rows(conn, *query))
        if hits:
            context = await anyio.to_thread.run_sync(_graph_context, request, symbol_ids(hits))
            ids = task_uuids(named_tasks(context))
            tasks = await _rows(conn, VISIBLE_TASKS, {**rule_params(db.caller), "ids": ids}) if ids else []
            with_context(hits, context, tasks)
    return CodeSearchResponse(hits=[CodeHit(**hit) for hit in hits])


@asynccontextmanager
async def _searching(request: Request, db: Tenant) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """The worker's turn to search, and a connection in the caller's tenant transaction with pgvector's types."""
    try:
        async with request.app.state.search_limiter, db.transaction() as conn:
            if conn.adapters.types.get("vector") is None:  # looked up once per pooled connection
                await register_vector_async(conn)
            yield conn
    except CogoError as exc:  # the embedder or the graph
        log.error("search failed: %s", exc)
        raise HTTPException(503, "search is temporarily unavailable") from None


def _model(request: Request) -> str:
    return request.app.state.settings.embedder


async def _embed(model: str, text: str) -> np.ndarray:
    return await anyio.to_thread.run_sync(lambda: get_embedder(model).embed([text])[0])


async def _rows(conn: psycopg.AsyncConnection[Any], statement: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    cur = psycopg.AsyncCursor(conn, row_factory=dict_row)  # server-side binding: the query vector goes in binary
    await cur.execute(statement, params)
    return await cur.fetchall()


def _graph_context(request: Request, ids_by_label: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    from cogo.graph import open_graph

    with open_graph(request.app.state.settings, read_only=True) as graph:
        return graph_context(graph, ids_by_label)


def _search_hit(row: ChunkHit) -> SearchHit:
    return SearchHit(
        chunk_id=str(row.chunk_id),
        content=row.content,
        score=float(row.score),
        citation=Citation(
            kind="message" if row.message_id is not None else "file",
            file_id=row.file_id,
            filename=row.filename,
            storage_path=row.storage_path,
            message_id=row.message_id,
            conversation_id=row.conversation_id,
            position=row.position or {},
        ),
    )
