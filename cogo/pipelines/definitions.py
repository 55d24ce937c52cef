"""Definitions: every asset, check, sensor, schedule and resource of cogo. Loads with no secret set:
resources read the environment when a run starts, not at import."""

from __future__ import annotations

import dagster as dg

from cogo.assets import all_assets, all_checks
from cogo.pipelines.automation import all_jobs, all_schedules, all_sensors
from cogo.resources import GraphResource, PostgresResource


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=all_assets(),
        asset_checks=all_checks(),
        jobs=all_jobs(),
        schedules=all_schedules(),
        sensors=all_sensors(),
        resources={
            "postgres": PostgresResource(),
            "graph": GraphResource(),
        },
    )


defs = build_defs()
