"""The read service's own settings, read from the environment when the app starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_POOL_SIZE = 10
DEFAULT_POOL_TIMEOUT_S = 10.0
# A search is mostly CPU (the query's embedding, Python, and Postgres's index walk). Two per worker keep its share of
# the cores busy while one waits for Postgres; dozens at once only take turns at the GIL and the cores, and every
# one of them finishes late.
DEFAULT_SEARCH_CONCURRENCY = 2
# Seconds a worker trusts the directory's verdict on a caller (deleted user, ended membership) before asking again:
# how long a delete in Clerk may take to be honoured, beyond the webhook's own delay.
DEFAULT_REVOCATION_TTL_S = 5.0
DEFAULT_MAX_BODY_BYTES = 1 << 20
# What a client may hold of a worker (cogo.service.run hands these to the server). A request head must arrive whole
# within HEADER_TIMEOUT_S of the connection's opening or of its previous response, or the connection is closed: a
# slow or silent client (slowloris) holds a connection that long at most, and so does an idle keep-alive one.
DEFAULT_HEADER_TIMEOUT_S = 10.0
# A request head (request line and headers) larger than this is answered 431. Clerk's session tokens are ~1-2 KB.
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
# Connections a worker serves at once; more wait in the listen backlog until one closes.
DEFAULT_BACKPRESSURE = 256
# On SIGTERM, seconds a worker has to finish the requests in flight before it is killed.
DEFAULT_GRACEFUL_SHUTDOWN_S = 10


@dataclass(frozen=True)
class ServiceSettings:
    # Clerk session tokens: where the signing keys are, who issues tokens, which front ends may present them.
    jwks_url: str | None
    issuer: str | None
    authorized_parties: tuple[str, ...]
    # Seconds of clock skew tolerated on exp/nbf.
    leeway_s: int = 5
    # After a JWKS refetch that did not find the token's key id, no refetch for this long (made-up kids
    # cannot hammer Clerk); a refetch that finds a new kid (key rotation) does not count.
    jwks_min_refresh_s: float = 10.0
    # Known keys are refetched after this long even without an unknown kid (revoked keys drop out).
    jwks_max_age_s: float = 3600.0
    # Postgres connections per worker process.
    pool_size: int = DEFAULT_POOL_SIZE
    # Seconds a request waits for one of them before it answers 503 (the database down, or all of them busy).
    pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S
    # Searches one worker process runs at once; more wait their turn, first come first served.
    search_concurrency: int = DEFAULT_SEARCH_CONCURRENCY
    revocation_ttl_s: float = DEFAULT_REVOCATION_TTL_S
    # Request bodies past this many bytes are refused with 413 before they are read (cogo.service.limits).
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    backpressure: int = DEFAULT_BACKPRESSURE
    graceful_shutdown_s: int = DEFAULT_GRACEFUL_SHUTDOWN_S

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceSettings:
        env = os.environ if env is None else env
        parties = tuple(
            p.strip().rstrip("/") for p in env.get("COGO_CLERK_AUTHORIZED_PARTIES", "").split(",") if p.strip()
        )
        return cls(
            jwks_url=env.get("COGO_CLERK_JWKS_URL") or None,
            issuer=(env.get("COGO_CLERK_ISSUER") or "").rstrip("/") or None,
            authorized_parties=parties,
            leeway_s=int(env.get("COGO_CLERK_LEEWAY_S") or 5),
            jwks_min_refresh_s=float(env.get("COGO_CLERK_JWKS_MIN_REFRESH_S") or 10),
            pool_size=max(1, int(env.get("COGO_SERVICE_POOL_SIZE") or DEFAULT_POOL_SIZE)),
            pool_timeout_s=float(env.get("COGO_SERVICE_POOL_TIMEOUT_S") or DEFAULT_POOL_TIMEOUT_S),
            search_concurrency=max(1, int(env.get("COGO_SERVICE_SEARCH_CONCURRENCY") or DEFAULT_SEARCH_CONCURRENCY)),
            revocation_ttl_s=max(0.0, float(env.get("COGO_SERVICE_REVOCATION_TTL_S") or DEFAULT_REVOCATION_TTL_S)),
            max_body_bytes=max(1, int(env.get("COGO_SERVICE_MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES)),
            # Within the server's own bounds: 1 ms to 60 s, and a buffer of at least 8 KiB.
            header_timeout_s=min(
                60.0, max(0.001, float(env.get("COGO_SERVICE_HEADER_TIMEOUT_S") or DEFAULT_HEADER_TIMEOUT_S))
            ),
            max_header_bytes=max(8192, int(env.get("COGO_SERVICE_MAX_HEADER_BYTES") or DEFAULT_MAX_HEADER_BYTES)),
            backpressure=max(1, int(env.get("COGO_SERVICE_BACKPRESSURE") or DEFAULT_BACKPRESSURE)),
            graceful_shutdown_s=max(1, int(env.get("COGO_SERVICE_GRACEFUL_SHUTDOWN_S") or DEFAULT_GRACEFUL_SHUTDOWN_S)),
        )
