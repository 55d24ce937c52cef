"""GET /v1/tasks/{id}: an agent task with its steps, for progress display."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException

from cogo.service.deps import CallerTenant
from cogo.service.models import ERROR_RESPONSES, Task, TaskProgress, TaskStep
from cogo.tenancy import rule_params, task_visible

router = APIRouter(prefix="/v1", tags=["tasks"], responses=ERROR_RESPONSES)

TASK = (
    "SELECT t.id, t.conversation_id, t.agent_id, t.user_id, t.title, t.prompt, t.status::text, t.final_output, "
    "t.created_at, t.started_at, t.completed_at FROM agent_tasks t "
    f"WHERE t.id = %(id)s AND t.organization_id = %(org)s AND {task_visible('t')}"
)
# Read in the same transaction as TASK, and shown only when TASK found the task.
STEPS = (
    "SELECT id, step_name, status, details, created_at FROM task_steps "
    "WHERE task_id = %(id)s AND organization_id = %(org)s ORDER BY created_at, id"
)


@router.get("/tasks/{task_id}", response_model=Task, summary="A task with its steps")
async def get_task(task_id: uuid.UUID, db: CallerTenant) -> Task:
    """A task is visible to the caller who started it, to whoever may see its conversation, and once that
    conversation is deleted, to whoever could see it then (cogo_task_visible in sql/)."""
    params = {**rule_params(db.caller), "id": task_id}
    tasks, steps = await db.read((TASK, params), (STEPS, params))
    if not tasks:
        raise HTTPException(404, "task not found")
    (task,) = tasks
    step_models = [TaskStep(id=s[0], step_name=s[1], status=s[2], details=s[3], created_at=s[4]) for s in steps]
    statuses = [s.status for s in step_models]
    return Task(
        id=task[0],
        conversation_id=task[1],
        agent_id=task[2],
        user_id=task[3],
        title=task[4],
        prompt=task[5],
        status=task[6],
        final_output=task[7],
        created_at=task[8],
        started_at=task[9],
        completed_at=task[10],
        progress=TaskProgress(
            steps_total=len(statuses),
            steps_ok=statuses.count("ok"),
            steps_error=statuses.count("error"),
            steps_skipped=statuses.count("skipped"),
        ),
        steps=step_models,
    )
