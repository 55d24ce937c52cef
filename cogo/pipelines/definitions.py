"""Definitions: every asset, check, job, sensor, schedule and resource of cogo. Loads with no secret set:
resources read the environment when a run starts, not at import."""

from __future__ import annotations

import dagster as dg

from cogo.assets import collect
from cogo.pipelines.resources import default_resources


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=collect("assets"),
        asset_checks=collect("checks"),
        jobs=collect("jobs"),
        schedules=collect("schedules"),
        sensors=collect("sensors"),
        resources=default_resources(),
    )


defs = build_defs()
