"""Jobs, schedules and sensors; each lifecycle stage adds its own here."""

from __future__ import annotations

import dagster as dg


def all_jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    return []


def all_schedules() -> list[dg.ScheduleDefinition]:
    return []


def all_sensors() -> list[dg.SensorDefinition]:
    return []
