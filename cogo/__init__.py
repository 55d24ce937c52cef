"""cogo: the data platform behind a multi-tenant, multi-agent AI copilot."""

__version__ = "0.1.0"
