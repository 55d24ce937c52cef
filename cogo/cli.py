"""The `cogo` command: bring services up and down, migrate, print the environment, serve, load demo data,
query the graph."""

from __future__ import annotations

import datetime as dt
import errno
import json
import re
import socket
import sys
from importlib import metadata
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from cogo.config import Settings
from cogo.errors import CogoError


class _OneLineErrors(TyperGroup):
    """A value the options refuse (`--port 99999`) is reported like every other error: one `error:` line and
    exit 1, instead of click's usage box."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except typer.BadParameter as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            message = exc.format_message().rstrip(".")
            raise CogoError(message[:1].lower() + message[1:] + where) from None


app = typer.Typer(
    cls=_OneLineErrors, add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False
)
graph_app = typer.Typer(no_args_is_help=True, help="The code knowledge graph.")
app.add_typer(graph_app, name="graph")
err = Console(stderr=True, soft_wrap=True)


def _say(message: str) -> None:
    err.print(message, highlight=False)


def _print_version(wanted: bool) -> None:
    if not wanted:
        return
    try:
        version = metadata.version("cogo")
    except metadata.PackageNotFoundError:
        raise CogoError("cogo is not installed as a package, so it has no version: run `make install`.") from None
    print(f"cogo {version}")
    raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True)
    ] = False,
) -> None:
    pass


@app.command()
def up() -> None:
    """Start the embedded services (unless external URLs are set) and migrate. Idempotent."""
    from cogo import local_services

    endpoints = local_services.up(Settings.from_env(), say=_say)
    local_services.remember_env()
    _say(f"[green]ready[/green]: Postgres {endpoints.database_url.split('?')[0]} · graph {endpoints.graph}")
    _say('Run `eval "$(cogo env)"` to export the URLs for Dagster and other tools.')


@app.command()
def down() -> None:
    """Stop what `cogo up` started. Data stays under COGO_HOME."""
    from cogo import local_services

    stopped = local_services.down(Settings.from_env())
    _say("embedded Postgres stopped" if stopped else "nothing was running")


@app.command()
def migrate() -> None:
    """Apply pending SQL migrations from sql/."""
    from cogo import local_services
    from cogo.db.migrate import migrate as run_migrations

    url = local_services.database_url()
    applied = run_migrations(url, on_apply=lambda m: _say(f"applied {m.filename}"))
    _say(f"{len(applied)} migration(s) applied" if applied else "schema up to date")


@app.command()
def env() -> None:
    """Print `export NAME=value` lines for the running services and Dagster's code location."""
    from cogo import local_services

    for line in local_services.env_lines(say=_say):
        print(line)


def _host_given(host: str) -> str:
    # An empty host would make the socket listen on every interface, which nobody asks for by accident.
    if not host.strip():
        raise typer.BadParameter("it is empty; name an interface (127.0.0.1, or 0.0.0.0 for every one)")
    return host


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.", callback=_host_given)] = "127.0.0.1",
    # Port 0 is refused: the kernel's pick is known only once the server listens, after the announcement.
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
) -> None:
    """Run the read service (FastAPI under granian, N worker processes; limits: COGO_SERVICE_* in the README)."""
    from cogo.service.run import serve as serve_workers

    try:
        _check_can_listen(host, port)
        _announce(host, port, workers)
        serve_workers(host, port, workers)
    except OSError as exc:
        raise _listen_error(host, port, exc) from None


def _check_can_listen(host: str, port: int) -> None:
    """Bind once before announcing the address, so that a port in use is an error, not a false announcement."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server's own sockets
        sock.bind((host, port))
        sock.listen()


def _announce(host: str, port: int, workers: int) -> None:
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    count = f"{workers} worker" + ("s" if workers > 1 else "")
    message = f"cogo serve: listening on {base} ({count}); OpenAPI at {base}/docs"
    err.print(message, highlight=False, markup=False)


def _listen_error(host: str, port: int, exc: OSError) -> CogoError:
    # A port in use or reserved is the port's fault; anything else (an unknown name, not our address) the host's.
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EADDRINUSE, errno.EACCES):
        return CogoError(f"cannot listen on {host}:{port} ({reason}): pick another with --port.")
    return CogoError(f"cannot listen on {host}:{port} ({reason}): check --host.")


@app.command()
def demo() -> None:
    """Load the demo organisations, users, agents, conversations, tasks and workspace files."""
    from cogo import demo as demo_data
    from cogo import local_services

    settings = Settings.from_env()
    url = local_services.database_url(settings)
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


# What can hold a `$`: strings and quoted names (to the end of the text when unclosed, which the backend then
# reports), comments; and a parameter, `$name` or `$`quoted name``.
_CYPHER_LEXEMES = re.compile(
    r"""'(?:[^'\\]|\\.)*(?:'|\Z)|"(?:[^"\\]|\\.)*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)"""
    r"|//[^\n]*|/\*.*?(?:\*/|\Z)"
    r"|\$(?:(\w+)|`((?:[^`]|``)*)`)",
    re.DOTALL,
)


def _referenced_params(cypher: str) -> list[str]:
    """The parameters a Cypher text uses, in order of first use, not counting a `$` in a string or comment."""
    names: list[str] = []
    for match in _CYPHER_LEXEMES.finditer(cypher):
        plain, quoted = match.group(1, 2)
        if plain is not None:
            name = plain
        elif quoted is not None:
            name = quoted.replace("``", "`")
        else:
            continue  # a string, quoted name or comment
        if name not in names:
            names.append(name)
    return names


def _missing_params_error(names: list[str]) -> CogoError:
    listed = ", ".join(f"${name}" for name in names)
    how = " ".join(f"--param {name}=VALUE" for name in names)
    verb = "is" if len(names) == 1 else "are"
    return CogoError(f"parameter{'s' if len(names) > 1 else ''} {listed} {verb} not supplied (pass {how})")


def _require_params(cypher: str, params: dict[str, Any]) -> None:
    # LadybugDB binds a parameter nobody supplied as null and answers quietly, as if nothing matched.
    missing = [name for name in _referenced_params(cypher) if name not in params]
    if missing:
        raise _missing_params_error(missing)


def _backend_missing_params(exc: Exception) -> list[str]:
    """The parameters Neo4j says are missing (ParameterMissing: "Expected parameter(s): a, b"), else []."""
    if getattr(exc, "code", None) != "Neo.ClientError.Statement.ParameterMissing":
        return []
    listed = str(getattr(exc, "message", "")).partition(":")[2]
    return [name.strip() for name in listed.split(",") if name.strip()]


def _query_error(backend: str, exc: Exception) -> CogoError:
    missing = _backend_missing_params(exc)
    if missing:
        return _missing_params_error(missing)
    # Neo4j's str() wraps its message in status codes; the message alone says what is wrong with the query.
    text = str(getattr(exc, "message", None) or exc).strip()
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return CogoError(f"query failed on {backend}: {first_line}")


@graph_app.command("query")
def graph_query(
    cypher: Annotated[str, typer.Argument(help="A read-only Cypher query.")],
    param: Annotated[list[str] | None, typer.Option("--param", help="NAME=VALUE (VALUE as JSON if it parses).")] = None,
) -> None:
    """Run a read query on the configured graph and print one JSON object per row."""
    from cogo.graph import open_graph

    params = dict(_parse_param(p) for p in param or [])
    with open_graph(Settings.from_env(), read_only=True) as graph:
        if graph.backend == "ladybug":  # Neo4j refuses such a query itself (see _query_error)
            _require_params(cypher, params)
        try:
            rows = graph.query(cypher, params)
        except CogoError:
            raise
        except Exception as exc:  # the backend's own message says what is wrong with the query
            raise _query_error(graph.backend, exc) from None
    for row in rows:
        print(json.dumps(row, default=_json_default, ensure_ascii=False))


def main() -> None:
    try:
        app(prog_name="cogo")
    except CogoError as exc:
        # The message may quote a backend or a path: its brackets are text, not Rich markup.
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
