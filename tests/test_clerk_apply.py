"""Applying the inbox: guarded upserts, final soft deletes, early memberships, failures kept and retried."""

from __future__ import annotations

import itertools
import time
from typing import Any

import psycopg
import pytest

from cogo.clerk.inbox import VerifiedEvent, apply_inbox, due_events, store_event
from cogo.clerk.records import normalize_role
from tests.clerk_fake import BASE_MS, clerk_membership, clerk_org, clerk_user, deleted_object, event

_ids = itertools.count()


def receive(db: psycopg.Connection, payload: dict[str, Any], svix_id: str | None = None) -> str:
    svix_id = svix_id or f"msg_{next(_ids)}"
    store_event(db, VerifiedEvent(svix_id, int(time.time()), payload["type"], payload))
    return svix_id


def user(db: psycopg.Connection, user_id: str) -> dict[str, Any] | None:
    cur = db.execute("SELECT * FROM users WHERE id = %s", (user_id,))
    row = cur.fetchone()
    return dict(zip([c.name for c in cur.description], row, strict=True)) if row else None


def membership(db: psycopg.Connection, membership_id: str) -> dict[str, Any] | None:
    cur = db.execute("SELECT * FROM organization_memberships WHERE id = %s", (membership_id,))
    row = cur.fetchone()
    return dict(zip([c.name for c in cur.description], row, strict=True)) if row else None


def inbox_status(db: psycopg.Connection) -> dict[str, tuple]:
    rows = db.execute("SELECT svix_id, status, applied_at IS NOT NULL, attempts, last_error FROM clerk_webhook_inbox")
    return {r[0]: r[1:] for r in rows.fetchall()}


def test_create_applies_with_primary_email_and_settles_the_inbox(db: psycopg.Connection) -> None:
    receive(db, event("user.created", clerk_user("user_1", email="ada@x.io", extra_emails=("old@x.io",))), "m1")
    run = apply_inbox(db)
    row = user(db, "user_1")
    assert row["email"] == "ada@x.io"  # the one primary_email_address_id names, not the first listed
    assert row["first_name"] == "Ada" and row["public_metadata"] == {"plan": "pro"}
    assert row["clerk_updated_at"].timestamp() * 1000 == BASE_MS
    assert run.counts == {"applied": 1}
    assert inbox_status(db) == {"m1": ("applied", True, 1, None)}
    assert run.unapplied == 0 and run.oldest_unapplied_age_s is None


def test_duplicates_apply_once(db: psycopg.Connection) -> None:
    payload = event("user.created", clerk_user("user_1"))
    receive(db, payload, "m1")
    receive(db, payload, "m1")  # a resend: stored once
    receive(db, payload, "m2")  # the same change under another id
    run = apply_inbox(db)
    assert run.counts == {"applied": 1, "stale": 1}
    assert apply_inbox(db).events == 0  # nothing left to do


def test_reordered_updates_keep_the_newest(db: psycopg.Connection) -> None:
    """Arrival order v3, v1, v2: applied in event-time order (one per batch here), the newest wins."""
    for version in (3, 1, 2):
        receive(db, event("user.updated", clerk_user("user_1", first_name=f"v{version}", updated_ms=BASE_MS + version)))
    run = apply_inbox(db, batch_size=1)
    assert run.counts == {"applied": 3}  # event-time order: each was newer than the one before
    assert user(db, "user_1")["first_name"] == "v3"


def test_late_older_update_changes_nothing(db: psycopg.Connection) -> None:
    receive(db, event("user.updated", clerk_user("user_1", first_name="new", updated_ms=BASE_MS + 10)))
    apply_inbox(db)
    before = user(db, "user_1")
    receive(db, event("user.updated", clerk_user("user_1", first_name="old", updated_ms=BASE_MS + 5)))
    receive(db, event("user.updated", clerk_user("user_1", first_name="same", updated_ms=BASE_MS + 10)))
    run = apply_inbox(db)
    assert run.counts == {"stale": 2}
    assert user(db, "user_1") == before  # not even updated_at moved


def test_delete_is_soft_blanks_personal_data_and_is_final(db: psycopg.Connection) -> None:
    receive(db, event("user.created", clerk_user("user_1", updated_ms=BASE_MS)))
    apply_inbox(db)
    receive(db, event("user.deleted", deleted_object("user_1", "user"), timestamp_ms=BASE_MS + 20))
    receive(db, event("user.updated", clerk_user("user_1", first_name="Zombie", updated_ms=BASE_MS + 30)))
    run = apply_inbox(db)
    row = user(db, "user_1")
    assert row["deleted_at"].timestamp() * 1000 == BASE_MS + 20
    assert (row["email"], row["first_name"], row["last_name"], row["image_url"]) == (None, None, None, None)
    assert row["public_metadata"] == {}
    assert run.counts == {"applied": 1, "ignored": 1}
    # A late update or create in a later run is ignored too.
    receive(db, event("user.created", clerk_user("user_1", first_name="Again", updated_ms=BASE_MS + 40)))
    assert apply_inbox(db).counts == {"ignored": 1}
    assert user(db, "user_1")["first_name"] is None


def test_delete_of_an_unknown_id_leaves_a_tombstone(db: psycopg.Connection) -> None:
    receive(db, event("organization.deleted", deleted_object("org_1", "organization"), timestamp_ms=BASE_MS + 5))
    receive(db, event("organization.created", clerk_org("org_1", updated_ms=BASE_MS)))  # arrives late
    apply_inbox(db)
    row = db.execute("SELECT name, deleted_at FROM organizations WHERE id = 'org_1'").fetchone()
    assert row[0] == "" and row[1] is not None


def test_membership_before_its_user_and_org_is_kept_then_resolves(db: psycopg.Connection) -> None:
    receive(
        db, event("organizationMembership.created", clerk_membership("orgmem_1", "org_1", "user_1", role="org:admin"))
    )
    assert apply_inbox(db).counts == {"applied": 1}
    kept = membership(db, "orgmem_1")
    assert kept["deleted_at"] is None and kept["role"] == "admin"
    assert kept["permissions"] == ["org:sys_memberships:manage"]

    receive(db, event("user.created", clerk_user("user_1")))
    receive(db, event("organization.created", clerk_org("org_1", name="Acme")))
    apply_inbox(db)
    joined = db.execute(
        """SELECT o.name, u.email, m.role FROM organization_memberships m
           JOIN users u ON u.id = m.user_id JOIN organizations o ON o.id = m.organization_id
           WHERE m.deleted_at IS NULL"""
    ).fetchall()
    assert joined == [("Acme", "1@example.com", "admin")]


def test_deleting_a_user_or_org_ends_their_memberships(db: psycopg.Connection) -> None:
    for n in (1, 2):
        receive(db, event("user.created", clerk_user(f"user_{n}")))
    receive(db, event("organization.created", clerk_org("org_1")))
    receive(db, event("organization.created", clerk_org("org_2")))
    receive(db, event("organizationMembership.created", clerk_membership("orgmem_1", "org_1", "user_1")))
    receive(db, event("organizationMembership.created", clerk_membership("orgmem_2", "org_2", "user_2")))
    apply_inbox(db)
    receive(db, event("user.deleted", deleted_object("user_1", "user")))
    receive(db, event("organization.deleted", deleted_object("org_2", "organization")))
    apply_inbox(db)
    assert membership(db, "orgmem_1")["deleted_at"] is not None
    assert membership(db, "orgmem_2")["deleted_at"] is not None
    # A membership of a deleted user, or of a deleted organization, that arrives afterwards is ended as it lands.
    receive(db, event("organizationMembership.created", clerk_membership("orgmem_3", "org_1", "user_1")))
    receive(db, event("organizationMembership.created", clerk_membership("orgmem_4", "org_2", "user_2")))
    receive(db, event("organizationMembership.created", clerk_membership("orgmem_5", "org_1", "user_2")))
    apply_inbox(db)
    assert membership(db, "orgmem_3")["deleted_at"] is not None
    assert membership(db, "orgmem_4")["deleted_at"] is not None
    assert membership(db, "orgmem_5")["deleted_at"] is None  # both of its parents are live


def test_membership_update_and_delete(db: psycopg.Connection) -> None:
    receive(db, event("organizationMembership.created", clerk_membership("orgmem_1", "org_1", "user_1")))
    receive(
        db,
        event(
            "organizationMembership.updated",
            clerk_membership("orgmem_1", "org_1", "user_1", role="org:admin", updated_ms=BASE_MS + 1),
        ),
    )
    apply_inbox(db)
    assert membership(db, "orgmem_1")["role"] == "admin"
    deleted = clerk_membership("orgmem_1", "org_1", "user_1", role="org:admin", updated_ms=BASE_MS + 1)
    receive(db, event("organizationMembership.deleted", deleted, timestamp_ms=BASE_MS + 2))
    apply_inbox(db)
    assert membership(db, "orgmem_1")["deleted_at"] is not None
    # Re-added later: Clerk gives the new membership a new id; the pair has one live membership again.
    receive(
        db,
        event(
            "organizationMembership.created",
            clerk_membership("orgmem_2", "org_1", "user_1", created_ms=BASE_MS + 3, updated_ms=BASE_MS + 3),
        ),
    )
    apply_inbox(db)
    assert membership(db, "orgmem_2")["deleted_at"] is None


def test_readded_membership_before_old_delete_replaces_it(db: psycopg.Connection) -> None:
    receive(db, event("organizationMembership.created", clerk_membership("orgmem_old", "org_1", "user_1")))
    apply_inbox(db)
    newer = clerk_membership("orgmem_new", "org_1", "user_1", created_ms=BASE_MS + 5, updated_ms=BASE_MS + 5)
    receive(db, event("organizationMembership.created", newer))
    assert apply_inbox(db).counts == {"applied": 1}
    assert membership(db, "orgmem_old")["deleted_at"] is not None
    assert membership(db, "orgmem_new")["deleted_at"] is None


@pytest.mark.parametrize(("role", "stored"), [("org:admin", "admin"), ("admin", "admin"), ("org:member", "member")])
def test_roles_are_stored_in_one_form(role: str, stored: str) -> None:
    assert normalize_role(role) == stored


def test_failed_event_is_recorded_and_retried_while_others_proceed(db: psycopg.Connection) -> None:
    receive(db, event("organization.created", clerk_org("org_a", slug="acme")))
    apply_inbox(db)
    taken = receive(db, event("organization.created", clerk_org("org_b", slug="acme", updated_ms=BASE_MS + 1)))
    no_time = clerk_user("user_x")
    del no_time["updated_at"]
    broken = receive(db, event("user.created", no_time))
    fine = receive(db, event("user.created", clerk_user("user_1")))
    run = apply_inbox(db)

    assert run.counts == {"applied": 1, "failed": 2}
    status = inbox_status(db)
    assert status[fine][:2] == ("applied", True)
    assert status[taken][:3] == ("failed", False, 1) and "organizations_slug_key" in status[taken][3]
    assert status[broken][:3] == ("failed", False, 1) and "updated_at" in status[broken][3]
    assert run.unapplied == 2 and run.oldest_unapplied_age_s is not None

    # The slug is freed by a rename; the next run retries the failed event and it applies.
    receive(db, event("organization.updated", clerk_org("org_a", slug="acme-old", updated_ms=BASE_MS + 2)))
    run = apply_inbox(db)
    assert inbox_status(db)[taken][:3] == ("applied", True, 2)
    assert inbox_status(db)[broken][:3] == ("failed", False, 2)
    assert run.counts == {"applied": 2, "failed": 1}


def test_unknown_event_types_are_settled_as_ignored(db: psycopg.Connection) -> None:
    svix_id = receive(db, {"type": "session.created", "object": "event", "data": {"id": "sess_1"}})
    assert apply_inbox(db).counts == {"ignored": 1}
    assert inbox_status(db)[svix_id][:2] == ("ignored", True)


def test_due_events_backs_off_failed_events(db: psycopg.Connection) -> None:
    assert due_events(db) == (0, None)
    no_time = clerk_user("user_x")
    del no_time["updated_at"]
    receive(db, event("user.created", no_time))
    count, key = due_events(db)
    assert count == 1 and key
    apply_inbox(db)
    assert due_events(db) == (0, None)  # failed just now: waits for its backoff
    db.execute("UPDATE clerk_webhook_inbox SET last_attempt_at = now() - interval '3 minutes'")
    assert due_events(db)[0] == 1
