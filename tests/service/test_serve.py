"""`cogo serve --workers N` as shipped: granian's worker processes on one port, a worker that dies is replaced,
SIGTERM stops them all (a request in flight is answered first) and frees the port."""

from __future__ import annotations

import os
import signal
import socket
import time

import httpx
import psutil
import pytest
from granian.constants import HTTPModes, Loops

from cogo.config import Settings
from cogo.service.run import server
from cogo.service.settings import ServiceSettings
from tests.clerk_fake import SECRET
from tests.cli_helpers import run_cogo
from tests.service.helpers import wait_until
from tests.service.servers import Served, answers, cogo_serve


@pytest.fixture
def service_overrides() -> dict[str, str]:
    return {"CLERK_WEBHOOK_SECRET": SECRET}


def serve_env(settings: Settings) -> dict[str, str]:
    return {"COGO_HOME": str(settings.home), "COGO_DATABASE_URL": str(settings.database_url)}


def workers(served: Served) -> list[psutil.Process]:
    """The server's processes that listen on its port (the supervisor's children)."""
    found = []
    for child in psutil.Process(served.process.pid).children(recursive=True):
        try:
            if any(c.laddr.port == served.port and c.status == psutil.CONN_LISTEN for c in child.net_connections()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def test_workers_share_the_port_restart_when_killed_and_stop_on_sigterm(settings: Settings) -> None:
    env = serve_env(settings)
    with cogo_serve(env, workers=2) as served:
        wait_until(lambda: len(workers(served)) == 2, "both workers to listen", 60)
        first = workers(served)

        # A second server on the same port is refused with one line, not silently added to the first one's workers.
        second = run_cogo({**os.environ, **env}, "serve", "--port", str(served.port), "--workers", "2", timeout=60)
        assert second.returncode == 1 and f"127.0.0.1:{served.port}" in second.stderr
        assert second.stderr.count("\n") == 1 and second.stderr.startswith("error:")

        # A worker that dies is replaced; the port keeps answering.
        os.kill(first[0].pid, signal.SIGKILL)

        def replaced() -> bool:
            alive = workers(served)
            return len(alive) == 2 and first[0].pid not in {p.pid for p in alive}

        wait_until(replaced, "the killed worker to be replaced", 60)
        for _ in range(20):
            assert httpx.get(f"{served.url}/openapi.json", timeout=5).status_code == 200
    # cogo_serve sent SIGTERM and saw exit code 0: every worker is gone and the port is free again.
    assert not any(
        c.laddr.port == served.port and c.status == psutil.CONN_LISTEN for c in psutil.net_connections("tcp")
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", served.port))


def test_sigterm_lets_a_request_in_flight_finish(settings: Settings) -> None:
    """A webhook whose body is still arriving when SIGTERM comes is answered, then the server exits."""
    with cogo_serve(serve_env(settings)) as served:
        body = b'{"type": "user.created"}'
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
            head = f"POST /webhooks/clerk HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
            sock.sendall(head.encode() + body[:5])
            time.sleep(0.5)  # the request is in the app, reading its body
            served.process.send_signal(signal.SIGTERM)
            wait_until(lambda: not answers(f"{served.url}/openapi.json"), "the server to stop taking requests", 20)
            sock.sendall(body[5:])
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]  # the route's own answer: no Svix signature
        assert served.process.wait(timeout=30) == 0


def test_the_limits_are_read_from_the_environment_into_the_server() -> None:
    env = {
        "COGO_SERVICE_HEADER_TIMEOUT_S": "3",
        "COGO_SERVICE_MAX_HEADER_BYTES": "20000",
        "COGO_SERVICE_BACKPRESSURE": "7",
        "COGO_SERVICE_GRACEFUL_SHUTDOWN_S": "4",
    }
    built = server("127.0.0.1", 8000, 2, ServiceSettings.from_env(env))
    assert (built.workers, built.backpressure, built.workers_kill_timeout) == (2, 7, 4)
    assert built.respawn_failed_workers
    assert (built.http1_settings.header_read_timeout, built.http1_settings.max_buffer_size) == (3000, 20000)
    assert built.loop == Loops.uvloop and built.http == HTTPModes.http1 and built.factory
    # Out-of-range values are brought within the server's bounds rather than refused at startup.
    lenient = ServiceSettings.from_env({"COGO_SERVICE_HEADER_TIMEOUT_S": "600", "COGO_SERVICE_MAX_HEADER_BYTES": "10"})
    assert (lenient.header_timeout_s, lenient.max_header_bytes) == (60.0, 8192)
