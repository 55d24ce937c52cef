"""GET /v1/conversations, /v1/conversations/{id} and /v1/conversations/{id}/messages.

What the caller sees is cogo.tenancy's rule (shared conversations of the organisation and the caller's own
private ones); a conversation the caller may not see answers 404 exactly like one that does not exist. The
pages go out as orjson bodies with JSON columns passed through untouched (cogo.service.responses); their pydantic
models document them.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response

from cogo.service.deps import CallerTenant
from cogo.service.models import ERROR_RESPONSES, Conversation, ConversationPage, Message, MessagePage
from cogo.service.pagination import decode_cursor, encode_cursor
from cogo.service.responses import json_response
from cogo.tenancy import conversation_visible, rule_params

router = APIRouter(prefix="/v1", tags=["conversations"], responses=ERROR_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=100, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page.")]
NOT_FOUND = "conversation not found"
BAD_CURSOR = "invalid cursor: pass next_cursor from a previous page unchanged"
CLERK_ID = r"^[A-Za-z0-9_\-]+$"

CONVERSATION_COLUMNS = (
    "c.id, c.user_id, c.agent_id, c.title, c.visibility, c.metadata, c.created_at, c.updated_at, c.archived_at"
)
CONVERSATION_FIELDS = tuple(Conversation.model_fields)  # the order of CONVERSATION_COLUMNS
VISIBLE_CONVERSATION = (
    f"SELECT {CONVERSATION_COLUMNS} FROM conversations c "
    f"WHERE c.id = %(id)s AND c.organization_id = %(org)s AND {conversation_visible('c')}"
)
MESSAGE_FIELDS = tuple(Message.model_fields)  # the order of message_page_sql's select list


@router.get("/conversations", response_model=ConversationPage, summary="Conversations of the organization")
async def list_conversations(
    db: CallerTenant,
    agent_id: Annotated[uuid.UUID | None, Query(description="Only this agent's conversations.")] = None,
    user_id: Annotated[
        str | None, Query(max_length=200, pattern=CLERK_ID, description="Only this user's conversations.")
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """Newest activity first (updated_at, then id). Shared conversations of the organization and the
    caller's own private ones."""
    params: dict[str, Any] = {**rule_params(db.caller), "limit": limit + 1}
    where = ["c.organization_id = %(org)s", conversation_visible("c")]
    if agent_id is not None:
        where.append("c.agent_id = %(agent)s")
        params["agent"] = agent_id
    if user_id is not None:
        where.append("c.user_id = %(user)s")
        params["user"] = user_id
    if cursor is not None:
        params["at"], key = decode_cursor(cursor)
        params["after"] = _uuid_key(key)
        where.append("(c.updated_at, c.id) < (%(at)s, %(after)s)")
    sql = (
        f"SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE {' AND '.join(where)} "
        "ORDER BY c.updated_at DESC, c.id DESC LIMIT %(limit)s"
    )
    # Prepared (one generic plan) only without filters: a generic plan cannot tell a rare agent or user from one
    # with most of the organisation's conversations, and a plan per request picks the index for each.
    (rows,) = await db.read((sql, params), raw_json=True, prepared=agent_id is None and user_id is None)
    page = rows[:limit]
    return json_response(
        {
            "items": [dict(zip(CONVERSATION_FIELDS, r, strict=True)) for r in page],
            "next_cursor": encode_cursor(page[-1][7], page[-1][0]) if len(rows) > limit else None,
        }
    )


@router.get("/conversations/{conversation_id}", response_model=Conversation, summary="One conversation")
async def get_conversation(conversation_id: uuid.UUID, db: CallerTenant) -> Conversation:
    (rows,) = await db.read((VISIBLE_CONVERSATION, {**rule_params(db.caller), "id": conversation_id}))
    if not rows:
        raise HTTPException(404, NOT_FOUND)
    return Conversation(**dict(zip(CONVERSATION_FIELDS, rows[0], strict=True)))


@router.get(
    "/conversations/{conversation_id}/messages", response_model=MessagePage, summary="Messages of a conversation"
)
async def list_messages(
    conversation_id: uuid.UUID,
    db: CallerTenant,
    limit: Limit = 50,
    cursor: Cursor = None,
    order: Annotated[str, Query(pattern="^(asc|desc)$", description="asc: oldest first; desc: newest first.")] = "asc",
) -> Response:
    """A page of messages in time order, each with its attached (active) files."""
    params: dict[str, Any] = {**rule_params(db.caller), "id": conversation_id, "limit": limit + 1}
    if cursor is not None:
        params["at"], key = decode_cursor(cursor)
        params["after"] = _int_key(key)
    page_sql = message_page_sql(order, resumes=cursor is not None)
    conversation, rows = await db.read((VISIBLE_CONVERSATION, params), (page_sql, params), raw_json=True, prepared=True)
    if not conversation:
        raise HTTPException(404, NOT_FOUND)
    page = rows[:limit]
    return json_response(
        {
            "items": [dict(zip(MESSAGE_FIELDS, r, strict=True)) for r in page],
            "next_cursor": encode_cursor(page[-1][9], page[-1][0]) if len(rows) > limit else None,
        }
    )


def message_page_sql(order: str, resumes: bool) -> str:
    """A page of a conversation's messages with their active files. The visibility rule is repeated here so that
    the messages of a conversation the caller may not see are never even read; the conversation query beside it
    only tells 404 from an empty page."""
    where = [
        "m.conversation_id = %(id)s",
        "m.organization_id = %(org)s",
        "EXISTS (SELECT 1 FROM conversations c WHERE c.id = %(id)s AND c.organization_id = %(org)s "
        f"AND {conversation_visible('c')})",
    ]
    if resumes:
        where.append(f"(m.created_at, m.id) {'>' if order == 'asc' else '<'} (%(at)s, %(after)s)")
    direction = "ASC" if order == "asc" else "DESC"
    return (
        "SELECT m.id, m.conversation_id, m.role, m.user_id, m.agent_id, m.content, m.content_parts, "
        "m.token_count, m.model, m.created_at, coalesce(f.files, '[]'::json) "
        "FROM messages m LEFT JOIN LATERAL ("
        "  SELECT json_agg(json_build_object('id', f.id, 'filename', f.filename, 'kind', f.kind, "
        "         'mime_type', f.mime_type, 'size_bytes', f.size_bytes, 'storage_path', f.storage_path) "
        "         ORDER BY f.filename) AS files "
        "    FROM message_files mf JOIN files f ON f.id = mf.file_id AND f.organization_id = mf.organization_id "
        "   WHERE mf.message_id = m.id AND mf.organization_id = %(org)s AND f.status = 'active'"
        f") f ON true WHERE {' AND '.join(where)} "
        f"ORDER BY m.created_at {direction}, m.id {direction} LIMIT %(limit)s"
    )


def _uuid_key(key: str) -> uuid.UUID:
    try:
        return uuid.UUID(key)
    except ValueError:
        raise HTTPException(400, BAD_CURSOR) from None


def _int_key(key: str) -> int:
    try:
        value = int(key)
    except ValueError:
        raise HTTPException(400, BAD_CURSOR) from None
    if not -(2**63) <= value < 2**63:
        raise HTTPException(400, BAD_CURSOR)
    return value
