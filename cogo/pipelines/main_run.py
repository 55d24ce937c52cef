"""`python -m cogo.pipelines.main_run`: materialize the whole asset graph once, as `make run` does.

Unpartitioned assets run together in one Dagster run (dependencies in order, checks included). Each set of
partitioned assets runs once more: daily ones for their newest 30 partitions (the last 30 days, today
included) as one single-run backfill, so task_rollups' 30-day chart has every day the demo has tasks on; the
others (the code assets' repositories, registered from COGO_REPOS first) for all their partitions in one run.
Runs go to the instance in $DAGSTER_HOME, so they show in the Dagster UI afterwards.
"""

from __future__ import annotations

import sys
from collections import defaultdict

import dagster as dg
from rich.console import Console
from rich.table import Table

from cogo.assets.code import REPOSITORIES, register_repositories
from cogo.pipelines.definitions import defs

QUIET_LOGGING = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# As many partitions as task_rollups' trend chart shows days.
RECENT_PARTITIONS = 30
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

PartitionRange = tuple[str, str]
# The assets of one run, and the partition range it builds (None: unpartitioned).
Batch = tuple[list[dg.AssetKey], PartitionRange | str | None]


def partition_range(partitions_def: dg.PartitionsDefinition, instance: dg.DagsterInstance) -> PartitionRange | None:
    """A time window's newest RECENT_PARTITIONS partitions, any other set's every partition; None when empty."""
    keys = list(partitions_def.get_partition_keys(dynamic_partitions_store=instance))
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        keys = keys[-RECENT_PARTITIONS:]
    return (keys[0], keys[-1]) if keys else None


def range_tags(partitions: PartitionRange | None) -> dict[str, str]:
    # A range in one run: assets with BackfillPolicy.single_run() build it in one go.
    return {RANGE_START_TAG: partitions[0], RANGE_END_TAG: partitions[1]} if partitions else {}


def _metadata_summary(event: dg.AssetMaterialization, limit: int = 4) -> str:
    parts = []
    for name, value in event.metadata.items():
        if isinstance(value, dg.IntMetadataValue | dg.FloatMetadataValue | dg.TextMetadataValue):
            parts.append(f"{name}={value.value}")
        if len(parts) == limit:
            break
    return ", ".join(parts)


def plan_batches(instance: dg.DagsterInstance) -> list[Batch]:
    """Every unpartitioned asset in one batch; the assets of each partition set, over its range, in another."""
    # Without the sensor that adds them, the repositories' partitions would not exist yet.
    repositories = register_repositories(instance)
    graph = defs.resolve_asset_graph()
    unpartitioned: list[dg.AssetKey] = []
    partitioned: dict[dg.PartitionsDefinition, list[dg.AssetKey]] = defaultdict(list)
    for key in graph.materializable_asset_keys:
        partitions_def = graph.get(key).partitions_def
        (partitioned[partitions_def] if partitions_def else unpartitioned).append(key)
    batches: list[Batch] = [(unpartitioned, None)] if unpartitioned else []
    for partitions_def, keys in partitioned.items():
        if partitions_def == REPOSITORIES:
            # One run per configured repository (a partition left by a repository no longer configured is not built).
            batches += [(keys, repo) for repo in repositories]
            continue
        partitions = partition_range(partitions_def, instance)
        if partitions:
            batches.append((keys, partitions))
    return batches


def run_batch(instance: dg.DagsterInstance, batch: Batch) -> dg.ExecuteInProcessResult:
    keys, partitions = batch
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        asset_selection=keys,
        partition_key=partitions if isinstance(partitions, str) else None,
        tags=range_tags(partitions) if isinstance(partitions, tuple) else {},
        run_config=QUIET_LOGGING,
        raise_on_error=False,
    )


def _add_rows(table: Table, result: dg.ExecuteInProcessResult, label: str) -> None:
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        table.add_row(
            materialization.asset_key.to_user_string(),
            materialization.partition or "",
            "[green]ok[/green]",
            _metadata_summary(materialization),
        )
    for check in result.get_asset_check_evaluations():
        status = "[green]passed[/green]" if check.passed else "[yellow]failed[/yellow]"
        table.add_row(f"  check {check.check_name}", label, status, "")
    for event in result.get_step_failure_events():
        message = str(event.event_specific_data.error.message).strip()[:200]  # type: ignore[union-attr]
        table.add_row(event.step_key or "?", label, "[red]failed[/red]", message)


def main() -> int:
    console = Console(width=None if sys.stdout.isatty() else 150)
    instance = dg.DagsterInstance.get()
    table = Table(title="materialized")
    for column in ("asset", "partition", "result", "metadata"):
        table.add_column(column)
    ok = True
    for batch in plan_batches(instance):
        keys, partitions = batch
        names = ", ".join(sorted(k.to_user_string() for k in keys))
        label = f"{partitions[0]}..{partitions[1]}" if isinstance(partitions, tuple) else partitions or ""
        console.print(f"[bold]materializing[/bold] {names}" + (f" for partitions {label}" if label else ""))
        result = run_batch(instance, batch)
        ok = ok and result.success
        _add_rows(table, result, label)
        console.print(f"  run {result.run_id}: {'succeeded' if result.success else 'FAILED'}")
    console.print(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
