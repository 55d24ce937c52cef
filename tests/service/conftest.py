"""The read-service tests' shared fixtures: one signing key served as a JWKS, the service's environment, the
two-tenant data set, and the app over them (in process, or on a real socket)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cogo.config import Settings
from cogo.service.app import create_app
from tests.service.helpers import (
    Bearer,
    JwksServer,
    SigningKey,
    TwoTenants,
    claims_v2,
    load_two_tenants,
    service_env,
)
from tests.service.servers import serving_app


@pytest.fixture(scope="session")
def key() -> SigningKey:
    return SigningKey("kid_service_tests")


@pytest.fixture
def jwks(key: SigningKey) -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.keys = [key.jwk]
        yield server


@pytest.fixture
def service_overrides() -> dict[str, str]:
    """COGO_SERVICE_* and other variables a test module sets for its service (override this fixture)."""
    return {}


@pytest.fixture
def settings(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    database_url: str,
    jwks: JwksServer,
    service_overrides: dict[str, str],
) -> Settings:
    """The service's environment (Clerk settings trusting `key`, a pool of 2, the overrides) set in this process,
    and the platform settings of this test's database."""
    for name, value in service_env(jwks.url, **service_overrides).items():
        monkeypatch.setenv(name, value)
    return Settings.from_env({"COGO_HOME": str(tmp_path / "home"), "COGO_DATABASE_URL": database_url})


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """The app in process, its lifespan (pool, verifier) running."""
    with TestClient(app) as client:
        yield client


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    """The app on a real socket."""
    with serving_app(app) as url:
        yield url


@pytest.fixture
def tenants(db: psycopg.Connection) -> TwoTenants:
    return load_two_tenants(db)


@pytest.fixture
def bearer(key: SigningKey) -> Bearer:
    """Authorization headers with a fresh v2 token of `user` in `org` (claims overridden by keyword)."""

    def headers(user: str, org: str | None, **claims: object) -> dict[str, str]:
        return {"Authorization": f"Bearer {key.sign(claims_v2(user, org, **claims))}"}

    return headers
