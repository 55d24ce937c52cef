"""Mounts the read service on the app: routes, the access log, and the per-worker resources (the Postgres
pool, and the Clerk verifier, which asks the directory through that pool) opened and closed with the app's
lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
from psycopg_pool import AsyncConnectionPool

from cogo.service.access_log import AccessLogMiddleware
from cogo.service.auth import ClerkVerifier, Revocations
from cogo.service.base_app import ReadServiceApp
from cogo.service.conversations import router as conversations_router
from cogo.service.conversations import tasks_router
from cogo.service.db import directory_revocation, make_pool, make_sync_pool
from cogo.service.graph_routes import router as graph_router
from cogo.service.hot_reads import HotReadsMiddleware
from cogo.service.inline_reads import InlineReads, postgres_is_local
from cogo.service.search import router as search_router
from cogo.service.settings import ServiceSettings

log = logging.getLogger("cogo.service")


def install_read_service(app: ReadServiceApp, service_settings: ServiceSettings | None = None) -> None:
    app.state.service_settings = service_settings or ServiceSettings.from_env()
    for router in (conversations_router, tasks_router, search_router, graph_router):
        app.include_router(router)
    # Outside FastAPI's own layers: the short path for the hot reads pays for none of them, and the access log
    # (outermost) records every request, those answered by the short path included.
    app.outer_middleware += [AccessLogMiddleware, HotReadsMiddleware]
    app.description = (
        "Conversations, messages, tasks, search and code-graph queries of the caller's organization. "
        "Every /v1 route needs `Authorization: Bearer <Clerk session token>` of a user with an active organization."
    )

    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: ReadServiceApp) -> AsyncIterator[Any]:
        from cogo.services import database_url

        settings: ServiceSettings = app_.state.service_settings
        app_.state.search_limiter = anyio.CapacityLimiter(settings.search_concurrency)
        url = database_url(app_.state.settings)
        pool = make_pool(url, settings.pool_size, settings.pool_timeout_s)
        sync_pool = make_sync_pool(url, settings.pool_size, settings.pool_timeout_s)
        app_.state.clerk_verifier = _verifier(settings, pool)
        await pool.open(wait=False)
        sync_pool.open(wait=False)
        app_.state.db_pool, app_.state.sync_pool = pool, sync_pool
        inline = None
        if settings.inline_reads == "on" or (settings.inline_reads == "auto" and postgres_is_local(url)):
            inline = InlineReads(url, settings.inline_timeout_ms)
            await inline.open()
        app_.state.inline_reads = inline
        try:
            async with previous(app_) as state:
                yield state
        finally:
            if inline is not None:
                inline.close()
            await pool.close()
            sync_pool.close()

    app.router.lifespan_context = lifespan


def _verifier(settings: ServiceSettings, pool: AsyncConnectionPool) -> ClerkVerifier | None:
    if not settings.jwks_url or not settings.issuer:
        log.warning("COGO_CLERK_JWKS_URL / COGO_CLERK_ISSUER not set: every /v1 route answers 503")
        return None
    if not settings.authorized_parties:
        log.warning("COGO_CLERK_AUTHORIZED_PARTIES not set: tokens from any authorized party (azp) are accepted")
    revocations = Revocations(partial(directory_revocation, pool), settings.revocation_ttl_s)
    return ClerkVerifier(settings, revocations=revocations)
