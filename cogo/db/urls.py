"""Building and redacting Postgres connection URLs."""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials as `url`, pointing at database `dbname`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(dbname), parts.query, parts.fragment))


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def redact(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def unix_socket_url(socket_dir: str, dbname: str, user: str = "postgres") -> str:
    return f"postgresql://{user}:@/{quote(dbname)}?host={quote(socket_dir)}"


def sqlalchemy_psycopg2_url(url: str) -> str:
    """Dagster's Postgres storage speaks psycopg2 through SQLAlchemy, whose 2.1 default for
    postgresql:// is psycopg 3 (which rejects dagster-postgres's NOTIFY); name the driver explicitly."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme in {"postgres", "postgresql"}:
        scheme = "postgresql+psycopg2"
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))
