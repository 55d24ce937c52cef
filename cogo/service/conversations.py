"""Conversations, their messages, and agent tasks, scoped to the caller's organisation.

Visibility: a shared conversation is visible to its whole organisation, a private one to its owner only.
A conversation (or task) the caller may not see answers 404 exactly like one that does not exist.
Every query names the organisation itself; row-level security (sql/0040) enforces it a second time.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from psycopg_pool import AsyncConnectionPool

from cogo.service.auth import Principal, current_principal
from cogo.service.db import pool_of, tenant_queries
from cogo.service.models import (
    ERROR_RESPONSES,
    Conversation,
    ConversationPage,
    Message,
    MessagePage,
    Task,
    TaskProgress,
    TaskStep,
)
from cogo.service.pagination import decode_cursor, encode_cursor
from cogo.service.responses import json_response

router = APIRouter(prefix="/v1", tags=["conversations"], responses=ERROR_RESPONSES)

Caller = Annotated[Principal, Depends(current_principal)]
Pool = Annotated[AsyncConnectionPool, Depends(pool_of)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page.")]

VISIBLE = "(c.visibility = 'shared' OR c.user_id = %(me)s)"
CONVERSATION_COLUMNS = (
    "c.id, c.user_id, c.agent_id, c.title, c.visibility, c.metadata, c.created_at, c.updated_at, c.archived_at"
)
CONVERSATION_FIELDS = tuple(Conversation.model_fields)  # the same order as CONVERSATION_COLUMNS
MESSAGE_FIELDS = tuple(Message.model_fields)  # the same order as list_messages' select list
NOT_FOUND = "conversation not found"
CLERK_ID = r"^[A-Za-z0-9_\-]+$"


def _conversation(row: tuple[Any, ...]) -> Conversation:
    return Conversation(
        id=row[0],
        user_id=row[1],
        agent_id=row[2],
        title=row[3],
        visibility=row[4],
        metadata=row[5],
        created_at=row[6],
        updated_at=row[7],
        archived_at=row[8],
    )


@router.get("/conversations", response_model=ConversationPage, summary="Conversations of the organization")
async def list_conversations(
    caller: Caller,
    pool: Pool,
    agent_id: Annotated[uuid.UUID | None, Query(description="Only this agent's conversations.")] = None,
    user_id: Annotated[
        str | None, Query(max_length=200, pattern=CLERK_ID, description="Only this user's conversations.")
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """Newest activity first (updated_at, then id). Shared conversations of the organization and the
    caller's own private ones."""
    after = conversation_cursor(cursor) if cursor is not None else None
    return json_response(await conversation_page(pool, caller, agent_id, user_id, limit, after))


def conversation_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """The (updated_at, id) a conversation page resumes after; HTTPException 400 for a bad cursor."""
    at, key = decode_cursor(cursor)
    return at, _uuid_key(key)


@dataclass(frozen=True)
class PageQuery:
    """The statements of one page's tenant transaction (cogo.service.db.tenant_queries), and whether they run as
    prepared statements. Built once, run by the route (on the worker's pool) or by the short path
    (cogo.service.hot_reads, possibly on its inline connection)."""

    statements: tuple[tuple[str, dict[str, Any]], ...]
    prepared: bool
    limit: int


def conversation_page_query(
    caller: Principal,
    agent_id: uuid.UUID | None,
    user_id: str | None,
    limit: int,
    after: tuple[dt.datetime, uuid.UUID] | None,
) -> PageQuery:
    """The query of GET /v1/conversations; its rows make the body with `conversation_page_body`."""
    params: dict[str, Any] = {"org": caller.organization_id, "me": caller.user_id, "limit": limit + 1}
    where = ["c.organization_id = %(org)s", VISIBLE]
    if agent_id is not None:
        where.append("c.agent_id = %(agent)s")
        params["agent"] = agent_id
    if user_id is not None:
        where.append("c.user_id = %(user)s")
        params["user"] = user_id
    if after is not None:
        params["at"], params["after"] = after
        where.append("(c.updated_at, c.id) < (%(at)s, %(after)s)")
    sql = (
        f"SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE {' AND '.join(where)} "
        "ORDER BY c.updated_at DESC, c.id DESC LIMIT %(limit)s"
    )
    # Prepared (one generic plan) only without filters: a generic plan cannot tell a rare agent or user from one
    # with most of the organisation's conversations, and a plan per request picks the index for each.
    return PageQuery(((sql, params),), prepared=agent_id is None and user_id is None, limit=limit)


def conversation_page_body(query: PageQuery, results: list[list[tuple[Any, ...]]]) -> dict[str, Any]:
    (rows,) = results
    page = rows[: query.limit]
    return {
        "items": [dict(zip(CONVERSATION_FIELDS, r, strict=True)) for r in page],
        "next_cursor": encode_cursor(page[-1][7], page[-1][0]) if len(rows) > query.limit else None,
    }


async def conversation_page(
    pool: AsyncConnectionPool,
    caller: Principal,
    agent_id: uuid.UUID | None,
    user_id: str | None,
    limit: int,
    after: tuple[dt.datetime, uuid.UUID] | None,
) -> dict[str, Any]:
    """The body of GET /v1/conversations."""
    query = conversation_page_query(caller, agent_id, user_id, limit, after)
    return conversation_page_body(query, await run_page_query(pool, caller, query))


async def run_page_query(pool: AsyncConnectionPool, caller: Principal, query: PageQuery) -> list[list[tuple[Any, ...]]]:
    return await tenant_queries(pool, caller.organization_id, *query.statements, raw_json=True, prepared=query.prepared)


@router.get("/conversations/{conversation_id}", response_model=Conversation, summary="One conversation")
async def get_conversation(conversation_id: uuid.UUID, caller: Caller, pool: Pool) -> Conversation:
    (rows,) = await tenant_queries(pool, caller.organization_id, _visible_conversation(conversation_id, caller))
    if not rows:
        raise HTTPException(404, NOT_FOUND)
    return _conversation(rows[0])


def _visible_conversation(conversation_id: uuid.UUID, caller: Principal) -> tuple[str, dict[str, Any]]:
    return (
        f"SELECT {CONVERSATION_COLUMNS} FROM conversations c "
        f"WHERE c.id = %(id)s AND c.organization_id = %(org)s AND {VISIBLE}",
        {"id": conversation_id, "org": caller.organization_id, "me": caller.user_id},
    )


@router.get(
    "/conversations/{conversation_id}/messages", response_model=MessagePage, summary="Messages of a conversation"
)
async def list_messages(
    conversation_id: uuid.UUID,
    caller: Caller,
    pool: Pool,
    limit: Limit = 50,
    cursor: Cursor = None,
    order: Annotated[str, Query(pattern="^(asc|desc)$", description="asc: oldest first; desc: newest first.")] = "asc",
) -> Response:
    """A page of messages in time order, each with its attached (active) files."""
    after = message_cursor(cursor) if cursor is not None else None
    body = await message_page(pool, caller, conversation_id, limit, after, order)
    if body is None:
        raise HTTPException(404, NOT_FOUND)
    return json_response(body)


def message_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """The (created_at, id) a message page resumes after; HTTPException 400 for a bad cursor."""
    at, key = decode_cursor(cursor)
    return at, _int_key(key)


def message_page_query(
    caller: Principal, conversation_id: uuid.UUID, limit: int, after: tuple[dt.datetime, int] | None, order: str
) -> PageQuery:
    """The query of GET /v1/conversations/{id}/messages; its rows make the body with `message_page_body`."""
    params: dict[str, Any] = {"conv": conversation_id, "org": caller.organization_id, "limit": limit + 1}
    # The visibility test is repeated here so that the messages of a conversation the caller may not see are
    # never even read; the separate conversation query only tells 404 from an empty page.
    where = [
        "m.conversation_id = %(conv)s",
        "m.organization_id = %(org)s",
        f"EXISTS (SELECT 1 FROM conversations c WHERE c.id = %(conv)s AND c.organization_id = %(org)s AND {VISIBLE})",
    ]
    if after is not None:
        params["at"], params["after"] = after
        where.append(f"(m.created_at, m.id) {'>' if order == 'asc' else '<'} (%(at)s, %(after)s)")
    direction = "ASC" if order == "asc" else "DESC"
    sql = (
        "SELECT m.id, m.conversation_id, m.role, m.user_id, m.agent_id, m.content, m.content_parts, "
        "m.token_count, m.model, m.created_at, coalesce(f.files, '[]'::json) "
        f"FROM messages m LEFT JOIN LATERAL ("
        "  SELECT json_agg(json_build_object('id', f.id, 'filename', f.filename, 'kind', f.kind, "
        "         'mime_type', f.mime_type, 'size_bytes', f.size_bytes, 'storage_path', f.storage_path) "
        "         ORDER BY f.filename) AS files "
        "    FROM message_files mf JOIN files f ON f.id = mf.file_id AND f.organization_id = mf.organization_id "
        "   WHERE mf.message_id = m.id AND mf.organization_id = %(org)s AND f.status = 'active'"
        f") f ON true WHERE {' AND '.join(where)} "
        f"ORDER BY m.created_at {direction}, m.id {direction} LIMIT %(limit)s"
    )
    return PageQuery((_visible_conversation(conversation_id, caller), (sql, params)), prepared=True, limit=limit)


def message_page_body(query: PageQuery, results: list[list[tuple[Any, ...]]]) -> dict[str, Any] | None:
    """The page's body, None when the caller may not see the conversation."""
    conversation, rows = results
    if not conversation:
        return None
    page = rows[: query.limit]
    return {
        "items": [dict(zip(MESSAGE_FIELDS, r, strict=True)) for r in page],
        "next_cursor": encode_cursor(page[-1][9], page[-1][0]) if len(rows) > query.limit else None,
    }


async def message_page(
    pool: AsyncConnectionPool,
    caller: Principal,
    conversation_id: uuid.UUID,
    limit: int,
    after: tuple[dt.datetime, int] | None,
    order: str,
) -> dict[str, Any] | None:
    """The body of GET /v1/conversations/{id}/messages, None when the caller may not see the conversation."""
    query = message_page_query(caller, conversation_id, limit, after, order)
    return message_page_body(query, await run_page_query(pool, caller, query))


tasks_router = APIRouter(prefix="/v1", tags=["tasks"], responses=ERROR_RESPONSES)


@tasks_router.get("/tasks/{task_id}", response_model=Task, summary="A task with its steps")
async def get_task(task_id: uuid.UUID, caller: Caller, pool: Pool) -> Task:
    """For progress display. A task is visible to the caller who started it, to whoever may see its
    conversation, and once that conversation is deleted, to whoever could see it then (cogo_task_visible
    in sql/)."""
    tasks, steps = await tenant_queries(
        pool,
        caller.organization_id,
        (
            "SELECT t.id, t.conversation_id, t.agent_id, t.user_id, t.title, t.prompt, t.status::text, "
            "t.final_output, t.created_at, t.started_at, t.completed_at FROM agent_tasks t "
            "WHERE t.id = %(id)s AND t.organization_id = %(org)s AND cogo_task_visible(t, %(me)s)",
            {"id": task_id, "org": caller.organization_id, "me": caller.user_id},
        ),
        (
            "SELECT id, step_name, status, details, created_at FROM task_steps "
            "WHERE task_id = %(id)s AND organization_id = %(org)s ORDER BY created_at, id",
            {},
        ),
    )
    if not tasks:
        raise HTTPException(404, "task not found")
    task = tasks[0]
    step_models = [TaskStep(id=s[0], step_name=s[1], status=s[2], details=s[3], created_at=s[4]) for s in steps]
    statuses = [s.status for s in step_models]
    return Task(
        id=task[0],
        conversation_id=task[1],
        agent_id=task[2],
        user_id=task[3],
        title=task[4],
        prompt=task[5],
        status=task[6],
        final_output=task[7],
        created_at=task[8],
        started_at=task[9],
        completed_at=task[10],
        progress=TaskProgress(
            steps_total=len(statuses),
            steps_ok=statuses.count("ok"),
            steps_error=statuses.count("error"),
            steps_skipped=statuses.count("skipped"),
        ),
        steps=step_models,
    )


def _uuid_key(key: str) -> uuid.UUID:
    try:
        return uuid.UUID(key)
    except ValueError:
        raise HTTPException(400, "invalid cursor: pass next_cursor from a previous page unchanged") from None


def _int_key(key: str) -> int:
    try:
        value = int(key)
    except ValueError:
        raise HTTPException(400, "invalid cursor: pass next_cursor from a previous page unchanged") from None
    if not -(2**63) <= value < 2**63:
        raise HTTPException(400, "invalid cursor: pass next_cursor from a previous page unchanged")
    return value
