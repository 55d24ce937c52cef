"""Odd Clerk events, correctly signed, over real HTTP: refused at the door with a 4xx (never a 5xx, which Svix,
Clerk's sender, retries for more than a day) and nothing stored; odd events already in the inbox fail alone when
applied; and arbitrary signed bodies (Hypothesis) never answer 5xx."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogo.clerk.inbox import apply_inbox
from cogo.config import Settings
from cogo.service.app import create_app
from tests.clerk_fake import BASE_MS, SECRET, clerk_membership, clerk_org, clerk_user, deleted_object, event, signed
from tests.service.servers import serving_app

DAY_MS = 86_400_000
YEAR_2000_MS = 946_684_800_000
FUZZ_EXAMPLES = 150


@pytest.fixture
def base_url(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("CLERK_WEBHOOK_SECRET", SECRET)
    with serving_app(create_app(dataclasses.replace(Settings.from_env(), database_url=database_url))) as url:
        yield url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


def now_ms() -> int:
    return int(time.time() * 1000)


def sign_bytes(body: bytes, svix_id: str) -> dict[str, str]:
    """Svix's signature over raw bytes (svix's own signer takes text, so a body that is not UTF-8 is signed here:
    base64 of HMAC-SHA256 under the secret's key, over `{id}.{timestamp}.{body}`)."""
    stamp = str(int(time.time()))
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{svix_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {"svix-id": svix_id, "svix-timestamp": stamp, "svix-signature": f"v1,{base64.b64encode(digest).decode()}"}


def post_signed(http: httpx.Client, body: bytes, svix_id: str | None = None) -> httpx.Response:
    svix_id = svix_id or f"msg_{uuid.uuid4().hex}"
    try:
        headers = signed(body, svix_id)[1]
    except UnicodeError:  # not UTF-8 (a raw surrogate): signed by hand
        headers = sign_bytes(body, svix_id)
    return http.post("/webhooks/clerk", content=body, headers={**headers, "content-type": "application/json"})


def stored(db: psycopg.Connection) -> int:
    return db.execute("SELECT count(*) FROM clerk_webhook_inbox").fetchone()[0]


def user_event(**fields: Any) -> dict[str, Any]:
    """A user.updated event with these fields of its user replaced (the envelope's timestamp left as it was)."""
    return event("user.updated", {**clerk_user("user_odd"), **fields}, timestamp_ms=BASE_MS)


def body_of(payload: dict[str, Any]) -> bytes:
    """As Python's json writes it: NaN and Infinity as those bare words, lone surrogates as \\uXXXX escapes."""
    return json.dumps(payload).encode()


def deeply_nested(levels: int) -> bytes:
    return body_of(user_event(public_metadata={"deep": "HERE"})).replace(b'"HERE"', b"[" * levels + b"]" * levels)


def assert_refused(response: httpx.Response, *words: str) -> None:
    """A 4xx in the errors' shape; a 400 (signed, refused for its content) also asks Svix not to retry it, which
    a 401 (the signature did not check out: perhaps our secret is stale) does not."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    abort = response.headers.get("webhook-delivery")
    assert abort == ("abort-message" if response.status_code == 400 else None), response.status_code
    error = response.json()["error"]
    assert set(error) == {"code", "message"} and error["code"] and isinstance(error["message"], str)
    for word in words:
        assert word in error["message"], (word, error["message"])


ODD_TIMES = [  # (fields, a word the refusal's message has)
    pytest.param({"updated_at": math.nan}, "JSON", id="updated_at-NaN"),  # not JSON at all
    pytest.param({"updated_at": math.inf}, "JSON", id="updated_at-Infinity"),
    pytest.param({"updated_at": 1e20}, "updated_at", id="updated_at-1e20"),
    pytest.param({"updated_at": 9e15}, "updated_at", id="updated_at-9e15-year-287168"),
    pytest.param({"updated_at": 9_000_000_000_000_000}, "updated_at", id="updated_at-9e15-integer"),
    pytest.param({"updated_at": "2024-01-01T00:00:00Z"}, "updated_at", id="updated_at-text"),
    pytest.param({"updated_at": YEAR_2000_MS - 1}, "updated_at", id="updated_at-before-2000"),
    pytest.param({"created_at": 1e20}, "created_at", id="created_at-1e20"),
    pytest.param({"created_at": -1}, "created_at", id="created_at-before-1970"),
    pytest.param({"last_sign_in_at": 9e15}, "last_sign_in_at", id="last_sign_in_at-far-future"),
]


@pytest.mark.parametrize(("fields", "word"), ODD_TIMES)
def test_an_odd_time_is_refused_and_nothing_stored(
    http: httpx.Client, db: psycopg.Connection, fields: dict[str, Any], word: str
) -> None:
    response = post_signed(http, body_of(user_event(**fields)))
    assert response.status_code == 400, response.text
    assert_refused(response, word)
    assert stored(db) == 0


def test_a_time_more_than_a_day_ahead_is_refused_and_one_just_inside_the_range_is_stored(
    http: httpx.Client, db: psycopg.Connection
) -> None:
    assert_refused(post_signed(http, body_of(user_event(updated_at=now_ms() + DAY_MS + 60_000))), "updated_at")
    assert stored(db) == 0
    inside = [
        user_event(updated_at=now_ms() + DAY_MS - 60_000),  # a clock running ahead of ours, within a day
        user_event(updated_at=YEAR_2000_MS),
        user_event(created_at=631_152_000_000),  # 1990: an imported user's sign-up date
    ]
    for payload in inside:
        assert post_signed(http, body_of(payload)).status_code == 200
    assert stored(db) == len(inside)


def test_a_delete_with_a_far_future_envelope_timestamp_is_refused(http: httpx.Client, db: psycopg.Connection) -> None:
    payload = event("user.deleted", deleted_object("user_odd", "user"), timestamp_ms=9_000_000_000_000_000)
    assert_refused(post_signed(http, body_of(payload)), "timestamp")
    assert stored(db) == 0


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(user_event(first_name="Ada\u0000"), id="in-a-value"),
        pytest.param(user_event(public_metadata={"plan\u0000": "pro"}), id="in-a-key"),
        pytest.param({**user_event(), "type": "user.updated\u0000"}, id="in-the-type"),
    ],
)
def test_a_nul_character_is_refused(http: httpx.Client, db: psycopg.Connection, payload: dict[str, Any]) -> None:
    """Postgres's jsonb cannot hold U+0000 in a string."""
    assert_refused(post_signed(http, body_of(payload)), "U+0000")
    assert stored(db) == 0


def test_lone_surrogates_are_refused_escaped_or_raw(http: httpx.Client, db: psycopg.Connection) -> None:
    escaped_high = body_of(user_event(first_name="\ud800"))
    escaped_low = body_of(user_event(last_name="x\udc00y"))
    assert b"\\ud800" in escaped_high and b"\\udc00" in escaped_low
    raw = body_of(user_event(first_name="HERE")).replace(b"HERE", "\ud800".encode("utf-8", "surrogatepass"))
    for body in (escaped_high, escaped_low, raw):
        assert_refused(post_signed(http, body))
    assert stored(db) == 0


@pytest.mark.parametrize("levels", [100, 100_000])
def test_deep_nesting_is_refused(http: httpx.Client, db: psycopg.Connection, levels: int) -> None:
    assert_refused(post_signed(http, deeply_nested(levels)))
    assert stored(db) == 0


def test_standard_webhooks_header_names_are_accepted(http: httpx.Client, db: psycopg.Connection) -> None:
    """svix verifies webhook-id/-timestamp/-signature when the svix-* names are absent; the event is stored under
    that id (it used to be looked up under svix-id only)."""
    body, headers = signed(body_of(user_event()), "msg_standard")
    renamed = {name.replace("svix-", "webhook-"): value for name, value in headers.items()}
    response = http.post("/webhooks/clerk", content=body, headers=renamed)
    assert response.status_code == 200 and response.json()["svix_id"] == "msg_standard"
    assert stored(db) == 1


# --- applying: odd events already in the inbox (stored before the door refused them) fail alone ---------------


def put_in_inbox(db: psycopg.Connection, svix_id: str, event_type: str, payload_json: str) -> None:
    """Straight into the inbox, as the JSON text given (Postgres keeps 1e400 or a 20-digit integer exactly)."""
    db.execute(
        "INSERT INTO clerk_webhook_inbox (svix_id, event_type, payload, event_time, svix_timestamp) "
        "VALUES (%s, %s, %s::jsonb, now(), now())",
        (svix_id, event_type, payload_json),
    )


def user_json(user_id: str, **raw_fields: str) -> str:
    """A user.updated event's JSON with some fields replaced by raw JSON text."""
    fields = {name: f"@@{name}@@" for name in raw_fields}
    text = json.dumps(event("user.updated", {**clerk_user(user_id), **fields}))
    for name, raw in raw_fields.items():
        text = text.replace(f'"@@{name}@@"', raw)
    return text


def inbox(db: psycopg.Connection) -> dict[str, tuple[str, str | None]]:
    rows = db.execute("SELECT svix_id, status, last_error FROM clerk_webhook_inbox").fetchall()
    return {svix_id: (status, error) for svix_id, status, error in rows}


def test_odd_events_in_the_inbox_fail_alone_with_their_reason(db: psycopg.Connection) -> None:
    odd = {
        "m_inf": user_json("user_inf", updated_at="1e400"),
        "m_huge": user_json("user_huge", updated_at="100000000000000000000"),
        "m_future": user_json("user_future", updated_at="9000000000000000"),
        "m_created": user_json("user_created", created_at="-1e400"),
        "m_role": json.dumps(
            event("organizationMembership.created", {**clerk_membership("mem_1", "org_a", "user_1"), "role": 5})
        ),
        "m_perms": json.dumps(
            event("organizationMembership.created", {**clerk_membership("mem_2", "org_a", "user_2"), "permissions": 5})
        ),
    }
    for svix_id, payload in odd.items():
        put_in_inbox(db, svix_id, json.loads(payload)["type"], payload)
    put_in_inbox(db, "m_fine", "user.created", json.dumps(event("user.created", clerk_user("user_fine"))))
    put_in_inbox(db, "m_org", "organization.created", json.dumps(event("organization.created", clerk_org("org_a"))))
    # A legitimate user whose metadata holds an integer beyond 64 bits: Postgres keeps it, so the mirror does.
    put_in_inbox(
        db, "m_big_meta", "user.created", user_json("user_meta", public_metadata='{"n": 100000000000000000000}')
    )

    run = apply_inbox(db)

    status = inbox(db)
    assert {svix_id: s for svix_id, (s, _) in status.items()} == {
        **dict.fromkeys(odd, "failed"),
        "m_fine": "applied",
        "m_org": "applied",
        "m_big_meta": "applied",
    }
    for svix_id, field in (
        ("m_inf", "updated_at"),
        ("m_huge", "updated_at"),
        ("m_future", "updated_at"),
        ("m_created", "created_at"),
        ("m_role", "role"),
        ("m_perms", "permissions"),
    ):
        assert field in status[svix_id][1], (svix_id, status[svix_id][1])
    assert run.counts == {"applied": 3, "failed": len(odd)}
    users = dict(db.execute("SELECT id, clerk_updated_at FROM users").fetchall())  # every row readable by Python
    assert set(users) == {"user_fine", "user_meta"}
    meta = db.execute("SELECT public_metadata->>'n' FROM users WHERE id = 'user_meta'").fetchone()[0]
    assert meta == "100000000000000000000"


# --- fuzz: arbitrary signed bodies never answer 5xx, and whatever was stored applies without a crash ----------

EVENT_TYPES = [
    "user.created",
    "user.updated",
    "user.deleted",
    "organization.created",
    "organization.deleted",
    "organizationMembership.created",
    "organizationMembership.deleted",
    "session.created",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e20, 9e15, -1e20, 2**63, 2**64, BASE_MS, 5e-324])
    | st.text()
    | st.sampled_from(["user_fuzz", "org_fuzz", "\ud800", "\udfff", "\x00"])  # lone surrogates, U+0000
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)
# Mostly in range, so that a good share of the events passes the door and reaches the inbox and the applier.
times = st.integers(YEAR_2000_MS, BASE_MS + DAY_MS) | st.none() | json_values
clerk_data = st.fixed_dictionaries(
    {"id": st.sampled_from(["user_fuzz", "org_fuzz", "orgmem_fuzz"]) | json_values},
    optional={
        "updated_at": times,
        "created_at": times,
        "last_sign_in_at": times,
        "name": st.text() | json_values,
        "first_name": json_values,
        "slug": json_values,
        "role": st.sampled_from(["org:admin", "basic_member"]) | json_values,
        "permissions": json_values,
        "public_metadata": json_values,
        "email_addresses": json_values,
        "primary_email_address_id": json_values,
        "organization": st.fixed_dictionaries({"id": st.just("org_fuzz") | json_values}) | json_values,
        "public_user_data": st.fixed_dictionaries({"user_id": st.just("user_fuzz") | json_values}) | json_values,
        "deleted": json_values,
    },
)
clerk_events = st.fixed_dictionaries(
    {
        "type": st.sampled_from(EVENT_TYPES) | st.text(),
        "object": st.just("event"),
        "timestamp": times,
        "data": clerk_data,
    }
)


def dumped(payload: Any, ascii_only: bool) -> bytes:
    """json.dumps's text (NaN, Infinity bare), escaped to ASCII or as raw UTF-8 with surrogates left raw."""
    return json.dumps(payload, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


bodies = st.one_of(
    st.builds(dumped, clerk_events, st.just(True)),
    st.builds(dumped, clerk_events, st.just(True)),  # twice: Clerk-like events are half the examples
    st.builds(dumped, clerk_events | json_values, st.booleans()),
    st.binary(max_size=200),
    st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n),
)


def test_arbitrary_signed_bodies_never_answer_5xx(http: httpx.Client, db: psycopg.Connection) -> None:
    answers: list[int] = []

    @given(body=bodies)
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def send(body: bytes) -> None:
        response = post_signed(http, body)
        answers.append(response.status_code)
        assert response.status_code < 500, (response.status_code, response.text, body[:300])
        if response.status_code != 200:
            assert_refused(response)

    send()
    assert 200 in answers and 400 in answers  # both sides reached
    run = apply_inbox(db)  # whatever the door let in applies (or fails alone) without stopping the batch
    assert run.events == stored(db) and run.counts["failed"] == run.unapplied
    # No event time beyond the accepted range (one would not even load into a Python datetime).
    latest = db.execute("SELECT max(event_time) < now() + interval '1 day 1 minute' FROM clerk_webhook_inbox")
    assert latest.fetchone()[0] in (True, None)


def test_a_value_the_mirror_cannot_store_is_refused_at_the_door(http: httpx.Client, db: psycopg.Connection) -> None:
    huge = event(
        "organization.updated", {**clerk_org("org_odd"), "max_allowed_memberships": 2**63}, timestamp_ms=BASE_MS
    )
    assert_refused(post_signed(http, body_of(huge)), "max_allowed_memberships")
    assert stored(db) == 0
    fine = event("organization.updated", {**clerk_org("org_odd"), "max_allowed_memberships": 50}, timestamp_ms=BASE_MS)
    assert post_signed(http, body_of(fine)).status_code == 200
