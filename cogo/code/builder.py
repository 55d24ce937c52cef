"""One repository's code graph brought up to its default branch's head: the commits after the cursor.

Two passes. History: each first-parent commit's changed files, parsed before and after, give the
Commit, MODIFIED_IN, AFFECTS (symbols whose code_hash was added, changed or removed; removed ones stay,
marked `removed_in`) and GENERATED_BY for commits with a `Task-Id:` trailer. Head: the files that differ
from the snapshot kept in Postgres are parsed, the whole snapshot is indexed, and the structure (CONTAINS,
CALLS, IMPORTS, USES, Library) is rewritten for the changed files and for the files importing them.
A cursor that is no ancestor of the head (a force-push) rebuilds the repository from scratch, recorded.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg

from cogo.code import store
from cogo.code.facts import FACTS_VERSION, FileFacts, Symbol
from cogo.code.git import Change, CommitInfo, GitRepo, TreeEntry
from cogo.code.languages import language_of, module_name
from cogo.code.libraries import library_for, manifest_versions
from cogo.code.parse import DEFAULT_SIZE_LIMIT, parse_file
from cogo.code.parse_pool import PARALLEL_MIN_BYTES, parse_blobs
from cogo.code.resolve import FileLinks, Index, imported_modules, link_file
from cogo.graph.base import GraphStore

CODE_LABELS = ("CodeFile", "Function", "Class", "Commit")
NODE_ORDER = ("Commit", "Task", "CodeFile", "Class", "Function", "Library")
# Parsed file versions kept for the next commits (a changed file's previous version is compared with its new one):
# at most this many, holding at most this many bytes of source between them. Facts take a few times their
# source's size in memory, so the bytes bound what the history pass holds however large the files grow; the count
# alone let it grow with them (bench/RESULTS.md, issue 8, session 4).
FACTS_CACHE = 4096
FACTS_CACHE_BYTES = 24_000_000
PREFETCH_MIN = 8  # a commit changing more files than this has its blobs read in one batch
PARSE_BATCH_FILES, PARSE_BATCH_BYTES = 1000, 32_000_000  # blobs held in memory at once to be parsed


@dataclass
class BuildOptions:
    branch: str | None = None  # default: origin's default branch, else the checked-out one
    head: str | None = None  # process up to this commit (the sensor passes the head it saw)
    max_commits: int | None = None  # a first run takes only the last N commits of history
    since: str | None = None  # a first run takes only commits after this date (git's --since)
    size_limit: int = DEFAULT_SIZE_LIMIT
    chunk_commits: int = 500  # graph writes are flushed at least this often (bounded memory)
    parse_workers: int | None = None  # processes parsing a large batch of files (default: the cores, up to 4)
    parallel_min_bytes: int = PARALLEL_MIN_BYTES  # smaller batches are parsed in this process alone
    # Called with the pass ("history", "head") and the figures so far: after each commit, and once as the head
    # pass starts, so a long build can say how far it got.
    progress: Callable[[str, BuildStats], None] | None = None


@dataclass
class BuildStats:
    repo: str
    branch: str = ""
    head: str = ""
    previous: str | None = None
    rewritten_from: str | None = None
    commits: int = 0
    files_parsed: int = 0
    files_parsed_by_workers: int = 0  # of which forked processes parsed (see parse_pool)
    bytes_parsed: int = 0
    head_files: int = 0
    files_changed: int = 0
    files_relinked: int = 0
    files_deleted: int = 0
    nodes_written: int = 0
    relationships_written: int = 0
    call_sites: int = 0
    calls_resolved: int = 0
    calls_unresolved: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    parse_error_files: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    history_s: float = 0.0
    head_s: float = 0.0

    def as_metadata(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not isinstance(v, list)} | {
            "skipped_files": len(self.skipped),
            "files_with_parse_errors": len(self.parse_error_files),
            "tasks": len(self.tasks),
        }


@dataclass
class Pending:
    """Rows collected and not yet written: label -> id -> row, (type, from, to) -> (src, dst) -> row."""

    nodes: dict[str, dict[str, dict[str, Any]]]
    rels: dict[tuple[str, str, str], dict[tuple[str, str], dict[str, Any]]]


class GraphWriter:
    """Rows collected per label and relationship, deduplicated (the last row for an id wins), written in
    batches: nodes first, then relationships.

    In bulk mode (a repository's first build, its graph empty) rows are created with the backend's bulk
    insert instead of MERGE. The writer remembers what it wrote in this build (a fingerprint per row), so
    a node or relationship is created once: a row identical to one already written is skipped, a changed
    one goes through the upsert, and a relationship whose endpoint was not written goes through the upsert
    too (which writes nothing when the endpoint does not exist, as before)."""

    def __init__(self, graph: GraphStore, stats: BuildStats):
        self.graph = graph
        self.stats = stats
        self.nodes: dict[str, dict[str, dict[str, Any]]] = {}
        self.rels: dict[tuple[str, str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self.bulk = False
        self._written: dict[str, dict[str, int]] = {}  # label -> id -> fingerprint
        # Relationships not involving a Commit may be written again by a later chunk or the head pass;
        # those touching a Commit are written in that commit's chunk only, so they need no memory here.
        self._written_rels: dict[tuple[str, str, str, str, str], int] = {}

    def node(self, label: str, row: dict[str, Any]) -> None:
        self.nodes.setdefault(label, {})[row["id"]] = row

    def rel(self, rel_type: str, from_label: str, to_label: str, src: str, dst: str, **props: Any) -> None:
        self.rels.setdefault((rel_type, from_label, to_label), {})[(src, dst)] = {"src": src, "dst": dst, **props}

    @property
    def pending(self) -> int:
        return sum(map(len, self.nodes.values())) + sum(map(len, self.rels.values()))

    def take(self) -> Pending:
        """The pending rows, handed over (to be written by write(), possibly in another thread while
        new rows are collected)."""
        pending = Pending(self.nodes, self.rels)
        self.nodes, self.rels = {}, {}
        return pending

    def flush(self, *, final: bool = False) -> None:
        self.write(self.take(), final=final)

    def write(self, pending: Pending, *, final: bool = False) -> None:
        """Write rows taken from this writer; one write at a time. `final`: no later write in this build
        has rows of these labels and relationship types, so only which ids were written is remembered
        (for the relationships written later), not each row's fingerprint."""
        if self.bulk:
            self._write_bulk(pending, final)
            return
        for label in NODE_ORDER:
            rows = pending.nodes.get(label)
            if rows:
                self.stats.nodes_written += self.graph.upsert_nodes(label, rows.values())
        for (rel_type, a, b), rows in sorted(pending.rels.items()):
            self.stats.relationships_written += self.graph.upsert_relationships(rel_type, a, b, rows.values())

    def _write_bulk(self, pending: Pending, final: bool) -> None:
        graph, stats = self.graph, self.stats
        for label in NODE_ORDER:
            rows = pending.nodes.get(label, {})
            written = self._written.setdefault(label, {})
            new: list[dict[str, Any]] = []
            changed: list[dict[str, Any]] = []
            for node_id, row in rows.items():
                before = written.get(node_id)
                fingerprint = hash(repr(row)) if before is not None or not final else 0
                if before == fingerprint:
                    continue
                # Library and Task nodes are shared with other repositories: they may exist already.
                (new if before is None and label in CODE_LABELS else changed).append(row)
                written[node_id] = fingerprint
            stats.nodes_written += graph.insert_nodes(label, new) if new else 0
            stats.nodes_written += graph.upsert_nodes(label, changed) if changed else 0
        for (rel_type, a, b), rows in sorted(pending.rels.items()):
            tracked = "Commit" not in (a, b)
            known_a, known_b = self._written.get(a, {}), self._written.get(b, {})
            new, other = [], []
            for (src, dst), row in rows.items():
                key = (rel_type, a, b, src, dst)
                before = self._written_rels.get(key) if tracked else None
                if before is not None and before == hash(repr(row)):
                    continue
                endpoints_written = src in known_a and dst in known_b
                (new if before is None and endpoints_written else other).append(row)
                if tracked and not final and (before is not None or endpoints_written):
                    self._written_rels[key] = hash(repr(row))
            stats.relationships_written += graph.insert_relationships(rel_type, a, b, new) if new else 0
            stats.relationships_written += graph.upsert_relationships(rel_type, a, b, other) if other else 0


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a build runs. A build allocates millions of small
    objects that live until it ends (facts, rows): the collector's passes over them cost a tenth of a first
    build and find nothing. Each graph flush during the history pass collects once, so garbage in cycles
    (from the database drivers) stays bounded however long the history."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def file_row(repo: str, facts: FileFacts, removed_in: str | None) -> dict[str, Any]:
    return {
        "id": f"{repo}:{facts.path}",
        "repo": repo,
        "path": facts.path,
        "language": facts.language,
        "summary": facts.summary,
        "size_bytes": facts.size_bytes,
        "content_hash": facts.blob_sha,
        "skipped": facts.skipped,
        "parse_errors": facts.parse_errors,
        "removed_in": removed_in,
    }


def symbol_label(symbol: Symbol) -> str:
    return "Function" if symbol.kind == "function" else "Class"


def symbol_row(repo: str, facts: FileFacts, symbol: Symbol, removed_in: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"{repo}:{symbol.qualified_name}",
        "repo": repo,
        "name": symbol.name,
        "qualified_name": symbol.qualified_name,
        "path": facts.path,
        "docstring": symbol.docstring,
        "code_hash": symbol.code_hash,
        "start_line": symbol.start_line,
        "end_line": symbol.end_line,
        "decorators": list(symbol.decorators),
        "removed_in": removed_in,
    }
    if symbol.kind == "function":
        row["signature"] = symbol.signature
        row["is_method"] = symbol.is_method
    return row


def container(repo: str, facts: FileFacts, symbol: Symbol, symbols: dict[str, Symbol]) -> tuple[str, str]:
    """A method's class contains it; everything else (top level, nested in a function) is in the file."""
    parent = symbols.get(symbol.parent) if symbol.parent else None
    if parent is not None and parent.kind == "class" and symbol.kind == "function":
        return "Class", f"{repo}:{parent.qualified_name}"
    return "CodeFile", f"{repo}:{facts.path}"


class RepoGraphBuilder:
    def __init__(
        self,
        repo: str,
        graph: GraphStore,
        conn: psycopg.Connection,
        options: BuildOptions | None = None,
    ):
        self.repo = repo
        self.graph = graph
        self.conn = conn
        self.options = options or BuildOptions()
        self.git = GitRepo(repo)
        self.stats = BuildStats(repo=repo)
        self.writer = GraphWriter(graph, self.stats)
        self._cache: OrderedDict[tuple[str, str], FileFacts] = OrderedDict()
        self._cache_bytes = 0  # source bytes of the cached versions
        self._pinned: dict[tuple[str, str], FileFacts] | None = None  # see _pinning
        self._touched: set[str] = set()

    # -- parsing --------------------------------------------------------------------------------------

    def facts(self, path: str, blob: str, size: int | None = None) -> FileFacts | None:
        key = (path, blob)
        if self._pinned is not None and (pinned := self._pinned.get(key)) is not None:
            return pinned
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            if self._pinned is not None:
                self._pinned[key] = cached
            return cached
        if language_of(path) is None:
            return None
        if size is not None and size > self.options.size_limit:
            language = language_of(path) or ""
            result: FileFacts | None = FileFacts(
                path, language, module_name(path, language), size, blob_sha=blob, skipped="too_large"
            )
        else:
            data = self.git.read_blob(blob)
            result = parse_file(path, data, blob_sha=blob, size_limit=self.options.size_limit)
            if result is not None and result.skipped is None:
                self.stats.files_parsed += 1
                self.stats.bytes_parsed += len(data)
        if result is not None:
            self._remember(key, result)
        return result

    def _remember(self, key: tuple[str, str], result: FileFacts) -> None:
        if self._pinned is not None:
            self._pinned[key] = result
        if key in self._cache:
            return
        self._cache[key] = result
        self._cache_bytes += _held_bytes(result)
        while len(self._cache) > 1 and (len(self._cache) > FACTS_CACHE or self._cache_bytes > FACTS_CACHE_BYTES):
            _, dropped = self._cache.popitem(last=False)
            self._cache_bytes -= _held_bytes(dropped)

    @contextlib.contextmanager
    def _pinning(self) -> Iterator[None]:
        """While a commit (or the head) is processed, the versions it parsed or used stay at hand whatever the
        cache drops: a first snapshot larger than the cache is parsed once, in its batches, not again file by
        file."""
        self._pinned = {}
        try:
            yield
        finally:
            self._pinned = None

    def _prefetch(self, files: Iterable[tuple[str, str]]) -> None:
        """Parse the (path, blob) pairs not in the cache with their blobs read in one batch (a round trip
        per blob to `git cat-file` would cost about as much as parsing)."""
        paths = {}
        for path, blob in files:
            if (path, blob) in self._cache:
                self.facts(path, blob)  # pins it
            elif language_of(path):
                paths[blob] = path
        batch: list[tuple[str, str, bytes]] = []
        held = 0
        for blob, data in self.git.read_blobs(list(paths)):
            batch.append((paths[blob], blob, data))
            held += len(data)
            if len(batch) >= PARSE_BATCH_FILES or held >= PARSE_BATCH_BYTES:
                self._parse_batch(batch)
                batch, held = [], 0
        self._parse_batch(batch)

    def _parse_batch(self, blobs: list[tuple[str, str, bytes]]) -> None:
        if not blobs:
            return
        options = self.options
        parsed, by_workers = parse_blobs(blobs, options.size_limit, options.parse_workers, options.parallel_min_bytes)
        self.stats.files_parsed_by_workers += by_workers
        for (path, blob, data), result in zip(blobs, parsed, strict=True):
            if result is not None:
                if result.skipped is None:
                    self.stats.files_parsed += 1
                    self.stats.bytes_parsed += len(data)
                self._remember((path, blob), result)

    # -- the run --------------------------------------------------------------------------------------

    def run(self) -> BuildStats:
        try:
            return self._run()
        finally:
            self.git.close()

    def _run(self) -> BuildStats:
        stats, options = self.stats, self.options
        stats.branch = options.branch or self.git.default_branch()
        head = self.git.resolve(options.head or stats.branch)
        stats.head = head
        cursor = store.load_cursor(self.conn, self.repo)
        after = cursor.last_sha if cursor and cursor.last_sha else None
        stats.previous = after
        if after == head or (after and self.git.is_ancestor(head, after)):
            return stats  # nothing new (or an older head than already processed)
        if after and not self.git.is_ancestor(after, head):
            self._forget_repository(after)
            after = None
        # A first build into an empty graph loads in bulk, and leaves its last history chunk unwritten
        # until the head pass has added its rows (so a symbol both passes see is written once).
        self.writer.bulk = after is None and self._graph_is_empty()
        started = time.monotonic()
        limits: dict[str, Any] = {} if after else {"max_count": options.max_commits, "since": options.since}
        for commit in self.git.log(head, after=after, **limits):
            self._commit(commit)
            stats.commits += 1
            self._progress("history")
            if stats.commits % options.chunk_commits == 0 or self.writer.pending > 100_000:
                self.writer.flush()
                gc.collect()  # the collector is paused during the build (see _collector_paused)
        if not self.writer.bulk:
            self.writer.flush()
        stats.history_s = round(time.monotonic() - started, 3)
        started = time.monotonic()
        self._progress("head")
        self._head(head, fresh=after is None)
        stats.head_s = round(time.monotonic() - started, 3)
        return stats

    def _progress(self, phase: str) -> None:
        if self.options.progress is not None:
            self.options.progress(phase, self.stats)

    def _graph_is_empty(self) -> bool:
        """No node of this repository in the graph (a first build, or one after a rewrite)."""
        return not any(
            self.graph.query(f"MATCH (n:{label}) WHERE n.repo = $repo RETURN n.id AS id LIMIT 1", {"repo": self.repo})
            for label in CODE_LABELS
        )

    def _forget_repository(self, previous: str) -> None:
        """A rewritten history: drop this repository's code nodes and start over, recorded on the cursor."""
        for label in CODE_LABELS:
            self.graph.write(f"MATCH (n:{label}) WHERE n.repo = $repo DETACH DELETE n", {"repo": self.repo})
        with self.conn.transaction():
            store.record_rewrite(self.conn, self.repo, previous)
        self.stats.rewritten_from = previous

    # -- history pass ---------------------------------------------------------------------------------

    def _commit(self, commit: CommitInfo) -> None:
        with self._pinning():
            self._process_commit(commit)

    def _process_commit(self, commit: CommitInfo) -> None:
        repo, w = self.repo, self.writer
        commit_id = f"{repo}:{commit.sha}"
        w.node(
            "Commit",
            {
                "id": commit_id,
                "repo": repo,
                "hash": commit.sha,
                "message": commit.message,
                "author": commit.author,
                "timestamp": commit.timestamp,
                "is_merge": len(commit.parents) > 1,
            },
        )
        generated: list[tuple[str, str]] = []  # (label, id) of code objects this commit added or changed
        if len(commit.changes) > PREFETCH_MIN:
            self._prefetch(
                (path, blob)
                for change in commit.changes
                for path, blob in ((change.old_path, change.old_blob), (change.new_path, change.new_blob))
                if path and blob
            )
        for change in commit.changes:
            generated.extend(self._change(commit, commit_id, change))
        for task_id in commit.task_ids:
            # The id only: the task belongs to one organisation, the repository's graph to all that see it.
            w.node("Task", {"id": task_id, "task_id": task_id})
            if task_id not in self.stats.tasks:
                self.stats.tasks.append(task_id)
            for label, node_id in generated:
                w.rel("GENERATED_BY", label, "Task", node_id, task_id)

    def _change(self, commit: CommitInfo, commit_id: str, change: Change) -> list[tuple[str, str]]:
        repo, w, sha = self.repo, self.writer, commit.sha
        old = self.facts(change.old_path, change.old_blob) if change.old_path and change.old_blob else None
        new = self.facts(change.new_path, change.new_blob) if change.new_path and change.new_blob else None
        if old is None and new is None:
            return []
        generated: list[tuple[str, str]] = []
        if new is not None:
            self._touched.add(new.path)
            kind = {"A": "added", "R": "renamed", "C": "added"}.get(change.status, "modified")
            if old is None and change.status not in ("R", "C"):
                kind = "added"
            w.node("CodeFile", file_row(repo, new, None))
            props = {"change": kind}
            if change.status in ("R", "C") and change.old_path:
                props["old_path"] = change.old_path
            w.rel("MODIFIED_IN", "CodeFile", "Commit", f"{repo}:{new.path}", commit_id, **props)
            generated.append(("CodeFile", f"{repo}:{new.path}"))
        if old is not None and (new is None or old.path != new.path):
            self._touched.add(old.path)
            if change.status != "C":
                w.node("CodeFile", file_row(repo, old, sha))
                w.rel("MODIFIED_IN", "CodeFile", "Commit", f"{repo}:{old.path}", commit_id, change="deleted")
        old_symbols = {s.qualified_name: s for s in old.symbols} if old is not None else {}
        new_symbols = {s.qualified_name: s for s in new.symbols} if new is not None else {}
        if change.status == "C":
            old_symbols = {}
        for qname, symbol in new_symbols.items():
            before = old_symbols.get(qname)
            if before is not None and before.code_hash == symbol.code_hash:
                continue
            assert new is not None
            label = symbol_label(symbol)
            node_id = f"{repo}:{qname}"
            w.node(label, symbol_row(repo, new, symbol, None))
            self._contains(container(repo, new, symbol, new_symbols), label, node_id)
            w.rel("AFFECTS", "Commit", label, commit_id, node_id, change="added" if before is None else "modified")
            generated.append((label, node_id))
        for qname, symbol in old_symbols.items():
            if qname in new_symbols:
                continue
            assert old is not None
            label = symbol_label(symbol)
            node_id = f"{repo}:{qname}"
            w.node(label, symbol_row(repo, old, symbol, sha))
            self._contains(container(repo, old, symbol, old_symbols), label, node_id)
            w.rel("AFFECTS", "Commit", label, commit_id, node_id, change="removed")
        return generated

    def _contains(self, parent: tuple[str, str], label: str, node_id: str) -> None:
        self.writer.rel("CONTAINS", parent[0], label, parent[1], node_id)

    # -- head pass ------------------------------------------------------------------------------------

    def _head(self, head: str, *, fresh: bool) -> None:
        with self._pinning():
            self._process_head(head, fresh=fresh)

    def _process_head(self, head: str, *, fresh: bool) -> None:
        repo, stats, w = self.repo, self.stats, self.writer
        all_entries = self.git.tree(head)
        tree: dict[str, TreeEntry] = {e.path: e for e in all_entries if language_of(e.path)}
        stored = store.stored_blobs(self.conn, repo)
        loaded = store.load_facts(self.conn, repo) if stored else []
        # Facts of an older extraction lack what resolution now reads: their files are parsed again.
        outdated = {f.path for f in loaded if f.version != FACTS_VERSION}
        changed_paths = sorted(
            p for p, e in tree.items() if stored.get(p) != e.blob or p in self._touched or p in outdated
        )
        deleted = sorted(p for p in stored if p not in tree)
        self._prefetch((p, tree[p].blob) for p in changed_paths if tree[p].size <= self.options.size_limit)
        changed = [f for p in changed_paths if (f := self.facts(p, tree[p].blob, tree[p].size)) is not None]
        changed_set = set(changed_paths)
        unchanged = [f for f in loaded if f.path in tree and f.path not in changed_set]
        go_module = self._go_module(all_entries)
        index = Index([*unchanged, *changed], go_module=go_module)
        touched_modules = {f.module for f in changed} | {
            module_name(p, language_of(p) or "") for p in deleted if language_of(p)
        }
        dependents = [f for f in unchanged if imported_modules(index, f) & touched_modules]
        links: dict[str, FileLinks] = {}
        if not fresh:
            # Values flow across files (an argument, a return, a subclass): a change can move the calls of a
            # file that imports nothing changed. Those whose calls differ from the graph's are rewritten too.
            linked = {f.path for f in changed + dependents}
            links = {f.path: link_file(index, f) for f in unchanged if f.path not in linked}
            moved = self._calls_moved(links)
            dependents += [f for f in unchanged if f.path in moved]
        relink = changed + dependents
        stats.head_files, stats.files_changed, stats.files_deleted = len(tree), len(changed), len(deleted)
        stats.files_relinked = len(relink)
        for facts in [*unchanged, *changed]:
            if facts.skipped:
                stats.skipped.append((facts.path, facts.skipped))
            if facts.parse_errors:
                stats.parse_error_files.append(facts.path)

        if not fresh:
            stale = [f.path for f in relink] + deleted
            self._delete_outgoing(stale)
        for facts in changed:
            w.node("CodeFile", file_row(repo, facts, None))
            symbols = {s.qualified_name: s for s in facts.symbols}
            for symbol in facts.symbols:
                label = symbol_label(symbol)
                w.node(label, symbol_row(repo, facts, symbol, None))
                self._contains(container(repo, facts, symbol, symbols), label, f"{repo}:{symbol.qualified_name}")
        # The graph is written in a thread while this one links the files and stores the facts (both
        # database libraries release the GIL while they work): first the nodes and what the history said,
        # then the links (Library, IMPORTS, USES, CALLS: labels and types no earlier write has). The
        # cursor commits only once both writes have succeeded.
        with ThreadPoolExecutor(max_workers=1) as pool:
            structure_written = pool.submit(w.write, w.take(), final=True)
            self._link(relink, index, all_entries, links)
            links_written = pool.submit(w.write, w.take(), final=True)
            with self.conn.transaction():
                store.save_facts(self.conn, repo, changed, deleted, first=not stored)
                store.save_cursor(self.conn, repo, stats.branch, head, stats.commits)
                structure_written.result()
                links_written.result()

    def _calls_moved(self, links: dict[str, FileLinks]) -> set[str]:
        """Of these files, those whose CALLS as linked now differ from the graph's."""
        if not links:
            return set()
        rows = self.graph.query(
            "MATCH (a:Function)-[r:CALLS]->(b:Function) WHERE a.repo = $repo "
            "RETURN a.path AS path, a.qualified_name AS a, b.qualified_name AS b, r.resolution AS r",
            {"repo": self.repo},
        )
        stored: dict[str, set[tuple[str, str, str]]] = {}
        for row in rows:
            stored.setdefault(row["path"], set()).add((row["a"], row["b"], row["r"]))
        return {
            path
            for path, linked in links.items()
            if {(a, b, r) for a, b, r, _ in linked.calls} != stored.get(path, set())
        }

    def _link(
        self,
        relink: list[FileFacts],
        index: Index,
        all_entries: list[TreeEntry],
        known: dict[str, FileLinks] | None = None,
    ) -> None:
        """Library, IMPORTS, USES and CALLS rows of these files (`known`: links already computed)."""
        repo, stats, w = self.repo, self.stats, self.writer
        versions = manifest_versions(
            lambda path: self.git.read_blob(next(e.blob for e in all_entries if e.path == path)),
            [e.path for e in all_entries],
        )
        for facts in relink:
            links = (known or {}).get(facts.path) or link_file(index, facts)
            stats.call_sites += links.call_sites
            stats.calls_resolved += len(links.calls)
            stats.calls_unresolved += links.unresolved
            libraries = {name: library_for(facts.language, name, versions) for name in links.libraries}
            for name, alias in links.libraries.items():
                library = libraries[name]
                w.node("Library", library)
                w.rel("IMPORTS", "CodeFile", "Library", f"{repo}:{facts.path}", library["id"], alias=alias)
            kinds = {s.qualified_name: symbol_label(s) for s in facts.symbols}
            for qname, name in links.uses:
                w.rel("USES", kinds[qname], "Library", f"{repo}:{qname}", libraries[name]["id"])
            for caller, callee, resolution, confidence in links.calls:
                w.rel(
                    "CALLS",
                    "Function",
                    "Function",
                    f"{repo}:{caller}",
                    f"{repo}:{callee}",
                    resolution=resolution,
                    confidence=confidence,
                )

    def _delete_outgoing(self, paths: Iterable[str]) -> None:
        """The structure leaving these files is rewritten: drop what their last version said."""
        params = {"repo": self.repo, "paths": list(paths)}
        if not params["paths"]:
            return
        for label in ("Function", "Class"):
            self.graph.write(
                f"MATCH (s:{label})-[r:USES]->() WHERE s.repo = $repo AND s.path IN $paths DELETE r", params
            )
        for pattern in ("(s:Function)-[r:CALLS]->()", "(s:CodeFile)-[r:IMPORTS]->()"):
            self.graph.write(f"MATCH {pattern} WHERE s.repo = $repo AND s.path IN $paths DELETE r", params)

    def _go_module(self, entries: list[TreeEntry]) -> str | None:
        for entry in entries:
            if entry.path == "go.mod":
                for line in self.git.read_blob(entry.blob).decode("utf-8", "replace").splitlines():
                    if line.startswith("module "):
                        return line.split()[1]
        return None


def build_repository(
    repo: str, graph: GraphStore, conn: psycopg.Connection, options: BuildOptions | None = None
) -> BuildStats:
    """Bring one repository's graph up to its head (see the module docstring)."""
    with _collector_paused():  # the builder and what it holds are freed before the collector resumes
        return RepoGraphBuilder(repo, graph, conn, options).run()


def _held_bytes(facts: FileFacts) -> int:
    """What a cached version counts against FACTS_CACHE_BYTES: its source's size when it was parsed (one skipped as
    too large or unreadable holds no facts)."""
    return facts.size_bytes if facts.skipped is None else 0
