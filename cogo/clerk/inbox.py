"""The Clerk webhook inbox: verify and store (the read service), then apply in event-time order (the
clerk_directory asset). Storing never applies; applying never talks to Clerk."""

from __future__ import annotations

import binascii
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb
from svix.webhooks import Webhook, WebhookVerificationError

from cogo.clerk.apply import FAILED, Outcome, apply_changes
from cogo.clerk.records import Change, RecordError, change_from_event, check_event_times, event_time_ms

# Serialises appliers (two runs of clerk_directory must not settle the same events twice).
APPLY_LOCK_KEY = 0x636F676F_636C726B  # "cogoclrk"
DEFAULT_BATCH_SIZE = 5000


class WebhookRejected(Exception):
    """A request that is not a genuine, well-formed Clerk event: answered 4xx, nothing stored. `final`: a signed
    event that no resend of the same body could change (Svix is asked not to retry it)."""

    def __init__(self, status_code: int, code: str, message: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.status_code, self.code, self.message, self.final = status_code, code, message, final


@dataclass(frozen=True)
class VerifiedEvent:
    svix_id: str
    svix_timestamp_s: int
    event_type: str
    payload: dict[str, Any]

    @property
    def event_time_ms(self) -> int:
        return event_time_ms(self.payload, self.svix_timestamp_s)


def verify_webhook(secret: str, body: bytes, headers: Mapping[str, str]) -> VerifiedEvent:
    """Check the Svix signature over the raw body (svix also refuses a timestamp more than 5 minutes off),
    then parse the event. Raises WebhookRejected."""
    try:
        verifier = Webhook(secret)
    except Exception as exc:  # svix raises several kinds for an unusable secret
        raise WebhookRejected(503, "webhook_not_configured", "CLERK_WEBHOOK_SECRET is not a Svix secret") from exc
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        verifier.verify(body, lowered)
    except (WebhookVerificationError, ValueError, binascii.Error, UnicodeDecodeError) as exc:
        reason = str(exc) or "signature verification failed"
        raise WebhookRejected(401, "invalid_signature", f"webhook rejected: {reason}") from None
    payload = parse_event(body)
    # svix accepts the Standard Webhooks names (webhook-id, ...) when the svix-* ones are absent.
    svix_id = lowered.get("svix-id") or lowered["webhook-id"]
    stamp = lowered.get("svix-timestamp") or lowered["webhook-timestamp"]
    return VerifiedEvent(svix_id, int(float(stamp)), payload["type"], payload)


def parse_event(body: bytes) -> dict[str, Any]:
    """The event, if Postgres can store it and the mirror apply it; WebhookRejected (400) otherwise."""
    try:
        # Strict JSON: no NaN or Infinity, no lone surrogate, nesting bounded (the standard library takes all three).
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WebhookRejected(400, "bad_request", f"body is not JSON: {exc}", final=True) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise WebhookRejected(400, "bad_request", "body is not a Clerk event (no type)", final=True)
    if not isinstance(payload.get("data"), dict):
        raise WebhookRejected(400, "bad_request", "body is not a Clerk event (no data object)", final=True)
    problem = unstorable(payload)
    if problem is not None:
        raise WebhookRejected(400, "bad_request", problem, final=True)
    try:
        check_event_times(payload)
        # What the mirror would refuse to apply is refused here, while Clerk can still be told.
        change_from_event(payload["type"], payload)
    except RecordError as exc:
        raise WebhookRejected(400, "bad_request", f"event refused: {exc}", final=True) from None
    return payload


# Clerk's events nest a few levels (metadata a few more); far deeper JSON would exhaust Python's recursion
# limit where it is encoded or decoded again (storing, applying).
MAX_NESTING = 64


def unstorable(value: Any) -> str | None:
    """Why a parsed body cannot go into the inbox: too deeply nested, or a U+0000 in a string or key (which
    jsonb cannot hold). None when it can."""
    stack = [(value, 1)]
    while stack:  # iterative: the depth is what is being checked
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            return f"body nests deeper than {MAX_NESTING} levels"
        if isinstance(item, dict):
            if any("\x00" in key for key in item):
                return "a key in the body contains U+0000, which Postgres cannot store"
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str) and "\x00" in item:
            return "a string in the body contains U+0000, which Postgres cannot store"
    return None


STORE_EVENT = """
INSERT INTO clerk_webhook_inbox (svix_id, event_type, payload, event_time, svix_timestamp)
VALUES (%s, %s, %s, clerk_ms(%s), to_timestamp(%s))
ON CONFLICT (svix_id) DO NOTHING
RETURNING svix_id
"""


def store_params(event: VerifiedEvent) -> tuple[Any, ...]:
    return (event.svix_id, event.event_type, Jsonb(event.payload), event.event_time_ms, event.svix_timestamp_s)


def store_event(conn: psycopg.Connection, event: VerifiedEvent) -> bool:
    """Insert into the inbox; False when this svix-id is already there (a resend)."""
    return conn.execute(STORE_EVENT, store_params(event)).fetchone() is not None


async def store_event_async(conn: psycopg.AsyncConnection, event: VerifiedEvent) -> bool:
    """store_event on an async connection (the read service's pool)."""
    cursor = await conn.execute(STORE_EVENT, store_params(event))
    return await cursor.fetchone() is not None


@dataclass
class InboxRun:
    counts: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    duration_s: float = 0.0
    unapplied: int = 0
    oldest_unapplied_age_s: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    def as_metadata(self) -> dict[str, Any]:
        return {
            "events_applied": self.counts["applied"],
            "events_ignored_stale": self.counts["stale"],
            "events_ignored_deleted_or_unmirrored": self.counts["ignored"],
            "events_failed": self.counts["failed"],
            "unapplied_events": self.unapplied,
            "oldest_unapplied_age_s": round(self.oldest_unapplied_age_s or 0.0, 1),
            "batches": self.batches,
            "events_per_s": round(self.events / self.duration_s) if self.duration_s else 0,
            "duration_s": round(self.duration_s, 3),
            "failures": self.errors,
        }


SETTLE = """
UPDATE clerk_webhook_inbox i SET
    status = v.status, last_error = v.error, attempts = i.attempts + 1, last_attempt_at = now(),
    applied_at = CASE WHEN v.status = 'failed' THEN NULL ELSE now() END
FROM jsonb_to_recordset(%(rows)s) AS v(svix_id text, status text, error text)
WHERE i.svix_id = v.svix_id
"""


# The payload as far as applying needs it, slimmed in Postgres (a user's other email addresses, phone
# numbers, private metadata; a membership's embedded organization) so that less JSON crosses the wire
# and is decoded in Python: about half of an apply's time otherwise.
SELECT_BATCH = """
WITH chosen AS MATERIALIZED (
    -- ids first: a sort over every waiting row must not carry (or detoast) their payloads
    SELECT svix_id FROM clerk_webhook_inbox
    WHERE applied_at IS NULL AND (last_attempt_at IS NULL OR last_attempt_at < %s)
    ORDER BY event_time, svix_id
    LIMIT %s
),
batch AS MATERIALIZED (
    SELECT i.svix_id, i.event_type, i.event_time, i.payload->'timestamp' AS stamp, i.payload->'data' AS d
    FROM clerk_webhook_inbox i JOIN chosen USING (svix_id)
)
SELECT svix_id, event_type,
       jsonb_build_object('type', event_type, 'timestamp', stamp, 'data',
           CASE
           WHEN event_type LIKE 'user.%%' AND jsonb_typeof(d) = 'object' THEN
               d - '{email_addresses,phone_numbers,web3_wallets,passkeys,external_accounts,saml_accounts,
                     private_metadata,unsafe_metadata}'::text[]
               || jsonb_build_object('email_addresses', coalesce(
                   (SELECT jsonb_agg(jsonb_build_object('id', e->'id', 'email_address', e->'email_address'))
                    FROM jsonb_array_elements(
                        CASE WHEN jsonb_typeof(d->'email_addresses') = 'array' THEN d->'email_addresses' ELSE '[]' END
                    ) AS e
                    WHERE e->>'id' = d->>'primary_email_address_id'), '[]'))
           WHEN event_type LIKE 'organizationMembership.%%' AND jsonb_typeof(d) = 'object' THEN
               d - '{organization,public_user_data,private_metadata}'::text[]
               || jsonb_build_object(
                   'organization', jsonb_build_object('id', d->'organization'->'id'),
                   'public_user_data', jsonb_build_object('user_id', d->'public_user_data'->'user_id'))
           ELSE d
           END) AS payload
FROM batch
ORDER BY event_time, svix_id
"""


def apply_inbox(conn: psycopg.Connection, *, batch_size: int = DEFAULT_BATCH_SIZE) -> InboxRun:
    """Apply every unapplied event once, oldest event_time first, in batches of one transaction each.
    A failed event keeps applied_at NULL with its error and is retried by the next run. `conn` must be in
    autocommit mode (each batch commits on its own)."""
    if not conn.autocommit:
        raise ValueError("apply_inbox needs an autocommit connection")
    started = time.monotonic()
    run = InboxRun()
    conn.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
    try:
        run_started = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        while _apply_batch(conn, run, run_started, batch_size):
            run.batches += 1
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (APPLY_LOCK_KEY,))
    run.unapplied, run.oldest_unapplied_age_s = unapplied_summary(conn)
    run.duration_s = time.monotonic() - started
    return run


def _apply_batch(conn: psycopg.Connection, run: InboxRun, run_started: datetime, batch_size: int) -> bool:
    with conn.transaction():
        # Walk the partial index in event-time order and stop after batch_size rows; left to guess, the
        # planner (stats lag behind a burst of webhooks) reads every waiting row and sorts them each batch.
        conn.execute("SET LOCAL enable_bitmapscan = off")
        conn.execute("SET LOCAL enable_seqscan = off")
        rows = conn.execute(SELECT_BATCH, (run_started, batch_size)).fetchall()
        conn.execute("SET LOCAL enable_bitmapscan = on")
        conn.execute("SET LOCAL enable_seqscan = on")
        if not rows:
            return False
        changes: list[Change | None] = []
        parse_errors: dict[int, str] = {}
        for index, (_, event_type, payload) in enumerate(rows):
            try:
                changes.append(change_from_event(event_type, payload))
            except Exception as exc:  # whatever one odd event raises is its own failure, not the batch's
                changes.append(None)
                parse_errors[index] = f"{type(exc).__name__}: {exc}"
        result = apply_changes(conn, changes)
        outcomes = [
            Outcome(FAILED, parse_errors[i]) if i in parse_errors else outcome
            for i, outcome in enumerate(result.outcomes)
        ]
        settled = [
            {"svix_id": row[0], "status": outcome.status, "error": outcome.error}
            for row, outcome in zip(rows, outcomes, strict=True)
        ]
        conn.execute(SETTLE, {"rows": Jsonb(settled)})
    for row, outcome in zip(rows, outcomes, strict=True):
        run.counts[outcome.status] += 1
        if outcome.status == FAILED and len(run.errors) < 20:
            run.errors.append(f"{row[0]} ({row[1]}): {outcome.error}")
    return True


def unapplied_summary(conn: psycopg.Connection) -> tuple[int, float | None]:
    """How many events wait, and the oldest one's age in seconds since it was received."""
    count, age = conn.execute(
        """
        SELECT count(*), extract(epoch FROM now() - min(received_at))::float8
        FROM clerk_webhook_inbox WHERE applied_at IS NULL
        """
    ).fetchone()
    return count, age


def due_events(conn: psycopg.Connection) -> tuple[int, str | None]:
    """Events a run should take now: never tried, or failed and past their backoff (2^attempts minutes,
    at most an hour), with a key that changes whenever that set changes (the sensor's run_key)."""
    count, newest, attempts = conn.execute(
        """
        SELECT count(*), max(received_at), coalesce(sum(attempts), 0)
        FROM clerk_webhook_inbox
        WHERE applied_at IS NULL
          AND (attempts = 0
               OR last_attempt_at < now() - least(interval '1 minute' * power(2, attempts), interval '1 hour'))
        """
    ).fetchone()
    if not count:
        return 0, None
    return count, f"{newest.isoformat()}|{count}|{attempts}"
