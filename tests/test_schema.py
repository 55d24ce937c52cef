"""The unified schema: every table and view, the seed's enum, ON DELETE behaviour, tenant consistency,
and the COGO seed's section 7.2 queries run verbatim."""

from __future__ import annotations

import uuid

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from cogo.schema_report import EXPECTED_TABLES, EXPECTED_VIEWS, missing_relations


def seed_tenant(db: psycopg.Connection, org: str = "org_a", user: str = "user_a") -> uuid.UUID:
    db.execute("INSERT INTO organizations (id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", (org, org))
    db.execute("INSERT INTO users (id, email) VALUES (%s, %s) ON CONFLICT DO NOTHING", (user, f"{user}@x.example"))
    row = db.execute(
        "INSERT INTO conversations (organization_id, user_id, title) VALUES (%s, %s, 'c') RETURNING id", (org, user)
    ).fetchone()
    assert row
    return row[0]


def test_every_table_and_view_exists(db: psycopg.Connection) -> None:
    assert missing_relations(db) == []
    assert len(EXPECTED_TABLES) == 16 and len(EXPECTED_VIEWS) == 5


def test_task_status_is_the_seeds_enum_exactly(db: psycopg.Connection) -> None:
    labels = [
        r[0]
        for r in db.execute(
            "SELECT enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
            "WHERE t.typname = 'task_status' ORDER BY e.enumsortorder"
        ).fetchall()
    ]
    assert labels == ["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]


def test_seed_indexes_exist(db: psycopg.Connection) -> None:
    names = {r[0] for r in db.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'").fetchall()}
    assert {"idx_tasks_session_id", "idx_tasks_status", "idx_steps_task_id", "messages_conversation_idx"} <= names
    assert "embeddings_hnsw_local_all_minilm_l6_v2" in names


def test_on_delete_behaviour_follows_the_seed(db: psycopg.Connection) -> None:
    conv = seed_tenant(db)
    db.execute(
        "INSERT INTO messages (conversation_id, organization_id, role, content) VALUES (%s, 'org_a', 'user', 'hi')",
        (conv,),
    )
    task = db.execute(
        "INSERT INTO agent_tasks (organization_id, conversation_id, title) VALUES ('org_a', %s, 't') RETURNING id",
        (conv,),
    ).fetchone()[0]  # type: ignore[index]
    db.execute("INSERT INTO task_steps (task_id, organization_id, step_name) VALUES (%s, 'org_a', 'Plan')", (task,))

    db.execute("DELETE FROM conversations WHERE id = %s", (conv,))
    # Messages go with their session (CASCADE); the task stays with session_id NULL (SET NULL) ...
    assert db.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    assert db.execute("SELECT conversation_id, organization_id FROM agent_tasks WHERE id = %s", (task,)).fetchone() == (
        None,
        "org_a",
    )
    # ... and its steps go with the task (CASCADE).
    db.execute("DELETE FROM agent_tasks WHERE id = %s", (task,))
    assert db.execute("SELECT count(*) FROM task_steps").fetchone() == (0,)


def test_a_child_row_cannot_claim_another_organisation(db: psycopg.Connection) -> None:
    conv = seed_tenant(db, "org_a", "user_a")
    seed_tenant(db, "org_b", "user_b")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute(
            "INSERT INTO messages (conversation_id, organization_id, role, content) "
            "VALUES (%s, 'org_b', 'user', 'leak')",
            (conv,),
        )


def test_a_message_moves_its_conversations_last_activity(db: psycopg.Connection) -> None:
    conv = seed_tenant(db)
    db.execute("UPDATE conversations SET updated_at = '2020-01-01' WHERE id = %s", (conv,))
    db.execute(
        "INSERT INTO messages (conversation_id, organization_id, role, content, created_at) "
        "VALUES (%s, 'org_a', 'user', 'a', '2024-05-01T10:00Z'), (%s, 'org_a', 'assistant', 'b', '2024-05-01T10:05Z')",
        (conv, conv),
    )
    updated = db.execute("SELECT updated_at FROM conversations WHERE id = %s", (conv,)).fetchone()[0]  # type: ignore[index]
    assert updated.isoformat() == "2024-05-01T10:05:00+00:00"


def test_deleting_a_file_row_queues_its_disk_deletion(db: psycopg.Connection) -> None:
    conv = seed_tenant(db)
    path = f"org_a/user_a/{conv}/files/uploads/a.txt"
    db.execute(
        "INSERT INTO files (organization_id, user_id, conversation_id, kind, storage_path, filename) "
        "VALUES ('org_a', 'user_a', %s, 'upload', %s, 'a.txt')",
        (conv, path),
    )
    db.execute("DELETE FROM conversations WHERE id = %s", (conv,))  # cascades to the file row
    assert db.execute("SELECT count(*) FROM files").fetchone() == (0,)
    assert db.execute("SELECT storage_path FROM pending_file_deletions").fetchall() == [(path,)]


def test_file_paths_stay_inside_the_workspace(db: psycopg.Connection) -> None:
    seed_tenant(db)
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "INSERT INTO files (organization_id, user_id, kind, storage_path, filename) "
            "VALUES ('org_a', 'user_a', 'upload', '../../etc/passwd', 'passwd')"
        )


def test_cogo_seed_section_7_2_queries_run_verbatim(db: psycopg.Connection) -> None:
    register_vector(db)
    conv = seed_tenant(db)
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(8, 384)).astype(np.float32)
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO messages (conversation_id, organization_id, role, content, content_embedding) "
            "VALUES (%s, 'org_a', 'user', %s, %s)",
            [(conv, f"m{i}", v) for i, v in enumerate(vectors)],
        )
        cur.executemany(
            "INSERT INTO code_embeddings (repo, file_path, symbol, content, content_sha256, model, dims, embedding) "
            "VALUES ('r', %s, %s, %s, 'h', 'local:all-MiniLM-L6-v2', 384, %s)",
            [(f"src/f{i}.py", f"f{i}", f"def f{i}(): pass", v) for i, v in enumerate(vectors)],
        )
    query = vectors[3]
    similar_conversations = db.execute(
        """
SELECT cm.content, cm.content_embedding <=> $1 as distance
FROM "ConversationMessages" cm
WHERE cm.content_embedding IS NOT NULL
ORDER BY distance
LIMIT 5;""".replace("$1", "%s"),
        (query,),
    ).fetchall()
    similar_code = db.execute(
        """
SELECT ce.file_path, ce.content, ce.embedding <=> $1 as distance
FROM "CodeEmbeddings" ce
ORDER BY distance
LIMIT 10;""".replace("$1", "%s"),
        (query,),
    ).fetchall()
    assert len(similar_conversations) == 5 and similar_conversations[0][0] == "m3"
    assert similar_conversations[0][1] == pytest.approx(0.0, abs=1e-6)
    assert len(similar_code) == 8 and similar_code[0][0] == "src/f3.py"


def test_seed_views_expose_the_seed_columns(db: psycopg.Connection) -> None:
    expected = {
        "ConversationSessions": ["id", "user_id", "title", "created_at", "updated_at", "metadata"],
        "ConversationMessages": [
            "id",
            "session_id",
            "role",
            "content",
            "created_at",
            "token_count",
            "content_embedding",
        ],
        "AgentTasks": [
            "id",
            "session_id",
            "title",
            "status",
            "final_output",
            "created_at",
            "started_at",
            "completed_at",
        ],
        "TaskSteps": ["id", "task_id", "step_name", "details", "created_at"],
        "CodeEmbeddings": ["id", "file_path", "content", "embedding", "created_at"],
    }
    for view, columns in expected.items():
        got = [
            r[0]
            for r in db.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                (view,),
            ).fetchall()
        ]
        assert got == columns, view


def test_vectors_of_several_dimensions_live_in_one_table(db: psycopg.Connection) -> None:
    register_vector(db)
    seed_tenant(db)
    db.execute(
        "INSERT INTO embeddings (organization_id, chunk_id, content, content_sha256, model, dims, embedding) "
        "VALUES ('org_a', 'c1', 'x', 'h', 'local:all-MiniLM-L6-v2', 384, %s), "
        "('org_a', 'c2', 'y', 'h', 'openai:text-embedding-3-small', 1536, %s)",
        (np.ones(384, dtype=np.float32), np.ones(1536, dtype=np.float32)),
    )
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "INSERT INTO embeddings (organization_id, chunk_id, content, content_sha256, model, dims, embedding) "
            "VALUES ('org_a', 'c3', 'z', 'h', 'm', 384, %s)",
            (np.ones(10, dtype=np.float32),),
        )
    db.execute("SET enable_seqscan = off")  # two rows: make the planner show it can use the index
    plan = "\n".join(
        r[0]
        for r in db.execute(
            "EXPLAIN SELECT id FROM embeddings WHERE model = 'local:all-MiniLM-L6-v2' "
            "ORDER BY embedding::vector(384) <=> %s::vector(384) LIMIT 5",
            (np.ones(384, dtype=np.float32),),
        ).fetchall()
    )
    assert "embeddings_hnsw_local_all_minilm_l6_v2" in plan
