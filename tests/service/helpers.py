"""For the read-service tests (and others that call the service): RSA keys, a JWKS served over HTTP by a local
server (Clerk's wire format: GET returns {"keys": [JWK...]}), Clerk-shaped session tokens, a two-tenant data set
and the app itself. The shared fixtures built from these are in tests/service/conftest.py."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from cogo.config import Settings
from cogo.service.app import create_app
from tests.local_http import JsonHandler, serving

ISSUER = "https://clerk.cogo.test"
APP_ORIGIN = "https://app.cogo.test"
ORG_A, ORG_B = "org_test_a", "org_test_b"
ALICE, BOB, CAROL = "user_test_alice", "user_test_bob", "user_test_carol"


# A fixture's callable: Authorization headers with a fresh token of (user, organisation), claims by keyword.
Bearer = Callable[..., dict[str, str]]


def wait_until(condition: Callable[[], bool], what: str, limit_s: float = 20.0) -> None:
    """Poll `condition` until it holds; fail naming `what` after `limit_s` (a bound on a hang, not a timing)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.02)


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    @property
    def jwk(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": kid or self.kid})


class JwksServer:
    """Serves {"keys": [...]} at /.well-known/jwks.json and counts the fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.url = ""
        server = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                self.send_json(200, {"keys": server.keys})

        self._serving = serving(Handler)

    def __enter__(self) -> JwksServer:
        self.url = self._serving.__enter__() + "/.well-known/jwks.json"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._serving.__exit__(*exc)


def claims_v2(user: str, org: str | None, *, role: str = "admin", **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "azp": APP_ORIGIN,
        "exp": now + 60,
        "fva": [5, -1],
        "iat": now,
        "iss": ISSUER,
        "jti": uuid.uuid4().hex[:20],
        "nbf": now - 5,
        "sid": "sess_test",
        "sub": user,
        "v": 2,
    }
    if org is not None:
        claims["o"] = {"id": org, "rol": role, "slg": org.replace("_", "-"), "per": "read"}
    claims.update(overrides)
    return claims


def claims_v1(user: str, org: str | None, *, role: str = "org:admin", **overrides: Any) -> dict[str, Any]:
    claims = claims_v2(user, None)
    del claims["v"], claims["fva"], claims["jti"]
    if org is not None:
        claims.update(org_id=org, org_role=role, org_slug=org.replace("_", "-"), org_permissions=[])
    claims.update(overrides)
    return claims


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(claims: dict[str, Any], kid: str) -> str:
    """An `alg: none` token."""
    header = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}."


def hs256_token(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """HS256 with `secret` as the HMAC key (the classic attack: the server's public key as the secret)."""
    signing_input = (
        f"{b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': kid}).encode())}."
        f"{b64url(json.dumps(claims).encode())}"
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def service_env(jwks_url: str, **extra: str) -> dict[str, str]:
    return {
        "COGO_CLERK_JWKS_URL": jwks_url,
        "COGO_CLERK_ISSUER": ISSUER,
        "COGO_CLERK_AUTHORIZED_PARTIES": f"{APP_ORIGIN},https://other.cogo.test",
        "COGO_SERVICE_POOL_SIZE": "2",
        **extra,
    }


@contextmanager
def service_client(monkeypatch: Any, tmp_path: Path, database_url: str, env: dict[str, str]) -> Iterator[TestClient]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env({"COGO_HOME": str(tmp_path / "home"), "COGO_DATABASE_URL": database_url})
    with TestClient(create_app(settings)) as client:
        yield client


@dataclass(frozen=True)
class TwoTenants:
    """Ids of the two-tenant data set (see `load_two_tenants`)."""

    agent: uuid.UUID
    alice_shared: uuid.UUID
    alice_private: uuid.UUID
    bob_private: uuid.UUID
    carol_shared: uuid.UUID
    alice_task: uuid.UUID
    carol_task: uuid.UUID
    alice_file: uuid.UUID


def load_two_tenants(conn: psycopg.Connection, *, messages_per_conversation: int = 5) -> TwoTenants:
    """Org A: Alice (a shared and a private conversation) and Bob (a private one). Org B: Carol (shared).
    Each conversation has messages; Alice's shared one has a file attached; each org has a task with steps."""
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cur = conn.cursor()
    cur.executemany("INSERT INTO organizations (id, name) VALUES (%s, %s)", [(ORG_A, "A"), (ORG_B, "B")])
    cur.executemany("INSERT INTO users (id) VALUES (%s)", [(ALICE,), (BOB,), (CAROL,)])
    cur.executemany(
        "INSERT INTO organization_memberships (id, organization_id, user_id) VALUES (%s, %s, %s)",
        [("m1", ORG_A, ALICE), ("m2", ORG_A, BOB), ("m3", ORG_B, CAROL)],
    )
    agent = cur.execute("INSERT INTO agents (slug, name) VALUES ('generic', 'Generic') RETURNING id").fetchone()[0]
    ids = {name: uuid.uuid4() for name in ("alice_shared", "alice_private", "bob_private", "carol_shared")}
    owners = {
        "alice_shared": (ORG_A, ALICE, "shared"),
        "alice_private": (ORG_A, ALICE, "private"),
        "bob_private": (ORG_A, BOB, "private"),
        "carol_shared": (ORG_B, CAROL, "shared"),
    }
    for n, (name, (org, user, visibility)) in enumerate(owners.items()):
        at = base + dt.timedelta(hours=n)
        cur.execute(
            "INSERT INTO conversations (id, organization_id, user_id, agent_id, title, visibility, created_at, "
            "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (ids[name], org, user, agent, name, visibility, at, at),
        )
        cur.executemany(
            "INSERT INTO messages (conversation_id, organization_id, user_id, role, content, content_parts, "
            "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (ids[name], org, user, "user", f"{name} message {i}", Jsonb([{"type": "text"}]), at)
                for i in range(messages_per_conversation)
            ],  # the same created_at on purpose: the id breaks ties in the cursor
        )
    alice_file = cur.execute(
        "INSERT INTO files (organization_id, user_id, conversation_id, kind, storage_path, filename, size_bytes) "
        "VALUES (%s, %s, %s, 'upload', %s, 'notes.md', 12) RETURNING id",
        (ORG_A, ALICE, ids["alice_shared"], f"{ORG_A}/{ALICE}/{ids['alice_shared']}/files/uploads/notes.md"),
    ).fetchone()[0]
    first_message = cur.execute(
        "SELECT min(id) FROM messages WHERE conversation_id = %s", (ids["alice_shared"],)
    ).fetchone()[0]
    cur.execute(
        "INSERT INTO message_files (message_id, file_id, organization_id) VALUES (%s, %s, %s)",
        (first_message, alice_file, ORG_A),
    )
    tasks = {}
    for org, user, conv in ((ORG_A, ALICE, ids["alice_shared"]), (ORG_B, CAROL, ids["carol_shared"])):
        tasks[org] = cur.execute(
            "INSERT INTO agent_tasks (organization_id, conversation_id, user_id, title, status) "
            "VALUES (%s, %s, %s, 'build', 'RUNNING') RETURNING id",
            (org, conv, user),
        ).fetchone()[0]
        cur.executemany(
            "INSERT INTO task_steps (task_id, organization_id, step_name, status) VALUES (%s, %s, %s, %s)",
            [(tasks[org], org, "Plan", "ok"), (tasks[org], org, "Code Generation", "error")],
        )
    return TwoTenants(
        agent=agent,
        alice_task=tasks[ORG_A],
        carol_task=tasks[ORG_B],
        alice_file=alice_file,
        **ids,
    )
