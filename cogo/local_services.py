"""The local services cogo runs on: where Postgres is (external, or the embedded server under COGO_HOME), and
bringing them up and down (`cogo up`, `cogo down`): the embedded server, the schema, the graph schema and
Dagster's home. Finding Postgres (`database_url`) only reads the configuration and the embedded server's pid
file; only `up` starts anything. Every function is idempotent."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from collections.abc import Callable, Mapping
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


def database_urls(settings: Settings, *, start: bool = False) -> tuple[str, str]:
    """(cogo's database URL, Dagster's storage URL); with `start`, the embedded server is started when it is the
    one configured and is not running (`up` only). Without, a stopped embedded server is a ConfigError."""
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
    """cogo's database, the way every component finds it (external URL, else the running embedded server)."""
    return database_urls(settings or Settings.from_env())[0]


def start_database(settings: Settings | None = None) -> str:
    """`database_url`, starting the embedded server first when it is the one configured (for `up` and the
    benchmarks, which bring their own)."""
    return database_urls(settings or Settings.from_env(), start=True)[0]


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
    app_url, dagster_url = database_urls(settings, start=True)
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


# Paths `cogo up` was given, kept for `cogo env` in a later shell: `make run` exports them for its own commands
# only, and without COGO_REPOS the code location's git_commits_sensor has nothing to watch.
REMEMBERED = ("COGO_WORKSPACES_DIR", "COGO_REPOS")


def remembered_env_path(home: Path) -> Path:
    return home / "env.json"


def remember_env(env: Mapping[str, str] | None = None) -> None:
    """Keep the REMEMBERED variables this `cogo up` was given (as absolute paths) beside those an earlier one
    was given: a plain `cogo up` in a new shell, after a reboot say, must not forget them."""
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    try:
        kept = _remembered_env(settings.home)
    except ConfigError:
        kept = {}  # unreadable: this `cogo up` writes it anew, as the error told the user
    if env.get("COGO_WORKSPACES_DIR"):
        kept["COGO_WORKSPACES_DIR"] = str(settings.workspaces_dir)
    if settings.repos:
        kept["COGO_REPOS"] = _repos_value(settings)
    path = remembered_env_path(settings.home)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(kept, indent=2, sort_keys=True) + "\n")
    partial.replace(path)  # a reader sees the old file or the new one, never half of it


def _remembered_env(home: Path) -> dict[str, str]:
    path = remembered_env_path(home)
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} ({exc}): run `cogo up` to write it again.") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{path} is not what `cogo up` writes: run `cogo up` to write it again.")
    return {name: str(saved[name]) for name in REMEMBERED if saved.get(name)}


def env_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment, a variable unset there taken from what `cogo up` remembered."""
    env = os.environ if env is None else env
    given = {name: value for name, value in env.items() if value}
    home = Settings.from_env(given).home
    return Settings.from_env({**_remembered_env(home), **given})


def holds_password(value: str) -> bool:
    """True for a URL with a password in it (user:password@host or ?password=), which is never printed."""
    try:
        parts = urlsplit(value)
        return bool(parts.password) or "password" in parse_qs(parts.query)
    except ValueError:
        return False


def env_lines(settings: Settings | None = None, say: Say = lambda _: None) -> list[str]:
    """`export` lines for the running services and everything Dagster's code location reads (for
    `eval "$(cogo env)"`). A value holding a password is left out: it stays in the caller's environment."""
    settings = settings or env_settings()
    app_url, dagster_url = database_urls(settings)
    with connect(app_url):
        pass  # fail here, clearly, rather than in whatever reads these variables
    values = {
        "COGO_HOME": str(settings.home),
        "COGO_DATABASE_URL": app_url,
        "COGO_DAGSTER_DATABASE_URL": sqlalchemy_psycopg2_url(dagster_url),
        "DAGSTER_HOME": str(settings.dagster_home),
        "COGO_WORKSPACES_DIR": str(settings.workspaces_dir),
        "COGO_REPOS": _repos_value(settings),
        "COGO_GRAPH_URL": settings.graph_url or "",
        "NEO4J_USER": settings.neo4j_user if settings.graph_url else "",
        "COGO_EMBEDDER": settings.embedder,
    }
    lines = []
    for name, value in values.items():
        if value and holds_password(value):
            lines.extend(_without_password(name, app_url, say))
        elif value:
            lines.append(f"export {name}={shlex.quote(value)}")
    return lines


def _without_password(name: str, app_url: str, say: Say) -> list[str]:
    """Dagster's URL derived from COGO_DATABASE_URL becomes a shell expansion of that variable, so that the
    password stays where the user put it; any other such value is already in the caller's environment."""
    derived = name == "COGO_DAGSTER_DATABASE_URL" and not os.environ.get(name)
    if derived and urlsplit(app_url).scheme.split("+", 1)[0] in {"postgres", "postgresql"}:
        return [f'export {name}="postgresql+psycopg2://${{COGO_DATABASE_URL#*://}}"']
    say(f"{name} holds a password, so it is not printed: keep it exported in this shell.")
    return []


def _repos_value(settings: Settings) -> str:
    return ",".join(str(path.absolute()) for path in settings.repos)
