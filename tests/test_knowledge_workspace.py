"""workspace_files: registration of real files, refusals (layout, traversal, symlinks), pending tenants, moves,
deletions, a 50 MB file, and the sensor's cursor."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import dagster as dg
import psycopg

from cogo.assets.workspace import workspace_files, workspace_files_sensor
from cogo.resources import PostgresResource
from cogo.resources.workspace import WorkspaceResource
from cogo.workspace.register import register_files
from cogo.workspace.scan import Cursor
from tests.knowledge_helpers import CONV, ORG, USER, files_dir, seed_tenants, write_corpus


def _files(db: psycopg.Connection) -> dict[str, tuple]:
    rows = db.execute(
        "SELECT filename, organization_id, user_id, conversation_id, kind, size_bytes, sha256, mime_type, status "
        "FROM files ORDER BY filename"
    ).fetchall()
    return {r[0]: r[1:] for r in rows if r[-1] == "active"}


def test_every_file_is_registered_with_tenant_kind_size_hash_and_mime(db: psycopg.Connection, tmp_path: Path) -> None:
    seed_tenants(db)
    paths = write_corpus(tmp_path)
    report = register_files(db, tmp_path, full=True)
    assert len(report.new) == len(paths) and not report.refused and not report.pending
    files = _files(db)
    org, user, conv, kind, size, sha, mime, _ = files["approval.docx"]
    assert (org, user, conv, kind) == (ORG, USER, CONV, "attachment")
    assert size == paths["docx"].stat().st_size and sha == hashlib.sha256(paths["docx"].read_bytes()).hexdigest()
    assert mime.endswith("wordprocessingml.document")
    assert files["token_service.py"][3] == "generated" and files["notes.txt"][3] == "upload"
    assert {files[n][6] for n in ("report.pdf", "broken.pdf")} == {"application/pdf"}
    assert files["logo.png"][6] == "image/png" and files["empty.txt"][4] == 0
    # A second run changes nothing and hashes nothing.
    again = register_files(db, tmp_path, full=True)
    assert (again.unchanged, again.bytes_hashed, again.new) == (len(paths), 0, [])


def test_refuses_bad_layout_traversal_and_symlinks_and_never_reads_them(db: psycopg.Connection, tmp_path: Path) -> None:
    seed_tenants(db)
    root = tmp_path / "ws"
    up = files_dir(root)
    outside = tmp_path / "secret.txt"
    outside.write_text("top secret")
    (up / "link_out.txt").symlink_to(outside)  # a symlink out of the root
    (up / "link_in.txt").symlink_to(up / "real.txt")  # even one pointing inside is not followed
    (up / "real.txt").write_text("fine")
    (root / ORG / "stray.txt").write_text("not in the layout")
    linked_dir = root / ORG / USER / str(CONV) / "files" / "generated"
    linked_dir.symlink_to(tmp_path, target_is_directory=True)  # a symlinked directory out of the root
    traversal = f"{ORG}/{USER}/{CONV}/files/uploads/../../../../../secret.txt"
    report = register_files(db, root, paths=[traversal, "/etc/passwd"], dirs=[f"{ORG}/{USER}"])
    report_full = register_files(db, root, full=True)
    refused = dict(report.refused) | dict(report_full.refused)
    assert "path traversal" in refused[traversal]
    assert "absolute path" in refused["/etc/passwd"]
    assert "symlink" in refused[f"{ORG}/{USER}/{CONV}/files/uploads/link_out.txt"]
    assert "symlink" in refused[f"{ORG}/{USER}/{CONV}/files/uploads/link_in.txt"]
    assert "symlink" in refused[f"{ORG}/{USER}/{CONV}/files/generated"]
    assert "does not fit the layout" in refused[f"{ORG}/stray.txt"]
    assert set(_files(db)) == {"real.txt"}
    stored = dict(db.execute("SELECT storage_path, status FROM workspace_refusals").fetchall())
    assert stored[traversal] == "refused" and stored[f"{ORG}/stray.txt"] == "refused"
    assert not db.execute("SELECT 1 FROM files WHERE storage_path LIKE '%%secret%%'").fetchall()


def test_unknown_tenant_is_pending_until_it_exists(db: psycopg.Connection, tmp_path: Path) -> None:
    seed_tenants(db)
    later_conv = uuid.UUID("7a3e0000-0000-4000-8000-0000000000ff")
    (files_dir(tmp_path, org="org_kn_later", conv=later_conv) / "early.txt").write_text("before its organisation")
    report = register_files(db, tmp_path, full=True)
    assert report.pending and "unknown organisation org_kn_later" in report.pending[0][1]
    db.execute("INSERT INTO organizations (id, name) VALUES ('org_kn_later', 'Later')")
    report = register_files(db, tmp_path, paths=[])
    assert "waiting for the membership" in report.pending[0][1]
    db.execute(
        "INSERT INTO organization_memberships (id, organization_id, user_id) VALUES ('m_later', 'org_kn_later', %s)",
        (USER,),
    )
    report = register_files(db, tmp_path, paths=[])
    assert "unknown conversation" in report.pending[0][1]
    db.execute(
        "INSERT INTO conversations (id, organization_id, user_id) VALUES (%s, 'org_kn_later', %s)", (later_conv, USER)
    )
    # Any later run retries pending paths, even a batch about something else.
    report = register_files(db, tmp_path, paths=[])
    assert len(report.new) == 1 and not report.pending
    assert not db.execute("SELECT 1 FROM workspace_refusals").fetchall()


def test_changed_moved_and_deleted_files(db: psycopg.Connection, tmp_path: Path) -> None:
    seed_tenants(db)
    up = files_dir(tmp_path)
    (up / "a.txt").write_text("version one")
    (up / "b.txt").write_text("will move")
    (up / "c.txt").write_text("will go")
    register_files(db, tmp_path, full=True)
    ids = dict(db.execute("SELECT filename, id FROM files").fetchall())
    (up / "a.txt").write_text("version two, longer")
    gen = files_dir(tmp_path, "generated")
    os.rename(up / "b.txt", gen / "b-renamed.txt")
    (up / "c.txt").unlink()
    report = register_files(db, tmp_path, dirs=[f"{ORG}/{USER}/{CONV}/files"])
    assert report.changed == [f"{ORG}/{USER}/{CONV}/files/uploads/a.txt"]
    assert report.moved == [
        (f"{ORG}/{USER}/{CONV}/files/uploads/b.txt", f"{ORG}/{USER}/{CONV}/files/generated/b-renamed.txt")
    ]
    assert report.deleted == [f"{ORG}/{USER}/{CONV}/files/uploads/c.txt"]
    moved = db.execute("SELECT id, kind FROM files WHERE filename = 'b-renamed.txt'").fetchone()
    assert moved == (ids["b.txt"], "generated")  # same row: its chunks and vectors stay valid
    assert db.execute("SELECT status FROM files WHERE id = %s", (ids["c.txt"],)).fetchone() == ("deleted",)
    assert db.execute("SELECT count(*) FROM pending_file_deletions").fetchone() == (0,)  # nothing to delete on disk


def test_a_50_mb_file_is_registered_by_streaming(db: psycopg.Connection, tmp_path: Path) -> None:
    seed_tenants(db)
    big = files_dir(tmp_path) / "big.log"
    line = b"2026-11-24 08:00:00 INFO request served in 12 ms\n"
    with open(big, "wb") as f:
        for _ in range(50 * 1024 * 1024 // len(line) + 1):
            f.write(line)
    report = register_files(db, tmp_path, full=True)
    assert report.bytes_hashed == big.stat().st_size >= 50 * 1024 * 1024
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    assert db.execute("SELECT sha256, mime_type FROM files").fetchone() == (digest, "text/plain")


def test_sensor_cursor_requests_only_what_changed(database_url: str, tmp_path: Path) -> None:
    up = files_dir(tmp_path)
    (up / "one.txt").write_text("1")
    workspace = WorkspaceResource(root=str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor: str | None) -> tuple[list, str | None]:
        context = dg.build_sensor_context(cursor=cursor, instance=instance, resources={"workspace": workspace})
        result = workspace_files_sensor.evaluate_tick(context)
        return list(result.run_requests or []), result.cursor

    first, cursor = tick(None)
    assert len(first) == 1 and first[0].tags["cogo/scan"] == "full"
    none, same = tick(cursor)
    assert none == [] and same in (None, cursor)  # nothing changed: no run, cursor kept
    stat = (up / "one.txt").stat()
    (up / "one.txt").write_text("11")
    os.utime(up / "one.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    requests, cursor2 = tick(cursor)
    config = requests[0].run_config["ops"]["workspace_files"]["config"]
    assert config == {"paths": [f"{ORG}/{USER}/{CONV}/files/uploads/one.txt"], "dirs": [], "allow_mass_delete": False}
    assert Cursor.from_json(cursor2).watermark_ns > Cursor.from_json(cursor).watermark_ns
    # A deletion shows as its directory's change: the asset reconciles that directory.
    (up / "one.txt").unlink()
    os.utime(up, ns=(0, Cursor.from_json(cursor2).watermark_ns + 1))
    requests, _ = tick(cursor2)
    assert requests[0].run_config["ops"]["workspace_files"]["config"]["dirs"] == [f"{ORG}/{USER}/{CONV}/files/uploads"]
    assert json.loads(cursor2)["w"] > 0


def test_workspace_files_asset_materializes_with_metadata(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        seed_tenants(conn)
    write_corpus(tmp_path)
    (tmp_path / ORG / "stray.txt").write_text("x")
    result = dg.materialize(
        [workspace_files],
        resources={
            "postgres": PostgresResource(database_url=database_url),
            "workspace": WorkspaceResource(root=str(tmp_path)),
        },
    )
    assert result.success
    meta = result.asset_materializations_for_node("workspace_files")[0].metadata
    assert meta["new"].value == 12 and meta["refused"].value == 1 and meta["scan"].value == "full"
    assert meta["refusals"].value[0]["path"] == f"{ORG}/stray.txt"
