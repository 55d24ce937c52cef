"""Deleting (or, dry run, counting) one batch of a row set together with everything that hangs off it.

Each function runs inside the caller's transaction and returns {item: {organization_id: rows}}, an item
being a table whose rows were deleted, or `unlinked_<table>` for rows kept but unlinked. The
dependants are deleted explicitly, before their parent, so that every table's count is exact; the
foreign keys' own cascades then find nothing left to do.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import psycopg

from cogo.retention.audit import UNLINKED_AGENT_TASKS

ByTable = dict[str, dict[str, int]]


def _grouped(cur: psycopg.Cursor[Any], statement: str, params: Any) -> dict[str, int]:
    """Run a DELETE/UPDATE ... RETURNING organization_id and count its rows per organisation."""
    rows = cur.execute(
        f"WITH d AS ({statement} RETURNING organization_id) SELECT organization_id, count(*) FROM d GROUP BY 1",
        params,
    ).fetchall()
    return {org: int(n) for org, n in rows}


def _add(into: ByTable, table: str, by_org: dict[str, int]) -> None:
    bucket = into.setdefault(table, {})
    for org, n in by_org.items():
        bucket[org] = bucket.get(org, 0) + n


def lock_active_states(cur: psycopg.Cursor[Any], conversation_ids: list[Any], active_since: dt.datetime) -> set[Any]:
    """Lock every agent state of these conversations and return the conversations whose state was updated
    at or after `active_since`: they are kept. Locking all of them (not only the active ones) closes the
    race with a state updated between the batch's selection and its deletion."""
    rows = cur.execute(
        "SELECT conversation_id, updated_at FROM agent_states WHERE conversation_id = ANY(%s) FOR UPDATE",
        (conversation_ids,),
    ).fetchall()
    return {cid for cid, updated_at in rows if updated_at >= active_since}


def purge_conversations(cur: psycopg.Cursor[Any], ids: list[Any]) -> ByTable:
    out: ByTable = {}
    p = {"ids": ids}
    messages_of = "SELECT id FROM messages WHERE conversation_id = ANY(%(ids)s)"
    files_of = "SELECT id FROM files WHERE conversation_id = ANY(%(ids)s)"
    _add(out, "embeddings", _grouped(cur, f"DELETE FROM embeddings WHERE message_id IN ({messages_of})", p))
    _add(out, "embeddings", _grouped(cur, f"DELETE FROM embeddings WHERE file_id IN ({files_of})", p))
    _add(out, "message_files", _grouped(cur, f"DELETE FROM message_files WHERE message_id IN ({messages_of})", p))
    _add(out, "message_files", _grouped(cur, f"DELETE FROM message_files WHERE file_id IN ({files_of})", p))
    _add(out, "messages", _grouped(cur, "DELETE FROM messages WHERE conversation_id = ANY(%(ids)s)", p))
    _add(out, "files", _grouped(cur, "DELETE FROM files WHERE conversation_id = ANY(%(ids)s)", p))
    _add(out, "agent_states", _grouped(cur, "DELETE FROM agent_states WHERE conversation_id = ANY(%(ids)s)", p))
    # A task outlives its conversation, unlinked, not deleted (sql/0006, sql/0073). The conversation's delete
    # trigger would unlink them too; doing it here first is what lets the audit count them.
    _add(
        out,
        UNLINKED_AGENT_TASKS,
        _grouped(cur, "UPDATE agent_tasks SET conversation_id = NULL WHERE conversation_id = ANY(%(ids)s)", p),
    )
    _add(out, "conversations", _grouped(cur, "DELETE FROM conversations WHERE id = ANY(%(ids)s)", p))
    return out


def purge_files(cur: psycopg.Cursor[Any], ids: list[Any]) -> ByTable:
    out: ByTable = {}
    p = {"ids": ids}
    _add(out, "embeddings", _grouped(cur, "DELETE FROM embeddings WHERE file_id = ANY(%(ids)s)", p))
    _add(out, "message_files", _grouped(cur, "DELETE FROM message_files WHERE file_id = ANY(%(ids)s)", p))
    # The files trigger queues each deleted row's disk path in this same transaction.
    _add(out, "files", _grouped(cur, "DELETE FROM files WHERE id = ANY(%(ids)s)", p))
    return out


def purge_states(cur: psycopg.Cursor[Any], ids: list[Any]) -> ByTable:
    return {"agent_states": _grouped(cur, "DELETE FROM agent_states WHERE id = ANY(%(ids)s)", {"ids": ids})}


def purge_inbox(cur: psycopg.Cursor[Any], ids: list[Any]) -> ByTable:
    row = cur.execute(
        "WITH d AS (DELETE FROM clerk_webhook_inbox WHERE svix_id = ANY(%s) RETURNING 1) SELECT count(*) FROM d",
        (ids,),
    ).fetchone()
    return {"clerk_webhook_inbox": {"": int(row[0]) if row else 0}}


# Dry run: the same tables counted over a whole row set, nothing deleted.


def _count(cur: psycopg.Cursor[Any], query: str, params: Any) -> ByTable:
    out: ByTable = defaultdict(dict)
    for table, org, n in cur.execute(query, params).fetchall():
        if n:
            out[table][org] = int(n)
    return dict(out)


def count_conversations(cur: psycopg.Cursor[Any], select_sql: str, params: Any) -> ByTable:
    return _count(
        cur,
        f"""
        WITH conv AS MATERIALIZED ({select_sql}),
             msg AS MATERIALIZED (SELECT id FROM messages WHERE conversation_id IN (SELECT id FROM conv)),
             fil AS MATERIALIZED (SELECT id FROM files WHERE conversation_id IN (SELECT id FROM conv))
        SELECT 'conversations', organization_id, count(*) FROM conversations
            WHERE id IN (SELECT id FROM conv) GROUP BY 2
        UNION ALL SELECT 'messages', organization_id, count(*) FROM messages
            WHERE id IN (SELECT id FROM msg) GROUP BY 2
        UNION ALL SELECT 'files', organization_id, count(*) FROM files WHERE id IN (SELECT id FROM fil) GROUP BY 2
        UNION ALL SELECT 'message_files', organization_id, count(*) FROM message_files
            WHERE message_id IN (SELECT id FROM msg) OR file_id IN (SELECT id FROM fil) GROUP BY 2
        UNION ALL SELECT 'embeddings', organization_id, count(*) FROM embeddings
            WHERE message_id IN (SELECT id FROM msg) OR file_id IN (SELECT id FROM fil) GROUP BY 2
        UNION ALL SELECT 'agent_states', organization_id, count(*) FROM agent_states
            WHERE conversation_id IN (SELECT id FROM conv) GROUP BY 2
        UNION ALL SELECT '{UNLINKED_AGENT_TASKS}', organization_id, count(*) FROM agent_tasks
            WHERE conversation_id IN (SELECT id FROM conv) GROUP BY 2
        """,
        params,
    )


def count_files(cur: psycopg.Cursor[Any], select_sql: str, params: Any, gone_message_filter: str) -> ByTable:
    """`gone_message_filter` is true for a message whose conversation an earlier step deletes: its
    message_files rows are counted there, not here."""
    return _count(
        cur,
        f"""
        WITH fil AS MATERIALIZED ({select_sql})
        SELECT 'files', organization_id, count(*) FROM files WHERE id IN (SELECT id FROM fil) GROUP BY 2
        UNION ALL SELECT 'message_files', mf.organization_id, count(*) FROM message_files mf
            WHERE mf.file_id IN (SELECT id FROM fil)
              AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = mf.message_id AND {gone_message_filter})
            GROUP BY 2
        UNION ALL SELECT 'embeddings', organization_id, count(*) FROM embeddings
            WHERE file_id IN (SELECT id FROM fil) GROUP BY 2
        """,
        params,
    )


def count_states(cur: psycopg.Cursor[Any], select_sql: str, params: Any) -> ByTable:
    return _count(
        cur,
        f"SELECT 'agent_states', organization_id, count(*) FROM agent_states WHERE id IN ({select_sql}) GROUP BY 2",
        params,
    )


def count_inbox(cur: psycopg.Cursor[Any], select_sql: str, params: Any) -> ByTable:
    row = cur.execute(f"SELECT count(*) FROM ({select_sql}) s", params).fetchone()
    n = int(row[0]) if row else 0
    return {"clerk_webhook_inbox": {"": n}} if n else {}
