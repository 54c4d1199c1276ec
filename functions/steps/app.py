"""Step routes: execute the next step (one agent turn), list steps, get one."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Depends

from agent_core import steps
from agent_core.api import IdempotencyKey, api_router, create_app, lambda_handler, page_query
from agent_core.conditional import Conditional
from agent_core.models import Step, StepId, StepList, StepRequestBody, TaskId
from agent_core.paging import PageRequest

router = api_router()
StepPage = Annotated[PageRequest, Depends(page_query(default_size=20))]


@router.post("/tasks/{task_id}/steps")
def execute_step(
    task_id: TaskId, body: Annotated[StepRequestBody | None, Body()] = None, idempotency_key: IdempotencyKey = None
) -> Step:
    body = body or StepRequestBody()
    return steps.execute_step(
        str(task_id), input=body.input, additional_input=body.additional_input, idempotency_key=idempotency_key
    )


@router.get("/tasks/{task_id}/steps")
def list_steps(task_id: TaskId, page: StepPage, cache: Conditional) -> StepList:
    return steps.list_steps(str(task_id), page=page, revalidate=cache.check)


@router.get("/tasks/{task_id}/steps/{step_id}")
def get_step(task_id: TaskId, step_id: StepId, cache: Conditional) -> Step:
    step = steps.get_step(str(task_id), str(step_id))
    cache.check(steps.version(step))
    return step


app = create_app(router, title="steps")
handler = lambda_handler(app)
