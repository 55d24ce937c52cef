"""Demo data: two organisations with users, agents, conversations, agent tasks with steps, agent states
and workspace files. Deterministic ids, so loading twice changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb
from rich.progress import Progress

from cogo.db.connect import connect

NAMESPACE = uuid.UUID("6f1c3f0e-2c61-4a53-9d0f-0c0ffee00000")
SEED = 20261124

ORGS = [
    ("org_demo_acme", "Acme Robotics", "acme"),
    ("org_demo_globex", "Globex Trading", "globex"),
]
USERS = [
    ("user_demo_alice", "alice@acme.example", "Alice", "Arai", "org_demo_acme", "admin"),
    ("user_demo_bob", "bob@acme.example", "Bob", "Baba", "org_demo_acme", "member"),
    ("user_demo_carol", "carol@globex.example", "Carol", "Chiba", "org_demo_globex", "admin"),
]
AGENTS = [
    ("stock", "Stock Analyst", "Answers questions about stock levels and market data.", ["market_data", "charts"]),
    ("ringi", "Ringi Assistant", "Drafts and routes ringi approval documents.", ["documents", "approvals"]),
    ("bpp", "BPP Planner", "Builds business process plans from workspace files.", ["planning", "rag"]),
    ("generic", "Generic Copilot", "General assistant with the organisation's knowledge.", ["rag", "code"]),
]
STEP_NAMES = ["Knowledge Search", "Plan", "Code Generation", "Sandbox Execution", "Review", "Report"]
TOPICS = [
    "quarterly stock forecast",
    "approval workflow for a new supplier",
    "refactor the authentication module",
    "summarise the onboarding handbook",
    "deployment script for production",
    "token refresh bug",
]


def demo_id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "/".join(parts))


def _rows_orgs() -> list[tuple[Any, ...]]:
    return [(oid, name, slug, Jsonb({})) for oid, name, slug in ORGS]


def load(
    database_url: str, workspaces_dir: Path, *, progress: bool = False, now: dt.datetime | None = None
) -> dict[str, int]:
    """Insert the demo rows that are missing and write the demo workspace files. Returns rows per table."""
    now = now or dt.datetime.now(dt.UTC)
    rng = random.Random(SEED)
    counts: dict[str, int] = {}
    with connect(database_url) as conn, Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("demo data", total=7)
        cur = conn.cursor()
        cur.executemany(
            "INSERT INTO organizations (id, name, slug, settings) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            _rows_orgs(),
        )
        cur.executemany(
            "INSERT INTO users (id, email, first_name, last_name) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(u[0], u[1], u[2], u[3]) for u in USERS],
        )
        cur.executemany(
            "INSERT INTO organization_memberships (id, organization_id, user_id, role) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            [(f"orgmem_demo_{u[0][10:]}", u[4], u[0], u[5]) for u in USERS],
        )
        bar.advance(task)

        agent_ids = {slug: demo_id("agent", slug) for slug, *_ in AGENTS}
        cur.executemany(
            "INSERT INTO agents (id, slug, name, description, instructions, capabilities, visibility) "
            "VALUES (%s, %s, %s, %s, %s, %s, 'public') ON CONFLICT DO NOTHING",
            [(agent_ids[s], s, n, d, f"You are the {n}. {d}", caps) for s, n, d, caps in AGENTS],
        )
        cur.executemany(
            "INSERT INTO organization_agents (organization_id, agent_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            [(oid, aid) for oid, *_ in ORGS for aid in agent_ids.values()],
        )
        cur.executemany(
            "INSERT INTO agent_quick_tasks (id, agent_id, title, prompt, sort_order) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            [
                (demo_id("quick", s, str(i)), agent_ids[s], f"{n}: quick task {i + 1}", f"Do the usual {n} task {i}", i)
                for s, n, *_ in AGENTS
                for i in range(2)
            ],
        )
        cur.executemany(
            "INSERT INTO agent_knowledge_sources (id, organization_id, agent_id, name, kind) "
            "VALUES (%s, %s, %s, %s, 'workspace') ON CONFLICT DO NOTHING",
            [
                (demo_id("source", oid, s), oid, agent_ids[s], f"{oid} workspace")
                for oid, *_ in ORGS
                for s in ("generic", "bpp")
            ],
        )
        bar.advance(task)

        conversations: list[tuple[Any, ...]] = []
        messages: list[tuple[Any, ...]] = []
        for uid, _email, first, _last, oid, _role in USERS:
            for i in range(4):
                cid = demo_id("conversation", uid, str(i))
                slug = AGENTS[(i + len(first)) % len(AGENTS)][0]
                # Spread over 45 days so the retention window (30) has something to sweep.
                started = now - dt.timedelta(days=(i * 13 + len(first)) % 45, hours=rng.randint(0, 20))
                topic = TOPICS[(i + len(uid)) % len(TOPICS)]
                conversations.append(
                    (
                        cid,
                        oid,
                        uid,
                        agent_ids[slug],
                        topic.capitalize(),
                        "shared" if i == 0 else "private",
                        started,
                        started,
                    )
                )
                for j in range(6):
                    role = "user" if j % 2 == 0 else "assistant"
                    text = (
                        f"{first} asks about the {topic} (part {j // 2 + 1})."
                        if role == "user"
                        else f"Here is what I found on the {topic}: step {j // 2 + 1} of the answer."
                    )
                    parts = [{"type": "text", "text": text}]
                    messages.append(
                        (
                            demo_id("message", str(cid), str(j)).int % 2**62,
                            cid,
                            oid,
                            uid if role == "user" else None,
                            agent_ids[slug] if role == "assistant" else None,
                            role,
                            text,
                            Jsonb(parts),
                            len(text.split()) + 3,
                            started + dt.timedelta(minutes=j),
                        )
                    )
        cur.executemany(
            "INSERT INTO conversations (id, organization_id, user_id, agent_id, title, visibility, created_at, "
            "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            conversations,
        )
        cur.executemany(
            "INSERT INTO messages (id, conversation_id, organization_id, user_id, agent_id, role, content, "
            "content_parts, token_count, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            messages,
        )
        bar.advance(task)

        tasks, task_steps = _tasks(rng, now, conversations, agent_ids)
        cur.executemany(
            "INSERT INTO agent_tasks (id, organization_id, conversation_id, agent_id, user_id, title, prompt, "
            "status, final_output, created_at, started_at, completed_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            tasks,
        )
        # Steps have identity ids; insert a task's steps only when the task has none yet.
        cur.execute("SELECT DISTINCT task_id FROM task_steps WHERE task_id = ANY(%s)", ([t[0] for t in tasks],))
        have_steps = {row[0] for row in cur.fetchall()}
        cur.executemany(
            "INSERT INTO task_steps (task_id, organization_id, step_name, status, details, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [s for s in task_steps if s[0] not in have_steps],
        )
        bar.advance(task)

        cur.executemany(
            "INSERT INTO agent_states (id, organization_id, user_id, agent_id, state, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [
                (
                    demo_id("state", u[0], s),
                    u[4],
                    u[0],
                    agent_ids[s],
                    Jsonb({"preferences": {"tone": "concise"}}),
                    now - dt.timedelta(days=5 + 20 * k),
                )
                for u in USERS
                for k, s in enumerate(("generic", "stock"))
            ],
        )
        bar.advance(task)
        conn.commit()

        for table in (
            "organizations",
            "users",
            "organization_memberships",
            "agents",
            "organization_agents",
            "agent_quick_tasks",
            "agent_knowledge_sources",
            "conversations",
            "messages",
            "agent_tasks",
            "task_steps",
            "agent_states",
        ):
            counts[table] = cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        bar.advance(task)

        counts["workspace files"] = write_workspace_files(workspaces_dir, conversations)
        bar.advance(task)
    return counts


def _tasks(
    rng: random.Random, now: dt.datetime, conversations: list[tuple[Any, ...]], agent_ids: dict[str, uuid.UUID]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    tasks: list[tuple[Any, ...]] = []
    steps: list[tuple[Any, ...]] = []
    statuses = ["COMPLETED"] * 7 + ["FAILED"] * 2 + ["CANCELLED", "RUNNING", "PENDING"]
    for n in range(240):
        conv = conversations[n % len(conversations)]
        cid, oid, uid, aid = conv[0], conv[1], conv[2], conv[3]
        tid = demo_id("task", str(n))
        # Tasks over the last 30 days, with today always present.
        created = now - dt.timedelta(days=n % 30, minutes=rng.randint(0, 600))
        status = statuses[rng.randrange(len(statuses))]
        if status in ("RUNNING", "PENDING"):
            # Unfinished tasks are recent; an old RUNNING one is what the stuck-task check reports.
            created = now - dt.timedelta(minutes=rng.randint(1, 30))
        started = None if status == "PENDING" else created + dt.timedelta(seconds=rng.randint(1, 90))
        completed = (
            started + dt.timedelta(seconds=rng.randint(5, 900))
            if started and status in ("COMPLETED", "FAILED", "CANCELLED")
            else None
        )
        output = None
        if status == "COMPLETED":
            output = Jsonb({"result": "ok", "artifact": f"output-{n}.md"})
        elif status == "FAILED":
            output = Jsonb({"error": "sandbox exited with status 1"})
        topic = TOPICS[n % len(TOPICS)]
        tasks.append(
            (
                tid,
                oid,
                cid,
                aid,
                uid,
                f"Task {n}: {topic}",
                f"Please handle the {topic}.",
                status,
                output,
                created,
                started,
                completed,
            )
        )
        if started is None:
            continue
        n_steps = rng.randint(2, len(STEP_NAMES))
        for k in range(n_steps):
            failing = status == "FAILED" and k == n_steps - 1
            at = started + dt.timedelta(seconds=5 * (k + 1))
            steps.append(
                (
                    tid,
                    oid,
                    STEP_NAMES[k],
                    "error" if failing else "ok",
                    Jsonb({"tool": STEP_NAMES[k].lower().replace(" ", "_"), "attempt": 1}),
                    at,
                )
            )
    return tasks, steps


def write_workspace_files(root: Path, conversations: list[tuple[Any, ...]]) -> int:
    """A few real files in the workspace layout: {org}/{user}/{conversation}/files/{kind}/name."""
    written = 0
    for cid, oid, uid, _aid, title, *_ in conversations[:6]:
        base = root / oid / uid / str(cid) / "files"
        files = {
            base / "uploads" / "notes.md": f"# {title}\n\nMeeting notes about {title.lower()}.\n\n"
            "## Decisions\n\n- Keep tokens short-lived.\n- Refresh tokens rotate on every use.\n",
            base / "generated" / "summary.txt": f"Summary of the conversation '{title}'.\n",
            base / "attachments" / "data.json": json.dumps({"conversation": str(cid), "topic": title}) + "\n",
        }
        for path, text in files.items():
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                written += 1
    return written
