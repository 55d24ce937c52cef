"""`cogo serve --workers N`: worker processes on their own SO_REUSEPORT sockets, supervised by the parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from tests.cli_helpers import cogo_env, run_cogo
from tests.neo4j_server import free_port
from tests.service_helpers import wait_until


def wait_until_served(url: str, deadline_s: float = 60) -> None:
    def answers() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, f"{url} to answer", deadline_s)


def listeners(server_pid: int, port: int) -> list[psutil.Process]:
    """The server's child processes listening on `port` themselves (multiprocessing adds a resource tracker)."""
    found = []
    for child in psutil.Process(server_pid).children():
        try:
            if any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in child.net_connections()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def both_workers_listening(server: subprocess.Popen, port: int) -> list[psutil.Process]:
    """The two workers of `cogo serve --workers 2`, once both listen (the first may answer before the second
    has started listening)."""
    wait_until_served(f"http://127.0.0.1:{port}/openapi.json")
    wait_until(lambda: len(listeners(server.pid, port)) >= 2, "both workers to listen", 60)
    workers = listeners(server.pid, port)
    assert len(workers) == 2
    return workers


def test_workers_share_the_port_restart_when_killed_and_stop_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = cogo_env(tmp_path / "home")
    server = subprocess.Popen(
        [sys.executable, "-m", "cogo.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Each worker listens on the port itself (SO_REUSEPORT), not on a socket inherited from the parent.
        workers = both_workers_listening(server, port)

        # A second server on the same port is refused, not silently added to the first one's workers.
        second = run_cogo(env, "serve", "--port", str(port), "--workers", "2", timeout=60)
        assert second.returncode != 0 and f"127.0.0.1:{port}" in second.stderr

        # A worker that dies is replaced; the port keeps answering.
        os.kill(workers[0].pid, signal.SIGKILL)

        def replaced() -> bool:
            alive = listeners(server.pid, port)
            return len(alive) == 2 and workers[0].pid not in {p.pid for p in alive}

        wait_until(replaced, "the killed worker to be replaced", 60)
        wait_until_served(f"http://127.0.0.1:{port}/openapi.json")
        for _ in range(20):
            assert httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
    # Every worker is gone and the port is free again.
    assert not any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in psutil.net_connections("tcp"))


def test_workers_run_on_uvloop_and_httptools() -> None:
    import uvloop
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from cogo.service.server import _config

    config = _config(None)
    loop = config.get_loop_factory()()  # type: ignore[misc]
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    assert isinstance(config.http, type) and issubclass(config.http, HttpToolsProtocol)


def test_writes_in_one_pass_of_the_loop_leave_as_one_and_close_sends_what_is_held() -> None:
    import asyncio
    import socket

    import uvloop

    from cogo.service.server import CoalescingTransport

    async def run() -> list[bytes | None]:
        loop = asyncio.get_running_loop()
        ours, peer = socket.socketpair()
        peer.setblocking(False)
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        coalescing = CoalescingTransport(transport, loop)  # type: ignore[arg-type]

        def received() -> bytes | None:
            try:
                return peer.recv(1 << 20)
            except BlockingIOError:
                return None

        seen: list[bytes | None] = []
        coalescing.write(b"HTTP/1.1 200 OK\r\n\r\n")
        coalescing.write(b"body")
        seen.append(received())  # nothing sent while this pass of the loop writes
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        seen.append(received())  # both, once the pass is over
        big = b"x" * (CoalescingTransport.MAX_HELD_BYTES + 1)
        coalescing.write(big)  # more than it holds: written at once
        seen.append(b"" if received() else None)
        while received():
            await asyncio.sleep(0.01)
        coalescing.write(b"last words")
        coalescing.close()  # writes what it holds first
        await asyncio.sleep(0.05)
        seen.append(received())
        assert coalescing.is_closing()  # the rest is the socket transport's
        peer.close()
        return seen

    assert uvloop.run(run()) == [None, b"HTTP/1.1 200 OK\r\n\r\nbody", b"", b"last words"]


def test_a_worker_over_its_share_of_connections_closes_one_until_the_counts_even_out() -> None:
    from cogo.service.balance import ConnectionBalance

    counts = [0, 0]
    first, second = ConnectionBalance(counts, 0), ConnectionBalance(counts, 1)
    assert counts == [-1, -1]
    for _ in range(5):
        first.opened()
    # While the second is not listening, every connection can only reach the first: it keeps them all.
    assert not first.should_close()
    second.listening()
    second.opened()
    # 5 against 1: the first closes the connections of its next requests, counting those already told to close.
    assert [first.should_close() for _ in range(5)] == [True, True, True, False, False]
    assert not second.should_close()  # the least loaded never closes
    for _ in range(3):
        first.closed(was_closing=True)
    assert counts == [2, 1] and first.closing == 0
    assert not first.should_close()  # within one of the least loaded
    first.closed(was_closing=False)
    assert counts == [1, 1]


def test_keep_alive_connections_end_up_spread_evenly_over_the_workers(tmp_path: Path) -> None:
    """The kernel assigns each connection to a worker by a hash: 40 connections rarely split 20/20. The workers
    close the connections of whichever holds too many until they are within one of each other."""
    import socket

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "cogo.cli", "serve", "--port", str(port), "--workers", "2"],
        env=cogo_env(tmp_path / "home"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    request = f"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()

    def ask(sock: socket.socket) -> bool:
        """One request; whether the server keeps the connection open."""
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        headers, _, body = head.partition(b"\r\n\r\n")
        length = int(next(h for h in headers.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
        while len(body) < length:
            body += sock.recv(65536)
        return b"connection: close" not in headers.lower()

    try:
        workers = both_workers_listening(server, port)
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        closed = 0
        for _ in range(30):  # rounds of one request per connection, until a round closes none
            closed_now = 0
            for i, sock in enumerate(conns):
                if not ask(sock):
                    sock.close()
                    conns[i] = socket.create_connection(("127.0.0.1", port))
                    closed_now += 1
            closed += closed_now
            if closed_now == 0:
                break
        held = []
        for worker in workers:
            ours = {s.getsockname()[1] for s in conns}
            held.append(
                sum(
                    1
                    for c in worker.net_connections("tcp")
                    if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port and c.raddr.port in ours
                )
            )
        assert sum(held) == 40 and abs(held[0] - held[1]) <= 1, held
        assert closed < 40, closed  # a few reconnects, not a connection closed per request
        for sock in conns:
            sock.close()
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
