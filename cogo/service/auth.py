"""Clerk session tokens: verification against Clerk's JWKS, and the directory's verdict on the caller.

Rules (Clerk's documented session token, v1 and v2 claims):
- RS256 only, signed by a key from COGO_CLERK_JWKS_URL (https://, http:// or, for local development, file://).
  Keys are cached; an unknown `kid` refetches the set, at most once per `jwks_min_refresh_s`.
- `exp` and `nbf` checked with a few seconds of leeway; `iss` equal to COGO_CLERK_ISSUER; `azp` one of
  COGO_CLERK_AUTHORIZED_PARTIES (when that is set); `sts: pending` refused (the session is not complete).
- The organisation: v2 `o.id` (role `o.rol`), else v1 `org_id` (role `org_role` without its `org:` prefix).

Anything wrong with the token answers 401 with one fixed message (the reason goes to the server log only);
a valid token without an active organisation answers 403 (cogo.service.deps turns these errors into answers).

Revocation: a valid token is also checked against the directory mirrored from Clerk (`Revocations`): a user
deleted there answers 401 like a bad token, an ended membership or a deleted organisation 403 like no
organisation. Only a row marked deleted refuses; a user or membership with no row yet (a new sign-up the
webhooks have not brought) passes on the token alone. Verdicts are cached per worker for
COGO_SERVICE_REVOCATION_TTL_S seconds, so a delete is honoured within that time.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import jwt

from cogo.service.settings import ServiceSettings
from cogo.tenancy import Caller

log = logging.getLogger("cogo.service.auth")

ALGORITHM = "RS256"
JWKS_FETCH_TIMEOUT_S = 5.0
JWKS_MAX_BYTES = 1_000_000
UNAUTHORIZED_MESSAGE = "missing or invalid session token"
NO_ORGANIZATION_MESSAGE = "the session has no active organization; select one in the app and retry"
MEMBERSHIP_ENDED_MESSAGE = "the user is no longer a member of the session's organization, or it was deleted"


class TokenRejected(Exception):
    """The token is not acceptable. The message is for the server log, never for the caller."""


class NoOrganization(Exception):
    """A valid session without an active organisation."""


class MembershipEnded(Exception):
    """A valid session whose membership the directory says has ended, or whose organisation was deleted."""


@dataclass(frozen=True)
class Principal(Caller):
    """The caller of a verified token: a member of its active organisation."""

    org_role: str | None = None
    session_id: str | None = None


def fetch_jwks(url: str) -> dict[str, Any]:
    """GET the key set (or read it from a file:// URL)."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("https", "http", "file"):
        raise TokenRejected(f"JWKS URL scheme {scheme!r} is not https, http or file")
    with urllib.request.urlopen(url, timeout=JWKS_FETCH_TIMEOUT_S) as response:
        body = response.read(JWKS_MAX_BYTES + 1)
    if len(body) > JWKS_MAX_BYTES:
        raise ValueError("JWKS document too large")
    return json.loads(body)


def parse_jwks(document: dict[str, Any]) -> dict[str, jwt.PyJWK]:
    """The RS256 signing keys of a JWKS document by key id; other keys are ignored."""
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document.get("keys", []) if isinstance(document, dict) else []:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        try:
            keys[entry["kid"]] = jwt.PyJWK(entry, algorithm=ALGORITHM)
        except jwt.PyJWKError as exc:
            log.warning("ignoring unusable JWKS key %s: %s", entry["kid"], exc)
    return keys


class JwksCache:
    """Signing keys by kid, refetched when an unknown kid appears or when the set is older than `max_age_s`.

    Rate limit: after a refetch that did not find the kid it was made for, no refetch for `min_refresh_s`,
    so tokens with made-up kids cannot make us hammer the JWKS endpoint, while a genuine rotation (a new kid
    that the refetch finds) is picked up at once.
    """

    def __init__(
        self,
        url: str,
        *,
        min_refresh_s: float,
        max_age_s: float,
        fetch: Callable[[str], dict[str, Any]] = fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.min_refresh_s = min_refresh_s
        self.max_age_s = max_age_s
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -math.inf
        self._missed_at = -math.inf
        self._lock = threading.Lock()
        self.fetches = 0

    def cached(self, kid: str) -> jwt.PyJWK | None:
        """The key if it is known and the set is fresh; None means `refresh_for` may find it."""
        if self._clock() - self._fetched_at > self.max_age_s:
            return None
        return self._keys.get(kid)

    def refresh_for(self, kid: str) -> jwt.PyJWK | None:
        """Refetch the set if the rate limit allows, then look the kid up. Blocking I/O: run it in a thread."""
        with self._lock:
            now = self._clock()
            stale = now - self._fetched_at > self.max_age_s
            if (stale or kid not in self._keys) and now - self._missed_at >= self.min_refresh_s:
                self.fetches += 1
                try:
                    self._keys, self._fetched_at = parse_jwks(self._fetch(self.url)), now
                except Exception as exc:  # keep the keys we have; retry after the rate-limit interval
                    log.error("cannot fetch the Clerk JWKS from %s: %s", self.url, exc)
                    self._missed_at = now
                if kid not in self._keys:
                    self._missed_at = now
            return self._keys.get(kid)


# The directory's verdicts on a caller (the SQL function cogo_session_revocation, sql/0071); CLEARED stands for
# its NULL: nothing known against the caller.
CLEARED, USER_DELETED = "cleared", "user_deleted"
VERDICT_MAX_ENTRIES = 50_000
DirectoryLookup = Callable[[str, str], Awaitable[str | None]]


class Revocations:
    """The directory's verdict on a (user, organisation) pair, looked up at most once per `ttl_s` per worker.

    A token is honoured until it expires (and remembered as long, VERIFIED_TTL_S); the directory, kept by
    webhooks, knows within seconds that its user was deleted or its membership ended.

    Concepts: Authentication, Authorization
    """

    def __init__(self, lookup: DirectoryLookup, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._lookup = lookup
        self.ttl_s = ttl_s
        self._clock = clock
        self._verdicts: dict[tuple[str, str], tuple[str, float]] = {}

    async def check(self, principal: Principal) -> None:
        """TokenRejected when the user was deleted, MembershipEnded when the membership or organisation was."""
        verdict = await self.verdict(principal.user_id, principal.organization_id)
        if verdict == USER_DELETED:
            raise TokenRejected(f"user {principal.user_id} is deleted in the directory")
        if verdict != CLEARED:
            raise MembershipEnded(verdict)

    async def verdict(self, user_id: str, organization_id: str) -> str:
        key = (user_id, organization_id)
        asked_at = self._clock()
        cached = self._verdicts.get(key)
        if cached is not None and asked_at - cached[1] < self.ttl_s:
            return cached[0]
        verdict = await self._lookup(user_id, organization_id) or CLEARED
        if len(self._verdicts) >= VERDICT_MAX_ENTRIES:
            self._verdicts.clear()
        self._verdicts[key] = (verdict, asked_at)  # aged from before the lookup, so a change during it is not missed
        return verdict


# Verified tokens are remembered (a client sends the same token until it expires, ~60 s for Clerk) so that a
# repeated token costs a dict lookup instead of parsing and an RSA verification. An entry lives at most
# VERIFIED_TTL_S, so a key removed from the JWKS stops being honoured within that time even for cached tokens.
VERIFIED_TTL_S = 60.0
VERIFIED_MAX_ENTRIES = 50_000


class ClerkVerifier:
    """Verifies Clerk session tokens: RS256 signature against the JWKS, time claims, issuer, authorized party.

    Concepts: Authentication, Security
    """

    def __init__(
        self, settings: ServiceSettings, jwks: JwksCache | None = None, revocations: Revocations | None = None
    ) -> None:
        if not settings.jwks_url or not settings.issuer:
            raise ValueError("COGO_CLERK_JWKS_URL and COGO_CLERK_ISSUER must both be set")
        self.settings = settings
        self.jwks = jwks or JwksCache(
            settings.jwks_url, min_refresh_s=settings.jwks_min_refresh_s, max_age_s=settings.jwks_max_age_s
        )
        # token -> (principal, valid from, valid until) in time.time() seconds, leeway included.
        self._verified: dict[str, tuple[Principal, float, float]] = {}
        # None: tokens alone decide (an app without the directory at hand).
        self.revocations = revocations

    async def verify(self, token: str) -> Principal:
        """The caller of a token: its signature and claims verified (or remembered from an earlier request), then
        the directory asked. TokenRejected, NoOrganization or MembershipEnded when it must be refused."""
        principal = self._remembered_signature(token) or await self._verify_signature(token)
        if self.revocations is not None:
            await self.revocations.check(principal)
        return principal

    def _remembered_signature(self, token: str) -> Principal | None:
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, valid_from, valid_until = remembered
            if valid_from <= time.time() <= valid_until:
                return principal
            self._verified.pop(token, None)
        return None

    async def _verify_signature(self, token: str) -> Principal:
        now = time.time()
        kid = self._kid(token)
        key = self.jwks.cached(kid) or await anyio.to_thread.run_sync(self.jwks.refresh_for, kid)
        if key is None:
            raise TokenRejected(f"unknown key id {kid!r}")
        claims = self.claims(token, key)
        principal = self.principal(claims)
        if len(self._verified) >= VERIFIED_MAX_ENTRIES:
            self._verified.clear()
        leeway = self.settings.leeway_s
        self._verified[token] = (
            principal,
            claims["nbf"] - leeway,
            min(claims["exp"] + leeway, now + VERIFIED_TTL_S),
        )
        return principal

    @staticmethod
    def _kid(token: str) -> str:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"malformed token: {exc}") from None
        if header.get("alg") != ALGORITHM:
            raise TokenRejected(f"algorithm {header.get('alg')!r} is not {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("no key id in the token header")
        return kid

    def claims(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        """The token's claims once its signature, exp/nbf, issuer and azp check out; TokenRejected otherwise.

        Concepts: Authentication
        """
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_s,
                options={"require": ["exp", "nbf", "iat", "iss", "sub"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"{type(exc).__name__}: {exc}") from None
        parties = self.settings.authorized_parties
        if parties and claims.get("azp") not in parties:
            raise TokenRejected(f"authorized party {claims.get('azp')!r} is not allowed")
        if claims.get("sts") == "pending":
            raise TokenRejected("the session is pending")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise TokenRejected("no subject")
        return claims

    @staticmethod
    def principal(claims: dict[str, Any]) -> Principal:
        org = claims.get("o")
        if isinstance(org, dict):  # v2
            org_id, role = org.get("id"), org.get("rol")
        else:  # v1
            org_id, role = claims.get("org_id"), claims.get("org_role")
        if not isinstance(org_id, str) or not org_id:
            raise NoOrganization()
        if isinstance(role, str):
            role = role.removeprefix("org:")
        sid = claims.get("sid")
        return Principal(
            user_id=claims["sub"],
            organization_id=org_id,
            org_role=role if isinstance(role, str) else None,
            session_id=sid if isinstance(sid, str) else None,
        )
