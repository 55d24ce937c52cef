"""Many files parsed on several cores: forked children each parse a share of the files while this process
parses its own share. Fork, not spawn: a child starts with the blobs and the loaded grammars already in
its memory, so nothing is imported or sent to it; it sends back its facts pickled. A child that fails (or
a platform without fork) leaves its share to this process, so the facts are the same either way."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable

from cogo.code.facts import FileFacts
from cogo.code.parse import parse_file

# Below this many bytes the fork and the pickling cost more than the other core gives.
PARALLEL_MIN_BYTES = 256_000
MAX_WORKERS = 4

Blob = tuple[str, str, bytes]  # (path, blob sha, data)


def default_workers() -> int:
    """Processes to parse in (this one included): the cores this process may run on, at most MAX_WORKERS."""
    if not hasattr(os, "fork"):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def _parse_share(blobs: list[Blob], size_limit: int) -> list[FileFacts | None]:
    return [parse_file(path, data, blob_sha=sha, size_limit=size_limit) for path, sha, data in blobs]


def _shares(blobs: list[Blob], count: int) -> list[list[int]]:
    """Indexes of the blobs split into `count` shares of about the same bytes, each in input order."""
    totals, shares = [0] * count, [[] for _ in range(count)]
    for index in sorted(range(len(blobs)), key=lambda i: -len(blobs[i][2])):
        lightest = totals.index(min(totals))
        shares[lightest].append(index)
        totals[lightest] += len(blobs[index][2])
    return [sorted(share) for share in shares]


def _fork_share(blobs: list[Blob], size_limit: int) -> Callable[[], list[FileFacts | None] | None]:
    """Start a child parsing `blobs`; the returned function waits for its facts (None if it failed)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: parse, send, and leave without running any of the parent's cleanup
        status = 1
        try:
            os.close(read_fd)
            payload = pickle.dumps(_parse_share(blobs, size_limit), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)

    def collect() -> list[FileFacts | None] | None:
        with os.fdopen(read_fd, "rb") as source:
            payload = source.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or not payload:
            return None
        try:
            facts = pickle.loads(payload)
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError):
            return None
        return facts if isinstance(facts, list) and len(facts) == len(blobs) else None

    return collect


def parse_blobs(
    blobs: list[Blob], size_limit: int, workers: int | None = None, min_bytes: int = PARALLEL_MIN_BYTES
) -> tuple[list[FileFacts | None], int]:
    """parse_file() of each (path, blob sha, data), in order, on up to `workers` processes when the blobs
    hold at least `min_bytes`; with the number of files the forked children parsed."""
    workers = default_workers() if workers is None else workers
    count = min(workers, len(blobs))
    if count < 2 or not hasattr(os, "fork") or sum(len(data) for _, _, data in blobs) < min_bytes:
        return _parse_share(blobs, size_limit), 0
    shares = _shares(blobs, count)
    children = [(share, _fork_share([blobs[i] for i in share], size_limit)) for share in shares[1:]]
    results: list[FileFacts | None] = [None] * len(blobs)
    try:
        own = shares[0]
        for index, facts in zip(own, _parse_share([blobs[i] for i in own], size_limit), strict=True):
            results[index] = facts
    finally:
        collected = [(share, collect()) for share, collect in children]  # every child is waited for
    by_children = 0
    for share, facts_list in collected:
        if facts_list is None:  # the child failed: its share is parsed here
            facts_list = _parse_share([blobs[i] for i in share], size_limit)
        else:
            by_children += len(share)
        for index, facts in zip(share, facts_list, strict=True):
            results[index] = facts
    return results, by_children
