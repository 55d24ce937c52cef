"""A git repository through the `git` command: first-parent history with each commit's changed blobs in
one streamed `git log`, blobs through one long-lived `git cat-file --batch`, trees through `ls-tree`."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cogo.errors import ConfigError

TASK_TRAILER = re.compile(
    r"^Task-Id:\s*([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\s*$", re.MULTILINE
)
LOG_FORMAT = "%x1e%H%x00%P%x00%an%x00%ae%x00%aI%x00%B%x00"
NULL_SHA = "0" * 40
REGULAR_MODES = {"100644", "100755"}  # not symlinks (120000) nor submodules (160000)


@dataclass(frozen=True)
class Change:
    status: str  # A, M, D, R, T (type change), C (copy)
    old_path: str | None
    new_path: str | None
    old_blob: str | None
    new_blob: str | None


@dataclass
class CommitInfo:
    sha: str
    parents: list[str]
    author: str
    timestamp: dt.datetime
    message: str
    changes: list[Change] = field(default_factory=list)

    @property
    def task_ids(self) -> list[str]:
        return sorted({m.lower() for m in TASK_TRAILER.findall(self.message)})


@dataclass(frozen=True)
class TreeEntry:
    path: str
    blob: str
    size: int


def _blob(mode: str, sha: str) -> str | None:
    return sha if mode in REGULAR_MODES and sha != NULL_SHA else None


def _parse_record(record: bytes) -> CommitInfo:
    tokens = record.split(b"\x00")
    sha, parents, name, email, date, body = (t.decode("utf-8", "replace") for t in tokens[:6])
    commit = CommitInfo(
        sha=sha,
        parents=parents.split(),
        author=f"{name} <{email}>",
        timestamp=dt.datetime.fromisoformat(date).astimezone(dt.UTC),
        message=body.strip(),
    )
    rest = iter(tokens[6:])
    for token in rest:
        token = token.lstrip(b"\n")
        if not token.startswith(b":"):
            continue
        old_mode, new_mode, old_sha, new_sha, status = token[1:].decode().split(" ")
        first = next(rest).decode("utf-8", "replace")
        kind = status[0]
        if kind in ("R", "C"):
            second = next(rest).decode("utf-8", "replace")
            commit.changes.append(Change(kind, first, second, _blob(old_mode, old_sha), _blob(new_mode, new_sha)))
        elif kind == "A":
            commit.changes.append(Change(kind, None, first, None, _blob(new_mode, new_sha)))
        elif kind == "D":
            commit.changes.append(Change(kind, first, None, _blob(old_mode, old_sha), None))
        else:
            commit.changes.append(Change(kind, first, first, _blob(old_mode, old_sha), _blob(new_mode, new_sha)))
    return commit


class GitRepo:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise ConfigError(f"repository {self.path} does not exist (check COGO_REPOS)")
        self._batch: subprocess.Popen[bytes] | None = None

    def _git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, check=False)
        if check and result.returncode != 0:
            raise ConfigError(f"git {' '.join(args)} failed in {self.path}: {result.stderr.decode().strip()}")
        return result

    def default_branch(self) -> str:
        """origin's default branch when the repository has one, else the checked-out branch."""
        remote = self._git("symbolic-ref", "--quiet", "refs/remotes/origin/HEAD", check=False)
        if remote.returncode == 0:
            return remote.stdout.decode().strip()
        local = self._git("symbolic-ref", "--quiet", "HEAD", check=False)
        return local.stdout.decode().strip() if local.returncode == 0 else "HEAD"

    def resolve(self, ref: str) -> str:
        return self._git("rev-parse", "--verify", f"{ref}^{{commit}}").stdout.decode().strip()

    def has_commit(self, sha: str) -> bool:
        return self._git("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        if not self.has_commit(ancestor):
            return False
        return self._git("merge-base", "--is-ancestor", ancestor, descendant, check=False).returncode == 0

    def log(
        self, head: str, *, after: str | None = None, max_count: int | None = None, since: str | None = None
    ) -> Iterator[CommitInfo]:
        """First-parent commits up to head, oldest first, each with its changes against its first parent
        (so a merge brings in what the merged branch changed). after: exclude it and its ancestors."""
        args = ["git", "-C", str(self.path), "log", "--first-parent", "--diff-merges=first-parent", "--reverse"]
        args += ["--raw", "--no-abbrev", "-z", "-M", f"--format={LOG_FORMAT}"]
        if max_count:
            args.append(f"--max-count={max_count}")
        if since:
            args.append(f"--since={since}")
        args.append(f"{after}..{head}" if after else head)
        with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            assert proc.stdout is not None
            pending = b""
            while chunk := proc.stdout.read(1 << 16):
                pending += chunk
                *records, pending = pending.split(b"\x1e")
                for record in records:
                    if record.strip(b"\x00\n"):
                        yield _parse_record(record)
            if pending.strip(b"\x00\n"):
                yield _parse_record(pending)
            stderr = proc.stderr.read().decode() if proc.stderr else ""
        if proc.returncode not in (0, None):
            raise ConfigError(f"git log failed in {self.path}: {stderr.strip()}")

    def tree(self, commit: str) -> list[TreeEntry]:
        out = self._git("ls-tree", "-r", "-l", "-z", commit).stdout
        entries: list[TreeEntry] = []
        for item in out.split(b"\x00"):
            if not item:
                continue
            meta, path = item.split(b"\t", 1)
            mode, kind, sha, size = meta.decode().split()
            if kind == "blob" and mode in REGULAR_MODES:
                entries.append(TreeEntry(path.decode("utf-8", "replace"), sha, int(size)))
        return entries

    def read_blob(self, sha: str) -> bytes:
        if self._batch is None:
            self._batch = subprocess.Popen(
                ["git", "-C", str(self.path), "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
        assert self._batch.stdin is not None and self._batch.stdout is not None
        self._batch.stdin.write(sha.encode() + b"\n")
        self._batch.stdin.flush()
        header = self._batch.stdout.readline().split()
        if len(header) < 3 or header[1] == b"missing":
            raise ConfigError(f"blob {sha} missing in {self.path}")
        size = int(header[2])
        data = self._batch.stdout.read(size)
        self._batch.stdout.read(1)  # the newline after the content
        return data

    def read_blobs(self, shas: list[str], chunk: int = 500) -> Iterator[tuple[str, bytes]]:
        """Many blobs through one `cat-file --batch` process per chunk (no round trip per blob)."""
        for start in range(0, len(shas), chunk):
            part = shas[start : start + chunk]
            out = subprocess.run(
                ["git", "-C", str(self.path), "cat-file", "--batch"],
                input="".join(f"{sha}\n" for sha in part).encode(),
                capture_output=True,
                check=True,
            ).stdout
            pos = 0
            for sha in part:
                end = out.index(b"\n", pos)
                header = out[pos:end].split()
                if len(header) < 3 or header[1] == b"missing":
                    raise ConfigError(f"blob {sha} missing in {self.path}")
                size = int(header[2])
                yield sha, out[end + 1 : end + 1 + size]
                pos = end + 2 + size

    def close(self) -> None:
        if self._batch is not None:
            if self._batch.stdin is not None:
                self._batch.stdin.close()
            self._batch.wait(timeout=10)
            if self._batch.stdout is not None:
                self._batch.stdout.close()
            self._batch = None

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
