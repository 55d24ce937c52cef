"""The read service's own settings, read from the environment when the app starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_POOL_SIZE = 10
DEFAULT_POOL_TIMEOUT_S = 10.0
# A search is mostly CPU (the query's embedding, Python, and Postgres's index walk). Two per worker keep its share of
# the cores busy while one waits for Postgres; dozens at once only take turns at the GIL and the cores, and every
# one of them finishes late (a p99 3.5 times the p50 at 8 connections, bench/bench_service.py).
DEFAULT_SEARCH_CONCURRENCY = 2
# A page takes about a millisecond; one that takes this long is cancelled on the inline connection and run on the
# pool instead (cogo.service.inline_reads), so the worker's event loop is never held up for longer.
DEFAULT_INLINE_TIMEOUT_MS = 200
# Seconds a worker trusts the directory's verdict on a caller (deleted user, ended membership) before asking again:
# how long a delete in Clerk may take to be honoured, beyond the webhook's own delay.
DEFAULT_REVOCATION_TTL_S = 5.0
INLINE_READS_MODES = ("auto", "on", "off")
DEFAULT_MAX_BODY_BYTES = 1 << 20


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
    # Listing and message pages waited for on the event loop's thread over one blocking connection per worker
    # (cogo.service.inline_reads): "auto" when Postgres is on this machine, "on", or "off".
    inline_reads: str = "auto"
    inline_timeout_ms: int = DEFAULT_INLINE_TIMEOUT_MS
    revocation_ttl_s: float = DEFAULT_REVOCATION_TTL_S
    # Request bodies past this many bytes are refused with 413 before they are read (cogo.service.limits).
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

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
            inline_reads=_inline_reads_mode(env.get("COGO_SERVICE_INLINE_READS") or "auto"),
            inline_timeout_ms=max(1, int(env.get("COGO_SERVICE_INLINE_TIMEOUT_MS") or DEFAULT_INLINE_TIMEOUT_MS)),
            revocation_ttl_s=max(0.0, float(env.get("COGO_SERVICE_REVOCATION_TTL_S") or DEFAULT_REVOCATION_TTL_S)),
            max_body_bytes=max(1, int(env.get("COGO_SERVICE_MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES)),
        )


def _inline_reads_mode(value: str) -> str:
    mode = value.strip().lower()
    if mode not in INLINE_READS_MODES:
        raise ValueError(f"COGO_SERVICE_INLINE_READS must be one of {', '.join(INLINE_READS_MODES)}, not {value!r}")
    return mode
