"""The migrator: in order, once each, in a transaction each, under a lock, refusing edited files."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from cogo.db.migrate import Migration, MigrationError, discover, migrate, pending


def applied_versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()]


def test_applies_every_migration_once_in_order(empty_database_url: str) -> None:
    all_migrations = discover()
    assert [m.version for m in all_migrations] == sorted(m.version for m in all_migrations)
    first = migrate(empty_database_url)
    assert [m.version for m in first] == [m.version for m in all_migrations]
    assert migrate(empty_database_url) == []
    assert applied_versions(empty_database_url) == [m.version for m in all_migrations]
    assert pending(empty_database_url) == []


def test_concurrent_migrators_are_safe(empty_database_url: str) -> None:
    results: list[list[Migration]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(empty_database_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # Exactly one of them applied everything; the others found nothing to do.
    assert sorted(len(r) for r in results) == [0, 0, len(discover())]
    assert applied_versions(empty_database_url) == [m.version for m in discover()]


def _copy_sql(tmp_path: Path) -> Path:
    folder = tmp_path / "sql"
    shutil.copytree(Path(__file__).resolve().parents[1] / "sql", folder)
    return folder


def test_an_edited_applied_migration_is_refused(empty_database_url: str, tmp_path: Path) -> None:
    folder = _copy_sql(tmp_path)
    migrate(empty_database_url, discover(folder))
    (folder / "0002_tenancy.sql").write_text((folder / "0002_tenancy.sql").read_text() + "\n-- edited\n")
    (folder / "9999_new_table.sql").write_text("CREATE TABLE should_not_exist (id int);")
    with pytest.raises(MigrationError, match=r"0002_tenancy\.sql was edited"):
        migrate(empty_database_url, discover(folder))
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT to_regclass('should_not_exist')").fetchone() == (None,)


def test_a_failing_migration_is_rolled_back_whole(empty_database_url: str, tmp_path: Path) -> None:
    folder = _copy_sql(tmp_path)
    (folder / "9998_broken.sql").write_text("CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;")
    with pytest.raises(MigrationError, match=r"9998_broken\.sql failed"):
        migrate(empty_database_url, discover(folder))
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
    # Everything before it stays applied; the broken one is not recorded.
    assert 9998 not in applied_versions(empty_database_url)
    assert len(applied_versions(empty_database_url)) == len(discover())


def test_a_database_ahead_of_the_checkout_is_refused(empty_database_url: str, tmp_path: Path) -> None:
    folder = _copy_sql(tmp_path)
    (folder / "9997_later.sql").write_text("CREATE TABLE later (id int);")
    migrate(empty_database_url, discover(folder))
    with pytest.raises(MigrationError, match="9997_later applied, which is not in sql/"):
        migrate(empty_database_url, discover())


def test_badly_named_files_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    folder.mkdir()
    (folder / "1_init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_lower_snake"):
        discover(folder)


def test_far_future_clerk_times_written_before_the_range_check_are_forgotten(empty_database_url: str) -> None:
    everything = discover()
    repair = next(m for m in everything if m.version == 74)
    migrate(empty_database_url, [m for m in everything if m.version < repair.version])
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (id, clerk_updated_at) VALUES ('user_future', '287168-01-01'), "
            "('user_fine', '2026-01-01')"
        )
    migrate(empty_database_url, everything)
    with psycopg.connect(empty_database_url) as conn:
        rows = dict(conn.execute("SELECT id, clerk_updated_at::text FROM users").fetchall())
    assert rows == {"user_future": None, "user_fine": "2026-01-01 00:00:00+00"}


def test_tasks_unlinked_before_visibility_was_kept_fail_closed(empty_database_url: str) -> None:
    everything = discover()
    migrate(empty_database_url, [m for m in everything if m.version < 73])
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO organizations (id, name) VALUES ('org_m', 'M')")
        conn.execute("INSERT INTO users (id) VALUES ('user_owner'), ('user_other')")
        conn.execute("INSERT INTO agent_tasks (organization_id, user_id, title) VALUES ('org_m', 'user_owner', 'x')")
    migrate(empty_database_url, everything)
    with psycopg.connect(empty_database_url) as conn:
        seen = {
            me: conn.execute("SELECT count(*) FROM agent_tasks t WHERE cogo_task_visible(t, %s)", (me,)).fetchone()
            for me in ("user_owner", "user_other")
        }
    assert seen == {"user_owner": (1,), "user_other": (0,)}
