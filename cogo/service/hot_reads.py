"""A short path for the two most frequent reads: GET /v1/conversations and GET /v1/conversations/{id}/messages.

A page is cheap for Postgres, so per request most of the service's CPU went to the framework: FastAPI's
routing, parameter and dependency solving, and its middleware layers cost more than the route itself. This
ASGI middleware answers the common case of those two routes directly, with the same functions the routes
call (`conversation_page_query`/`_body`, `message_page_query`/`_body`: the same SQL, tenant scope and body;
run on the worker's inline connection when it has one, cogo.service.inline_reads, else on its pool), and hands
everything else to the FastAPI app unchanged:

- a token that is not in the verifier's cache of verified tokens (so a token is always verified by the
  route's own dependency first, and every 401/403 comes from there), or whose caller the directory now refuses
  (`ClerkVerifier.remembered` asks it as `verify` does: a deleted user, an ended membership);
- a query parameter in any but its plain form (repeated, out of range, a UUID not in canonical form, a
  cursor that does not decode...): FastAPI answers it, with its 422 or 400;
- a conversation the caller may not see (the route answers 404), another method or path, a root_path;
- anything that fails here (the database unavailable, say): the route tries again and answers the error.

It sits outside FastAPI's own middleware (cogo.service.base_app.ReadServiceApp.outer_middleware), inside the
access log: nothing that can fail is left to those layers, since nothing is sent before the body is complete.

What is answered here is therefore exactly what the route would answer; the routes keep their OpenAPI
description and response models. The access log (outside this middleware) records these requests like any
other, with the caller's organisation.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import HTTPException
from psycopg_pool import AsyncConnectionPool
from starlette.types import ASGIApp, Receive, Scope, Send

from cogo.service.auth import ClerkVerifier, Principal
from cogo.service.conversations import (
    PageQuery,
    conversation_cursor,
    conversation_page_body,
    conversation_page_query,
    message_cursor,
    message_page_body,
    message_page_query,
    run_page_query,
)
from cogo.service.inline_reads import InlineReads

LISTING_PATH = "/v1/conversations"
UUID_TEXT = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"  # the canonical form
CANONICAL_UUID = re.compile(UUID_TEXT)
MESSAGES_PATH = re.compile(rf"/v1/conversations/({UUID_TEXT})/messages")
PLAIN_LIMIT = re.compile(r"[1-9][0-9]{0,2}")
CLERK_ID = re.compile(r"[A-Za-z0-9_\-]+")  # the route's pattern, matched as a whole (Python's $ allows a final \n)
MAX_USER_ID_CHARS = 200
MAX_CURSOR_CHARS = 512
MAX_LIMIT = 100


class _ForTheRoute(Exception):
    """This request is the FastAPI route's to answer."""


class HotReadsMiddleware:
    """Answers plain, authenticated listing and message-page requests without FastAPI's per-request machinery.

    Concepts: Performance, Multi-tenancy
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answered = 0  # requests answered here (for tests and diagnostics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        try:
            if path == LISTING_PATH:
                body = await _listing(scope)
            elif path.endswith("/messages") and (match := MESSAGES_PATH.fullmatch(path)):
                body = await _messages(scope, uuid.UUID(match.group(1)))
            else:
                raise _ForTheRoute
        except Exception:  # _ForTheRoute, or a failure (the database down, say): the route answers it
            await self.app(scope, receive, send)
            return
        self.answered += 1
        payload = orjson.dumps(body)
        # The headers of fastapi.Response(payload, media_type="application/json"), in its order.
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(payload)).encode()), (b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _listing(scope: Scope) -> dict[str, Any]:
    params = _plain_params(scope, ("agent_id", "user_id", "limit", "cursor"))
    limit = _limit(params.get("limit"), 20)
    agent_id = params.get("agent_id")
    if agent_id is not None and not CANONICAL_UUID.fullmatch(agent_id):
        raise _ForTheRoute
    user_id = params.get("user_id")
    if user_id is not None and not (len(user_id) <= MAX_USER_ID_CHARS and CLERK_ID.fullmatch(user_id)):
        raise _ForTheRoute
    after = _after(params.get("cursor"), conversation_cursor)
    caller = await _caller(scope)
    agent = uuid.UUID(agent_id) if agent_id is not None else None
    query = conversation_page_query(caller, agent, user_id, limit, after)
    return conversation_page_body(query, await _results(scope, caller, query))


async def _messages(scope: Scope, conversation_id: uuid.UUID) -> dict[str, Any]:
    params = _plain_params(scope, ("limit", "cursor", "order"))
    limit = _limit(params.get("limit"), 50)
    order = params.get("order", "asc")
    if order not in ("asc", "desc"):
        raise _ForTheRoute
    after = _after(params.get("cursor"), message_cursor)
    caller = await _caller(scope)
    query = message_page_query(caller, conversation_id, limit, after, order)
    body = message_page_body(query, await _results(scope, caller, query))
    if body is None:  # the caller may not see this conversation: the route answers the 404
        raise _ForTheRoute
    return body


def _plain_params(scope: Scope, names: tuple[str, ...]) -> dict[str, str]:
    """The route's query parameters, each given at most once (others are ignored, as FastAPI ignores them)."""
    query: bytes = scope["query_string"]
    found: dict[str, str] = {}
    if query:
        text = query.decode("latin-1")
        # The common `limit=20&cursor=...` split by hand; anything escaped, parse_qsl's (a tenth of the request).
        pairs = (
            parse_qsl(text, keep_blank_values=True)
            if "%" in text or "+" in text
            else [(n, v) for n, _, v in (p.partition("=") for p in text.split("&") if p)]
        )
        for name, value in pairs:
            if name in names:
                if name in found:
                    raise _ForTheRoute
                found[name] = value
    return found


def _limit(text: str | None, default: int) -> int:
    if text is None:
        return default
    if not PLAIN_LIMIT.fullmatch(text) or int(text) > MAX_LIMIT:
        raise _ForTheRoute
    return int(text)


def _after(cursor: str | None, decode: Callable[[str], Any]) -> Any:
    if cursor is None:
        return None
    if len(cursor) > MAX_CURSOR_CHARS:
        raise _ForTheRoute
    try:
        return decode(cursor)
    except HTTPException:
        raise _ForTheRoute from None


async def _results(scope: Scope, caller: Principal, query: PageQuery) -> list[list[tuple[Any, ...]]]:
    """The page's rows: from the worker's inline connection when it answers, else from its pool."""
    state = scope["app"].state
    inline: InlineReads | None = getattr(state, "inline_reads", None)
    if inline is not None:
        results = inline.queries(caller.organization_id, query.statements, query.prepared)
        if results is not None:
            return results
    pool: AsyncConnectionPool | None = getattr(state, "db_pool", None)
    if pool is None:
        raise _ForTheRoute
    return await run_page_query(pool, caller, query)


async def _caller(scope: Scope) -> Principal:
    """The principal of an already verified bearer token (read as fastapi.security.HTTPBearer reads it), checked
    against the directory by the verifier as on the routes (a refused caller raises: the route answers it); the
    organisation is left where cogo.service.auth.current_principal leaves it for the access log."""
    verifier: ClerkVerifier | None = getattr(scope["app"].state, "clerk_verifier", None)
    if verifier is None:
        raise _ForTheRoute
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            credentials = credentials.strip()
            caller = await verifier.remembered(credentials) if credentials and scheme.lower() == "bearer" else None
            if caller is None:
                raise _ForTheRoute
            scope.setdefault("state", {})["organization_id"] = caller.organization_id
            return caller
    raise _ForTheRoute
