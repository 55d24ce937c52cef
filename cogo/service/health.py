"""GET /health: is Postgres reachable, is the graph reachable."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from cogo.errors import CogoError

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str
    postgres: str
    graph: str


def _check_postgres(request: Request) -> str:
    from cogo.db.connect import connect
    from cogo.services import database_url

    try:
        with connect(database_url(request.app.state.settings)) as conn:
            conn.execute("SELECT 1")
        return "ok"
    except CogoError as exc:
        return f"error: {exc}"


def _check_graph(request: Request) -> str:
    from cogo.graph import open_graph

    try:
        with open_graph(request.app.state.settings, read_only=True) as graph:
            graph.query("RETURN 1 AS ok")
        return "ok"
    except CogoError as exc:
        return f"error: {exc}"


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(request: Request) -> JSONResponse:
    postgres, graph = _check_postgres(request), _check_graph(request)
    ok = postgres == "ok" and graph == "ok"
    body = Health(status="ok" if ok else "degraded", postgres=postgres, graph=graph)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
