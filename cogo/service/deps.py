"""The dependency every /v1 route takes: the caller's tenant, i.e. the caller (from a verified Clerk session token)
with the worker's pool, through which every read is in the caller's organisation scope. One dependency rather
than a chain: FastAPI solves each level per request."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cogo.service.auth import (
    MEMBERSHIP_ENDED_MESSAGE,
    NO_ORGANIZATION_MESSAGE,
    UNAUTHORIZED_MESSAGE,
    ClerkVerifier,
    MembershipEnded,
    NoOrganization,
    Principal,
    TokenRejected,
)
from cogo.service.db import Tenant

log = logging.getLogger("cogo.service.auth")

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ClerkSession",
    bearerFormat="JWT",
    description="A Clerk session token (RS256, v1 or v2 claims) of a user with an active organization.",
)


async def tenant(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Tenant:
    """The authenticated caller's tenant on the worker's pool."""
    return Tenant(request.app.state.db_pool, await authenticate(request, credentials))


CallerTenant = Annotated[Tenant, Depends(tenant)]


async def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The caller of a bearer token; 401 for any token problem or a deleted user, 403 without an active
    organisation or with an ended membership or deleted organisation.

    Concepts: Authentication, Multi-tenancy
    """
    verifier: ClerkVerifier | None = request.app.state.clerk_verifier
    if verifier is None:
        raise HTTPException(503, "authentication is not configured (COGO_CLERK_JWKS_URL, COGO_CLERK_ISSUER)")
    if credentials is None:
        raise _unauthorized()
    try:
        principal = await verifier.verify(credentials.credentials)
    except TokenRejected as exc:
        log.info("token rejected: %s", exc)
        raise _unauthorized() from None
    except NoOrganization:
        raise HTTPException(403, NO_ORGANIZATION_MESSAGE) from None
    except MembershipEnded as exc:
        log.info("session refused: %s", exc)
        raise HTTPException(403, MEMBERSHIP_ENDED_MESSAGE) from None
    request.state.organization_id = principal.organization_id  # for the access log
    return principal


def _unauthorized() -> HTTPException:
    return HTTPException(401, UNAUTHORIZED_MESSAGE, headers={"WWW-Authenticate": "Bearer"})
