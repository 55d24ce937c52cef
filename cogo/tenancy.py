"""Who may read what: the organisation scope of every read, and the visibility rules inside an organisation.

Two walls. Every read of a caller runs in a transaction scoped to the caller's organisation (`SCOPE`: role
cogo_reader, whose row-level security policies in sql/0040 show only the rows of `cogo.organization_id`,
read-only), and every query also names the organisation and applies the rules below itself, so a query that
forgets one is still held by the other.

Inside an organisation (the rules, as SQL over named parameters `%(org)s` and `%(me)s`, see `rule_params`):
- a conversation is visible to every member when shared, to its owner only when private; its messages, files
  and searchable chunks follow it (`conversation_visible`); a file attached to a message follows that message's
  conversation too (`file_attachments_visible`);
- a task follows `cogo_task_visible` (sql/0072, 0073): its own user, whoever may see its conversation, and once
  that conversation is gone, whoever could see it then (`task_visible`);
- code (code_embeddings, and the graph's functions by repository) is the organisation's own and the platform's
  (`code_visible`, `VISIBLE_REPOS`).

Used by the read service's routes and by `cogo.knowledge.search` and `cogo.code.search`.

Concepts: Multi-tenancy, Authorization
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

READER_ROLE = "cogo_reader"

# One statement with the effect of SET LOCAL ROLE, SET LOCAL cogo.organization_id and SET TRANSACTION READ ONLY:
# transaction-local, so nothing of a caller outlives the transaction on a pooled connection.
SCOPE = (
    "SELECT set_config('role', %(_cogo_role)s, true), set_config('cogo.organization_id', %(_cogo_org)s, true), "
    "set_config('transaction_read_only', 'on', true)"
)


@dataclass(frozen=True)
class Caller:
    """A member of an organisation reading its data."""

    organization_id: str
    user_id: str


def scope_params(organization_id: str) -> dict[str, str]:
    return {"_cogo_role": READER_ROLE, "_cogo_org": organization_id}


def scope(conn: psycopg.Connection[Any], organization_id: str) -> None:
    """Inside an open transaction: the reader role, `organization_id`'s rows only, read-only, until it ends."""
    conn.execute(SCOPE, scope_params(organization_id))


def rule_params(caller: Caller) -> dict[str, str]:
    """The parameters the rules below name."""
    return {"org": caller.organization_id, "me": caller.user_id}


def conversation_visible(alias: str = "c") -> str:
    """The conversation `alias` is the caller's to see (shared, or theirs)."""
    return f"({alias}.visibility = 'shared' OR {alias}.user_id = %(me)s)"


def file_attachments_visible(alias: str = "f") -> str:
    """The file `alias` is attached to no message of a conversation the caller may not see (an attachment follows
    the most private conversation it was shared in, whatever its own conversation column says)."""
    return (
        "NOT EXISTS (SELECT 1 FROM message_files mf JOIN messages am ON am.id = mf.message_id "
        "JOIN conversations ac ON ac.id = am.conversation_id AND ac.organization_id = am.organization_id "
        f"WHERE mf.file_id = {alias}.id AND NOT {conversation_visible('ac')})"
    )


def task_visible(alias: str = "t") -> str:
    """The agent task `alias` is the caller's to see."""
    return f"cogo_task_visible({alias}, %(me)s)"


def code_visible(alias: str) -> str:
    """The code_embeddings row `alias` is of a repository the organisation sees: its own or the platform's."""
    return f"({alias}.organization_id = %(org)s OR {alias}.organization_id IS NULL)"


# Repositories the organisation sees in the code graph: those with code of its own or of the platform (a repository
# in the graph without code embeddings yet is shown to nobody).
VISIBLE_REPOS = f"SELECT DISTINCT e.repo FROM code_embeddings e WHERE {code_visible('e')}"
