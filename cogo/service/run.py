"""`cogo serve`: the read service under granian, a maintained ASGI server (Rust's hyper for HTTP/1.1), with its
own worker processes and its documented limits:

- workers: N processes on one listening socket, each restarted if it dies; SIGINT/SIGTERM stops them, each
  finishing its requests in flight for up to COGO_SERVICE_GRACEFUL_SHUTDOWN_S;
- a request head must arrive within COGO_SERVICE_HEADER_TIMEOUT_S of the connection's opening or of its previous
  response (slow and idle clients are closed), and fit COGO_SERVICE_MAX_HEADER_BYTES (else 431);
- each worker serves COGO_SERVICE_BACKPRESSURE connections at once; more wait in the listen backlog;
- bodies: cogo.service.limits (413 past COGO_SERVICE_MAX_BODY_BYTES).

Plain HTTP: TLS belongs to the proxy in front.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from granian import Granian
from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings
from granian.log import LOGGING_CONFIG, LogLevels

from cogo.service.settings import ServiceSettings

APP = "cogo.service.app:create_app"
BACKLOG = 2048


def server(host: str, port: int, workers: int, settings: ServiceSettings | None = None) -> Granian:
    settings = settings or ServiceSettings.from_env()
    return Granian(
        APP,
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        loop=Loops.uvloop,
        workers=workers,
        respawn_failed_workers=True,
        workers_kill_timeout=settings.graceful_shutdown_s,
        backlog=BACKLOG,
        backpressure=settings.backpressure,
        http1_settings=HTTP1Settings(
            header_read_timeout=round(settings.header_timeout_s * 1000), max_buffer_size=settings.max_header_bytes
        ),
        websockets=False,
        log_level=LogLevels.warning,
        log_dictconfig=log_config(),
        log_access=False,  # cogo.service.access logs each request as JSON, without tokens or query strings
    )


def serve(host: str, port: int, workers: int) -> None:
    """Serve until SIGINT/SIGTERM."""
    # Each worker embeds search queries with the local model: its share of the cores, not all of them each.
    os.environ.setdefault("COGO_EMBED_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    server(host, port, workers).serve()


def log_config() -> dict[str, Any]:
    """granian's logging plus the service's: cogo's JSON access lines to stdout, its other records beside
    granian's own."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["cogo_json"] = {"()": "logging.Formatter", "fmt": "%(message)s"}
    config["handlers"]["cogo_access"] = {
        "formatter": "cogo_json",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    config["handlers"]["cogo"] = {
        "formatter": "generic",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["cogo.service.access"] = {"handlers": ["cogo_access"], "level": "INFO", "propagate": False}
    config["loggers"]["cogo.service"] = {"handlers": ["cogo"], "level": "INFO", "propagate": False}
    return config
