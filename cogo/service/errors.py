"""Every error the read service answers has one shape: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("cogo.service")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "invalid_request",
    503: "unavailable",
}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


async def http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    body = error_body(CODES.get(exc.status_code, "error"), str(exc.detail))
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
    return JSONResponse(error_body("invalid_request", "request validation failed", details=details), status_code=422)


async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # The database is down or the pool gave no connection in time (psycopg_pool.PoolTimeout): a 503 the client may
    # retry, without the driver's message (it names hosts and roles).
    log.error("database unavailable: %s", exc)
    return JSONResponse(error_body("unavailable", "the database is unavailable; retry later"), status_code=503)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(psycopg.OperationalError, database_unavailable)
