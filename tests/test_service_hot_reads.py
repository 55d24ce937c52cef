"""The short path for conversation listings and message pages (cogo.service.hot_reads): it answers plain requests
with a token verified before, byte for byte as the FastAPI routes answer them, and leaves everything else to them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from cogo.config import Settings
from cogo.service import auth
from cogo.service.app import create_app
from cogo.service.base_app import ReadServiceApp
from cogo.service.hot_reads import HotReadsMiddleware
from tests.service_helpers import (
    ALICE,
    BOB,
    CAROL,
    ORG_A,
    ORG_B,
    JwksServer,
    SigningKey,
    TwoTenants,
    claims_v2,
    load_two_tenants,
    service_env,
)

KEY = SigningKey("kid_hot_reads")


@pytest.fixture
def data(db: psycopg.Connection) -> TwoTenants:
    return load_two_tenants(db)


@contextmanager
def app_client(database_url: str, tmp_path: Path, *, hot_path: bool) -> Iterator[TestClient]:
    app = create_app(Settings.from_env({"COGO_HOME": str(tmp_path / "home"), "COGO_DATABASE_URL": database_url}))
    if not hot_path:
        app.outer_middleware.remove(HotReadsMiddleware)
    with TestClient(app) as client:
        yield client


@pytest.fixture(params=["on", "off"], ids=["inline", "pool"])
def clients(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, data: TwoTenants
) -> Iterator[tuple[TestClient, TestClient]]:
    """(the service as shipped, the same service without the short path); the short path's pages read over the
    worker's inline connection (cogo.service.inline_reads) or over its pool."""
    with JwksServer() as jwks:
        jwks.keys = [KEY.jwk]
        for name, value in service_env(jwks.url, COGO_SERVICE_INLINE_READS=request.param).items():
            monkeypatch.setenv(name, value)
        with (
            app_client(database_url, tmp_path / "hot", hot_path=True) as hot,
            app_client(database_url, tmp_path / "routes", hot_path=False) as routes,
        ):
            yield hot, routes


def hot_path_of(app: ReadServiceApp) -> HotReadsMiddleware:
    layer: Any = app.outer_stack
    while not isinstance(layer, HotReadsMiddleware):
        layer = layer.app
    return layer


def bearer(user: str, org: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY.sign(claims_v2(user, org))}"}


def get_both(
    clients: tuple[TestClient, TestClient], url: str, headers: dict[str, str], params: Any = None
) -> tuple[Any, bool]:
    """The shipped service's answer, asserted identical to the routes' answer; and whether the short path gave it."""
    hot, routes = clients
    middleware = hot_path_of(hot.app)  # type: ignore[arg-type]
    before = middleware.answered
    response = hot.get(url, params=params, headers=headers)
    expected = routes.get(url, params=params, headers=headers)
    assert (response.status_code, response.content) == (expected.status_code, expected.content), url
    for header in ("content-type", "content-length", "www-authenticate"):
        assert response.headers.get(header) == expected.headers.get(header), header
    return response, middleware.answered == before + 1


def test_plain_requests_with_a_verified_token_are_answered_like_the_routes_answer_them(
    clients: tuple[TestClient, TestClient], data: TwoTenants
) -> None:
    alice = bearer(ALICE, ORG_A)
    first, short = get_both(clients, "/v1/conversations", alice)
    assert first.status_code == 200 and not short  # a token's first use is verified by the route's dependency
    listing = "/v1/conversations"
    messages = f"/v1/conversations/{data.alice_shared}/messages"
    page = clients[0].get(listing, params={"limit": 1}, headers=alice).json()
    message_page = clients[0].get(messages, params={"limit": 2}, headers=alice).json()
    newest = clients[0].get(messages, params={"limit": 2, "order": "desc"}, headers=alice).json()
    plain: list[tuple[str, dict[str, Any] | None]] = [
        (listing, None),
        (listing, {"limit": 1}),
        (listing, {"limit": 100, "ignored": "x"}),
        (listing, {"limit": 1, "cursor": page["next_cursor"]}),
        (listing, {"agent_id": str(data.agent)}),
        (listing, {"agent_id": str(data.agent).upper()}),
        (listing, {"user_id": ALICE}),
        (listing, {"user_id": BOB}),
        (messages, None),
        (messages, {"limit": 2, "cursor": message_page["next_cursor"]}),
        (messages, {"limit": 2, "order": "desc", "cursor": newest["next_cursor"]}),
        (f"/v1/conversations/{str(data.alice_shared).upper()}/messages", {"order": "asc"}),
    ]
    for url, params in plain:
        response, short = get_both(clients, url, alice, params)
        assert response.status_code == 200 and short, (url, params)
    # Bob sees Alice's shared conversation and his own private one, never Alice's private one.
    bob = bearer(BOB, ORG_A)
    get_both(clients, listing, bob)
    response, short = get_both(clients, listing, bob)
    assert short and [c["title"] for c in response.json()["items"]] == ["bob_private", "alice_shared"]
    inline = clients[0].app.state.inline_reads  # type: ignore[attr-defined]
    if inline is not None:  # every page the short path answered came over the inline connection
        assert inline.answered == hot_path_of(clients[0].app).answered >= len(plain) and inline.passed_on == 0  # type: ignore[arg-type]


def test_everything_unusual_is_left_to_the_routes(clients: tuple[TestClient, TestClient], data: TwoTenants) -> None:
    alice = bearer(ALICE, ORG_A)
    assert get_both(clients, "/v1/conversations", alice)[0].status_code == 200  # the token is now verified
    listing = "/v1/conversations"
    messages = f"/v1/conversations/{data.alice_shared}/messages"
    unusual: list[tuple[str, Any, int]] = [
        (listing, {"limit": 0}, 422),
        (listing, {"limit": 101}, 422),
        (listing, {"limit": "020"}, 200),
        (listing, {"limit": ""}, 422),
        (listing, {"limit": "1e1"}, 422),
        (listing, [("limit", "1"), ("limit", "2")], 200),
        (listing, {"agent_id": "not-a-uuid"}, 422),
        (listing, {"agent_id": data.agent.hex}, 200),
        (listing, {"user_id": "bad user"}, 422),
        (listing, {"user_id": ALICE + "\n"}, 422),
        (listing, {"user_id": "u" * 201}, 422),
        (listing, {"cursor": "nope"}, 400),
        (listing, {"cursor": ""}, 400),
        (listing, {"cursor": "x" * 513}, 422),
        (messages, {"order": "sideways"}, 422),
        (messages, {"cursor": "WyJ4Il0"}, 400),
        (f"/v1/conversations/{data.alice_shared.hex}/messages", None, 200),
        (f"/v1/conversations/{data.carol_shared}/messages", None, 404),  # another organisation's
        (f"/v1/conversations/{uuid.uuid4()}/messages", None, 404),
        (f"/v1/conversations/{data.alice_shared}", None, 200),
    ]
    for url, params, status in unusual:
        response, short = get_both(clients, url, alice, params)
        assert response.status_code == status and not short, (url, params, response.text)
    # Tokens: missing, another scheme, not verified before, an organisation's member of another one.
    token = alice["Authorization"].removeprefix("Bearer ")
    for headers, status in (
        ({}, 401),
        ({"Authorization": f"Basic {token}"}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Bearer not.a.token"}, 401),
        ({"Authorization": f"bearer   {token}  "}, 200),  # read as HTTPBearer reads it: the same token
    ):
        response, short = get_both(clients, listing, headers)
        assert response.status_code == status and short == (status == 200), headers
    carol = bearer(CAROL, ORG_B)
    get_both(clients, listing, carol)
    for conversation in (data.alice_shared, data.alice_private):
        response, short = get_both(clients, f"/v1/conversations/{conversation}/messages", carol)
        assert response.status_code == 404 and not short


def test_a_remembered_token_is_honoured_only_within_its_validity(
    clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    hot = clients[0]
    now = int(time.time())
    headers = {"Authorization": f"Bearer {KEY.sign(claims_v2(ALICE, ORG_A, exp=now + 30))}"}
    assert hot.get("/v1/conversations", headers=headers).status_code == 200
    _, short = get_both(clients, "/v1/conversations", headers)
    assert short
    # Past exp and the leeway by the verifier's clock: the short path no longer takes the token from the cache, the
    # route verifies it again (PyJWT's own clock still finds it valid, so the route answers).
    monkeypatch.setattr(auth.time, "time", lambda: now + 90)
    response, short = get_both(clients, "/v1/conversations", headers)
    assert response.status_code == 200 and not short
