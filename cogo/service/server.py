"""`cogo serve`: uvicorn worker processes that each listen on their own SO_REUSEPORT socket.

uvicorn's own `--workers` shares one listening socket, and whichever worker wakes first accepts the next
connection: under a burst of keep-alive connections one worker can end up with most of them while the other
idles, which shows as a long latency tail. With one socket per worker the kernel spreads connections across
the workers by a hash of the connection, and cogo.service.balance evens out what the hash leaves uneven.

The parent only supervises: it restarts a worker that dies and stops them all on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import MutableSequence
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cogo.service.balance import ConnectionBalance

log = logging.getLogger("cogo.service")

APP = "cogo.service.app:create_app"
BACKLOG = 2048
RESTART_PAUSE_S = 1.0


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound, listening TCP socket; OSError (e.g. port in use) is the caller's to report."""
    sock = bound_socket(host, port, reuse_port=reuse_port)
    try:
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def bound_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound TCP socket, not yet listening: the event loop's server listens on it once the app has started, so
    a worker (re)starting beside others gets no connection while it is still loading."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class CoalescingTransport:
    """A transport that holds back what is written during one pass of the event loop and writes it at the end of
    that pass, in one call.

    uvicorn writes a response's status line and headers when the app sends http.response.start, and the body in
    a second write: two send() calls on the socket, and the client is woken twice. Joined, one request costs one
    system call less in the service and one wake-up less in the client (~5% of the CPU of a listing request,
    service and wrk together). Nothing waits longer than the rest of the current pass of the loop; more than
    MAX_HELD_BYTES is written at once.
    """

    MAX_HELD_BYTES = 65536
    __slots__ = ("_held", "_held_bytes", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes > self.MAX_HELD_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._held:
            data = b"".join(self._held) if len(self._held) > 1 else self._held[0]
            self._held.clear()
            self._held_bytes = 0
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else is the socket transport's
        return getattr(self._transport, name)


# This worker's share of the connection counts (cogo.service.balance), with more than one worker.
_balance: ConnectionBalance | None = None


class _HttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through a CoalescingTransport, and closing a connection after its
    response when this worker holds more than its share of them (cogo.service.balance)."""

    _closing = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        if _balance is not None:
            _balance.opened()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if _balance is not None:
            _balance.closed(self._closing)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if _balance is not None and not self._closing and _balance.should_close():
            self._closing = True
            self.cycle.keep_alive = False  # uvicorn answers with `connection: close` and closes after the response


def _config(log_config: dict[str, Any] | None) -> uvicorn.Config:
    return uvicorn.Config(
        APP,
        factory=True,
        # Named, not "auto", which would fall back to asyncio and h11 silently: 1.7x the CPU per listing request.
        loop="uvloop",
        http=_HttpToolsProtocol,
        access_log=False,  # cogo.service.access logs each request as JSON, without tokens or query strings
        # Nothing here reads the client's address (the access log leaves it out), so X-Forwarded-For is not parsed.
        proxy_headers=False,
        log_config=log_config,
        timeout_graceful_shutdown=10,
        backlog=BACKLOG,  # the workers' sockets listen when uvicorn's server starts (bound_socket)
    )


class _WarmServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if _balance is not None:
            _balance.listening()
        # Everything loaded at startup lives as long as the process: keep it out of the collector's way, so that
        # full collections (pauses that land in the latency tail) stay short.
        gc.collect()
        gc.freeze()


def _worker(host: str, port: int, log_config: dict[str, Any] | None, counts: MutableSequence[int], index: int) -> None:
    global _balance
    _balance = ConnectionBalance(counts, index)  # a restarted worker starts anew, as not yet listening
    # With SO_REUSEPORT the kernel would hand connections to a listening socket whose worker is still starting
    # (imports, lifespan: seconds), and they would wait there; uvicorn's server listens after the app's startup.
    sock = bound_socket(host, port, reuse_port=True)
    _run(_config(log_config), sock)


def _run(config: uvicorn.Config, sock: socket.socket) -> None:
    # No log line of the service shows a record's process or thread: not looking them up makes each record (one
    # per request, the access log's) a third cheaper.
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    _WarmServer(config).run(sockets=[sock])


def serve(host: str, port: int, workers: int, log_config: dict[str, Any] | None = None) -> None:
    """Serve the read service with `workers` processes until SIGINT/SIGTERM. The port is checked here first,
    so a port in use fails at once with OSError instead of in every worker."""
    listening_socket(host, port, reuse_port=False).close()  # without SO_REUSEPORT: never join another server
    if workers <= 1:
        _run(_config(log_config), listening_socket(host, port, reuse_port=False))
        return
    # Each worker embeds search queries with the local model: its share of the cores, not all of them each.
    os.environ.setdefault("COGO_EMBED_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    context = multiprocessing.get_context("spawn")
    # Each worker's open connections, for ConnectionBalance; -1 until it listens.
    counts = context.Array("i", [ConnectionBalance.NOT_LISTENING] * workers, lock=False)
    stopping = False

    def start(index: int) -> BaseProcess:
        args = (host, port, log_config, counts, index)
        process = context.Process(target=_worker, args=args, name="cogo-serve-worker")
        process.start()
        return process

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive():
                process.terminate()  # uvicorn finishes the requests in flight, then exits

    processes = [start(i) for i in range(workers)]
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping:
            for i, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    log.error("worker %s exited with %s; starting another", process.pid, process.exitcode)
                    # Its last count would otherwise stand for it: the others would shed connections towards it.
                    counts[i] = ConnectionBalance.NOT_LISTENING
                    time.sleep(RESTART_PAUSE_S)
                    processes[i] = start(i)
            time.sleep(0.5)
    finally:
        for process in processes:
            process.join(timeout=15)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
