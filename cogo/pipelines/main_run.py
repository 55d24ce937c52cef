"""`python -m cogo.pipelines.main_run`: materialize the whole asset graph once, as `make run` does.

Unpartitioned assets run together in one Dagster run (dependencies in order, checks included); each
partitioned asset runs for its newest partition (today's, for daily ones). Runs go to the instance in
$DAGSTER_HOME, so they show in the Dagster UI afterwards.
"""

from __future__ import annotations

import sys
from collections import defaultdict

import dagster as dg
from rich.console import Console
from rich.table import Table

from cogo.pipelines.definitions import defs

QUIET_LOGGING = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _metadata_summary(event: dg.AssetMaterialization, limit: int = 4) -> str:
    parts = []
    for name, value in event.metadata.items():
        if isinstance(value, dg.IntMetadataValue | dg.FloatMetadataValue | dg.TextMetadataValue):
            parts.append(f"{name}={value.value}")
        if len(parts) == limit:
            break
    return ", ".join(parts)


def main() -> int:
    console = Console(width=None if sys.stdout.isatty() else 150)
    instance = dg.DagsterInstance.get()
    graph = defs.resolve_asset_graph()
    job = defs.resolve_implicit_global_asset_job_def()
    unpartitioned: list[dg.AssetKey] = []
    partitioned: dict[dg.PartitionsDefinition, list[dg.AssetKey]] = defaultdict(list)
    for key in graph.materializable_asset_keys:
        partitions_def = graph.get(key).partitions_def
        (partitioned[partitions_def] if partitions_def else unpartitioned).append(key)

    batches: list[tuple[list[dg.AssetKey], str | None]] = [(unpartitioned, None)]
    batches += [(keys, pdef.get_last_partition_key()) for pdef, keys in partitioned.items()]
    table = Table(title="materialized")
    for column in ("asset", "partition", "result", "metadata"):
        table.add_column(column)
    ok = True
    for keys, partition in batches:
        if not keys:
            continue
        names = ", ".join(sorted(k.to_user_string() for k in keys))
        console.print(f"[bold]materializing[/bold] {names}" + (f" for partition {partition}" if partition else ""))
        result = job.execute_in_process(
            instance=instance,
            asset_selection=keys,
            partition_key=partition,
            run_config=QUIET_LOGGING,
            raise_on_error=False,
        )
        ok = ok and result.success
        for event in result.get_asset_materialization_events():
            materialization = event.step_materialization_data.materialization
            table.add_row(
                materialization.asset_key.to_user_string(),
                partition or "",
                "[green]ok[/green]",
                _metadata_summary(materialization),
            )
        for check in result.get_asset_check_evaluations():
            table.add_row(
                f"  check {check.check_name}",
                partition or "",
                "[green]passed[/green]" if check.passed else "[yellow]failed[/yellow]",
                "",
            )
        for event in result.get_step_failure_events():
            table.add_row(
                event.step_key or "?",
                partition or "",
                "[red]failed[/red]",
                str(event.event_specific_data.error.message).strip()[:200],
            )  # type: ignore[union-attr]
        console.print(f"  run {result.run_id}: {'succeeded' if result.success else 'FAILED'}")
    console.print(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
