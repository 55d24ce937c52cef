"""What a client may send `cogo serve`, over real sockets to the server as shipped (granian, one worker): a body
over COGO_SERVICE_MAX_BODY_BYTES is refused with 413 before it is read; a request head over
COGO_SERVICE_MAX_HEADER_BYTES is answered 431; a connection whose request head is not complete within
COGO_SERVICE_HEADER_TIMEOUT_S (slowloris, a silent client, an idle keep-alive) is closed; a burst of connections
past COGO_SERVICE_BACKPRESSURE waits its turn while the worker holds at most that many."""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import psutil
import psycopg
import pytest

from cogo.config import Settings
from tests.clerk_fake import SECRET
from tests.service.helpers import ALICE, ORG_A, Bearer
from tests.service.servers import Served, cogo_serve

MAX_BODY = 64 * 1024
MAX_HEADER = 16 * 1024
HEADER_TIMEOUT_S = 2.0
BACKPRESSURE = 8
SLACK_S = 1.5  # beyond a timeout: the server's timer and this test's own scheduling on a busy machine

pytestmark = pytest.mark.usefixtures("tenants")


@pytest.fixture
def service_overrides() -> dict[str, str]:
    return {
        "CLERK_WEBHOOK_SECRET": SECRET,
        "COGO_SERVICE_MAX_BODY_BYTES": str(MAX_BODY),
        "COGO_SERVICE_MAX_HEADER_BYTES": str(MAX_HEADER),
        "COGO_SERVICE_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "COGO_SERVICE_BACKPRESSURE": str(BACKPRESSURE),
    }


@pytest.fixture
def served(settings: Settings) -> Iterator[Served]:
    env = {"COGO_HOME": str(settings.home), "COGO_DATABASE_URL": str(settings.database_url)}
    with cogo_serve(env) as server:
        yield server


def connect(served: Served) -> socket.socket:
    return socket.create_connection(("127.0.0.1", served.port), timeout=30)


def exchange(served: Served, head: bytes) -> bytes:
    """Send `head`, read until the server closes or answers a whole response with `connection: close`."""
    with connect(served) as sock:
        sock.sendall(head)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def closed_after(sock: socket.socket) -> tuple[float, bytes]:
    """Seconds until the server closes `sock` (reading whatever it sends), from now."""
    started = time.monotonic()
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return time.monotonic() - started, received


@pytest.mark.parametrize("path", ["/webhooks/clerk", "/v1/search"])
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(served: Served, path: str) -> None:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 268435456\r\n\r\n"
    answer = exchange(served, head.encode())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"payload_too_large" in answer


def test_a_chunked_body_is_refused_once_it_passes_the_limit(served: Served, db: psycopg.Connection) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(64):  # 4 MB offered, 64 KB allowed
            sent += 65536
            yield b" " * 65536

    try:
        response = httpx.post(f"{served.url}/webhooks/clerk", content=chunks(), timeout=10)
        assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    except (httpx.WriteError, httpx.RemoteProtocolError):
        pass  # the server closed the connection after answering, while the client was still sending
    assert sent < 64 * 65536
    assert db.execute("SELECT count(*) FROM clerk_webhook_inbox").fetchone() == (0,)


def test_a_body_under_the_limit_goes_through(served: Served) -> None:
    response = httpx.post(f"{served.url}/webhooks/clerk", content=b"{}" + b" " * (MAX_BODY - 10), timeout=10)
    assert response.status_code == 401  # read whole, then refused for its (missing) signature


@pytest.mark.parametrize("size", [100 * 1024, 1024 * 1024, 32 * 1024 * 1024])
def test_request_headers_over_the_limit_are_answered_431(served: Served, size: int) -> None:
    head = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    with connect(served) as sock:
        # The server may answer and close while the rest of the head is still on its way.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)
        _, answer = closed_after(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]


def test_headers_under_the_limit_are_served(served: Served, bearer: Bearer) -> None:
    headers = {**bearer(ALICE, ORG_A), "X-Padding": "a" * (MAX_HEADER // 2)}
    assert httpx.get(f"{served.url}/v1/conversations", headers=headers, timeout=10).status_code == 200


def test_a_slowloris_client_is_closed_after_the_header_timeout(served: Served) -> None:
    """30 connections, each sending one more header line every 2 s and never the blank line that ends the head:
    each is closed once the timeout has passed, with nothing answered (those past the backpressure wait in the
    backlog first, and their timeout starts when the worker takes them)."""

    def slowloris(results: list[tuple[float, bytes]]) -> None:
        with connect(served) as sock:
            sock.settimeout(2.0)
            started = time.monotonic()
            sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n")
            received = b""
            while time.monotonic() - started < HEADER_TIMEOUT_S + 10:
                try:
                    sock.sendall(b"X-Still-Here: yes\r\n")
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue  # nothing from the server in 2 s: send the next line
                except (BrokenPipeError, ConnectionResetError):
                    break
                if not chunk:
                    break
                received += chunk
            results.append((time.monotonic() - started, received))

    results: list[tuple[float, bytes]] = []
    clients = [threading.Thread(target=slowloris, args=(results,)) for _ in range(30)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=60)
    assert len(results) == 30
    turns = math.ceil(30 / BACKPRESSURE)
    for held, received in results:
        assert HEADER_TIMEOUT_S - 0.5 <= held <= turns * (HEADER_TIMEOUT_S + SLACK_S), held
        assert received == b""
    assert sorted(held for held, _ in results)[BACKPRESSURE - 1] <= HEADER_TIMEOUT_S + SLACK_S  # the first turn


def test_a_silent_connection_and_an_idle_keep_alive_one_are_closed_after_the_header_timeout(served: Served) -> None:
    with connect(served) as silent:
        held, received = closed_after(silent)
    assert HEADER_TIMEOUT_S - 0.5 <= held <= HEADER_TIMEOUT_S + SLACK_S and received == b""
    with httpx.Client(base_url=served.url, timeout=10) as client:
        assert client.get("/openapi.json").status_code == 200
        time.sleep(HEADER_TIMEOUT_S + SLACK_S)
        assert client.get("/openapi.json").status_code == 200  # httpx notices the closed connection and reconnects
    with connect(served) as kept:
        kept.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        response = b""
        while b"\r\n\r\n" not in response:
            response += kept.recv(65536)
        head, _, body = response.partition(b"\r\n\r\n")
        length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
        while len(body) < length:
            body += kept.recv(65536)
        held, received = closed_after(kept)
    assert HEADER_TIMEOUT_S - 0.5 <= held <= HEADER_TIMEOUT_S + SLACK_S and received == b""


def held_connections(served: Served) -> int:
    """Connections the worker processes have accepted (those waiting in the listen backlog are not theirs yet)."""
    workers = psutil.Process(served.process.pid).children(recursive=True)
    count = 0
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            count += sum(
                1
                for c in worker.net_connections("tcp")
                if c.laddr.port == served.port and c.status == psutil.CONN_ESTABLISHED
            )
    return count


def test_a_burst_of_connections_waits_its_turn_and_the_worker_holds_at_most_its_backpressure(
    served: Served, bearer: Bearer
) -> None:
    """Four times COGO_SERVICE_BACKPRESSURE silent connections at once: the worker holds at most that many, closes
    each after the header timeout, and a real request made during the burst is answered once they have had
    their turn; so are requests sent by as many connections at once."""
    burst = [connect(served) for _ in range(4 * BACKPRESSURE)]
    peak = 0
    asked_at = time.monotonic()
    answer: list[int] = []
    asker = threading.Thread(
        target=lambda: answer.append(httpx.get(f"{served.url}/openapi.json", timeout=60).status_code)
    )
    asker.start()
    while asker.is_alive():
        peak = max(peak, held_connections(served))
        time.sleep(0.05)
    waited = time.monotonic() - asked_at
    for sock in burst:
        held, _ = closed_after(sock)
        assert held < 4 * (HEADER_TIMEOUT_S + SLACK_S)
        sock.close()
    assert answer == [200]
    assert peak <= BACKPRESSURE
    assert waited <= 4 * HEADER_TIMEOUT_S + 2 * SLACK_S  # four turns of the burst at most

    headers = bearer(ALICE, ORG_A)
    statuses: list[int] = []

    def ask() -> None:
        statuses.append(httpx.get(f"{served.url}/v1/conversations", headers=headers, timeout=60).status_code)

    askers = [threading.Thread(target=ask) for _ in range(4 * BACKPRESSURE)]
    for thread in askers:
        thread.start()
    for thread in askers:
        thread.join(timeout=60)
    assert statuses == [200] * (4 * BACKPRESSURE)
    assert httpx.get(f"{served.url}/openapi.json", timeout=10).status_code == 200
