"""Which files are indexed with which model and chunk size.

Every organisation has a default index: the configured embedder (COGO_EMBEDDER) over all its files with the
default chunk size, so a search without an agent always has something to answer from. Each active agent
knowledge source of kind 'workspace' (or 'file', naming one storage path) adds its own (model, chunk size,
overlap) over the files its `file_kinds` and `path_glob` select. Sources of other kinds (url, text, repo)
are not workspace files and are not handled here.

A chunk size is at most what the index's embedder reads whole: its window less the special tokens it adds
(254 for all-MiniLM-L6-v2's 256). A larger one is clamped to that, and the target says why; the chunk profile
names the size actually used.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from functools import cache

import psycopg

from cogo.embed import Embedder, get_embedder
from cogo.knowledge.chunking import CHUNKER_VERSION, DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE, chunk_profile


@cache
def glob_regex(glob: str) -> str:
    """A path glob as a regular expression that Python and Postgres read alike: `*` and `?` stay within one
    directory, `**` crosses directories."""
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]) if not glob[i].isalnum() else glob[i])
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class IndexTarget:
    organization_id: str
    source_id: uuid.UUID | None  # None: the organisation's default index
    model: str
    chunk_size: int
    chunk_overlap: int
    file_kinds: tuple[str, ...] = ("upload", "generated", "attachment")
    path_glob: str | None = None
    storage_path: str | None = None  # a 'file' source: exactly this file
    chunker_version: str = CHUNKER_VERSION
    clamped: str | None = field(default=None, compare=False)  # why chunk_size is less than was asked for

    @property
    def profile(self) -> str:
        return chunk_profile(self.chunk_size, self.chunk_overlap, self.chunker_version)

    @property
    def key(self) -> tuple[str, uuid.UUID | None, str, str]:
        return (self.organization_id, self.source_id, self.model, self.profile)

    def covers(self, kind: str, storage_path: str) -> bool:
        if kind not in self.file_kinds:
            return False
        if self.storage_path is not None:
            return storage_path == self.storage_path
        if self.path_glob:
            below_files = storage_path.split("/", 4)[4] if storage_path.count("/") >= 4 else storage_path
            return re.fullmatch(glob_regex(self.path_glob), below_files) is not None
        return True


@dataclass
class ActiveFile:
    id: uuid.UUID
    organization_id: str
    kind: str
    storage_path: str
    filename: str
    sha256: str | None
    mime_type: str | None
    targets: list[IndexTarget] = field(default_factory=list)

    @property
    def profiles(self) -> set[str]:
        return {t.profile for t in self.targets}

    @property
    def model_profiles(self) -> set[tuple[str, str]]:
        return {(t.model, t.profile) for t in self.targets}

    def embedders(self, profile: str) -> list[Embedder]:
        """The embedders that read this file's chunks of `profile`: every chunk must fit each one's window."""
        found = (window_embedder(m) for m in sorted({t.model for t in self.targets if t.profile == profile}))
        return [e for e in found if e is not None]


def window_embedder(model: str) -> Embedder | None:
    """The embedder whose window `model`'s chunks must fit; None for a spec no embedder can be made for (the
    embed stage reports that model's failure)."""
    try:
        return get_embedder(model)
    except (ValueError, ImportError):
        return None


def fitted_size(model: str, size: int, overlap: int) -> tuple[int, int, str | None]:
    """(chunk size, overlap, why it was clamped): `size` unless `model` reads fewer tokens whole."""
    embedder = window_embedder(model)
    if embedder is None or size <= embedder.chunk_budget:
        return size, overlap, None
    budget = embedder.chunk_budget
    reason = (
        f"chunk_size {size} is over what {model} reads whole ({embedder.max_input_tokens} tokens including its "
        f"{embedder.special_tokens} special tokens): chunked at {budget} tokens"
    )
    # An overlap near the clamped size would move each window on by a token or two.
    return budget, min(overlap, budget // 2), reason


def _fitted(target: IndexTarget) -> IndexTarget:
    size, overlap, clamped = fitted_size(target.model, target.chunk_size, target.chunk_overlap)
    if clamped and target.source_id is not None:
        clamped = f"knowledge source {target.source_id}: {clamped}"
    return replace(target, chunk_size=size, chunk_overlap=overlap, clamped=clamped)


def load_targets(
    conn: psycopg.Connection,
    default_model: str,
    organization_ids: list[str],
    *,
    chunker_version: str = CHUNKER_VERSION,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
) -> list[IndexTarget]:
    """Each organisation's default index (`default_model`, `chunk_size`/`chunk_overlap`) and its agents'
    knowledge sources, all chunked by `chunker_version`, each chunk size clamped to its model's (fitted_size)."""
    targets = [
        _fitted(IndexTarget(org, None, default_model, chunk_size, chunk_overlap, chunker_version=chunker_version))
        for org in organization_ids
    ]
    rows = conn.execute(
        "SELECT s.organization_id, s.id, s.kind, s.uri, s.file_kinds, s.path_glob, s.embedding_model, s.chunk_size, "
        "s.chunk_overlap FROM agent_knowledge_sources s JOIN agents a ON a.id = s.agent_id "
        "WHERE s.is_active AND a.is_active AND a.deleted_at IS NULL AND s.kind IN ('workspace', 'file') "
        "AND s.organization_id = ANY(%s) ORDER BY s.organization_id, s.id",
        (organization_ids,),
    ).fetchall()
    for org, sid, kind, uri, kinds, glob, model, size, overlap in rows:
        storage_path = (uri or "").removeprefix("workspace://").lstrip("/") if kind == "file" else None
        target = IndexTarget(org, sid, model, size, overlap, tuple(kinds), glob or None, storage_path, chunker_version)
        targets.append(_fitted(target))
    return targets


def active_files(
    conn: psycopg.Connection,
    default_model: str,
    file_ids: list[uuid.UUID] | None = None,
    *,
    chunker_version: str = CHUNKER_VERSION,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
) -> tuple[list[ActiveFile], list[IndexTarget]]:
    """Active files, each with the index targets that cover it; and every target (see load_targets)."""
    query = (
        "SELECT id, organization_id, kind, storage_path, filename, sha256, mime_type FROM files WHERE status = 'active'"
    )
    params: tuple = ()
    if file_ids is not None:
        query += " AND id = ANY(%s)"
        params = (file_ids,)
    files = [ActiveFile(*row) for row in conn.execute(query + " ORDER BY organization_id, storage_path", params)]
    orgs = sorted({f.organization_id for f in files})
    targets = load_targets(
        conn, default_model, orgs, chunker_version=chunker_version, chunk_size=chunk_size, chunk_overlap=chunk_overlap
    )
    by_org: dict[str, list[IndexTarget]] = {}
    for t in targets:
        by_org.setdefault(t.organization_id, []).append(t)
    for f in files:
        f.targets = [t for t in by_org.get(f.organization_id, []) if t.covers(f.kind, f.storage_path)]
    return files, targets
