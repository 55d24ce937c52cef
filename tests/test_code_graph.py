"""The code graph built from a git history the test makes (add, change with a task trailer, rename,
delete, a syntax error, latin-1, binary, a 5 MB generated file, a merge), asserted exactly, on both
backends; incremental runs, a force-push and the cursor."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from cogo.code.builder import BuildOptions, RepoGraphBuilder, build_repository
from cogo.code.store import load_cursor
from cogo.graph.base import GraphStore
from cogo.graph.ladybug_store import LadybugStore
from tests import code_graph_dump as dump
from tests.code_repos import TASK_ID, Repo, build_history

EXPECTED_NODES = {
    ("CodeFile", "app/__init__.py", None),
    ("CodeFile", "app/auth.py", None),
    ("CodeFile", "app/old.py", "delete"),
    ("CodeFile", "app/util.py", "rename"),
    ("CodeFile", "app/helpers.py", None),
    ("CodeFile", "app/blob.py", None),
    ("CodeFile", "app/broken.py", None),
    ("CodeFile", "app/generated.py", None),
    ("CodeFile", "app/latin1.py", None),
    ("CodeFile", "app/feature.py", None),
    ("Function", "app.auth.login", None),
    ("Function", "app.auth.verify", None),
    ("Function", "app.auth.logout", "delete"),
    ("Function", "app.auth.TokenService.refresh", None),
    ("Function", "app.auth.TokenService.check", None),
    ("Function", "app.old.legacy", "delete"),
    ("Function", "app.util.helper", "rename"),
    ("Function", "app.helpers.helper", None),
    ("Function", "app.broken.fine", None),
    ("Function", "app.broken.broken", None),
    ("Function", "app.latin1.latin", None),
    ("Function", "app.feature.feature", None),
    ("Class", "app.auth.TokenService", None),
    ("Library", "pypi:pyjwt", None),
    ("Task", TASK_ID, None),
    *(("Commit", step, None) for step in ("add", "change", "rename", "delete", "odd_files", "main_after_branch")),
    ("Commit", "merge", None),
}

EXPECTED_RELATIONSHIPS = {
    # structure at the head (and where removed symbols lived)
    ("app/auth.py", "CONTAINS", "app.auth.login", ()),
    ("app/auth.py", "CONTAINS", "app.auth.verify", ()),
    ("app/auth.py", "CONTAINS", "app.auth.logout", ()),
    ("app/auth.py", "CONTAINS", "app.auth.TokenService", ()),
    ("app.auth.TokenService", "CONTAINS", "app.auth.TokenService.refresh", ()),
    ("app.auth.TokenService", "CONTAINS", "app.auth.TokenService.check", ()),
    ("app/old.py", "CONTAINS", "app.old.legacy", ()),
    ("app/util.py", "CONTAINS", "app.util.helper", ()),
    ("app/helpers.py", "CONTAINS", "app.helpers.helper", ()),
    ("app/broken.py", "CONTAINS", "app.broken.fine", ()),
    ("app/broken.py", "CONTAINS", "app.broken.broken", ()),
    ("app/latin1.py", "CONTAINS", "app.latin1.latin", ()),
    ("app/feature.py", "CONTAINS", "app.feature.feature", ()),
    # calls, each with how it was resolved
    ("app.auth.login", "CALLS", "app.auth.verify", (("confidence", 1.0), ("resolution", "scope"))),
    ("app.auth.login", "CALLS", "app.helpers.helper", (("confidence", 1.0), ("resolution", "import"))),
    ("app.auth.TokenService.check", "CALLS", "app.auth.login", (("confidence", 1.0), ("resolution", "scope"))),
    (
        "app.auth.TokenService.refresh",
        "CALLS",
        "app.auth.TokenService.check",
        (("confidence", 0.9), ("resolution", "self")),
    ),
    ("app.feature.feature", "CALLS", "app.auth.login", (("confidence", 1.0), ("resolution", "import"))),
    # libraries
    ("app/auth.py", "IMPORTS", "pypi:pyjwt", ()),
    ("app.auth.TokenService.refresh", "USES", "pypi:pyjwt", ()),
    ("app.auth.TokenService", "USES", "pypi:pyjwt", ()),
    # history: files per commit
    ("app/__init__.py", "MODIFIED_IN", "add", (("change", "added"),)),
    ("app/auth.py", "MODIFIED_IN", "add", (("change", "added"),)),
    ("app/old.py", "MODIFIED_IN", "add", (("change", "added"),)),
    ("app/util.py", "MODIFIED_IN", "add", (("change", "added"),)),
    ("app/auth.py", "MODIFIED_IN", "change", (("change", "modified"),)),
    ("app/auth.py", "MODIFIED_IN", "rename", (("change", "modified"),)),
    ("app/util.py", "MODIFIED_IN", "rename", (("change", "deleted"),)),
    ("app/helpers.py", "MODIFIED_IN", "rename", (("change", "renamed"), ("old_path", "app/util.py"))),
    ("app/auth.py", "MODIFIED_IN", "delete", (("change", "modified"),)),
    ("app/old.py", "MODIFIED_IN", "delete", (("change", "deleted"),)),
    ("app/blob.py", "MODIFIED_IN", "odd_files", (("change", "added"),)),
    ("app/broken.py", "MODIFIED_IN", "odd_files", (("change", "added"),)),
    ("app/generated.py", "MODIFIED_IN", "odd_files", (("change", "added"),)),
    ("app/latin1.py", "MODIFIED_IN", "odd_files", (("change", "added"),)),
    ("app/helpers.py", "MODIFIED_IN", "main_after_branch", (("change", "modified"),)),
    ("app/feature.py", "MODIFIED_IN", "merge", (("change", "added"),)),
    # history: symbols whose code_hash each commit added, changed or removed
    ("add", "AFFECTS", "app.auth.login", (("change", "added"),)),
    ("add", "AFFECTS", "app.auth.verify", (("change", "added"),)),
    ("add", "AFFECTS", "app.auth.TokenService", (("change", "added"),)),
    ("add", "AFFECTS", "app.auth.TokenService.refresh", (("change", "added"),)),
    ("add", "AFFECTS", "app.auth.TokenService.check", (("change", "added"),)),
    ("add", "AFFECTS", "app.old.legacy", (("change", "added"),)),
    ("add", "AFFECTS", "app.util.helper", (("change", "added"),)),
    ("change", "AFFECTS", "app.auth.verify", (("change", "modified"),)),
    ("change", "AFFECTS", "app.auth.logout", (("change", "added"),)),
    ("rename", "AFFECTS", "app.util.helper", (("change", "removed"),)),
    ("rename", "AFFECTS", "app.helpers.helper", (("change", "added"),)),
    ("delete", "AFFECTS", "app.auth.logout", (("change", "removed"),)),
    ("delete", "AFFECTS", "app.old.legacy", (("change", "removed"),)),
    ("odd_files", "AFFECTS", "app.broken.fine", (("change", "added"),)),
    ("odd_files", "AFFECTS", "app.broken.broken", (("change", "added"),)),
    ("odd_files", "AFFECTS", "app.latin1.latin", (("change", "added"),)),
    ("main_after_branch", "AFFECTS", "app.helpers.helper", (("change", "modified"),)),
    ("merge", "AFFECTS", "app.feature.feature", (("change", "added"),)),
    # the task named by the trailer: what its commit added or changed
    ("app/auth.py", "GENERATED_BY", TASK_ID, ()),
    ("app.auth.verify", "GENERATED_BY", TASK_ID, ()),
    ("app.auth.logout", "GENERATED_BY", TASK_ID, ()),
}


@pytest.fixture
def history(tmp_path: Path) -> tuple[str, dict[str, str]]:
    commits = build_history(tmp_path / "demo")
    return str(tmp_path / "demo"), {sha: step for step, sha in commits.items()}


def test_the_graph_of_a_history_is_exact(
    graph: GraphStore, db: psycopg.Connection, history: tuple[str, dict[str, str]]
) -> None:
    repo, steps = history
    db.execute("INSERT INTO organizations (id, name) VALUES ('org_demo', 'Demo')")
    db.execute(
        "INSERT INTO agent_tasks (id, organization_id, title, prompt, status) "
        "VALUES (%s, 'org_demo', 'Harden login', 'Make passwords stricter', 'COMPLETED')",
        (TASK_ID,),
    )
    stats = build_repository(repo, graph, db)

    assert dump.nodes(graph, repo, steps) == EXPECTED_NODES
    assert dump.relationships(graph, repo, steps) == EXPECTED_RELATIONSHIPS
    assert stats.commits == 7
    assert sorted(stats.skipped) == [("app/blob.py", "binary"), ("app/generated.py", "too_large")]
    assert stats.parse_error_files == ["app/broken.py"]

    files = {
        r["path"]: r
        for r in graph.query(
            "MATCH (f:CodeFile) RETURN f.path AS path, f.summary AS summary, f.skipped AS skipped, "
            "f.parse_errors AS errors, f.language AS language, f.size_bytes AS size"
        )
    }
    assert files["app/auth.py"]["summary"] == "Authentication helpers."
    assert files["app/generated.py"]["skipped"] == "too_large" and files["app/generated.py"]["size"] == 5 * 1024 * 1024
    assert files["app/blob.py"]["skipped"] == "binary"
    assert files["app/broken.py"]["errors"] == 1 and files["app/broken.py"]["skipped"] is None
    assert {r["language"] for r in files.values()} == {"python"}

    refresh = graph.query(
        "MATCH (f:Function {qualified_name: 'app.auth.TokenService.refresh'}) "
        "RETURN f.signature AS sig, f.is_method AS method, f.start_line AS first, f.end_line AS last"
    )
    assert refresh == [{"sig": "(self, token: str) -> str", "method": True, "first": 21, "last": 23}]
    # The task's id only, none of its organisation's data (title, prompt, status stay in Postgres).
    task = graph.query("MATCH (t:Task) RETURN t")
    assert task == [{"t": {"_labels": ["Task"], "id": TASK_ID, "task_id": TASK_ID}}]
    library = graph.query("MATCH (l:Library) RETURN l.name AS name, l.version AS version, l.ecosystem AS eco")
    assert library == [{"name": "pyjwt", "version": "2.8.0", "eco": "pypi"}]
    merge = graph.query("MATCH (c:Commit {message: 'Merge feature'}) RETURN c.is_merge AS merge, c.author AS author")
    assert merge == [{"merge": True, "author": "Ada <ada@example.com>"}]

    cursor = load_cursor(db, repo)
    assert cursor is not None and steps[cursor.last_sha] == "merge" and cursor.commits_processed == 7
    skipped_rows = db.execute(
        "SELECT path, skipped FROM code_file_facts WHERE repo = %s AND skipped IS NOT NULL ORDER BY path", (repo,)
    ).fetchall()
    assert skipped_rows == [("app/blob.py", "binary"), ("app/generated.py", "too_large")]


def test_a_run_with_nothing_new_changes_nothing(
    ladybug_graph: GraphStore, db: psycopg.Connection, history: tuple[str, dict[str, str]]
) -> None:
    repo, _ = history
    build_repository(repo, ladybug_graph, db)
    before = dump.full(ladybug_graph)
    again = build_repository(repo, ladybug_graph, db)
    assert again.commits == 0 and again.nodes_written == 0 and again.files_parsed == 0
    assert dump.full(ladybug_graph) == before


def test_incremental_runs_build_the_same_graph_as_one_run(
    tmp_path: Path, ladybug_graph: GraphStore, db: psycopg.Connection, history: tuple[str, dict[str, str]]
) -> None:
    repo, steps = history
    by_step = {step: sha for sha, step in steps.items()}
    for step in ("add", "rename", "odd_files", "main_after_branch", "merge"):
        stats = build_repository(repo, ladybug_graph, db, BuildOptions(head=by_step[step]))
        assert stats.head == by_step[step]
    # the last step is one new commit: only what it touched is parsed again
    assert stats.commits == 1 and stats.files_changed == 1 and stats.files_parsed == 1

    db.execute("DELETE FROM code_file_facts")
    db.execute("DELETE FROM code_repo_cursors")
    one_run = LadybugStore(tmp_path / "one-run" / "graph.lbug")
    one_run.ensure_schema()
    try:
        build_repository(repo, one_run, db)
        assert dump.full(ladybug_graph) == dump.full(one_run)
    finally:
        one_run.close()


def test_both_backends_build_the_same_graph(
    ladybug_graph: GraphStore, neo4j_graph: GraphStore, database_url: str, history: tuple[str, dict[str, str]]
) -> None:
    repo, _ = history
    for store in (ladybug_graph, neo4j_graph):
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM code_file_facts")
            conn.execute("DELETE FROM code_repo_cursors")
            build_repository(repo, store, conn)
    assert dump.full(ladybug_graph) == dump.full(neo4j_graph)


def test_a_first_build_loaded_in_bulk_is_the_graph_merge_builds(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ladybug_graph: GraphStore,
    db: psycopg.Connection,
    history: tuple[str, dict[str, str]],
) -> None:
    """A first build into an empty graph creates its rows in bulk (CREATE from a DataFrame scan) and
    writes each row once; the graph is the one row-by-row MERGE builds, in one chunk or many, and later
    commits build on it alike."""
    repo, steps = history
    by_step = {step: sha for sha, step in steps.items()}

    def reset() -> None:
        db.execute("DELETE FROM code_file_facts")
        db.execute("DELETE FROM code_repo_cursors")

    with monkeypatch.context() as patch:
        patch.setattr(RepoGraphBuilder, "_graph_is_empty", lambda self: False)  # MERGE only, as before bulk
        build_repository(repo, ladybug_graph, db)
    merged = dump.full(ladybug_graph)
    runs = {
        "one run": [BuildOptions()],
        "a chunk per commit": [BuildOptions(chunk_commits=1)],
        "then incremental": [BuildOptions(head=by_step["rename"]), BuildOptions()],
    }
    for name, options in runs.items():
        reset()
        bulk = LadybugStore(tmp_path / name.replace(" ", "-") / "graph.lbug")
        bulk.ensure_schema()
        try:
            for option in options:
                build_repository(repo, bulk, db, option)
            assert dump.full(bulk) == merged, name
        finally:
            bulk.close()


def test_files_parsed_by_forked_workers_build_the_same_graph(
    tmp_path: Path, ladybug_graph: GraphStore, db: psycopg.Connection, history: tuple[str, dict[str, str]]
) -> None:
    """Large batches of files (here: the snapshot a first run from the last commit parses) are parsed by
    forked processes besides this one; the graph is the one a single process builds. The threshold is
    lowered so that this small repository's batch qualifies."""
    repo, _ = history
    built = {}
    for name, options in {
        "alone": BuildOptions(max_commits=1, parse_workers=1),
        "forked": BuildOptions(max_commits=1, parse_workers=3, parallel_min_bytes=0),
    }.items():
        db.execute("DELETE FROM code_file_facts")
        db.execute("DELETE FROM code_repo_cursors")
        store = LadybugStore(tmp_path / name / "graph.lbug")
        try:
            store.ensure_schema()
            stats = build_repository(repo, store, db, options)
            built[name] = (stats.files_parsed, stats.files_parsed_by_workers, dump.full(store))
        finally:
            store.close()
    assert built["alone"][1] == 0 and built["forked"][1] > 0
    assert built["forked"][0] == built["alone"][0]
    assert built["forked"][2] == built["alone"][2]


def test_a_cache_smaller_than_the_repository_builds_the_same_graph_parsing_each_version_once(
    tmp_path: Path, db: psycopg.Connection, history: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache of parsed versions is bounded in bytes of source (memory bounded however long the history and
    however large its files); a commit or snapshot larger than the cache still parses each version once."""
    import cogo.code.builder as builder

    repo, _ = history
    built = {}
    for name, (count, held_bytes) in {"roomy": (4096, 24_000_000), "tiny": (2, 1)}.items():
        monkeypatch.setattr(builder, "FACTS_CACHE", count)
        monkeypatch.setattr(builder, "FACTS_CACHE_BYTES", held_bytes)
        db.execute("DELETE FROM code_file_facts")
        db.execute("DELETE FROM code_repo_cursors")
        store = LadybugStore(tmp_path / name / "graph.lbug")
        try:
            store.ensure_schema()
            first = build_repository(repo, store, db, BuildOptions(max_commits=1))  # the snapshot at once
            built[name] = (first.files_parsed, dump.full(store))
        finally:
            store.close()
        db.execute("DELETE FROM code_file_facts")
        db.execute("DELETE FROM code_repo_cursors")
        store = LadybugStore(tmp_path / name / "history.lbug")
        try:
            store.ensure_schema()
            build_repository(repo, store, db, BuildOptions())  # every commit, each against its parent
            built[name + " history"] = dump.full(store)
        finally:
            store.close()
    assert built["tiny"] == built["roomy"]
    assert built["tiny history"] == built["roomy history"]


def test_a_force_push_rebuilds_the_repository_and_is_recorded(
    tmp_path: Path, ladybug_graph: GraphStore, db: psycopg.Connection
) -> None:
    repo = Repo(tmp_path / "pushy")
    repo.write("a.py", "def one():\n    return 1\n")
    first = repo.commit("one")
    repo.write("a.py", "def one():\n    return 1\n\n\ndef two():\n    return one()\n")
    dropped = repo.commit("two")
    build_repository(str(repo.path), ladybug_graph, db)

    repo.git("reset", "-q", "--hard", first)
    repo.write("a.py", "def one():\n    return 1\n\n\ndef three():\n    return one()\n")
    rewritten = repo.commit("three instead of two")
    stats = build_repository(str(repo.path), ladybug_graph, db)

    assert stats.rewritten_from == dropped
    steps = {first: "one", rewritten: "three"}
    assert dump.nodes(ladybug_graph, str(repo.path), steps) == {
        ("CodeFile", "a.py", None),
        ("Function", "a.one", None),
        ("Function", "a.three", None),
        ("Commit", "one", None),
        ("Commit", "three", None),
    }
    cursor = db.execute(
        "SELECT last_sha, rewrites, last_rewrite_from, commits_processed FROM code_repo_cursors WHERE repo = %s",
        (str(repo.path),),
    ).fetchone()
    assert cursor == (rewritten, 1, dropped, 2)


def test_a_first_run_can_start_from_recent_history(
    ladybug_graph: GraphStore, db: psycopg.Connection, history: tuple[str, dict[str, str]]
) -> None:
    repo, steps = history
    stats = build_repository(repo, ladybug_graph, db, BuildOptions(max_commits=2))
    assert stats.commits == 2
    commits = {steps[r["hash"]] for r in ladybug_graph.query("MATCH (c:Commit) RETURN c.hash AS hash")}
    assert commits == {"main_after_branch", "merge"}
    # the head's structure is complete all the same
    live = ladybug_graph.query("MATCH (f:Function) WHERE f.removed_in IS NULL RETURN count(f) AS n")
    assert live == [{"n": 9}]
