"""Definitions: every asset, check, job, sensor, schedule and resource of cogo. Loads with no secret set:
resources read the environment when a run starts, not at import."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from cogo.assets import clerk, code, knowledge, platform, retention, tasks, workspace
from cogo.pipelines.resources import default_resources

DATA_PLATFORM = "team:data-platform"


@dataclass(frozen=True)
class GroupScheme:
    """Who answers for a group's assets and what they hold, shown as owners and tags in the Dagster UI.

    layer: schema (the database itself), ingest (mirrors of an outside source: Clerk, the workspace disk),
    derived (rebuilt from rows already in Postgres or git), lifecycle (removes what is past its time).
    tenant_data: whether the assets hold or remove organisations' rows, so tenant isolation and retention apply.
    """

    owners: tuple[str, ...]
    layer: str
    tenant_data: bool

    @property
    def tags(self) -> dict[str, str]:
        return {"layer": self.layer, "tenant_data": str(self.tenant_data).lower()}


# One owner today; split a group off by giving it its own team here.
GROUPS: dict[str, GroupScheme] = {
    "platform": GroupScheme((DATA_PLATFORM,), "schema", tenant_data=False),
    "clerk": GroupScheme((DATA_PLATFORM,), "ingest", tenant_data=True),
    "workspace": GroupScheme((DATA_PLATFORM,), "ingest", tenant_data=True),
    "knowledge": GroupScheme((DATA_PLATFORM,), "derived", tenant_data=True),
    "code": GroupScheme((DATA_PLATFORM,), "derived", tenant_data=True),
    "tasks": GroupScheme((DATA_PLATFORM,), "derived", tenant_data=True),
    "retention": GroupScheme((DATA_PLATFORM,), "lifecycle", tenant_data=True),
}


def scheme_for(group: str | None) -> GroupScheme:
    if group not in GROUPS:
        # A new group must say who owns it before it loads, not show up ownerless in the UI.
        raise KeyError(f"asset group {group!r} has no entry in cogo.pipelines.definitions.GROUPS; add one")
    return GROUPS[group]


def with_group_scheme(spec: dg.AssetSpec) -> dg.AssetSpec:
    """The group's owners and tags added to the asset's own (an asset's own tag wins over its group's)."""
    scheme = scheme_for(spec.group_name)
    own_tags = {k: v for k, v in spec.tags.items() if not k.startswith("dagster/kind/")}
    return spec.merge_attributes(owners=list(scheme.owners), tags={**scheme.tags, **own_tags})


def build_defs() -> dg.Definitions:
    """One module per lifecycle stage (cogo/assets/), each named here with what it defines."""
    assets = [
        *platform.assets,
        *clerk.assets,
        *workspace.assets,
        *knowledge.assets,
        *code.assets,
        *tasks.assets,
        *retention.assets,
    ]
    return dg.Definitions(
        assets=dg.map_asset_specs(with_group_scheme, assets),
        asset_checks=[
            *platform.checks,
            *clerk.checks,
            *knowledge.checks,
            *code.checks,
            *tasks.checks,
            *retention.checks,
        ],
        jobs=[*clerk.jobs, *workspace.jobs, *knowledge.jobs, *code.jobs, *tasks.jobs, *retention.jobs],
        schedules=[
            *clerk.schedules,
            *workspace.schedules,
            *knowledge.schedules,
            *tasks.schedules,
            *retention.schedules,
        ],
        sensors=[*clerk.sensors, *workspace.sensors, *knowledge.sensors, *code.sensors],
        resources=default_resources(),
    )


defs = build_defs()
