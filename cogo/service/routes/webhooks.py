"""POST /webhooks/clerk: verify a Clerk (Svix-signed) webhook and store it in clerk_webhook_inbox.

The event is applied later by the clerk_directory asset; this route only verifies and stores, so it
answers quickly and a resend (same svix-id) is stored once. The insert runs on the read service's
connection pool (one autocommit INSERT, outside any tenant scope: the webhook is no member's)."""

from __future__ import annotations

import logging
import os

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from cogo.clerk.apply import first_line
from cogo.clerk.inbox import VerifiedEvent, WebhookRejected, store_event_async, verify_webhook
from cogo.errors import CogoError

log = logging.getLogger("cogo.service.webhooks")
router = APIRouter(tags=["webhooks"])


class WebhookStored(BaseModel):
    status: str  # "stored", or "duplicate" for a resend of an event already in the inbox
    svix_id: str
    event_type: str


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


# Svix (which delivers Clerk's webhooks) stops retrying a message answered with this header; for a signed event
# refused for its content a retry of the same body could only be refused again.
ABORT_RETRIES = {"webhook-delivery": "abort-message"}


def _error(status_code: int, code: str, message: str, *, final: bool = False) -> JSONResponse:
    headers = ABORT_RETRIES if final else None
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status_code, headers=headers)


async def _store(request: Request, event: VerifiedEvent) -> bool:
    async with request.app.state.db_pool.connection() as conn:
        return await store_event_async(conn, event)


@router.post(
    "/webhooks/clerk",
    response_model=WebhookStored,
    responses={
        400: {
            "model": ErrorBody,
            "description": "Signed, but not a Clerk event cogo can store: not strict JSON, nested deeper than 64 "
            "levels, a U+0000 in a string, or a time (timestamp, updated_at, created_at, last_sign_in_at) "
            "not between 2000-01-01 (created_at: 1970) and a day from now. Answered with "
            "`webhook-delivery: abort-message`, so Svix does not retry it",
        },
        401: {"model": ErrorBody, "description": "Bad or missing Svix signature, or timestamp > 5 min off"},
        503: {"model": ErrorBody, "description": "CLERK_WEBHOOK_SECRET unset, or Postgres unreachable"},
    },
    openapi_extra={
        "parameters": [
            {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
            for name in ("svix-id", "svix-timestamp", "svix-signature")
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "description": "A Clerk event"}}},
        },
    },
)
async def clerk_webhook(request: Request) -> JSONResponse:
    """Receive a Clerk webhook: the Svix signature is checked over the raw body with CLERK_WEBHOOK_SECRET,
    then the event is stored in the inbox keyed by svix-id. Forged, replayed (stale timestamp) or malformed
    requests get 4xx and store nothing; so does a signed event Postgres could not store or the mirror not apply
    (see the 400 response)."""
    secret = os.environ.get("CLERK_WEBHOOK_SECRET")  # read per request: rotating it needs no restart
    if not secret:
        return _error(503, "webhook_not_configured", "CLERK_WEBHOOK_SECRET is not set")
    body = await request.body()
    try:
        event = verify_webhook(secret, body, request.headers)
    except WebhookRejected as rejected:
        return _error(rejected.status_code, rejected.code, rejected.message, final=rejected.final)
    try:
        stored = await _store(request, event)
    except CogoError as exc:
        return _error(503, "unavailable", str(exc))
    except psycopg.OperationalError as exc:  # the pool's connections are gone, or none came within its timeout
        return _error(503, "unavailable", f"Postgres unavailable: {type(exc).__name__}")
    except psycopg.DataError as exc:  # a value Postgres refuses that the checks above let through: the event's fault
        return _error(400, "bad_request", f"the event cannot be stored: {first_line(exc)}", final=True)
    except psycopg.Error as exc:  # anything else is ours to fix; Clerk retries a 503 meanwhile
        log.error("cannot store a Clerk webhook: %s", exc)
        return _error(503, "unavailable", f"the event cannot be stored now: {type(exc).__name__}")
    body_out = WebhookStored(
        status="stored" if stored else "duplicate", svix_id=event.svix_id, event_type=event.event_type
    )
    return JSONResponse(body_out.model_dump(), status_code=200)
