"""Reconciliation against a local server speaking Clerk's Backend API JSON."""

from __future__ import annotations

import time

import psycopg

from cogo.clerk.api import ClerkClient
from cogo.clerk.inbox import VerifiedEvent, apply_inbox, store_event
from cogo.clerk.reconcile import reconcile
from tests.clerk_fake import (
    API_KEY,
    BASE_MS,
    ClerkState,
    FakeClerk,
    Fault,
    clerk_membership,
    clerk_org,
    clerk_user,
    event,
)


def directory(users: int, orgs: int) -> ClerkState:
    state = ClerkState()
    state.users = [clerk_user(f"user_{n}", created_ms=BASE_MS + n) for n in range(users)]
    state.organizations = [clerk_org(f"org_{n}", created_ms=BASE_MS + n) for n in range(orgs)]
    state.memberships = [
        clerk_membership(f"orgmem_{n}", f"org_{n % orgs}", f"user_{n}", role="org:admin" if n % 2 else "org:member")
        for n in range(users)
    ]
    return state


def client_for(clerk: FakeClerk, **options: object) -> ClerkClient:
    return ClerkClient(secret_key=API_KEY, api_url=clerk.api_url, **options)


def live(db: psycopg.Connection, table: str) -> set[str]:
    return {r[0] for r in db.execute(f"SELECT id FROM {table} WHERE deleted_at IS NULL").fetchall()}


def test_full_pull_at_the_largest_page_then_deletes_what_clerk_no_longer_has(db: psycopg.Connection) -> None:
    state = directory(users=7, orgs=3)
    with FakeClerk(state) as clerk, client_for(clerk, page_size=3) as client:
        result = reconcile(db, client)
    assert result.complete and result.deletes_skipped is None
    assert result.seen == result.totals == {"organization": 3, "user": 7, "membership": 7}
    assert result.counts == {"applied": 17}
    assert len(live(db, "users")) == 7 and len(live(db, "organization_memberships")) == 7
    roles = dict(db.execute("SELECT id, role FROM organization_memberships").fetchall())
    assert roles["orgmem_1"] == "admin" and roles["orgmem_0"] == "member"
    # Pages of 3: users 0-2, 3-5, 6 (short page ends it) + /users/count; orgs 1 page of 3 + an empty one.
    assert result.requests_made == len(state.requests) == 2 + 3 + 1 + 3

    state.users = [u for u in state.users if u["id"] != "user_6"]
    state.organizations = [o for o in state.organizations if o["id"] != "org_2"]
    state.memberships = [m for m in state.memberships if m["id"] not in ("orgmem_6", "orgmem_2", "orgmem_5")]
    state.requests.clear()
    with FakeClerk(state) as clerk, client_for(clerk) as client:  # the default page: Clerk's largest
        again = reconcile(db, client)
    assert again.deleted == {"organization": 1, "user": 1, "membership": 3}
    assert "user_6" not in live(db, "users") and "org_2" not in live(db, "organizations")
    assert live(db, "organization_memberships") == {f"orgmem_{n}" for n in (0, 1, 3, 4)}
    assert db.execute("SELECT email FROM users WHERE id = 'user_6'").fetchone() == (None,)
    assert {params["limit"] for _, params in state.requests if "limit" in params} == {"500"}


def test_429_with_retry_after_mid_pagination_is_honoured(db: psycopg.Connection) -> None:
    state = directory(users=5, orgs=1)
    state.faults = [Fault("/users", offset=2, status=429, headers={"Retry-After": "1"})]
    with FakeClerk(state) as clerk, client_for(clerk, page_size=2) as client:
        result = reconcile(db, client)
    assert result.complete and result.counts_match
    assert client.waits == [1.0]  # exactly what Retry-After asked for
    user_requests = [params.get("offset") for path, params in state.requests if path == "/users"]
    assert user_requests == ["0", "2", "2", "4"]
    assert len(live(db, "users")) == 5


def test_5xx_is_retried_with_backoff(db: psycopg.Connection) -> None:
    state = directory(users=3, orgs=1)
    state.faults = [Fault("/organization_memberships", offset=0, status=503, times=2)]
    with FakeClerk(state) as clerk, client_for(clerk, backoff_s=0.01) as client:
        result = reconcile(db, client)
    assert result.complete and len(client.waits) == 2
    assert len(live(db, "organization_memberships")) == 3


def test_interrupted_pull_deletes_nothing(db: psycopg.Connection) -> None:
    state = directory(users=6, orgs=2)
    with FakeClerk(state) as clerk, client_for(clerk) as client:
        reconcile(db, client)
    state.users = state.users[:3]  # half of the users are gone from Clerk...
    state.fail_after_requests = len(state.requests) + 2  # ...but Clerk fails half-way through the pull
    with FakeClerk(state) as clerk, client_for(clerk, page_size=2, max_retries=2, backoff_s=0.01) as client:
        result = reconcile(db, client)
    assert not result.complete and "HTTP 500" in result.error
    assert result.deletes_skipped.startswith("pull incomplete")
    assert sum(result.deleted.values()) == 0
    assert len(live(db, "users")) == 6


def test_counts_not_matching_clerk_totals_delete_nothing(db: psycopg.Connection) -> None:
    state = directory(users=4, orgs=1)
    with FakeClerk(state) as clerk, client_for(clerk) as client:
        reconcile(db, client)
    state.users = state.users[:2]
    # An object created in Clerk while the pull ran: the pages miss it but the count includes it.
    state.faults = []
    with FakeClerk(state) as clerk, client_for(clerk) as client:
        original = client.user_count
        client.user_count = lambda: original() + 1  # type: ignore[method-assign]
        result = reconcile(db, client)
    assert result.complete and not result.counts_match
    assert "counts differ" in result.deletes_skipped
    assert len(live(db, "users")) == 4


def test_rows_updated_after_the_pull_began_are_kept(db: psycopg.Connection, database_url: str) -> None:
    """A webhook for a user Clerk's pages did not include lands during the pull: it is not deleted."""
    state = directory(users=2, orgs=1)
    state.faults = [Fault("/organization_memberships", offset=0, status=429, headers={"Retry-After": "0"})]

    def webhook_meanwhile(_: float) -> None:
        payload = event("user.created", clerk_user("user_new", updated_ms=BASE_MS + 100))
        with psycopg.connect(database_url, autocommit=True) as other:
            store_event(other, VerifiedEvent("msg_new", int(time.time()), payload["type"], payload))
            apply_inbox(other)

    with FakeClerk(state) as clerk, client_for(clerk, sleep=webhook_meanwhile) as client:
        result = reconcile(db, client)
    assert result.complete and result.counts_match
    assert "user_new" in live(db, "users")
    assert result.deleted["user"] == 0


def test_pull_and_webhooks_interleave_in_any_order(db: psycopg.Connection) -> None:
    """The pull goes through the same guards: older data from Clerk does not undo a newer webhook, and a
    user deleted by webhook stays deleted even though the pull still lists it."""
    newer = event("user.updated", clerk_user("user_0", first_name="Newer", updated_ms=BASE_MS + 50))
    gone = event("user.deleted", {"deleted": True, "id": "user_1", "object": "user"}, timestamp_ms=BASE_MS + 50)
    for n, payload in enumerate((newer, gone)):
        store_event(db, VerifiedEvent(f"msg_{n}", int(time.time()), payload["type"], payload))
    apply_inbox(db)
    state = directory(users=3, orgs=1)
    with FakeClerk(state) as clerk, client_for(clerk) as client:
        result = reconcile(db, client)
    assert db.execute("SELECT first_name FROM users WHERE id = 'user_0'").fetchone() == ("Newer",)
    assert "user_1" not in live(db, "users") and "user_2" in live(db, "users")
    assert result.counts["stale"] == 1 and result.counts["ignored"] == 1
    # user_1's membership is ended, not revived by the pull.
    assert "orgmem_1" not in live(db, "organization_memberships")


def test_bad_secret_is_an_incomplete_pull(db: psycopg.Connection) -> None:
    state = directory(users=1, orgs=1)
    with FakeClerk(state) as clerk, ClerkClient(secret_key="sk_wrong", api_url=clerk.api_url) as client:
        result = reconcile(db, client)
    assert not result.complete and "HTTP 401" in result.error and "Invalid authentication" in result.error


def test_a_pull_that_would_delete_most_rows_is_refused_unless_allowed(db: psycopg.Connection) -> None:
    state = directory(users=6, orgs=2)
    with FakeClerk(state) as clerk, client_for(clerk) as client:
        reconcile(db, client)
    # A valid key for an empty (or the wrong) instance: the pull completes and its counts "match" at 0.
    empty = ClerkState()
    with FakeClerk(empty) as clerk, client_for(clerk) as client:
        refused = reconcile(db, client)
    assert refused.complete and refused.counts_match
    assert refused.deletes_skipped.startswith("refused: would delete 2 of 2 organizations, 6 of 6 users")
    assert refused.deleted == {"organization": 0, "user": 0, "membership": 0}
    assert len(live(db, "users")) == 6 and len(live(db, "organizations")) == 2
    # Losing a third of the users stays under the default limit (one half) and is applied ...
    state.users = state.users[:4]
    state.memberships = state.memberships[:4]
    with FakeClerk(state) as clerk, client_for(clerk) as client:
        assert reconcile(db, client).deleted == {"organization": 0, "user": 2, "membership": 2}
    # ... and an operator who means it can allow everything.
    with FakeClerk(empty) as clerk, client_for(clerk) as client:
        allowed = reconcile(db, client, max_delete_fraction=1.0)
    assert allowed.deleted == {"organization": 2, "user": 4, "membership": 4}
    assert live(db, "users") == set()


def test_an_unusable_object_fails_alone_and_is_never_deleted_for_it(db: psycopg.Connection) -> None:
    """A user Clerk lists without updated_at is counted as failed with its reason; the rest of its page is
    applied, and the row already stored for that id is kept (it was seen, so it is not missing)."""
    state = directory(users=4, orgs=1)
    with FakeClerk(state) as clerk, client_for(clerk) as client:
        reconcile(db, client)
    del state.users[1]["updated_at"]
    state.users[2] = clerk_user("user_2", first_name="Grace", updated_ms=BASE_MS + 9, created_ms=BASE_MS + 2)
    with FakeClerk(state) as clerk, client_for(clerk, page_size=2) as client:
        result = reconcile(db, client)
    assert result.complete and result.counts_match and result.deletes_skipped is None
    assert result.counts["failed"] == 1 and result.counts["applied"] == 1
    assert any("user_1" in error and "updated_at" in error for error in result.errors)
    assert result.deleted == {"organization": 0, "user": 0, "membership": 0}
    assert live(db, "users") == {f"user_{n}" for n in range(4)}
    assert db.execute("SELECT first_name FROM users WHERE id = 'user_2'").fetchone() == ("Grace",)
