"""The read service: FastAPI app factory (`cogo serve`, or `uvicorn --factory cogo.service.app:create_app`).

Routers live in their own modules and are mounted here; every route answers errors as
{"error": {"code": ..., "message": ...}}.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cogo import __version__
from cogo.config import Settings
from cogo.service.base_app import ReadServiceApp
from cogo.service.health import router as health_router
from cogo.service.limits import BodyLimit
from cogo.service.read_service import install_read_service
from cogo.service.settings import ServiceSettings
from cogo.service.webhooks import router as clerk_webhooks_router

log = logging.getLogger("cogo.service")


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def create_app(settings: Settings | None = None) -> ReadServiceApp:
    app = ReadServiceApp(title="cogo read service", version=__version__)
    app.state.settings = settings or Settings.from_env()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            400: "bad_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            409: "conflict",
            422: "invalid_request",
            503: "unavailable",
        }.get(exc.status_code, "error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse(
            error_body("invalid_request", "request validation failed", details=details), status_code=422
        )

    @app.exception_handler(psycopg.OperationalError)
    async def database_unavailable(_: Request, exc: psycopg.OperationalError) -> JSONResponse:
        # The database is down or the pool gave no connection in time (psycopg_pool.PoolTimeout): a 503 the
        # client may retry, in the errors' shape, without the driver's message (it names hosts and roles).
        log.error("database unavailable: %s", exc)
        return JSONResponse(error_body("unavailable", "the database is unavailable; retry later"), status_code=503)

    app.include_router(health_router)
    install_read_service(app)
    app.include_router(clerk_webhooks_router)
    max_bytes = ServiceSettings.from_env().max_body_bytes
    app.outer_middleware.insert(0, lambda inner: BodyLimit(inner, max_bytes))  # outermost: before anything reads
    return app
