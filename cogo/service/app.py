"""The read service: `create_app()` assembles it (`cogo serve` runs it under granian).

A request passes BodyLimit (413 before an oversized body is read), the JSON access log, then FastAPI: a route in
cogo/service/routes/ with its one dependency (cogo/service/deps.py: the caller from a Clerk session token, as the
caller's tenant, through which every read is in the organisation scope of cogo/tenancy.py).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
from fastapi import FastAPI

from cogo import __version__
from cogo.config import Settings
from cogo.local_services import database_url
from cogo.service.access_log import AccessLogMiddleware
from cogo.service.auth import ClerkVerifier, DirectoryLookup, Revocations
from cogo.service.db import directory_revocation, make_pool
from cogo.service.errors import install_error_handlers
from cogo.service.limits import BodyLimit
from cogo.service.routes import conversations, graph, health, search, tasks, webhooks
from cogo.service.settings import ServiceSettings

log = logging.getLogger("cogo.service")


def create_app(settings: Settings | None = None) -> FastAPI:
    service = ServiceSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Per worker: the Postgres pool, the Clerk verifier (it asks the directory through the pool), the search turns.
        pool = make_pool(database_url(app.state.settings), service.pool_size, service.pool_timeout_s)
        await pool.open(wait=False)
        app.state.db_pool = pool
        app.state.clerk_verifier = _verifier(service, partial(directory_revocation, pool))
        app.state.search_limiter = anyio.CapacityLimiter(service.search_concurrency)
        # What is loaded by now lives as long as the worker: kept out of the collector's way, full collections
        # (pauses that land in the latency tail) stay short.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            await pool.close()

    app = FastAPI(
        title="cogo read service",
        version=__version__,
        description="Conversations, messages, tasks, search and code-graph queries of the caller's organization. "
        "Every /v1 route needs `Authorization: Bearer <Clerk session token>` of a user with an active organization.",
        lifespan=lifespan,
    )
    app.state.settings = settings or Settings.from_env()
    install_error_handlers(app)
    for module in (health, webhooks, conversations, tasks, search, graph):
        app.include_router(module.router)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(BodyLimit, max_bytes=service.max_body_bytes)  # added last: outermost, before anything reads
    return app


def _verifier(service: ServiceSettings, lookup: DirectoryLookup) -> ClerkVerifier | None:
    if not service.jwks_url or not service.issuer:
        log.warning("COGO_CLERK_JWKS_URL / COGO_CLERK_ISSUER not set: every /v1 route answers 503")
        return None
    if not service.authorized_parties:
        log.warning("COGO_CLERK_AUTHORIZED_PARTIES not set: tokens from any authorized party (azp) are accepted")
    return ClerkVerifier(service, revocations=Revocations(lookup, service.revocation_ttl_s))
