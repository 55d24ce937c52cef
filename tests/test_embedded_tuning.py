"""The embedded Postgres sizes its memory settings for the machine on its first start, and keeps what an
operator set with ALTER SYSTEM on later starts."""

from __future__ import annotations

import subprocess
import sys

import psycopg

from cogo.db import embedded
from tests.conftest import server_dir


def _settings(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        names = list(embedded.memory_settings(1))
        return dict(conn.execute("SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)", (names,)))


def _mb(value: str) -> int:
    number, unit = int(value[:-2]), value[-2:]
    return number * {"kB": 1, "MB": 1024, "GB": 1024 * 1024}[unit] // 1024


def test_memory_is_sized_on_first_start_and_an_operators_choice_is_kept() -> None:
    wanted = embedded.memory_settings(embedded._total_memory())
    with server_dir("tuning") as folder:
        pgdata = folder / "pg"
        url = embedded.server_url(embedded.start(pgdata), "postgres")
        got = _settings(url)
        assert {name: _mb(value) for name, value in got.items()} == {n: _mb(v) for n, v in wanted.items()}
        assert _mb(got["shared_buffers"]) > 128  # not Postgres's default any more
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET shared_buffers = '160MB'")
        embedded.stop(pgdata)
        url = embedded.server_url(embedded.start(pgdata), "postgres")
        assert _settings(url)["shared_buffers"] == "160MB"


def test_processes_starting_the_same_server_at_once_all_get_it_running() -> None:
    """`cogo serve --workers N` without `cogo up` first: every worker finds the server stopped at the same moment.
    Before the lock, two of them sometimes restarted it under each other (the memory tuning's restart) and one waited
    on `pg_ctl stop` for good."""
    script = (
        "import sys; from pathlib import Path; from cogo.db import embedded; "
        "print(embedded.start(Path(sys.argv[1])).pid)"
    )
    with server_dir("concurrent") as folder:
        starters = [
            subprocess.Popen([sys.executable, "-c", script, str(folder / "pg")], stdout=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        pids = set()
        for starter in starters:
            out, _ = starter.communicate(timeout=180)
            assert starter.returncode == 0
            pids.add(int(out.strip()))
        info = embedded.running_info(folder / "pg")
        assert info is not None and pids == {info.pid}  # one server, the one still running
        assert _mb(_settings(embedded.server_url(info, "postgres"))["shared_buffers"]) > 128  # tuned and restarted
