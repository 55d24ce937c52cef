"""Bringing up and down what cogo needs: Postgres (external or embedded), the schema, the graph schema
and Dagster's home. Every function is idempotent."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cogo.config import Settings
from cogo.db import embedded
from cogo.db.connect import connect, ensure_database
from cogo.db.migrate import Migration, migrate
from cogo.db.urls import database_of, sqlalchemy_psycopg2_url
from cogo.errors import ConfigError
from cogo.graph import open_graph

APP_DATABASE = "cogo"
DAGSTER_DATABASE = "dagster"
REPO_ROOT = Path(__file__).resolve().parents[1]

Say = Callable[[str], None]


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    dagster_database_url: str
    dagster_home: Path
    graph: str


def _points_at_embedded(settings: Settings) -> bool:
    """True when COGO_DATABASE_URL is the embedded server's own URL (as `cogo env` exported it)."""
    if settings.database_url is None:
        return True
    host = parse_qs(urlsplit(settings.database_url).query).get("host", [""])[0]
    return bool(host) and Path(host) == settings.pgdata


def database_urls(settings: Settings, *, start: bool = True) -> tuple[str, str]:
    """(cogo's database URL, Dagster's storage URL). Starts the embedded server when needed."""
    if not _points_at_embedded(settings):
        assert settings.database_url is not None
        dagster = os.environ.get("COGO_DAGSTER_DATABASE_URL") or settings.database_url
        return settings.database_url, dagster
    info = embedded.start(settings.pgdata) if start else embedded.running_info(settings.pgdata)
    if info is None:
        raise ConfigError(f"the embedded Postgres in {settings.pgdata} is not running: run `cogo up`.")
    # An exported URL of the embedded server keeps the database it names.
    app = database_of(settings.database_url) if settings.database_url else APP_DATABASE
    return embedded.server_url(info, app), embedded.server_url(info, DAGSTER_DATABASE)


def database_url(settings: Settings | None = None) -> str:
    """cogo's database, the way every component finds it (external URL, else the embedded server)."""
    return database_urls(settings or Settings.from_env())[0]


def graph_description(settings: Settings) -> str:
    return settings.graph_url if settings.graph_url else f"embedded LadybugDB at {settings.graph_dir}"


def install_dagster_home(settings: Settings) -> Path:
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    source = REPO_ROOT / "dagster.yaml"
    if source.exists():
        shutil.copyfile(source, home / "dagster.yaml")
    return home


def up(settings: Settings | None = None, say: Say = lambda _: None) -> Endpoints:
    settings = settings or Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    if _points_at_embedded(settings):
        say(f"Postgres: embedded, data in {settings.pgdata}")
    else:
        say("Postgres: COGO_DATABASE_URL")
    app_url, dagster_url = database_urls(settings)
    ensure_database(app_url)
    if database_of(dagster_url) != database_of(app_url):
        ensure_database(dagster_url)

    def report(m: Migration) -> None:
        say(f"  applied {m.filename}")

    applied = migrate(app_url, on_apply=report)
    say(f"Schema: {len(applied)} migration(s) applied" if applied else "Schema: up to date")
    with open_graph(settings) as graph:
        graph.ensure_schema()
    say(f"Graph: {graph_description(settings)}, schema ready")
    home = install_dagster_home(settings)
    return Endpoints(app_url, dagster_url, home, graph_description(settings))


def down(settings: Settings | None = None) -> bool:
    settings = settings or Settings.from_env()
    return embedded.stop(settings.pgdata)


def env_lines(settings: Settings | None = None) -> list[str]:
    """`export` lines for the running services (for `eval "$(cogo env)"`)."""
    settings = settings or Settings.from_env()
    app_url, dagster_url = database_urls(settings, start=False)
    with connect(app_url):
        pass  # fail here, clearly, rather than in whatever reads these variables
    lines = {
        "COGO_HOME": str(settings.home),
        "COGO_DATABASE_URL": app_url,
        "COGO_DAGSTER_DATABASE_URL": sqlalchemy_psycopg2_url(dagster_url),
        "DAGSTER_HOME": str(settings.dagster_home),
        "COGO_WORKSPACES_DIR": str(settings.workspaces_dir),
    }
    if settings.graph_url:
        lines["COGO_GRAPH_URL"] = settings.graph_url
    return [f"export {name}={_shell_quote(value)}" for name, value in lines.items()]


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)
