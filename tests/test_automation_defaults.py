"""Nothing needs a toggle: every sensor and schedule of the code location is on by default, and the jobs a sensor
starts for a small change run in one process."""

from __future__ import annotations


def test_every_sensor_and_schedule_is_on_by_default() -> None:
    from cogo.pipelines.definitions import defs

    repository = defs.get_repository_def()
    automations = [*repository.sensor_defs, *repository.schedule_defs]
    assert {a.name for a in automations} >= {
        "workspace_files_sensor",
        "clerk_inbox_sensor",
        "new_messages_sensor",
        "git_commits_sensor",
        "cogo_automation_sensor",
        "retention_daily",
        "workspace_reconcile_daily",
        "clerk_reconcile_daily",
        "task_rollups_hourly",
        "reindex_weekly",
    }
    off = [a.name for a in automations if a.default_status.value != "RUNNING"]
    assert off == []


def test_the_jobs_sensors_start_run_in_one_process() -> None:
    from cogo.pipelines.definitions import defs

    repository = defs.get_repository_def()
    for sensor in ("workspace_files_sensor", "new_messages_sensor", "git_commits_sensor"):
        (job_name,) = [t.job_name for t in repository.get_sensor_def(sensor).targets]
        assert repository.get_job(job_name).executor_def.name == "in_process", job_name
