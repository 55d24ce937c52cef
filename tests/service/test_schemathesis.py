"""Schemathesis against the service's own OpenAPI document: generated requests (valid and invalid) to every
operation, with a valid session token, on a real server over a two-tenant data set. No 5xx, and responses
conform to the document. Bounded: a few dozen examples per operation, no deadline."""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from cogo.config import Settings
from cogo.graph.ladybug_store import LadybugStore
from tests.service.helpers import ALICE, ORG_A, SigningKey, claims_v2

MAX_EXAMPLES = 30

pytestmark = pytest.mark.usefixtures("tenants")


@pytest.fixture
def service_overrides() -> dict[str, str]:
    return {"CLERK_WEBHOOK_SECRET": "whsec_c2NoZW1hdGhlc2lzLXRlc3Qtc2VjcmV0LTEyMzQ="}


@pytest.fixture
def graph(settings: Settings) -> None:
    """/health checks the graph: give it one."""
    store = LadybugStore(settings.graph_dir / "cogo.lbug")
    store.ensure_schema()
    store.close()


@pytest.mark.usefixtures("graph")
def test_no_server_errors_and_responses_match_the_document(base_url: str, key: SigningKey) -> None:
    """Every operation of /openapi.json, driven by Hypothesis through schemathesis's strategies (the pytest
    plugin's fixture loader does not run on pytest 9, so the operations are walked here)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    token = key.sign(claims_v2(ALICE, ORG_A, exp=int(time.time()) + 3600))
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
