"""Task routes: create, list, get, delete; and the whole API's OpenAPI document with interactive docs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from agent_core import tasks
from agent_core.api import (
    CurrentCaller,
    IdempotencyKey,
    IsoDateTime,
    Lang,
    TaskPage,
    api_router,
    create_app,
    lambda_handler,
)
from agent_core.conditional import Conditional
from agent_core.models import Deleted, Task, TaskId, TaskList, TaskRequestBody, TaskStatus
from agent_core.openapi import docs_router

router = api_router()


@router.post("/tasks")
def create_task(body: TaskRequestBody, caller: CurrentCaller, idempotency_key: IdempotencyKey = None) -> Task:
    return tasks.create_task(
        input=body.input, additional_input=body.additional_input, owner=caller.owner, idempotency_key=idempotency_key
    )


@router.get("/tasks")
def list_tasks(
    page: TaskPage,
    status: Annotated[TaskStatus | None, Query(description="Only tasks in this status")] = None,
    created_after: Annotated[
        IsoDateTime | None, Query(description="Only tasks created after this ISO 8601 time")
    ] = None,
    *,
    caller: CurrentCaller,
    cache: Conditional,
) -> TaskList:
    found = tasks.list_tasks(page=page, status=status, created_after=created_after, owner=caller.owner)
    cache.check(found.pagination.total, [tasks.version(task) for task in found.tasks])
    return found


@router.get("/tasks/{task_id}")
def get_task(task_id: TaskId, cache: Conditional) -> Task:
    task = tasks.get_task(str(task_id))
    cache.check(tasks.version(task))
    return task


@router.delete("/tasks/{task_id}")
def delete_task(task_id: TaskId, lang: Lang) -> Deleted:
    tasks.delete_task(str(task_id))
    return Deleted.of("task", lang)


app = create_app(router, docs_router, title="tasks")
handler = lambda_handler(app)
