"""Keeps the keep-alive connections spread evenly over `cogo serve`'s worker processes.

Each worker listens on its own SO_REUSEPORT socket and the kernel assigns a new connection to one of them by a
hash of its addresses: 50 connections opened at once land as 21 and 29 as often as 25 and 25. A client keeps its
connection, so a worker holding 29 serves 29 clients with the same share of the CPU as one holding 21, and its
clients wait 38% longer: that worker sets the latency tail (bench/bench_service.py).

So the workers publish how many connections each holds, in memory they share, and a worker holding more than one
connection above the least-loaded one answers its next request with `Connection: close`: the client reconnects,
and the kernel's hash assigns the new connection anew. The counts settle within a connection or two of each
other after a few such reconnects; then nothing is closed.
"""

from __future__ import annotations

from collections.abc import MutableSequence


class ConnectionBalance:
    """One worker's view of the workers' open-connection counts (`counts`: one slot per worker, shared; -1 for a
    worker that is not listening yet, which takes no part: while only some workers listen, every connection can
    only reach them).

    Concepts: Performance
    """

    # A worker may hold this many connections more than the least-loaded one before it sheds any.
    SLACK = 1
    NOT_LISTENING = -1

    def __init__(self, counts: MutableSequence[int], index: int) -> None:
        self.counts = counts
        self.index = index
        self.held = 0
        self.closing = 0  # connections told to close that have not closed yet
        counts[index] = self.NOT_LISTENING

    def listening(self) -> None:
        self.counts[self.index] = self.held

    def opened(self) -> None:
        self.held += 1
        self.counts[self.index] = self.held

    def closed(self, was_closing: bool) -> None:
        self.held -= 1
        self.counts[self.index] = self.held
        if was_closing:
            self.closing -= 1

    def should_close(self) -> bool:
        """Whether the connection of the request now starting should close after its response (and counts as
        closing from now on)."""
        least = min((c for c in self.counts if c != self.NOT_LISTENING), default=self.held)
        if self.held - self.closing > least + self.SLACK:
            self.closing += 1
            return True
        return False
