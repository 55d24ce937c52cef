"""The Dagster code location: `dagster dev -w workspace.yaml`, or `-m cogo.pipelines`."""

from cogo.pipelines.definitions import defs

__all__ = ["defs"]
