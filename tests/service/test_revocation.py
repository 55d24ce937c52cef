"""Revocation: a valid session token is refused once the directory (mirrored from Clerk by webhooks) says its user
was deleted (401) or its membership ended or its organisation was deleted (403), within the verdict cache's TTL,
for a new token and for one the verifier remembers alike; a user or membership not synced yet passes on the token
alone. Real HTTP to a served app, tokens signed by a test key served as a JWKS, deletes arriving as
signed webhooks and applied by the inbox."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from cogo.clerk.inbox import apply_inbox
from cogo.service.auth import MEMBERSHIP_ENDED_MESSAGE, UNAUTHORIZED_MESSAGE
from tests.clerk_fake import SECRET, clerk_membership, clerk_user, deleted_object, event, signed
from tests.service.helpers import ALICE, BOB, CAROL, ORG_A, ORG_B, SigningKey, claims_v2, wait_until

TTL_S = 1.0
LISTING = "/v1/conversations"
UNAUTHORIZED = {"error": {"code": "unauthorized", "message": UNAUTHORIZED_MESSAGE}}
FORBIDDEN = {"error": {"code": "forbidden", "message": MEMBERSHIP_ENDED_MESSAGE}}

pytestmark = pytest.mark.usefixtures("tenants")


class Service:
    """An HTTP client to the served app, the test's connection to its database, and the key that signs tokens."""

    def __init__(self, http: httpx.Client, db: psycopg.Connection, key: SigningKey) -> None:
        self.http, self.db, self.key = http, db, key
        self._sent = 0

    def token(self, user: str, org: str) -> str:
        return self.key.sign(claims_v2(user, org, exp=int(time.time()) + 300))

    def get(self, token: str) -> httpx.Response:
        return self.http.get(LISTING, headers={"Authorization": f"Bearer {token}"})

    def clerk_says(self, payload: dict[str, Any]) -> None:
        """A signed webhook to the service, then the inbox applied (as the clerk_directory asset does)."""
        self._sent += 1
        body, headers = signed(payload, f"msg_revocation_{self._sent}")
        assert self.http.post("/webhooks/clerk", content=body, headers=headers).status_code == 200
        assert apply_inbox(self.db).counts["applied"] == 1


@pytest.fixture
def ttl_s() -> float:
    return TTL_S


@pytest.fixture
def service_overrides(ttl_s: float) -> dict[str, str]:
    return {"COGO_SERVICE_REVOCATION_TTL_S": str(ttl_s), "CLERK_WEBHOOK_SECRET": SECRET}


@pytest.fixture
def service(base_url: str, db: psycopg.Connection, key: SigningKey) -> Iterator[Service]:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        yield Service(http, db, key)


def now_ms() -> int:
    return int(time.time() * 1000)


def accepted(service: Service, bearer: str) -> None:
    """The token answers 200 on its first use (verified) and again (remembered by the verifier)."""
    assert service.get(bearer).status_code == 200
    assert service.get(bearer).status_code == 200


def refused_within_the_ttl(service: Service, bearer: str, status: int, body: dict[str, Any]) -> None:
    """Refused at most a TTL (plus a request's time) after the directory changed, and from then on."""
    wait_until(lambda: service.get(bearer).status_code == status, f"a {status}", limit_s=TTL_S + 2)
    for _ in range(3):
        response = service.get(bearer)
        assert (response.status_code, response.json()) == (status, body)


def test_a_deleted_user_is_refused_within_the_ttl(service: Service) -> None:
    alice, bob = service.token(ALICE, ORG_A), service.token(BOB, ORG_A)
    accepted(service, alice)
    accepted(service, bob)
    service.clerk_says(event("user.deleted", deleted_object(ALICE, "user"), timestamp_ms=now_ms()))
    refused_within_the_ttl(service, alice, 401, UNAUTHORIZED)
    assert service.get(alice).headers["www-authenticate"] == "Bearer"
    assert service.get(service.token(ALICE, ORG_A)).status_code == 401  # a new token of hers too
    assert service.get(service.token(ALICE, ORG_B)).status_code == 401  # in any organisation
    assert service.get(bob).status_code == 200


def test_a_removed_membership_is_forbidden(service: Service) -> None:
    alice, bob = service.token(ALICE, ORG_A), service.token(BOB, ORG_A)
    accepted(service, alice)
    membership = clerk_membership("m1", ORG_A, ALICE, updated_ms=now_ms())
    service.clerk_says(event("organizationMembership.deleted", membership, timestamp_ms=now_ms()))
    refused_within_the_ttl(service, alice, 403, FORBIDDEN)
    assert service.get(bob).status_code == 200  # another member of the organisation


def test_a_deleted_organization_is_forbidden(service: Service) -> None:
    alice, bob, carol_org = service.token(ALICE, ORG_A), service.token(BOB, ORG_A), service.token(CAROL, ORG_B)
    accepted(service, alice)
    accepted(service, bob)
    service.clerk_says(event("organization.deleted", deleted_object(ORG_A, "organization"), timestamp_ms=now_ms()))
    refused_within_the_ttl(service, alice, 403, FORBIDDEN)
    refused_within_the_ttl(service, bob, 403, FORBIDDEN)
    assert service.get(carol_org).status_code == 200  # another organisation


def test_a_user_or_membership_not_synced_yet_passes_until_the_directory_says_otherwise(service: Service) -> None:
    """Webhooks lag a new sign-up: no row at all is no reason to refuse. Both ways: the same token is refused
    once a delete arrives."""
    newcomer = service.token("user_test_new", ORG_A)  # neither the user nor a membership is in the directory
    accepted(service, newcomer)
    alice_elsewhere = service.token(ALICE, ORG_B)  # a known user, no membership known in that organisation
    accepted(service, alice_elsewhere)

    service.clerk_says(event("user.created", clerk_user("user_test_new", updated_ms=now_ms())))
    membership = clerk_membership("mem_new", ORG_A, "user_test_new", updated_ms=now_ms())
    service.clerk_says(event("organizationMembership.created", membership))
    time.sleep(TTL_S)  # past the cached verdict: looked up again, and still fine
    assert service.get(newcomer).status_code == 200

    service.clerk_says(event("user.deleted", deleted_object("user_test_new", "user"), timestamp_ms=now_ms()))
    refused_within_the_ttl(service, newcomer, 401, UNAUTHORIZED)
    alice_gone = clerk_membership("mem_alice_b", ORG_B, ALICE, updated_ms=now_ms())
    service.clerk_says(event("organizationMembership.deleted", alice_gone, timestamp_ms=now_ms()))
    refused_within_the_ttl(service, alice_elsewhere, 403, FORBIDDEN)


@pytest.mark.parametrize("ttl_s", [3600.0])
def test_a_verdict_is_cached_per_caller_for_the_configured_ttl(service: Service) -> None:
    """COGO_SERVICE_REVOCATION_TTL_S: with an hour, Alice's verdict (looked up on her first request) still stands
    after she is deleted; Bob, deleted at the same time and never looked up, is refused at once."""
    alice, bob = service.token(ALICE, ORG_A), service.token(BOB, ORG_A)
    accepted(service, alice)
    for user in (ALICE, BOB):
        service.clerk_says(event("user.deleted", deleted_object(user, "user"), timestamp_ms=now_ms()))
    assert service.get(alice).status_code == 200
    assert service.get(bob).status_code == 401
