"""A local stand-in for Clerk: its documented JSON (Backend API objects, webhook envelopes) and a small HTTP
server speaking the Backend API's list endpoints, plus real Svix signatures made by the svix package.

Shapes follow Clerk's OpenAPI spec (User, Organization, OrganizationMembership, OrganizationMemberships,
TotalCount, ClerkErrors) and its webhook docs (envelope with data/object/type/timestamp/instance_id).

The optional rate limit behaves as Clerk documents for the Backend API (https://clerk.com/docs/guides/
how-clerk-works/system-limits, "Rate limits"): limited per application instance (secret key), 1000 requests
per 10 seconds for production instances and 100 per 10 seconds for development ones; a limited request
gets 429 and a Retry-After header with the number of seconds after which the block expires.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from svix.webhooks import Webhook

from tests.local_http import JsonHandler, serving

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
API_KEY = "sk_test_cogo_local"
BASE_MS = 1_700_000_000_000


def clerk_user(
    user_id: str,
    *,
    email: str | None = None,
    first_name: str | None = "Ada",
    last_name: str | None = "Lovelace",
    updated_ms: int = BASE_MS,
    created_ms: int = BASE_MS,
    extra_emails: tuple[str, ...] = (),
) -> dict[str, Any]:
    email = email or f"{user_id.removeprefix('user_')}@example.com"
    addresses = [
        {
            "id": f"idn_{user_id}_{n}",
            "object": "email_address",
            "email_address": address,
            "reserved": False,
            "verification": {"status": "verified", "strategy": "email_code", "attempts": 1, "expire_at": None},
            "linked_to": [],
            "created_at": created_ms,
            "updated_at": created_ms,
        }
        for n, address in enumerate((*extra_emails, email))
    ]
    return {
        "id": user_id,
        "object": "user",
        "external_id": None,
        "primary_email_address_id": addresses[-1]["id"],  # the primary one is listed last on purpose
        "primary_phone_number_id": None,
        "primary_web3_wallet_id": None,
        "username": None,
        "first_name": first_name,
        "last_name": last_name,
        "image_url": f"https://img.clerk.com/{user_id}",
        "has_image": False,
        "public_metadata": {"plan": "pro"},
        "private_metadata": {},
        "unsafe_metadata": {},
        "email_addresses": addresses,
        "phone_numbers": [],
        "web3_wallets": [],
        "passkeys": [],
        "external_accounts": [],
        "saml_accounts": [],
        "password_enabled": True,
        "two_factor_enabled": False,
        "totp_enabled": False,
        "backup_code_enabled": False,
        "banned": False,
        "locked": False,
        "last_sign_in_at": created_ms,
        "last_active_at": created_ms,
        "created_at": created_ms,
        "updated_at": updated_ms,
        "delete_self_enabled": True,
        "create_organization_enabled": True,
    }


def clerk_org(
    org_id: str, *, name: str = "Acme", slug: str | None = None, updated_ms: int = BASE_MS, created_ms: int = BASE_MS
) -> dict[str, Any]:
    return {
        "object": "organization",
        "id": org_id,
        "name": name,
        "slug": slug or org_id.removeprefix("org_").lower(),
        "image_url": "https://img.clerk.com/default-logo.png",
        "has_image": False,
        "members_count": 1,
        "pending_invitations_count": 0,
        "max_allowed_memberships": 5,
        "admin_delete_enabled": True,
        "public_metadata": {},
        "private_metadata": {},
        "created_by": None,
        "created_at": created_ms,
        "updated_at": updated_ms,
    }


def clerk_membership(
    membership_id: str,
    org_id: str,
    user_id: str,
    *,
    role: str = "org:member",
    updated_ms: int = BASE_MS,
    created_ms: int = BASE_MS,
) -> dict[str, Any]:
    return {
        "object": "organization_membership",
        "id": membership_id,
        "role": role,
        "role_name": "Admin" if role.endswith("admin") else "Member",
        "permissions": ["org:sys_profile:read"] if role.endswith("member") else ["org:sys_memberships:manage"],
        "public_metadata": {},
        "private_metadata": {},
        "organization": clerk_org(org_id),
        "public_user_data": {
            "user_id": user_id,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "image_url": "https://img.clerk.com/x",
            "has_image": False,
            "identifier": f"{user_id}@example.com",
            "profile_image_url": "https://img.clerk.com/x",
        },
        "created_at": created_ms,
        "updated_at": updated_ms,
    }


def deleted_object(object_id: str, obj: str) -> dict[str, Any]:
    """Clerk's user.deleted / organization.deleted data: DeletedObject."""
    return {"deleted": True, "id": object_id, "object": obj}


def event(event_type: str, data: dict[str, Any], *, timestamp_ms: int | None = None) -> dict[str, Any]:
    return {
        "data": data,
        "event_attributes": {"http_request": {"client_ip": "127.0.0.1", "user_agent": "cogo-tests"}},
        "instance_id": "ins_cogotest",
        "object": "event",
        "timestamp": timestamp_ms if timestamp_ms is not None else data.get("updated_at", BASE_MS),
        "type": event_type,
    }


def signed(
    payload: dict[str, Any] | bytes, svix_id: str, *, secret: str = SECRET, at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and the headers Svix would send, signed with the svix package."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    at = at or datetime.now(tz=UTC)
    signature = Webhook(secret).sign(svix_id, at, body.decode())
    headers = {
        "svix-id": svix_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": signature,
        "content-type": "application/json",
    }
    return body, headers


@dataclass
class Fault:
    """Answer `status` (with `headers`) to the next `times` requests for `path` at `offset`."""

    path: str
    offset: int
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


@dataclass
class ClerkState:
    organizations: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    memberships: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    fail_after_requests: int | None = None  # from then on every request answers 500 (an outage)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (requests, window seconds), e.g. (1000, 10.0) as a production instance: a fixed window per instance
    rate_limit: tuple[int, float] | None = None
    rate_limited: int = 0  # requests answered 429 by the rate limit
    latency_s: float = 0.0  # added before each answer, as a remote API's round trip and page assembly would
    _window: tuple[float, int] = (0.0, 0)  # (window start, requests admitted in it)

    def admit(self) -> int | None:
        """Count a request against the rate limit: None if admitted, else the Retry-After seconds. Hold `lock`."""
        if self.rate_limit is None:
            return None
        limit, window_s = self.rate_limit
        now = time.monotonic()
        start, admitted = self._window
        if now - start >= window_s:
            start, admitted = now, 0
        if admitted >= limit:
            self.rate_limited += 1
            self._window = (start, admitted)
            return max(1, math.ceil(start + window_s - now))
        self._window = (start, admitted + 1)
        return None


class FakeClerk:
    """`with FakeClerk() as clerk:` serves http://127.0.0.1:PORT/v1 until the block ends."""

    def __init__(self, state: ClerkState | None = None) -> None:
        self.state = state or ClerkState()
        self._serving = serving(type("Handler", (_Handler,), {"state": self.state}))
        self.api_url = ""

    def __enter__(self) -> FakeClerk:
        self.api_url = self._serving.__enter__() + "/v1"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._serving.__exit__(*exc)


class _Handler(JsonHandler):
    state: ClerkState
    protocol_version = "HTTP/1.1"

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self.send_json(status, {"errors": [{"message": message, "long_message": message, "code": code}]}, headers)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path.removeprefix("/v1")
        state = self.state
        with state.lock:
            state.requests.append((path, params))
            number = len(state.requests)
            fault = next(
                (f for f in state.faults if f.path == path and f.offset == int(params.get("offset", 0)) and f.times),
                None,
            )
            if fault:
                fault.times -= 1
            retry_after = state.admit()
        if state.latency_s:
            time.sleep(state.latency_s)
        if retry_after is not None:
            return self._error(429, "too_many_requests", "Too many requests", {"Retry-After": str(retry_after)})
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            return self._error(401, "authentication_invalid", "Invalid authentication")
        if state.fail_after_requests is not None and number > state.fail_after_requests:
            return self._error(500, "internal_clerk_error", "Something went wrong")
        if fault:
            if fault.status == 429:
                return self._error(429, "too_many_requests", "Too many requests", fault.headers)
            return self._error(fault.status, "internal_clerk_error", "Something went wrong", fault.headers)
        if path == "/users/count":
            return self.send_json(200, {"object": "total_count", "total_count": len(state.users)})
        lists = {"/users": state.users, "/organizations": state.organizations}
        lists["/organization_memberships"] = state.memberships
        if path not in lists:
            return self._error(404, "resource_not_found", "not found")
        limit, offset = int(params.get("limit", 10)), int(params.get("offset", 0))
        if not 1 <= limit <= 500:
            return self._error(422, "form_param_value_invalid", "limit must be between 1 and 500")
        items = lists[path][offset : offset + limit]
        if path == "/users":
            return self.send_json(200, items)  # GET /users answers a bare array
        return self.send_json(200, {"data": items, "total_count": len(lists[path])})


def now_ms() -> int:
    return int(time.time() * 1000)
