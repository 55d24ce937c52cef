"""What the database and graph hold: tables, views and row counts, for metadata and checks."""

from __future__ import annotations

import psycopg

# The schema DESIGN.md section 4 promises.
EXPECTED_TABLES = (
    "organizations",
    "users",
    "organization_memberships",
    "agents",
    "agent_knowledge_sources",
    "agent_quick_tasks",
    "organization_agents",
    "conversations",
    "messages",
    "files",
    "message_files",
    "agent_states",
    "embeddings",
    "agent_tasks",
    "task_steps",
    "code_embeddings",
)
EXPECTED_VIEWS = ("ConversationSessions", "ConversationMessages", "AgentTasks", "TaskSteps", "CodeEmbeddings")


def missing_relations(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v', 'p')"
    ).fetchall()
    present = {r[0] for r in rows}
    return [name for name in (*EXPECTED_TABLES, *EXPECTED_VIEWS) if name not in present]


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Exact row counts of the expected tables (for metadata and the `make run` summary)."""
    counts: dict[str, int] = {}
    for table in EXPECTED_TABLES:
        row = conn.execute(psycopg.sql.SQL("SELECT count(*) FROM {}").format(psycopg.sql.Identifier(table))).fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts
