"""The `cogo` command: bring services up and down, migrate, print the environment, serve, load demo data,
query the graph."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from cogo.config import Settings
from cogo.errors import CogoError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
graph_app = typer.Typer(no_args_is_help=True, help="The code knowledge graph.")
app.add_typer(graph_app, name="graph")
err = Console(stderr=True, soft_wrap=True)


def _say(message: str) -> None:
    err.print(message, highlight=False)


@app.command()
def up() -> None:
    """Start the embedded services (unless external URLs are set) and migrate. Idempotent."""
    from cogo import services

    endpoints = services.up(Settings.from_env(), say=_say)
    _say(f"[green]ready[/green]: Postgres {endpoints.database_url.split('?')[0]} · graph {endpoints.graph}")
    _say('Run `eval "$(cogo env)"` to export the URLs for Dagster and other tools.')


@app.command()
def down() -> None:
    """Stop what `cogo up` started. Data stays under COGO_HOME."""
    from cogo import services

    stopped = services.down(Settings.from_env())
    _say("embedded Postgres stopped" if stopped else "nothing was running")


@app.command()
def migrate() -> None:
    """Apply pending SQL migrations from sql/."""
    from cogo import services
    from cogo.db.migrate import migrate as run_migrations

    url = services.database_url()
    applied = run_migrations(url, on_apply=lambda m: _say(f"applied {m.filename}"))
    _say(f"{len(applied)} migration(s) applied" if applied else "schema up to date")


@app.command()
def env() -> None:
    """Print `export NAME=value` lines for the running services."""
    from cogo import services

    for line in services.env_lines(Settings.from_env()):
        print(line)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run the read service (FastAPI under uvicorn; each worker has its own SO_REUSEPORT socket)."""
    from cogo.service.logging_config import service_log_config
    from cogo.service.server import serve as serve_workers

    try:
        serve_workers(host, port, workers, service_log_config())
    except OSError as exc:
        raise CogoError(f"cannot listen on {host}:{port} ({exc.strerror}): pick another with --port.") from None


@app.command()
def demo() -> None:
    """Load the demo organisations, users, agents, conversations, tasks and workspace files."""
    from cogo import demo as demo_data
    from cogo import services

    settings = Settings.from_env()
    url = services.database_url(settings)
    summary = demo_data.load(url, settings.workspaces_dir, progress=True)
    for table, count in summary.items():
        _say(f"  {table}: {count}")


def _parse_param(raw: str) -> tuple[str, Any]:
    name, sep, value = raw.partition("=")
    if not sep or not name:
        raise CogoError(f"--param takes NAME=VALUE, got {raw!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


@graph_app.command("query")
def graph_query(
    cypher: Annotated[str, typer.Argument(help="A read-only Cypher query.")],
    param: Annotated[list[str] | None, typer.Option("--param", help="NAME=VALUE (VALUE as JSON if it parses).")] = None,
) -> None:
    """Run a read query on the configured graph and print one JSON object per row."""
    from cogo.graph import open_graph

    params = dict(_parse_param(p) for p in param or [])
    with open_graph(Settings.from_env(), read_only=True) as graph:
        try:
            rows = graph.query(cypher, params)
        except CogoError:
            raise
        except Exception as exc:  # the backend's own message says what is wrong with the query
            raise CogoError(f"query failed on {graph.backend}: {str(exc).strip().splitlines()[0]}") from None
    for row in rows:
        print(json.dumps(row, default=_json_default, ensure_ascii=False))


def main() -> None:
    try:
        app()
    except CogoError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
