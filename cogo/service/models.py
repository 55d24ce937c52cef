"""Response and request bodies of the read service (they are the OpenAPI document's schemas)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code: unauthorized, forbidden, not_found, invalid_request…")
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad request (e.g. an invalid cursor)."},
    401: {"model": ErrorBody, "description": "Missing or invalid session token."},
    403: {"model": ErrorBody, "description": "The session has no active organization."},
    404: {"model": ErrorBody, "description": "No such resource in the caller's organization."},
    422: {"model": ErrorBody, "description": "Request validation failed."},
    503: {"model": ErrorBody, "description": "A backing service or feature is unavailable."},
}


class Conversation(BaseModel):
    id: uuid.UUID
    user_id: str
    agent_id: uuid.UUID | None
    title: str | None
    visibility: Literal["private", "shared"]
    metadata: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime = Field(description="Time of the last message (last activity).")
    archived_at: dt.datetime | None


class ConversationPage(BaseModel):
    items: list[Conversation]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class AttachedFile(BaseModel):
    id: uuid.UUID
    filename: str
    kind: Literal["upload", "generated", "attachment"]
    mime_type: str | None
    size_bytes: int
    storage_path: str = Field(description="Relative to the workspace root.")


class Message(BaseModel):
    id: int
    conversation_id: uuid.UUID
    role: Literal["user", "assistant", "system", "tool"]
    user_id: str | None
    agent_id: uuid.UUID | None
    content: str
    content_parts: list[Any]
    token_count: int | None
    model: str | None
    created_at: dt.datetime
    files: list[AttachedFile]


class MessagePage(BaseModel):
    items: list[Message]
    next_cursor: str | None


class TaskStep(BaseModel):
    id: int
    step_name: str | None
    status: Literal["ok", "error", "skipped"] | None
    details: Any
    created_at: dt.datetime


class TaskProgress(BaseModel):
    steps_total: int
    steps_ok: int
    steps_error: int
    steps_skipped: int


class Task(BaseModel):
    id: uuid.UUID
    conversation_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    user_id: str | None
    title: str | None
    prompt: str | None
    status: Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
    final_output: Any
    created_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    progress: TaskProgress
    steps: list[TaskStep]


SearchKind = Literal["message", "file"]
# Postgres text cannot hold NUL; refuse it at the edge (422) instead of failing in the database.
NO_NUL = r"^[^\x00]*$"


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)
    k: int = Field(10, ge=1, le=100)
    agent: uuid.UUID | None = Field(None, description="Search this agent's knowledge (its sources and model).")
    kinds: list[SearchKind] = Field(default_factory=lambda: ["message", "file"], min_length=1)


class Citation(BaseModel):
    kind: SearchKind
    file_id: uuid.UUID | None = None
    filename: str | None = None
    storage_path: str | None = None
    message_id: int | None = None
    conversation_id: uuid.UUID | None = None
    position: dict[str, Any] = Field(default_factory=dict, description="Page, lines or heading of the chunk.")


class SearchHit(BaseModel):
    chunk_id: str
    content: str
    score: float
    citation: Citation


class SearchResponse(BaseModel):
    hits: list[SearchHit]


class CodeSearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)
    k: int = Field(10, ge=1, le=50)
    repo: str | None = Field(None, max_length=1000, pattern=NO_NUL, description="Only this repository.")


class CommitRef(BaseModel):
    hash: str
    message: str | None = None
    author: str | None = None
    timestamp: dt.datetime | None = None


class TaskRef(BaseModel):
    task_id: str
    title: str | None = None
    status: str | None = None


class SymbolRef(BaseModel):
    name: str | None = None
    qualified_name: str | None = None
    path: str | None = None


class CodeHit(BaseModel):
    repo: str
    file_path: str
    symbol: str | None
    symbol_kind: str
    start_line: int | None
    end_line: int | None
    content: str
    score: float
    callers: list[SymbolRef] = Field(default_factory=list)
    callees: list[SymbolRef] = Field(default_factory=list)
    concepts: list[str] = Field(default_factory=list)
    last_commit: CommitRef | None = None
    task: TaskRef | None = None


class CodeSearchResponse(BaseModel):
    hits: list[CodeHit]


class ConceptFunction(BaseModel):
    name: str | None
    signature: str | None
    docstring: str | None
    qualified_name: str | None
    repo: str | None
    path: str | None


class ConceptFunctions(BaseModel):
    concept: str
    functions: list[ConceptFunction]
