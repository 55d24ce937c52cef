"""The Dagster shells: clerk_directory, clerk_inbox_sensor, clerk_reconciliation and its daily schedule."""

from __future__ import annotations

import time

import dagster as dg
import psycopg
import pytest

from cogo.assets.clerk import (
    clerk_directory,
    clerk_inbox_drained,
    clerk_inbox_sensor,
    clerk_reconcile_daily,
    clerk_reconciliation,
)
from cogo.clerk.inbox import VerifiedEvent, store_event
from cogo.pipelines import defs
from cogo.resources import PostgresResource
from cogo.resources.clerk import ClerkApiResource
from tests.clerk_fake import (
    API_KEY,
    BASE_MS,
    ClerkState,
    FakeClerk,
    clerk_membership,
    clerk_org,
    clerk_user,
    deleted_object,
    event,
)


def receive(db: psycopg.Connection, svix_id: str, payload: dict) -> None:
    store_event(db, VerifiedEvent(svix_id, int(time.time()), payload["type"], payload))


def test_clerk_directory_applies_the_inbox_with_metadata(database_url: str, db: psycopg.Connection) -> None:
    receive(db, "m1", event("user.updated", clerk_user("user_1", updated_ms=BASE_MS + 2)))
    receive(db, "m2", event("user.created", clerk_user("user_1", updated_ms=BASE_MS + 1)))
    broken = clerk_user("user_2")
    del broken["updated_at"]
    receive(db, "m3", event("user.created", broken))

    result = dg.materialize(
        [clerk_directory, clerk_inbox_drained], resources={"postgres": PostgresResource(database_url=database_url)}
    )
    assert result.success
    metadata = result.asset_materializations_for_node("clerk_directory")[0].metadata
    assert metadata["events_applied"].value == 1
    assert metadata["events_ignored_stale"].value == 1
    assert metadata["events_failed"].value == 1
    assert metadata["unapplied_events"].value == 1
    assert metadata["oldest_unapplied_age_s"].value >= 0
    assert [c.passed for c in result.get_asset_check_evaluations()] == [True]


def test_clerk_directory_metadata_counts_the_directory_active_and_deleted(
    database_url: str, db: psycopg.Connection
) -> None:
    receive(db, "d1", event("organization.created", clerk_org("org_a")))
    receive(db, "d2", event("organization.created", clerk_org("org_b", name="Beta")))
    for n, user_id in enumerate(("user_1", "user_2", "user_3")):
        receive(db, f"d{3 + n}", event("user.created", clerk_user(user_id)))
    receive(db, "d6", event("organizationMembership.created", clerk_membership("orgmem_1", "org_a", "user_1")))
    receive(db, "d7", event("organizationMembership.created", clerk_membership("orgmem_2", "org_a", "user_2")))
    # A deleted user's memberships end with it; an organisation's delete is soft and final.
    receive(db, "d8", event("user.deleted", deleted_object("user_2", "user"), timestamp_ms=BASE_MS + 10))
    receive(db, "d9", event("organization.deleted", deleted_object("org_b", "organization"), timestamp_ms=BASE_MS + 10))

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [clerk_directory], instance=instance, resources={"postgres": PostgresResource(database_url=database_url)}
    )
    assert result.success
    event_record = instance.get_latest_materialization_event(clerk_directory.key)
    assert event_record is not None and event_record.asset_materialization is not None
    metadata = {k: v.value for k, v in event_record.asset_materialization.metadata.items()}
    counts = {k: metadata[k] for k in metadata if k.endswith(("_active", "_deleted"))}
    assert counts == {
        "organizations_active": 1,
        "organizations_deleted": 1,
        "users_active": 2,
        "users_deleted": 1,
        "memberships_active": 1,
        "memberships_deleted": 1,
    }


def test_sensor_requests_one_run_per_waiting_set(database_url: str, db: psycopg.Connection) -> None:
    resources = {"postgres": PostgresResource(database_url=database_url)}
    instance = dg.DagsterInstance.ephemeral()

    empty = clerk_inbox_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(empty, dg.SkipReason)

    receive(db, "m1", event("user.created", clerk_user("user_1")))
    context = dg.build_sensor_context(instance=instance, resources=resources)
    request = clerk_inbox_sensor(context)
    assert isinstance(request, dg.RunRequest) and request.run_key.startswith("clerk-inbox:")
    assert request.tags["cogo/clerk_events_due"] == "1"
    cursor = context.cursor
    assert cursor

    again = clerk_inbox_sensor(dg.build_sensor_context(cursor=cursor, instance=instance, resources=resources))
    assert isinstance(again, dg.SkipReason)  # same set of events: no second run

    receive(db, "m2", event("user.updated", clerk_user("user_1", updated_ms=BASE_MS + 1)))
    newer = clerk_inbox_sensor(dg.build_sensor_context(cursor=cursor, instance=instance, resources=resources))
    assert isinstance(newer, dg.RunRequest) and newer.run_key != request.run_key


def test_reconciliation_materializes_against_the_local_clerk(database_url: str, db: psycopg.Connection) -> None:
    state = ClerkState(
        organizations=[clerk_org("org_1")],
        users=[clerk_user("user_1"), clerk_user("user_2")],
        memberships=[clerk_membership("orgmem_1", "org_1", "user_1", role="org:admin")],
    )
    with FakeClerk(state) as clerk:
        result = dg.materialize(
            [clerk_reconciliation],
            resources={
                "postgres": PostgresResource(database_url=database_url),
                "clerk_api": ClerkApiResource(api_url=clerk.api_url, secret_key=API_KEY),
            },
        )
    assert result.success
    metadata = result.asset_materializations_for_node("clerk_reconciliation")[0].metadata
    assert metadata["complete"].value is True
    assert metadata["applied"].value == 4
    assert metadata["clerk_totals"].value == {"organization": 1, "user": 2, "membership": 1}
    assert db.execute("SELECT role FROM organization_memberships").fetchone() == ("admin",)


def test_reconciliation_fails_without_retry_on_a_wrong_key(database_url: str) -> None:
    with FakeClerk(ClerkState()) as clerk:
        result = dg.materialize(
            [clerk_reconciliation],
            resources={
                "postgres": PostgresResource(database_url=database_url),
                "clerk_api": ClerkApiResource(api_url=clerk.api_url, secret_key="sk_wrong"),
            },
            raise_on_error=False,
        )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "HTTP 401" in failure.step_failure_data.error.message or "HTTP 401" in str(failure.step_failure_data)


def test_reconciliation_is_skipped_without_a_secret(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLERK_SECRET_KEY", raising=False)
    result = dg.materialize(
        [clerk_reconciliation],
        resources={"postgres": PostgresResource(database_url=database_url), "clerk_api": ClerkApiResource()},
    )
    metadata = result.asset_materializations_for_node("clerk_reconciliation")[0].metadata
    assert metadata["skipped"].value == "CLERK_SECRET_KEY is not set"


def test_definitions_have_the_clerk_contract() -> None:
    assert defs.resolve_assets_def("clerk_directory").group_names_by_key[dg.AssetKey("clerk_directory")] == "clerk"
    assert defs.resolve_assets_def("clerk_reconciliation") is not None
    assert defs.resolve_sensor_def("clerk_inbox_sensor").name == "clerk_inbox_sensor"
    schedule = defs.resolve_schedule_def("clerk_reconcile_daily")
    assert schedule.job_name == "clerk_reconcile_job" and schedule is not None
    assert clerk_reconcile_daily.cron_schedule == "17 3 * * *"
