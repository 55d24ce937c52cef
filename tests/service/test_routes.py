"""The read routes on a two-tenant data set: what each caller sees, pagination, and every route tried
across tenants (another organisation's resources answer 404 exactly like missing ones)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import psycopg.conninfo
import pytest
from fastapi.testclient import TestClient

from cogo.service.models import Conversation, ConversationPage, MessagePage
from tests.service.helpers import (
    ALICE,
    BOB,
    CAROL,
    ORG_A,
    ORG_B,
    Bearer,
    JwksServer,
    TwoTenants,
    service_client,
    service_env,
)

pytestmark = pytest.mark.usefixtures("tenants")


def titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["title"] for c in response.json()["items"]]


def test_listing_shows_shared_conversations_and_own_private_ones_newest_first(
    client: TestClient, bearer: Bearer
) -> None:
    assert titles(client.get("/v1/conversations", headers=bearer(ALICE, ORG_A))) == ["alice_private", "alice_shared"]
    assert titles(client.get("/v1/conversations", headers=bearer(BOB, ORG_A))) == ["bob_private", "alice_shared"]
    assert titles(client.get("/v1/conversations", headers=bearer(CAROL, ORG_B))) == ["carol_shared"]


def test_listing_filters_by_user_and_agent(client: TestClient, tenants: TwoTenants, bearer: Bearer) -> None:
    alice = bearer(ALICE, ORG_A)
    assert titles(client.get("/v1/conversations", params={"user_id": BOB}, headers=alice)) == []
    assert titles(client.get("/v1/conversations", params={"user_id": ALICE}, headers=alice)) == [
        "alice_private",
        "alice_shared",
    ]
    by_agent = client.get("/v1/conversations", params={"agent_id": str(tenants.agent)}, headers=alice)
    assert titles(by_agent) == ["alice_private", "alice_shared"]
    other_agent = client.get("/v1/conversations", params={"agent_id": str(uuid.uuid4())}, headers=alice)
    assert titles(other_agent) == []
    # Another organisation's user: nothing, not an error.
    assert titles(client.get("/v1/conversations", params={"user_id": CAROL}, headers=alice)) == []


def test_conversation_cursor_pagination(client: TestClient, bearer: Bearer) -> None:
    alice = bearer(ALICE, ORG_A)
    first = client.get("/v1/conversations", params={"limit": 1}, headers=alice).json()
    assert [c["title"] for c in first["items"]] == ["alice_private"] and first["next_cursor"]
    second = client.get("/v1/conversations", params={"limit": 1, "cursor": first["next_cursor"]}, headers=alice)
    assert titles(second) == ["alice_shared"] and second.json()["next_cursor"] is None


def test_page_bodies_are_the_documented_schemas_with_the_stored_values(
    client: TestClient, tenants: TwoTenants, db: psycopg.Connection, bearer: Bearer
) -> None:
    """Postgres builds the page bodies as JSON; they must still be exactly the OpenAPI models' shape and values."""
    alice = bearer(ALICE, ORG_A)
    page = ConversationPage.model_validate(client.get("/v1/conversations", headers=alice).json())
    stored = db.execute(
        "SELECT id, user_id, agent_id, title, visibility, metadata, created_at, updated_at, archived_at "
        "FROM conversations WHERE id = %s",
        (tenants.alice_shared,),
    ).fetchone()
    shown = next(c for c in page.items if c.id == tenants.alice_shared)
    assert stored is not None
    assert shown == Conversation(**dict(zip(Conversation.model_fields, stored, strict=True)))
    messages = MessagePage.model_validate(
        client.get(f"/v1/conversations/{tenants.alice_shared}/messages", headers=alice).json()
    )
    first = db.execute(
        "SELECT id, content, created_at FROM messages WHERE conversation_id = %s ORDER BY created_at, id LIMIT 1",
        (tenants.alice_shared,),
    ).fetchone()
    assert (messages.items[0].id, messages.items[0].content, messages.items[0].created_at) == first
    assert messages.items[0].files[0].id == tenants.alice_file and messages.next_cursor is None


def test_a_bad_cursor_is_a_400(client: TestClient, bearer: Bearer) -> None:
    for cursor in ("nope", "WyJ4Il0", "WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwibm90LWEtdXVpZCJd"):
        response = client.get("/v1/conversations", params={"cursor": cursor}, headers=bearer(ALICE, ORG_A))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "bad_request"


def test_one_conversation(client: TestClient, tenants: TwoTenants, bearer: Bearer) -> None:
    response = client.get(f"/v1/conversations/{tenants.alice_shared}", headers=bearer(BOB, ORG_A))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(tenants.alice_shared) and body["user_id"] == ALICE and body["visibility"] == "shared"


def test_messages_pages_in_order_with_attached_files(client: TestClient, tenants: TwoTenants, bearer: Bearer) -> None:
    alice = bearer(ALICE, ORG_A)
    url = f"/v1/conversations/{tenants.alice_shared}/messages"
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get(url, params=params, headers=alice).json()
        seen += [m["id"] for m in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 5 and seen == sorted(seen)
    first = client.get(url, params={"limit": 1}, headers=alice).json()["items"][0]
    assert first["content"] == "alice_shared message 0"
    assert [(f["id"], f["filename"], f["kind"]) for f in first["files"]] == [
        (str(tenants.alice_file), "notes.md", "upload")
    ]
    newest = client.get(url, params={"limit": 5, "order": "desc"}, headers=alice).json()["items"]
    assert [m["id"] for m in newest] == sorted(seen, reverse=True)
    assert all(m["files"] == [] for m in newest[:-1])


def test_task_with_steps(client: TestClient, tenants: TwoTenants, bearer: Bearer) -> None:
    response = client.get(f"/v1/tasks/{tenants.alice_task}", headers=bearer(BOB, ORG_A))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "RUNNING"
    assert [(s["step_name"], s["status"]) for s in body["steps"]] == [("Plan", "ok"), ("Code Generation", "error")]
    assert body["progress"] == {"steps_total": 2, "steps_ok": 1, "steps_error": 1, "steps_skipped": 0}


def test_every_route_across_tenants_answers_404_like_a_missing_resource(
    client: TestClient, tenants: TwoTenants, bearer: Bearer
) -> None:
    carol = bearer(CAROL, ORG_B)
    missing = uuid.uuid4()
    for template in ("/v1/conversations/{}", "/v1/conversations/{}/messages"):
        for foreign in (tenants.alice_shared, tenants.alice_private, tenants.bob_private):
            foreign_response = client.get(template.format(foreign), headers=carol)
            missing_response = client.get(template.format(missing), headers=carol)
            assert foreign_response.status_code == missing_response.status_code == 404
            assert foreign_response.json() == missing_response.json()
    foreign_task = client.get(f"/v1/tasks/{tenants.alice_task}", headers=carol)
    missing_task = client.get(f"/v1/tasks/{missing}", headers=carol)
    assert foreign_task.status_code == missing_task.status_code == 404
    assert foreign_task.json() == missing_task.json()
    # And the other way round.
    assert client.get(f"/v1/tasks/{tenants.carol_task}", headers=bearer(ALICE, ORG_A)).status_code == 404
    assert client.get(f"/v1/conversations/{tenants.carol_shared}", headers=bearer(ALICE, ORG_A)).status_code == 404
    # A listing filtered to another organisation's agent or user shows none of its conversations.
    assert titles(client.get("/v1/conversations", params={"user_id": ALICE}, headers=carol)) == []
    assert titles(client.get("/v1/conversations", params={"agent_id": str(tenants.agent)}, headers=carol)) == [
        "carol_shared"
    ]


def test_a_private_conversation_is_404_for_the_rest_of_its_organization(
    client: TestClient, tenants: TwoTenants, bearer: Bearer
) -> None:
    bob = bearer(BOB, ORG_A)
    assert client.get(f"/v1/conversations/{tenants.alice_private}", headers=bob).status_code == 404
    assert client.get(f"/v1/conversations/{tenants.alice_private}/messages", headers=bob).status_code == 404
    assert client.get(f"/v1/conversations/{tenants.alice_private}", headers=bearer(ALICE, ORG_A)).status_code == 200


def test_a_token_for_the_same_user_in_another_organization_sees_only_that_organization(
    client: TestClient, tenants: TwoTenants, bearer: Bearer
) -> None:
    """Alice is no member of org B, but the organisation in the token is what scopes her reads."""
    alice_in_b = bearer(ALICE, ORG_B)
    assert titles(client.get("/v1/conversations", headers=alice_in_b)) == ["carol_shared"]
    assert client.get(f"/v1/conversations/{tenants.alice_private}", headers=alice_in_b).status_code == 404


def test_search_routes_need_a_token_and_answer_with_one(client: TestClient, bearer: Bearer) -> None:
    alice = bearer(ALICE, ORG_A)
    for path, body in (("/v1/search", {"query": "tokens"}), ("/v1/search/code", {"query": "refresh token"})):
        assert client.post(path, json=body).status_code == 401
        response = client.post(path, json=body, headers=alice)
        assert response.status_code == 200, response.text
        assert response.json() == {"hits": []}  # nothing indexed in this data set


def test_openapi_document_declares_the_bearer_scheme_on_every_v1_route(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["ClerkSession"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Clerk session token (RS256, v1 or v2 claims) of a user with an active organization.",
    }
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            assert (operation.get("security") == [{"ClerkSession": []}]) == path.startswith("/v1/"), path
            if path.startswith("/v1/"):
                assert {"401", "403", "404", "422"} <= set(operation["responses"]), path


def test_an_unavailable_database_answers_503_in_the_error_shape(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, jwks: JwksServer, bearer: Bearer
) -> None:
    missing = psycopg.conninfo.make_conninfo(database_url, dbname="cogo_no_such_database")
    env = service_env(jwks.url, COGO_SERVICE_POOL_TIMEOUT_S="0.5")
    with service_client(monkeypatch, tmp_path, missing, env) as client:
        headers = bearer(ALICE, ORG_A)
        answers = [
            client.get("/v1/conversations", headers=headers),  # the token is new: verified, then the directory asked
            client.get("/v1/conversations", headers=headers),  # the token is remembered: the page's own read fails
            client.get(f"/v1/conversations/{uuid.uuid4()}/messages", headers=headers),
            client.get(f"/v1/tasks/{uuid.uuid4()}", headers=headers),
            client.post("/v1/search", headers=headers, json={"query": "anything", "k": 3}),
            client.get("/v1/graph/concepts/Authentication/functions", headers=headers),
        ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        unavailable = {"code": "unavailable", "message": "the database is unavailable; retry later"}
        assert answer.json() == {"error": unavailable}
        assert "cogo_no_such_database" not in answer.text


def test_retention_never_widens_who_sees_a_task(
    client: TestClient, tenants: TwoTenants, db: psycopg.Connection, database_url: str, tmp_path: Path, bearer: Bearer
) -> None:
    """Tasks outlive their swept conversation but keep its visibility: a private conversation's tasks stay
    its owner's (and their own user's), a shared one's stay the organisation's."""
    import dagster as dg

    from cogo.assets.retention import retention_sweep
    from cogo.resources import PostgresResource

    def task(conversation: uuid.UUID, user: str | None, title: str) -> uuid.UUID:
        row = db.execute(
            "INSERT INTO agent_tasks (organization_id, conversation_id, user_id, title, prompt) "
            "VALUES (%s, %s, %s, %s, 'secret prompt') RETURNING id",
            (ORG_A, conversation, user, title),
        ).fetchone()
        assert row is not None
        return row[0]

    private_own = task(tenants.alice_private, ALICE, "alice's private task")
    private_agent = task(tenants.alice_private, None, "an agent's task in alice's private conversation")
    bob_in_private = task(tenants.bob_private, BOB, "bob's private task")
    shared = tenants.alice_task
    alice, bob = bearer(ALICE, ORG_A), bearer(BOB, ORG_A)

    def visible(headers: dict[str, str]) -> set[uuid.UUID]:
        tasks = (private_own, private_agent, bob_in_private, shared)
        return {t for t in tasks if client.get(f"/v1/tasks/{t}", headers=headers).status_code == 200}

    before = {"alice": visible(alice), "bob": visible(bob)}
    assert before == {"alice": {private_own, private_agent, shared}, "bob": {bob_in_private, shared}}

    result = dg.materialize(
        [retention_sweep],
        resources={"postgres": PostgresResource(database_url=database_url)},
        run_config={"ops": {"retention_sweep": {"config": {"workspaces_dir": str(tmp_path / "none")}}}},
    )
    assert result.success
    swept = db.execute("SELECT count(*) FROM conversations").fetchone()
    linked = db.execute("SELECT count(*) FROM agent_tasks WHERE conversation_id IS NOT NULL").fetchone()
    assert swept == (0,) and linked == (0,)  # every conversation of the data set is old: all swept, tasks kept
    assert {"alice": visible(alice), "bob": visible(bob)} == before
    # Another organisation still sees none of them.
    assert visible(bearer(CAROL, ORG_B)) == set()
    # Whatever deletes a conversation (not only the sweep), the same holds.
    other = db.execute(
        "INSERT INTO conversations (organization_id, user_id, visibility) VALUES (%s, %s, 'private') RETURNING id",
        (ORG_A, ALICE),
    ).fetchone()
    assert other is not None
    late = task(other[0], None, "a task of a conversation deleted by hand")
    db.execute("DELETE FROM conversations WHERE id = %s", (other[0],))
    assert client.get(f"/v1/tasks/{late}", headers=bob).status_code == 404
    assert client.get(f"/v1/tasks/{late}", headers=alice).status_code == 200
