"""POST /webhooks/clerk: real Svix signatures (svix package) over Clerk's event JSON, stored in the inbox."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.clerk_fake import BASE_MS, SECRET, clerk_user, deleted_object, event, signed


@pytest.fixture
def service_overrides() -> dict[str, str]:
    return {"CLERK_WEBHOOK_SECRET": SECRET}


def inbox(db: psycopg.Connection) -> list[tuple]:
    return db.execute(
        "SELECT svix_id, event_type, status, applied_at, event_time FROM clerk_webhook_inbox ORDER BY svix_id"
    ).fetchall()


def test_verified_event_is_stored_once_and_not_applied(client: TestClient, db: psycopg.Connection) -> None:
    body, headers = signed(event("user.created", clerk_user("user_1", updated_ms=BASE_MS + 5)), "msg_1")
    first = client.post("/webhooks/clerk", content=body, headers=headers)
    resend = client.post("/webhooks/clerk", content=body, headers=headers)

    assert first.status_code == 200 and first.json() == {
        "status": "stored",
        "svix_id": "msg_1",
        "event_type": "user.created",
    }
    assert resend.status_code == 200 and resend.json()["status"] == "duplicate"
    [(svix_id, event_type, status, applied_at, event_time)] = inbox(db)
    assert (svix_id, event_type, status, applied_at) == ("msg_1", "user.created", "pending", None)
    assert event_time == datetime.fromtimestamp((BASE_MS + 5) / 1000, tz=UTC)  # the object's updated_at
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 0  # the route never applies


def test_delete_event_time_comes_from_the_envelope(client: TestClient, db: psycopg.Connection) -> None:
    payload = event("user.deleted", deleted_object("user_1", "user"), timestamp_ms=BASE_MS + 9)
    body, headers = signed(payload, "msg_del")
    assert client.post("/webhooks/clerk", content=body, headers=headers).status_code == 200
    assert inbox(db)[0][4] == datetime.fromtimestamp((BASE_MS + 9) / 1000, tz=UTC)


def test_forged_signature_is_rejected(client: TestClient, db: psycopg.Connection) -> None:
    body, headers = signed(event("user.created", clerk_user("user_1")), "msg_1", secret="whsec_" + "Zm9yZ2Vk" * 4)
    response = client.post("/webhooks/clerk", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert inbox(db) == []


def test_stale_timestamp_is_rejected(client: TestClient, db: psycopg.Connection) -> None:
    """A replay of a genuine request, six minutes later: svix refuses timestamps more than 5 minutes off."""
    body, headers = signed(
        event("user.created", clerk_user("user_1")), "msg_1", at=datetime.now(tz=UTC) - timedelta(minutes=6)
    )
    response = client.post("/webhooks/clerk", content=body, headers=headers)
    assert response.status_code == 401
    assert "too old" in response.json()["error"]["message"]
    future = signed(
        event("user.created", clerk_user("user_2")), "msg_2", at=datetime.now(tz=UTC) + timedelta(minutes=6)
    )
    assert client.post("/webhooks/clerk", content=future[0], headers=future[1]).status_code == 401
    assert inbox(db) == []


def test_body_altered_after_signing_is_rejected(client: TestClient, db: psycopg.Connection) -> None:
    body, headers = signed(event("user.created", clerk_user("user_1")), "msg_1")
    altered = body.replace(b"Ada", b"Eve")
    assert altered != body
    assert client.post("/webhooks/clerk", content=altered, headers=headers).status_code == 401
    assert inbox(db) == []


def test_missing_or_garbled_headers_are_rejected(client: TestClient, db: psycopg.Connection) -> None:
    body, headers = signed(event("user.created", clerk_user("user_1")), "msg_1")
    for name in ("svix-id", "svix-timestamp", "svix-signature"):
        partial = {k: v for k, v in headers.items() if k != name}
        assert client.post("/webhooks/clerk", content=body, headers=partial).status_code == 401
    garbled = {**headers, "svix-signature": "v1,not-base64!!"}
    assert client.post("/webhooks/clerk", content=body, headers=garbled).status_code == 401
    garbled = {**headers, "svix-timestamp": "yesterday"}
    assert client.post("/webhooks/clerk", content=body, headers=garbled).status_code == 401
    assert inbox(db) == []


def test_signed_but_malformed_body_is_rejected(client: TestClient, db: psycopg.Connection) -> None:
    for n, raw in enumerate((b"not json", json.dumps([1, 2]).encode(), json.dumps({"data": {}}).encode())):
        body, headers = signed(raw, f"msg_{n}")
        response = client.post("/webhooks/clerk", content=body, headers=headers)
        assert response.status_code == 400, raw
    body, headers = signed(json.dumps({"type": "user.created", "data": "x"}).encode(), "msg_9")
    assert client.post("/webhooks/clerk", content=body, headers=headers).status_code == 400
    assert inbox(db) == []


def test_unset_secret_answers_503(client: TestClient, db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLERK_WEBHOOK_SECRET")
    body, headers = signed(event("user.created", clerk_user("user_1")), "msg_1")
    response = client.post("/webhooks/clerk", content=body, headers=headers)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "webhook_not_configured"
    assert inbox(db) == []


def test_route_is_in_the_openapi_document(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/webhooks/clerk"]["post"]
    assert {p["name"] for p in operation["parameters"]} >= {"svix-id", "svix-timestamp", "svix-signature"}
    assert {"200", "400", "401"} <= set(operation["responses"])


def test_events_are_stored_through_the_services_pool(client: TestClient, db: psycopg.Connection) -> None:
    """Under the running service the route borrows a pooled connection instead of connecting per request:
    with the configured URL broken after startup, events are still stored."""
    assert client.app.state.db_pool is not None
    client.app.state.settings = dataclasses.replace(
        client.app.state.settings, database_url="postgresql://nobody@127.0.0.1:1/nowhere"
    )
    for n in range(3):
        body, headers = signed(event("user.created", clerk_user(f"user_{n}")), f"msg_{n}")
        assert client.post("/webhooks/clerk", content=body, headers=headers).json()["status"] == "stored"
    assert [row[0] for row in inbox(db)] == ["msg_0", "msg_1", "msg_2"]
