"""Demo data loads, and loading it twice changes nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cogo import demo


def test_demo_loads_once_and_converges(database_url: str, tmp_path: Path) -> None:
    now = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
    first = demo.load(database_url, tmp_path / "ws", now=now)
    assert first["organizations"] == 2 and first["agent_tasks"] == 240 and first["task_steps"] > 0
    assert first["workspace files"] == 18
    second = demo.load(database_url, tmp_path / "ws", now=now + dt.timedelta(hours=1))
    assert {k: v for k, v in second.items() if k != "workspace files"} == {
        k: v for k, v in first.items() if k != "workspace files"
    }
    assert second["workspace files"] == 0  # already there
    files = sorted(p.relative_to(tmp_path / "ws").parts[4] for p in (tmp_path / "ws").rglob("*") if p.is_file())
    assert set(files) == {"uploads", "generated", "attachments"}
