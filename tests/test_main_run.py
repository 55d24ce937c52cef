"""`make run` (cogo.pipelines.main_run) on the demo data: task_rollups is built for the last 30 days in one run,
so its 30-day chart has a bar for every day the demo has tasks on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from cogo import demo
from cogo.assets.tasks import TREND_KEY, task_rollups
from cogo.pipelines.main_run import RECENT_PARTITIONS, plan_batches, run_batch


def tasks_per_day(db: psycopg.Connection) -> dict[dt.date, int]:
    rows = db.execute("SELECT (created_at AT TIME ZONE 'UTC')::date, count(*) FROM agent_tasks GROUP BY 1").fetchall()
    return {day: int(n) for day, n in rows}


def test_make_run_builds_the_last_30_days_of_task_rollups_in_one_run(
    database_url: str, db: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    # Noon: the demo's tasks (up to ten hours before their day's "now") all fall on the day they are meant for.
    demo.load(database_url, tmp_path / "ws", now=dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC))
    monkeypatch.setenv("COGO_DATABASE_URL", database_url)  # what `cogo env` exports for make run

    instance = dg.DagsterInstance.ephemeral()
    (batch,) = [b for b in plan_batches(instance) if task_rollups.key in b[0]]
    first, last = today - dt.timedelta(days=RECENT_PARTITIONS - 1), today
    assert batch == ([task_rollups.key], (first.isoformat(), last.isoformat()))
    result = run_batch(instance, batch)
    assert result.success and len(instance.get_runs()) == 1

    materializations = result.asset_materializations_for_node("task_rollups")
    days = [first + dt.timedelta(days=n) for n in range(RECENT_PARTITIONS)]
    assert [m.partition for m in materializations] == [d.isoformat() for d in days]
    expected = tasks_per_day(db)
    figures = {dt.date.fromisoformat(m.partition or ""): m.metadata["tasks"].value for m in materializations}
    assert figures == {d: expected.get(d, 0) for d in days}
    assert all(figures.values())  # the demo has tasks on every one of the 30 days
    assert sum(figures.values()) == sum(expected.values()) == 240
    chart = {m.partition: str(m.metadata[TREND_KEY].value) for m in materializations}
    assert chart[today.isoformat()].startswith("![tasks per day, last 30 days]")


def test_make_run_leaves_a_consistent_picture_retention_after_the_stages_it_sweeps(
    database_url: str, db: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspaces = tmp_path / "ws"
    demo.load(database_url, workspaces)
    for name, value in {
        "COGO_DATABASE_URL": database_url,
        "COGO_WORKSPACES_DIR": str(workspaces),
        "COGO_HOME": str(tmp_path / "home"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("COGO_REPOS", raising=False)

    instance = dg.DagsterInstance.ephemeral()
    (batch,) = [b for b in plan_batches(instance) if b[1] is None]
    result = run_batch(instance, batch)
    assert result.success
    order = [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()]  # type: ignore[union-attr]
    for feeder in ("workspace_files", "file_embeddings", "message_embeddings", "clerk_directory"):
        assert order.index(feeder) < order.index("retention_sweep"), order
    # Every demo file was registered before its conversation was swept: none is left waiting for a conversation
    # that no longer exists, and none is left on disk without its row.
    assert db.execute("SELECT storage_path, reason FROM workspace_refusals").fetchall() == []
    on_disk = {str(p.relative_to(workspaces)) for p in workspaces.rglob("*") if p.is_file()}
    active = {r[0] for r in db.execute("SELECT storage_path FROM files WHERE status = 'active'").fetchall()}
    assert on_disk == active
