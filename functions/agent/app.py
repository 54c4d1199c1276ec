"""Agent routes: runs of a task (start, cancel, read), the agent's status, and its restart."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body

from agent_core import runs
from agent_core.agent_status import agent_status
from agent_core.api import Lang, api_router, create_app, lambda_handler
from agent_core.models import AgentStatus, RestartResult, Run, RunRequestBody, TaskId

router = api_router()


@router.post("/tasks/{task_id}/run", status_code=202)
def start_run(task_id: TaskId, body: Annotated[RunRequestBody | None, Body()] = None) -> Run:
    return runs.start_run(str(task_id), max_steps=body.max_steps if body else None)


@router.get("/tasks/{task_id}/run")
def get_run(task_id: TaskId) -> Run:
    return runs.get_run(str(task_id))


@router.post("/tasks/{task_id}/cancel")
def cancel_run(task_id: TaskId) -> Run:
    return runs.cancel_run(str(task_id))


@router.get("/status")
def status() -> AgentStatus:
    return agent_status()


@router.post("/restart")
def restart(lang: Lang) -> RestartResult:
    return runs.restart(lang)


app = create_app(router, title="agent")
handler = lambda_handler(app)
