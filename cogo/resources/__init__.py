"""Dagster resources: every connection an asset uses."""

from cogo.resources.graph import GraphResource
from cogo.resources.postgres import PostgresResource

__all__ = ["GraphResource", "PostgresResource"]
