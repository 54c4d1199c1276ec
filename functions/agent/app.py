"""Agent routes: runs of a task (start, cancel, read), the agent's status, its restart, and the operator's client
keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body

from agent_core import auth, runs
from agent_core.agent_status import agent_status
from agent_core.api import CurrentCaller, Lang, api_router, create_app, lambda_handler
from agent_core.models import (
    AgentStatus,
    ClientKey,
    Deleted,
    KeyId,
    KeyList,
    KeyRequestBody,
    NewClientKey,
    RestartResult,
    Run,
    RunRequestBody,
    TaskId,
)

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
def status(caller: CurrentCaller) -> AgentStatus:
    return agent_status(caller)


@router.post("/restart")
def restart(lang: Lang, caller: CurrentCaller) -> RestartResult:
    caller.require_operator()
    return runs.restart(lang)


@router.post("/keys", status_code=201)
def create_key(body: KeyRequestBody, caller: CurrentCaller) -> NewClientKey:
    caller.require_operator()
    record, secret = auth.create_key(body.name, body.budget_usd)
    return NewClientKey(**auth.public_key(record), api_key=secret)


@router.get("/keys")
def list_keys(caller: CurrentCaller) -> KeyList:
    caller.require_operator()
    return KeyList(keys=[ClientKey(**auth.public_key(record)) for record in auth.list_keys()])


@router.delete("/keys/{key_id}")
def revoke_key(key_id: KeyId, caller: CurrentCaller, lang: Lang) -> Deleted:
    caller.require_operator()
    auth.revoke_key(key_id)
    return Deleted.of("key", lang)


app = create_app(router, title="agent")
handler = lambda_handler(app)
