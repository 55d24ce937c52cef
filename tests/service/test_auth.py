"""Clerk session tokens: every way a token can be wrong answers the same 401; no organisation answers 403.
Keys are generated here, the JWKS is served by a local HTTP server, tokens are signed by the tests."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cogo.service.auth import NO_ORGANIZATION_MESSAGE, UNAUTHORIZED_MESSAGE
from tests.service.helpers import (
    ALICE,
    ORG_A,
    JwksServer,
    SigningKey,
    b64url,
    claims_v1,
    claims_v2,
    hs256_token,
    service_client,
    service_env,
    unsigned_token,
)

UNAUTHORIZED = {"error": {"code": "unauthorized", "message": UNAUTHORIZED_MESSAGE}}


def call(client: TestClient, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get("/v1/conversations", headers=headers)


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_v2_token_is_accepted(client: TestClient, key: SigningKey) -> None:
    response = call(client, key.sign(claims_v2(ALICE, ORG_A)))
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_a_v1_token_is_accepted(client: TestClient, key: SigningKey) -> None:
    assert call(client, key.sign(claims_v1(ALICE, ORG_A))).status_code == 200


def test_no_token_or_not_a_bearer_token(client: TestClient) -> None:
    assert_unauthorized(call(client, None))
    assert_unauthorized(client.get("/v1/conversations", headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"}))
    assert_unauthorized(call(client, "not-a-jwt"))


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"exp": -60}, id="expired"),  # seconds from now, resolved when the test runs
        pytest.param({"nbf": 60}, id="not-yet-valid"),
        pytest.param({"iss": "https://evil.clerk.test"}, id="wrong-issuer"),
        pytest.param({"azp": "https://evil.example"}, id="wrong-azp"),
        pytest.param({"sts": "pending"}, id="pending-session"),
    ],
)
def test_claims_that_are_refused(client: TestClient, key: SigningKey, overrides: dict[str, Any]) -> None:
    now = int(time.time())
    overrides = {name: now + value if name in ("exp", "nbf") else value for name, value in overrides.items()}
    assert_unauthorized(call(client, key.sign(claims_v2(ALICE, ORG_A, **overrides))))


@pytest.mark.parametrize("claim", ["exp", "nbf", "iss", "sub", "azp"])
def test_missing_required_claims_are_refused(client: TestClient, key: SigningKey, claim: str) -> None:
    claims = claims_v2(ALICE, ORG_A)
    del claims[claim]
    assert_unauthorized(call(client, key.sign(claims)))


def test_clock_skew_within_the_leeway_is_tolerated(client: TestClient, key: SigningKey) -> None:
    now = int(time.time())
    assert call(client, key.sign(claims_v2(ALICE, ORG_A, exp=now - 1, nbf=now + 1))).status_code == 200


def test_an_active_session_status_is_accepted(client: TestClient, key: SigningKey) -> None:
    assert call(client, key.sign(claims_v2(ALICE, ORG_A, sts="active"))).status_code == 200


def test_alg_none_is_refused(client: TestClient, key: SigningKey) -> None:
    assert_unauthorized(call(client, unsigned_token(claims_v2(ALICE, ORG_A), key.kid)))


def test_hs256_signed_with_the_public_key_is_refused(client: TestClient, key: SigningKey) -> None:
    assert_unauthorized(call(client, hs256_token(claims_v2(ALICE, ORG_A), key.public_pem, key.kid)))


def test_a_tampered_payload_is_refused(client: TestClient, key: SigningKey) -> None:
    header, _, signature = key.sign(claims_v2(ALICE, "org_test_b")).split(".")
    forged_payload = b64url(json.dumps(claims_v2(ALICE, ORG_A)).encode())
    assert_unauthorized(call(client, f"{header}.{forged_payload}.{signature}"))


def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(client: TestClient, key: SigningKey) -> None:
    impostor = SigningKey(key.kid)
    assert_unauthorized(call(client, impostor.sign(claims_v2(ALICE, ORG_A))))


def test_no_organization_is_forbidden(client: TestClient, key: SigningKey) -> None:
    for claims in (claims_v2(ALICE, None), claims_v1(ALICE, None)):
        response = call(client, key.sign(claims))
        assert response.status_code == 403
        assert response.json() == {"error": {"code": "forbidden", "message": NO_ORGANIZATION_MESSAGE}}


def test_key_rotation_is_picked_up_and_unknown_kids_are_rate_limited(
    client: TestClient, key: SigningKey, jwks: JwksServer
) -> None:
    assert call(client, key.sign(claims_v2(ALICE, ORG_A))).status_code == 200
    assert jwks.fetches == 1
    assert call(client, key.sign(claims_v2(ALICE, ORG_A))).status_code == 200
    assert jwks.fetches == 1  # cached

    rotated = SigningKey("kid_rotated")
    jwks.keys = [key.jwk, rotated.jwk]
    assert call(client, rotated.sign(claims_v2(ALICE, ORG_A))).status_code == 200
    assert jwks.fetches == 2  # the new kid made us refetch, and it was there

    stranger = SigningKey("kid_unknown")
    assert_unauthorized(call(client, stranger.sign(claims_v2(ALICE, ORG_A))))
    assert jwks.fetches == 3  # one refetch for the unknown kid ...
    for n in range(5):
        assert_unauthorized(call(client, SigningKey(f"kid_made_up_{n}").sign(claims_v2(ALICE, ORG_A))))
    assert jwks.fetches == 3  # ... and no more while the rate limit holds
    assert call(client, rotated.sign(claims_v2(ALICE, ORG_A))).status_code == 200


def test_a_jwks_file_url_works_for_local_development(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, key: SigningKey
) -> None:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [key.jwk]}))
    with service_client(monkeypatch, tmp_path, database_url, service_env(jwks_file.as_uri())) as client:
        assert call(client, key.sign(claims_v2(ALICE, ORG_A))).status_code == 200


def test_access_log_has_the_organization_and_never_the_token(
    client: TestClient, key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    token = key.sign(claims_v2(ALICE, ORG_A))
    with caplog.at_level(logging.DEBUG):
        call(client, token)
        call(client, "garbage.token.value")
    access = [json.loads(r.getMessage()) for r in caplog.records if r.name == "cogo.service.access"]
    assert [(a["method"], a["path"], a["status"], a["organization_id"]) for a in access] == [
        ("GET", "/v1/conversations", 200, ORG_A),
        ("GET", "/v1/conversations", 401, None),
    ]
    assert all(isinstance(a["duration_ms"], float) for a in access)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert token not in text and token.split(".")[2] not in text and "garbage.token.value" not in text


def test_devtoken_makes_tokens_the_service_accepts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    from cogo.service import devtoken

    key = devtoken.ensure_key(tmp_path / "dev-clerk")
    assert devtoken.ensure_key(tmp_path / "dev-clerk").private_numbers() == key.private_numbers()  # reused
    env = dict(line.removeprefix("export ").split("=", 1) for line in devtoken.env_lines(tmp_path / "dev-clerk"))
    with service_client(monkeypatch, tmp_path, database_url, env) as client:
        assert call(client, devtoken.make_token(key, ALICE, ORG_A)).status_code == 200
        assert call(client, devtoken.make_token(key, ALICE, None)).status_code == 403
        assert_unauthorized(call(client, devtoken.make_token(key, ALICE, ORG_A, ttl_s=-60)))
