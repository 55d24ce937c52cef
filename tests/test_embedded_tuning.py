"""The embedded Postgres sizes its memory settings for the machine on its first start, and keeps what an
operator set with ALTER SYSTEM on later starts."""

from __future__ import annotations

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
