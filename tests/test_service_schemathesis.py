"""Schemathesis against the service's own OpenAPI document: generated requests (valid and invalid) to every
operation, with a valid session token, on a real server over a two-tenant data set. No 5xx, and responses
conform to the document. Bounded: a few dozen examples per operation, no deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from cogo.config import Settings
from cogo.graph.ladybug_store import LadybugStore
from cogo.service.app import create_app
from tests.neo4j_server import free_port
from tests.service_helpers import (
    ALICE,
    ORG_A,
    JwksServer,
    SigningKey,
    claims_v2,
    load_two_tenants,
    service_env,
    wait_until,
)

KEY = SigningKey("kid_schemathesis")
MAX_EXAMPLES = 30


@pytest.fixture
def base_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, db: psycopg.Connection
) -> Iterator[str]:
    load_two_tenants(db)
    home = tmp_path / "home"
    store = LadybugStore(home / "graph" / "cogo.lbug")  # /health checks the graph: give it one
    store.ensure_schema()
    store.close()
    with JwksServer() as jwks:
        jwks.keys = [KEY.jwk]
        env = service_env(jwks.url, CLERK_WEBHOOK_SECRET="whsec_c2NoZW1hdGhlc2lzLXRlc3Qtc2VjcmV0LTEyMzQ=")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        app = create_app(Settings.from_env({"COGO_HOME": str(home), "COGO_DATABASE_URL": database_url}))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_until(lambda: server.started or not thread.is_alive(), "the server to start", 30)
        assert server.started, "the server did not start"
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=30)


def test_no_server_errors_and_responses_match_the_document(base_url: str) -> None:
    """Every operation of /openapi.json, driven by Hypothesis through schemathesis's strategies (the pytest
    plugin's fixture loader does not run on pytest 9, so the operations are walked here)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    token = KEY.sign(claims_v2(ALICE, ORG_A, exp=int(time.time()) + 3600))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    failures: list[str] = []
    for operation in operations:
        # A cursor is opaque: a schema-valid string that is no cursor of ours is rightly a 400, which the
        # positive-data check would count as a rejected valid request. Every other default check runs.
        excluded = [positive_data_acceptance]

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, excluded_checks=excluded)  # noqa: B023

        try:
            run()
        except Exception as exc:  # collect, so one run reports every operation that fails
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
