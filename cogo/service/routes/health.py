"""GET /health: does Postgres answer on the worker's pool, does the graph answer."""

from __future__ import annotations

import anyio.to_thread
import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from cogo.errors import CogoError

router = APIRouter(tags=["operations"])
# A health check answers quickly, whatever the pool's own timeout for requests.
POSTGRES_TIMEOUT_S = 2.0


class Health(BaseModel):
    status: str
    postgres: str
    graph: str


async def _check_postgres(request: Request) -> str:
    try:
        async with request.app.state.db_pool.connection(timeout=POSTGRES_TIMEOUT_S) as conn:
            await conn.execute("SELECT 1")
        return "ok"
    except psycopg.Error as exc:  # psycopg_pool.PoolTimeout is one
        return f"error: {type(exc).__name__}"


def _check_graph(request: Request) -> str:
    from cogo.graph import open_graph

    try:
        with open_graph(request.app.state.settings, read_only=True) as graph:
            graph.query("RETURN 1 AS ok")
        return "ok"
    except CogoError as exc:
        return f"error: {exc}"


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(request: Request) -> JSONResponse:
    postgres = await _check_postgres(request)
    graph = await anyio.to_thread.run_sync(_check_graph, request)
    ok = postgres == "ok" and graph == "ok"
    body = Health(status="ok" if ok else "degraded", postgres=postgres, graph=graph)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
