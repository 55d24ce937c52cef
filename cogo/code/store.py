"""The code graph's state in Postgres: each repository's cursor and its head snapshot's file facts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
import psycopg
from psycopg.types.json import Jsonb

from cogo.code.facts import FileFacts


@dataclass(frozen=True)
class Cursor:
    repo: str
    branch: str
    last_sha: str
    commits_processed: int
    rewrites: int


def load_cursor(conn: psycopg.Connection, repo: str) -> Cursor | None:
    row = conn.execute(
        "SELECT repo, branch, last_sha, commits_processed, rewrites FROM code_repo_cursors WHERE repo = %s", (repo,)
    ).fetchone()
    return Cursor(*row) if row else None


def save_cursor(conn: psycopg.Connection, repo: str, branch: str, sha: str, commits: int) -> None:
    conn.execute(
        """INSERT INTO code_repo_cursors (repo, branch, last_sha, commits_processed) VALUES (%s, %s, %s, %s)
           ON CONFLICT (repo) DO UPDATE SET branch = EXCLUDED.branch, last_sha = EXCLUDED.last_sha,
               commits_processed = code_repo_cursors.commits_processed + EXCLUDED.commits_processed""",
        (repo, branch, sha, commits),
    )


def record_rewrite(conn: psycopg.Connection, repo: str, previous_sha: str) -> None:
    """The history was rewritten: the cursor's commit is no ancestor of the head. Forget the snapshot and
    start over, keeping a trace of the rewrite on the cursor row."""
    conn.execute("DELETE FROM code_file_facts WHERE repo = %s", (repo,))
    conn.execute(
        """UPDATE code_repo_cursors SET rewrites = rewrites + 1, last_rewrite_at = now(),
               last_rewrite_from = %s, commits_processed = 0, last_sha = '' WHERE repo = %s""",
        (previous_sha, repo),
    )


def stored_blobs(conn: psycopg.Connection, repo: str) -> dict[str, str]:
    """path -> blob sha of the snapshot at the cursor."""
    return dict(conn.execute("SELECT path, blob_sha FROM code_file_facts WHERE repo = %s", (repo,)).fetchall())


def load_facts(conn: psycopg.Connection, repo: str, paths: Iterable[str] | None = None) -> list[FileFacts]:
    if paths is None:
        rows = conn.execute("SELECT facts::text FROM code_file_facts WHERE repo = %s", (repo,)).fetchall()
    else:
        rows = conn.execute(
            "SELECT facts::text FROM code_file_facts WHERE repo = %s AND path = ANY(%s)", (repo, list(paths))
        ).fetchall()
    return [FileFacts.from_json(json.loads(text)) for (text,) in rows]


def save_facts(
    conn: psycopg.Connection, repo: str, changed: list[FileFacts], deleted: list[str], *, first: bool = False
) -> None:
    """Store the facts of changed files and forget deleted ones. `first`: the repository has no rows yet
    (its first build), so the rows are loaded with COPY instead of one upsert each."""
    if first:
        with (
            conn.cursor() as cur,
            cur.copy("COPY code_file_facts (repo, path, blob_sha, language, skipped, facts) FROM STDIN") as copy,
        ):
            for f in changed:
                copy.write_row((repo, f.path, f.blob_sha, f.language, f.skipped, orjson.dumps(f.to_json()).decode()))
        return
    if deleted:
        conn.execute("DELETE FROM code_file_facts WHERE repo = %s AND path = ANY(%s)", (repo, deleted))
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO code_file_facts (repo, path, blob_sha, language, skipped, facts)
               VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (repo, path) DO UPDATE SET blob_sha = EXCLUDED.blob_sha, language = EXCLUDED.language,
                   skipped = EXCLUDED.skipped, facts = EXCLUDED.facts, updated_at = now()""",
            [(repo, f.path, f.blob_sha, f.language, f.skipped, Jsonb(f.to_json())) for f in changed],
        )
