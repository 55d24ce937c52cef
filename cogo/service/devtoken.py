"""Local development tokens: a Clerk-shaped session token signed by a local RSA key, so the read service can be
called without a Clerk instance.

    eval "$(python -m cogo.service.devtoken --env)"      # the service trusts the local key (file:// JWKS)
    cogo serve &
    TOKEN=$(python -m cogo.service.devtoken --user user_demo_alice --org org_demo_acme)
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/v1/conversations

The key and its JWKS live in COGO_HOME/dev-clerk/ (created on first use). Never point a production service
at this JWKS: whoever can read the key can sign tokens for any organisation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cogo.config import Settings

DEV_ISSUER = "https://clerk.cogo.localhost"
DEV_PARTY = "http://localhost:3000"
DEV_KID = "cogo-dev-1"


def dev_dir(settings: Settings | None = None) -> Path:
    return (settings or Settings.from_env()).home / "dev-clerk"


def ensure_key(directory: Path) -> rsa.RSAPrivateKey:
    """The local signing key, created with its JWKS file on first use."""
    key_path, jwks_path = directory / "key.pem", directory / "jwks.json"
    if key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
    else:
        directory.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        key_path.touch(mode=0o600)
        key_path.write_bytes(pem)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks_path.write_text(json.dumps({"keys": [{**jwk, "kid": DEV_KID, "use": "sig", "alg": "RS256"}]}))
    return key


def env_lines(directory: Path) -> list[str]:
    return [
        f"export COGO_CLERK_JWKS_URL={(directory / 'jwks.json').absolute().as_uri()}",
        f"export COGO_CLERK_ISSUER={DEV_ISSUER}",
        f"export COGO_CLERK_AUTHORIZED_PARTIES={DEV_PARTY}",
    ]


def make_token(key: rsa.RSAPrivateKey, user: str, org: str | None, role: str = "admin", ttl_s: int = 3600) -> str:
    """A v2 session token as Clerk issues it (the claims the service reads, plus the usual others)."""
    now = int(time.time())
    claims: dict[str, object] = {
        "azp": DEV_PARTY,
        "exp": now + ttl_s,
        "fva": [0, -1],
        "iat": now,
        "iss": DEV_ISSUER,
        "jti": uuid.uuid4().hex[:20],
        "nbf": now - 5,
        "sid": f"sess_dev_{uuid.uuid4().hex[:12]}",
        "sub": user,
        "v": 2,
    }
    if org:
        claims["o"] = {"id": org, "rol": role, "slg": org.removeprefix("org_"), "per": ""}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": DEV_KID})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cogo.service.devtoken", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", action="store_true", help="print the service's export lines instead of a token")
    parser.add_argument("--user", default="user_demo_alice", help="sub: the Clerk user id")
    parser.add_argument("--org", default="org_demo_acme", help="o.id: the active organization ('' for none)")
    parser.add_argument("--role", default="admin", help="o.rol: the role in the organization")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until the token expires")
    args = parser.parse_args(argv)
    directory = dev_dir()
    key = ensure_key(directory)
    if args.env:
        print("\n".join(env_lines(directory)))
        return
    print(make_token(key, args.user, args.org or None, args.role, args.ttl))
    hint = f'signed by {directory / "key.pem"}; the service needs: eval "$(python -m cogo.service.devtoken --env)"'
    print(hint, file=sys.stderr)


if __name__ == "__main__":
    main()
