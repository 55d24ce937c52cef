"""The workspace as a hostile tenant or an unlucky operator would meet it: symlinks and hard links that lead out
of the root, bytes swapped after registration, odd file names, files put in someone else's conversation, an
empty or unmounted root, files that vanish in the middle of a scan. Real files, a real Postgres."""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogo.assets.workspace import workspace_files
from cogo.knowledge.chunk_stage import chunk_files
from cogo.resources import PostgresResource
from cogo.resources.workspace import WorkspaceResource
from cogo.workspace.fs import UnsafePath, open_file, relative_parts
from cogo.workspace.register import DeletionGuard, register_files
from cogo.workspace.scan import walk
from tests.knowledge_helpers import CONV, ORG, OTHER_USER, USER, files_dir, seed_tenants

MODEL = "openai:test-embed"
NOBODY = 65534
SECRET = "TOP SECRET: the root password of the host"


def _chunks(db: psycopg.Connection) -> list[str]:
    return [r[0] for r in db.execute("SELECT content FROM file_chunks").fetchall()]


def _active(db: psycopg.Connection) -> dict[str, uuid.UUID]:
    return dict(db.execute("SELECT storage_path, id FROM files WHERE status = 'active'").fetchall())


def _rel(root: Path, path: Path) -> str:
    return str(path.relative_to(root))


# -- 1. no byte from outside the root ---------------------------------------------------------------------


def test_a_directory_swapped_for_a_symlink_after_registration_is_never_read(
    db: psycopg.Connection, tmp_path: Path
) -> None:
    seed_tenants(db)
    root = tmp_path / "ws"
    docs = files_dir(root) / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("Quarterly planning notes for the supplier review.")
    assert register_files(db, root, full=True).new == [_rel(root, docs / "notes.txt")]
    # After registration the folder becomes a symlink to a folder outside the root holding the same name.
    outside = tmp_path / "etc"
    outside.mkdir()
    (outside / "notes.txt").write_text(SECRET)
    shutil.rmtree(docs)
    docs.symlink_to(outside, target_is_directory=True)
    report = chunk_files(db, root, MODEL)
    assert not any("SECRET" in c for c in _chunks(db))
    assert [p for p, _ in report.skipped] == [_rel(root, docs / "notes.txt")]
    assert "symlink" in report.skipped[0][1]
    # The next scan refuses the symlink; the row behind it is kept (its state is unknown, not deleted).
    again = register_files(db, root, full=True)
    assert "symlink" in dict(again.refused)[_rel(root, docs)]
    assert "symlink" in dict(again.refused)[_rel(root, docs / "notes.txt")]
    assert again.deleted == [] and list(_active(db)) == [_rel(root, docs / "notes.txt")]


def test_bytes_that_are_not_the_registered_ones_are_not_extracted(db: psycopg.Connection, tmp_path: Path) -> None:
    seed_tenants(db)
    path = files_dir(tmp_path) / "plan.txt"
    path.write_text("The registered plan: ship the supplier portal in March.")
    register_files(db, tmp_path, full=True)
    stat = path.stat()
    # Same size, same mtime, other bytes: the scan would not even hash it again.
    path.write_text(SECRET[: stat.st_size].ljust(stat.st_size, "!"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    report = chunk_files(db, tmp_path, MODEL)
    assert not _chunks(db)
    assert "content differs from its registration" in report.skipped[0][1]
    assert not db.execute("SELECT 1 FROM file_extractions").fetchall()  # retried once registered again
    # The next scan that covers it hashes it again (its size and mtime alone would say nothing changed).
    assert register_files(db, tmp_path, full=True).changed == [_rel(tmp_path, path)]
    chunk_files(db, tmp_path, MODEL)
    assert [c.startswith("TOP SECRET") for c in _chunks(db)] == [True]


def test_a_hard_link_is_refused_not_indexed(db: psycopg.Connection, tmp_path: Path) -> None:
    seed_tenants(db)
    root = tmp_path / "ws"
    uploads = files_dir(root)
    outside = tmp_path / "shadow"
    outside.write_text(SECRET)
    os.link(outside, uploads / "innocent.txt")
    (uploads / "fine.txt").write_text("an ordinary upload")
    report = register_files(db, root, full=True)
    assert "hard link" in dict(report.pending)[_rel(root, uploads / "innocent.txt")]
    assert list(_active(db)) == [_rel(root, uploads / "fine.txt")]
    with pytest.raises(UnsafePath, match="hard link"):
        open_file(root, _rel(root, uploads / "innocent.txt"))
    # A second name given later to a registered file (a backup by hard links, say): the row stays and its
    # registered bytes are still read (the hash decides); other bytes are not taken from it.
    os.link(uploads / "fine.txt", tmp_path / "second-name")
    again = register_files(db, root, full=True)
    assert (again.deleted, again.unchanged) == ([], 1)
    chunk_files(db, root, MODEL)
    assert _chunks(db) == ["an ordinary upload"]
    (uploads / "fine.txt").write_text("changed through its other name")
    changed = register_files(db, root, full=True)
    assert "hard link" in dict(changed.pending)[_rel(root, uploads / "fine.txt")]
    assert (changed.changed, changed.deleted, list(_active(db))) == ([], [], [_rel(root, uploads / "fine.txt")])


def test_a_hard_link_to_another_users_file_neither_registers_nor_deletes_it(
    db: psycopg.Connection, tmp_path: Path
) -> None:
    seed_tenants(db)
    victim = files_dir(tmp_path) / "contract.txt"
    victim.write_text("the victim's contract")
    register_files(db, tmp_path, full=True)
    (victim_id,) = _active(db).values()
    shared = uuid.uuid4()
    db.execute(
        "INSERT INTO conversations (id, organization_id, user_id, visibility) VALUES (%s, %s, %s, 'shared')",
        (shared, ORG, USER),
    )
    stolen = files_dir(tmp_path, conv=shared) / "mine-now.txt"
    os.link(victim, stolen)
    report = register_files(db, tmp_path, full=True)
    assert "hard link" in dict(report.pending)[_rel(tmp_path, stolen)]
    assert report.deleted == [] and _active(db) == {_rel(tmp_path, victim): victim_id}


# -- 2. one path rule ---------------------------------------------------------------------------------------

NAME_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")
NAMES = st.one_of(
    st.text(NAME_CHARS, min_size=0, max_size=40),
    st.sampled_from(["..", ".", "...", "..x", "x..", "notes...v2.txt", "a..b", " ", ". .", "a\\b", "日本語.md"]),
    st.text(st.sampled_from("./ ab\\é"), min_size=1, max_size=12),
    st.integers(1, 300).map(lambda n: "n" * n),
)
PATHS = st.one_of(
    st.lists(NAMES, min_size=1, max_size=8).map("/".join),
    st.text(st.sampled_from("/.a\\"), max_size=20),
    NAMES.map(lambda n: f"{ORG}/{USER}/{CONV}/files/uploads/{n}"),
    st.integers(4, 9).map(lambda n: "/".join(["d" * 150] * n)),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=PATHS)
def test_the_path_validator_and_the_database_constraint_are_one_rule(db: psycopg.Connection, path: str) -> None:
    try:
        relative_parts(path)
        python_accepts = True
    except UnsafePath:
        python_accepts = False
    row = db.execute("SELECT cogo_safe_relative_path(%s)", (path,)).fetchone()
    assert row is not None and row[0] is python_accepts, path


def test_odd_but_harmless_names_register_and_bad_ones_do_not_stop_the_run(
    db: psycopg.Connection, tmp_path: Path
) -> None:
    seed_tenants(db)
    uploads = files_dir(tmp_path)
    good = ["notes...v2.txt", "..hidden", "trailing..", "a b c.md", "日本語のメモ.txt", "é" * 127, "x" * 255, "-"]
    for name in good:
        (uploads / name).write_text(f"content of {name}")
    bad = os.fsencode(str(uploads)) + b"/latin1-\xe9t\xe9.txt"  # not UTF-8: cannot be stored as text
    with open(bad, "wb") as f:
        f.write(b"bytes")
    (uploads / "back\\slash.txt").write_text("a backslash in a name")
    report = register_files(db, tmp_path, full=True)
    assert sorted(Path(p).name for p in report.new) == sorted(good)
    reasons = dict(report.refused)
    assert any("not UTF-8" in r for r in reasons.values()) and any("backslash" in r for r in reasons.values())
    # Deep nesting past what the database can index is refused too, not a failed run.
    deep = uploads.joinpath(*["d" * 200] * 6)
    deep.mkdir(parents=True)
    (deep / "f.txt").write_text("deep")
    again = register_files(db, tmp_path, full=True)
    assert any("longer than" in r for r in dict(again.refused).values())
    assert len(_active(db)) == len(good)


# -- 3. whose file it is ------------------------------------------------------------------------------------


def test_a_file_must_belong_to_a_member_in_their_own_or_a_shared_conversation(
    db: psycopg.Connection, tmp_path: Path
) -> None:
    seed_tenants(db)
    outsider, newcomer = "user_kn_mallory", "user_kn_newbie"
    db.execute("INSERT INTO users (id) VALUES (%s), (%s)", (outsider, newcomer))
    db.execute(  # Mallory was a member once; Carol (OTHER_USER) is a member of the other organisation only.
        "INSERT INTO organization_memberships (id, organization_id, user_id, deleted_at) "
        "VALUES ('orgmem_kn_gone', %s, %s, now())",
        (ORG, outsider),
    )
    bob = "user_kn_bob"
    db.execute("INSERT INTO users (id) VALUES (%s)", (bob,))
    db.execute(
        "INSERT INTO organization_memberships (id, organization_id, user_id) VALUES ('m_bob', %s, %s)", (ORG, bob)
    )
    shared = uuid.uuid4()
    db.execute(
        "INSERT INTO conversations (id, organization_id, user_id, visibility) VALUES (%s, %s, %s, 'shared')",
        (shared, ORG, USER),
    )
    cases = {
        "removed_member": files_dir(tmp_path, user=outsider) / "a.txt",
        "member_elsewhere": files_dir(tmp_path, user=OTHER_USER) / "b.txt",
        "not_synced_yet": files_dir(tmp_path, user=newcomer, conv=shared) / "c.txt",
        "others_private": files_dir(tmp_path, user=bob) / "d.txt",  # CONV is Alice's private conversation
        "shared_by_member": files_dir(tmp_path, user=bob, conv=shared) / "e.txt",
        "own": files_dir(tmp_path) / "f.txt",
    }
    for path in cases.values():
        path.write_text(path.name)
    report = register_files(db, tmp_path, full=True)
    refused, pending = dict(report.refused), dict(report.pending)
    rel = {k: _rel(tmp_path, p) for k, p in cases.items()}
    assert "no longer a member" in refused[rel["removed_member"]]
    assert "not a member" in pending[rel["member_elsewhere"]]
    assert "not a member" in pending[rel["not_synced_yet"]]
    assert "another user's private conversation" in refused[rel["others_private"]]
    assert sorted(report.new) == sorted([rel["shared_by_member"], rel["own"]])
    owners = dict(db.execute("SELECT filename, user_id FROM files").fetchall())
    assert owners == {"e.txt": bob, "f.txt": USER}
    stored = dict(db.execute("SELECT storage_path, status FROM workspace_refusals").fetchall())
    assert stored[rel["others_private"]] == "refused" and stored[rel["not_synced_yet"]] == "pending"
    # Once the newcomer's membership is synced, the pending file registers.
    db.execute(
        "INSERT INTO organization_memberships (id, organization_id, user_id) VALUES ('m_new', %s, %s)", (ORG, newcomer)
    )
    assert register_files(db, tmp_path, full=True).new == [rel["not_synced_yet"]]


# -- 4. an empty root is not a mass delete ------------------------------------------------------------------


def _many(root: Path, n: int) -> list[Path]:
    uploads = files_dir(root)
    paths = [uploads / f"doc{i:02}.txt" for i in range(n)]
    for i, p in enumerate(paths):
        p.write_text(f"document number {i}")
    return paths


def _three_registered(db: psycopg.Connection, tmp_path: Path) -> tuple[Path, dict[str, uuid.UUID]]:
    """A root with three registered files of the tenants' conversation; their ids by path."""
    seed_tenants(db)
    root = tmp_path / "ws"
    _many(root, 3)
    register_files(db, root, full=True)
    return root, _active(db)


def test_an_unmounted_or_empty_root_deletes_nothing_and_the_files_keep_their_ids(
    db: psycopg.Connection, tmp_path: Path
) -> None:
    root, ids = _three_registered(db, tmp_path)
    message = db.execute(
        "INSERT INTO messages (conversation_id, organization_id, role, content) VALUES (%s, %s, 'user', 'see file') "
        "RETURNING id",
        (CONV, ORG),
    ).fetchone()
    assert message is not None
    db.execute(
        "INSERT INTO message_files (message_id, file_id, organization_id) VALUES (%s, %s, %s)",
        (message[0], next(iter(ids.values())), ORG),
    )
    chunk_files(db, root, MODEL)
    chunks_before = len(_chunks(db))
    mounted = tmp_path / "mounted-elsewhere"
    root.rename(mounted)
    root.mkdir()  # an empty mount point
    empty = register_files(db, root, full=True)
    assert empty.deleted == [] and empty.held_deletions[ORG]["files"] == 3
    assert "empty" in empty.held_deletions[ORG]["reason"]
    root.rmdir()  # no mount point at all
    missing = register_files(db, root, full=True)
    assert missing.deleted == [] and "missing" in missing.held_deletions[ORG]["reason"]
    assert _active(db) == ids and len(_chunks(db)) == chunks_before
    mounted.rename(root)
    back = register_files(db, root, full=True)
    assert (back.new, back.deleted, back.unchanged) == ([], [], 3)
    assert _active(db) == ids and db.execute("SELECT count(*) FROM message_files").fetchone() == (1,)


def test_a_large_share_of_an_organisations_files_is_not_deleted_at_once(db: psycopg.Connection, tmp_path: Path) -> None:
    seed_tenants(db)
    paths = _many(tmp_path, 20)
    register_files(db, tmp_path, full=True)
    for p in paths[:4]:  # a fifth: an ordinary clean-up
        p.unlink()
    assert len(register_files(db, tmp_path, full=True).deleted) == 4
    for p in paths[4:16]:  # twelve of the sixteen left
        p.unlink()
    held = register_files(db, tmp_path, full=True)
    assert held.deleted == [] and held.held_deletions[ORG]["files"] == 12
    assert "share" in held.held_deletions[ORG]["reason"]
    assert len(_active(db)) == 16
    allowed = register_files(db, tmp_path, full=True, guard=DeletionGuard(allow=True))
    assert len(allowed.deleted) == 12 and len(_active(db)) == 4
    # Below the minimum an organisation may lose any share (a small team tidying up).
    for p in paths[16:19]:
        p.unlink()
    assert len(register_files(db, tmp_path, full=True).deleted) == 3
    assert DeletionGuard.from_env({"COGO_WORKSPACE_MAX_DELETE_SHARE": "0.9"}).max_share == 0.9
    with pytest.raises(ValueError, match="between 0 and 1"):
        DeletionGuard.from_env({"COGO_WORKSPACE_MAX_DELETE_SHARE": "5"})


def test_a_file_that_comes_back_with_its_path_and_content_keeps_its_id(db: psycopg.Connection, tmp_path: Path) -> None:
    seed_tenants(db)
    path = files_dir(tmp_path) / "report.txt"
    path.write_text("the quarterly report")
    register_files(db, tmp_path, full=True)
    (first_id,) = _active(db).values()
    kept = tmp_path / "report.bak"
    path.rename(kept)
    assert register_files(db, tmp_path, full=True).deleted == [_rel(tmp_path, path)]
    kept.rename(path)
    back = register_files(db, tmp_path, full=True)
    assert back.restored == [_rel(tmp_path, path)] and back.new == []
    assert list(_active(db).values()) == [first_id]
    # Other content at the same path is another file.
    path.rename(kept)
    register_files(db, tmp_path, full=True)
    path.write_text("a different report")
    assert register_files(db, tmp_path, full=True).new == [_rel(tmp_path, path)]
    assert list(_active(db).values()) != [first_id]


def test_the_asset_reports_held_deletions_and_its_check_fails(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url, autocommit=True) as db:
        seed_tenants(db)
    root = tmp_path / "ws"
    _many(root, 2)
    resources = {
        "postgres": PostgresResource(database_url=database_url),
        "workspace": WorkspaceResource(root=str(root)),
    }

    def run(**config: object) -> tuple[dict, bool]:
        result = dg.materialize(
            [workspace_files], resources=resources, run_config={"ops": {"workspace_files": {"config": config}}}
        )
        assert result.success
        metadata = {
            k: v.value for k, v in result.asset_materializations_for_node("workspace_files")[0].metadata.items()
        }
        (check,) = result.get_asset_check_evaluations()
        return metadata, check.passed

    first, passed = run()
    assert first["new"] == 2 and passed
    shutil.rmtree(root)
    root.mkdir()
    held, passed = run()
    assert not passed and held["deleted"] == 0 and held["deletions_held"] == 2
    assert held["held_deletions"][0]["organization_id"] == ORG
    forced, passed = run(allow_mass_delete=True)
    assert passed and forced["deleted"] == 2


# -- 5. a file that vanishes or cannot be read mid-scan ------------------------------------------------------


def test_a_file_that_vanishes_or_turns_into_a_symlink_mid_scan_does_not_stop_the_batch(
    db: psycopg.Connection, tmp_path: Path
) -> None:
    seed_tenants(db)
    uploads = files_dir(tmp_path)
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (uploads / name).write_text(f"file {name}")
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET)

    def meanwhile(step: str) -> None:
        if step.endswith("/b.txt"):
            (uploads / "b.txt").unlink()
        if step.endswith("/c.txt"):
            (uploads / "c.txt").unlink()
            (uploads / "c.txt").symlink_to(outside)

    report = register_files(db, tmp_path, full=True, checkpoint=meanwhile)
    assert sorted(Path(p).name for p in report.new) == ["a.txt", "d.txt"]
    assert report.vanished_during_scan == 1
    assert "symlink" in dict(report.refused)[_rel(tmp_path, uploads / "c.txt")]
    assert not db.execute(
        "SELECT 1 FROM files WHERE sha256 = encode(sha256(%s::bytea), 'hex')", (SECRET.encode(),)
    ).fetchall()


def _as_service_user(fn: Callable[[], object]) -> object:
    """fn() as an unprivileged user (root reads any file): in a forked child as nobody when we are root."""
    if os.geteuid() != 0:
        return fn()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            out = pickle.dumps(fn())
        except BaseException as exc:
            out = pickle.dumps(RuntimeError(repr(exc)))
        os.write(write, out)
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 1 << 16):
        data += chunk
    os.waitpid(pid, 0)
    result = pickle.loads(data)
    if isinstance(result, RuntimeError):
        raise result
    return result


def test_an_unreadable_folder_is_recorded_and_the_rest_of_the_scan_registers(database_url: str, tmp_path: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="cogo-ws-"))  # outside pytest's 0700 folder: the service user walks it
    other = uuid.uuid4()
    try:
        with psycopg.connect(database_url, autocommit=True) as db:
            seed_tenants(db)
            db.execute(
                "INSERT INTO conversations (id, organization_id, user_id) VALUES (%s, %s, %s)", (other, ORG, USER)
            )
        (files_dir(root) / "kept.txt").write_text("registered before the folder was locked")
        locked = files_dir(root, conv=other)
        (locked / "inside.txt").write_text("behind a folder the service cannot read")
        for folder, _, names in os.walk(root):
            os.chown(folder, NOBODY, NOBODY)
            for name in names:
                os.chown(os.path.join(folder, name), NOBODY, NOBODY)
        root.chmod(0o755)

        def scan() -> dict[str, object]:
            # Connected here: the service user cannot reach the test server's socket, the connection is passed.
            conn = psycopg.connect(database_url, autocommit=True)

            def registered() -> dict[str, object]:
                report = register_files(conn, root, full=True)
                return {"new": report.new, "deleted": report.deleted, "pending": dict(report.pending)}

            try:
                return _as_service_user(registered)  # type: ignore[return-value]
            finally:
                conn.close()

        first = scan()
        assert len(first["new"]) == 2  # type: ignore[arg-type]
        locked.parent.parent.chmod(0o000)  # the tenant locks a conversation folder
        late = files_dir(root) / "late.txt"
        late.write_text("another tenant's upload meanwhile")
        os.chown(late, NOBODY, NOBODY)
        second = scan()
        assert second["new"] == [_rel(root, late)] and second["deleted"] == []
        assert "cannot be read" in second["pending"][_rel(root, locked / "inside.txt")]  # type: ignore[index]
    finally:
        if (root / ORG / USER / str(other)).exists():
            (root / ORG / USER / str(other)).chmod(0o755)
        shutil.rmtree(root)


def test_a_replaced_disk_or_a_symlinked_organisation_folder_deletes_nothing(
    db: psycopg.Connection, tmp_path: Path
) -> None:
    root, ids = _three_registered(db, tmp_path)
    moved = tmp_path / "elsewhere"
    (root / ORG).rename(moved)
    (root / "lost+found").mkdir()  # a freshly formatted disk
    fresh = register_files(db, root, full=True)
    assert fresh.deleted == [] and "empty" in fresh.held_deletions[ORG]["reason"]
    (root / ORG).symlink_to(moved, target_is_directory=True)  # the operator links the folder to another disk
    linked = register_files(db, root, full=True)
    assert linked.deleted == [] and _active(db) == ids
    refused = dict(linked.refused)
    assert "symlink" in refused[ORG] and all("symlink" in refused[p] for p in ids)


def test_a_member_removed_later_cannot_change_their_files_content(db: psycopg.Connection, tmp_path: Path) -> None:
    seed_tenants(db)
    path = files_dir(tmp_path) / "plan.txt"
    path.write_text("the plan as registered")
    register_files(db, tmp_path, full=True)
    (before,) = db.execute("SELECT id, sha256 FROM files").fetchall()
    db.execute("UPDATE organization_memberships SET deleted_at = now() WHERE user_id = %s", (USER,))
    path.write_text("new words from someone no longer in the organisation")
    report = register_files(db, tmp_path, full=True)
    assert report.changed == [] and report.deleted == []
    assert "no longer a member" in dict(report.refused)[_rel(tmp_path, path)]
    assert db.execute("SELECT id, sha256 FROM files").fetchall() == [before]


def test_a_conversation_has_one_folder_name(db: psycopg.Connection, tmp_path: Path) -> None:
    seed_tenants(db)
    for conv in (str(CONV).upper(), "{" + str(CONV) + "}", str(CONV).replace("-", ""), f"urn:uuid:{CONV}"):
        folder = tmp_path / ORG / USER / conv / "files" / "uploads"
        folder.mkdir(parents=True)
        (folder / "a.txt").write_text(conv)
    (tmp_path / f"{ORG}\n").mkdir()  # a trailing newline is no organisation id
    report = register_files(db, tmp_path, full=True)
    assert report.new == []
    assert sum("canonical form" in r for _, r in report.refused) == 4


def test_the_walk_never_enters_a_directory_swapped_for_a_symlink_mid_walk(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "b" / "ordinary.txt").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_rsa").write_text("private key")
    seen: list[str] = []
    for entry in walk(root):
        seen.append(entry.path)
        if entry.kind == "dir" and entry.path in ("a", "b") and not (root / "swapped").exists():
            # The other directory, listed but not entered yet, becomes a symlink out of the root.
            other = root / ("b" if entry.path == "a" else "a")
            shutil.rmtree(other)
            other.symlink_to(outside, target_is_directory=True)
            (root / "swapped").write_text("")
    assert not any("id_rsa" in p for p in seen)
