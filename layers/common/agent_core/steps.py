"""Step rules: one step at a time per task (a lease with an expiry), the budget, and the record of every step,
whatever the model did."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from . import auth, idempotency, push, telemetry, utf8
from .agent import catalog, llm
from .agent.files import ArtifactFiles
from .agent.loop import StepOutcome, build_messages, image_parts, run_turn
from .agent.registry import all_tools
from .agent.tools.base import ToolContext
from .config import get_settings
from .errors import (
    Conflict,
    InsufficientResources,
    OpenAIAPIError,
    RunNotCurrent,
    StepNotFound,
    TaskAlreadyRunning,
    TaskNotFound,
)
from .models import Artifact, Pagination, Step, StepList
from .paging import PageRequest
from .storage.records import StepRecord, TaskRecord, TaskState
from .storage.table import get_table
from .timeutil import now_iso

logger = Logger(child=True)
push.install_log_handler(logger)


def _public(step: StepRecord) -> Step:
    return Step(
        step_id=step.step_id,
        task_id=step.task_id,
        name=step.name,
        status=step.status,
        input=step.input,
        additional_input=step.additional_input,
        output=step.output,
        additional_output=step.additional_output,
        artifacts=[Artifact(**a) for a in step.artifacts],
        is_last=step.is_last,
        created_at=step.created_at,
    )


def _check_budget(owner: str | None) -> None:
    """429 once the agent's budget is spent, or the budget of the client whose task this is (its key's)."""
    budget = get_settings().budget_usd
    if budget is not None:
        spent = float(get_table().counters().get("cost_usd_total", 0))
        if spent >= budget:
            raise InsufficientResources(
                "the OpenAI budget is spent", budget_usd=budget, spent_usd=round(spent, 6), setting="OPENAI_BUDGET_USD"
            )
    key = auth.get_key(owner) if owner else None
    if key is not None and key.budget_usd is not None:
        spent = float(get_table().counters(owner).get("cost_usd_total", 0))
        if spent >= key.budget_usd:
            raise InsufficientResources(
                "the client's budget is spent", budget_usd=key.budget_usd, spent_usd=round(spent, 6), key_id=owner
            )


def _interrupted(step: StepRecord) -> StepRecord:
    step.status, step.modified_at = "completed", now_iso()
    step.output = (step.output or "") + "\nThe step was interrupted (its invocation ended before it finished)."
    step.additional_output = {**step.additional_output, "error": {"code": "INTERNAL_ERROR", "type": "Interrupted"}}
    return step


def _start(
    task_id: str, input: str | None, additional_input: dict[str, Any], run_id: str | None
) -> tuple[TaskState, list[StepRecord], StepRecord, str, str]:
    """Checks and takes the task: 404, 409 while a step runs or a run other than `run_id` holds the task, 400 for
    a model not allowed, 429 once the budget is spent; then the lease and the running step in one write."""
    table = get_table()
    state, history = table.load_task_with_steps(task_id)
    if state is None:
        raise TaskNotFound(task_id=task_id)
    _check_run(state, run_id)
    now = int(time.time())
    if state.lease_id and state.lease_until >= now:
        raise TaskAlreadyRunning(task_id=task_id, retry_after_s=state.lease_until - now)
    model = catalog.choose_model({**state.task.additional_input, **additional_input})
    _check_budget(state.task.owner)
    created = now_iso()
    step = StepRecord(
        task_id=task_id,
        step_id=str(uuid.uuid4()),
        seq=state.step_count + 1,
        name="step",
        status="running",
        input=input,
        additional_input=additional_input,
        created_at=created,
        modified_at=created,
    )
    lease_id = str(uuid.uuid4())
    # A step still "running" under an expired lease died with its invocation: it is closed in the same write.
    stale = [_interrupted(s) for s in history if s.status == "running"]
    try:
        table.start_step(
            state,
            step,
            lease_id=lease_id,
            lease_until=now + (get_settings().run_step_lease_s if run_id else get_settings().step_lease_s),
            now=now,
            stale=stale,
            run_id=run_id,
        )
    except Conflict as exc:  # another request (or a run) took the task between our read and our write
        fresh = table.get_task_state(task_id)
        if fresh is not None:
            _check_run(fresh, run_id)
        raise TaskAlreadyRunning(task_id=task_id) from exc
    return state, history, step, lease_id, model


_NO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def _record_failure(step: StepRecord, *, name: str, output: str, model: str, error: dict[str, Any]) -> None:
    step.name, step.output = name, output
    step.additional_output = {"model": model, "usage": _NO_USAGE, "cost_usd": 0.0, "tool_calls": [], "error": error}


def _make_encodable(step: StepRecord) -> None:
    """The model's text and the tools' results as they can be stored and answered (see utf8)."""
    for name in ("name", "output", "additional_output", "messages", "artifacts"):
        setattr(step, name, utf8.clean(getattr(step, name)))


def execute_step(
    task_id: str,
    *,
    input: str | None,
    additional_input: dict[str, Any],
    idempotency_key: str | None = None,
    run_id: str | None = None,
) -> Step:
    """The next step; with an idempotency key, a retry (after a timeout, say) answers the step already run. Steps
    of a run name it: while a run holds the task, no other step may run."""
    request = {"input": input, "additional_input": additional_input}
    return idempotency.once(
        f"steps.execute:{task_id}",
        idempotency_key,
        request,
        Step,
        lambda: _execute(task_id, input, additional_input, run_id),
    )


def _check_run(state: TaskState, run_id: str | None) -> None:
    if state.run_id == run_id:
        return
    if run_id is None:
        raise TaskAlreadyRunning(
            "a run is in progress on this task", task_id=state.task.task_id, run_id=state.run_id,
            suggestion="wait for the run to end, or stop it with POST /tasks/{task_id}/cancel",
        )  # fmt: skip
    raise RunNotCurrent("the run no longer holds this task", task_id=state.task.task_id, run_id=run_id)


def _execute(task_id: str, input: str | None, additional_input: dict[str, Any], run_id: str | None) -> Step:
    state, history, step, lease_id, model = _start(task_id, input, additional_input, run_id)
    logger.info(f"step {step.seq} started", extra={"task_id": task_id, "component": "agent"})
    push.task_status(
        task_id, "running", watchers=state.watchers, step_count=step.seq - 1, run=state.run,
        current_step=f"step {step.seq}",
    )  # fmt: skip
    started = time.monotonic()
    files = ArtifactFiles(task_id, step.step_id)
    failure: Exception | None = None
    new_status, usage, cost = "running", _NO_USAGE, 0.0
    try:
        outcome = _turn(state, history, step, model, files, long=run_id is not None)
        turn = outcome.turn
        usage, cost = turn.usage, catalog.cost_usd(turn.model, turn.prompt_tokens, turn.completion_tokens)
        step.output, step.name, step.is_last = outcome.output, outcome.name, outcome.is_last
        step.messages = outcome.messages
        step.additional_output = {
            "model": turn.model,
            "usage": usage,
            "cost_usd": cost,
            "tool_calls": outcome.tool_calls,
            **({"error": outcome.error} if outcome.error else {}),
        }
        new_status = "completed" if step.is_last else "running"
    except OpenAIAPIError as exc:  # stored with the error; the task stays usable for the next step
        failure = exc
        logger.error(
            "model error",
            extra={"task_id": task_id, "step_id": step.step_id, "model": model, "error_code": exc.code,
                   "cause": str(exc.details.get("reason") or exc), "component": "model"},
        )  # fmt: skip
        _record_failure(
            step,
            name="model_error",
            output=f"The model API failed: {exc.details.get('reason', exc)}",
            model=model,
            error={"code": exc.code, **exc.details},
        )
    except Exception as exc:  # stored too, and the task is failed: nothing the user sent is lost
        failure, new_status = exc, "failed"
        _record_failure(
            step,
            name="internal_error",
            output="The step failed on an internal error.",
            model=model,
            error={"code": "INTERNAL_ERROR", "type": type(exc).__name__},
        )
    step.status, step.modified_at = "completed", now_iso()
    step.artifacts = list(files.written.values())
    _make_encodable(step)
    stored = _finish(
        step,
        state.task,
        lease_id=lease_id,
        new_status=new_status,
        tokens=usage["total_tokens"],
        cost_usd=cost,
    )
    for call in step.additional_output.get("tool_calls", []):
        log = logger.warning if call.get("error") else logger.info
        log(f"{call.get('name')}: {_brief(call)}", extra={"task_id": task_id, "component": "tool"})
    logger.info(
        f"step {step.seq} finished: {step.name}" + (" (the last)" if step.is_last else ""),
        extra={"task_id": task_id, "component": "agent"},
    )
    push.task_status(
        task_id, stored, watchers=state.watchers, step_count=step.seq, run=state.run, current_step=step.name
    )
    telemetry.record_step(
        model=step.additional_output["model"],
        tokens=usage["total_tokens"],
        cost_usd=cost,
        duration_ms=(time.monotonic() - started) * 1000,
        tool_calls=len(step.additional_output["tool_calls"]),
        failed=failure is not None,
    )
    if failure is not None:
        raise failure
    return _public(step)


def _brief(call: dict[str, Any]) -> str:
    """A tool call as a log line: what it failed with, or the start of its arguments."""
    if call.get("error"):
        return f"failed: {str(call['error'])[:200]}"
    return f"called with {' '.join(str(call.get('arguments') or '{}').split())[:100]}"


def _finish(step: StepRecord, task: TaskRecord, *, lease_id: str, new_status: str, tokens: int, cost_usd: float) -> str:
    """Stores the finished step; returns the task's status. When the task's status moved while it ran (its run was
    cancelled or ended), the step is kept and the task keeps the status its run's end gave it."""
    table, old = get_table(), "running"
    for _ in range(3):
        try:
            table.finish_step(
                step,
                task_created_at=task.created_at,
                task_owner=task.owner,
                lease_id=lease_id,
                old_status=old,
                new_status=new_status,
                tokens=tokens,
                cost_usd=cost_usd,
            )
            return new_status
        except Conflict as exc:
            state = table.get_task_state(step.task_id)
            if state is None:
                raise TaskNotFound("the task was deleted while the step ran", task_id=step.task_id) from exc
            if state.lease_id != lease_id:
                raise TaskAlreadyRunning(
                    "the step outlived its lease; another step has the task", task_id=step.task_id
                ) from exc
            old = new_status = state.task.status
    raise TaskAlreadyRunning("the task kept changing while the step was stored", task_id=step.task_id)


def _turn(
    state: TaskState, history: list[StepRecord], step: StepRecord, model: str, files: ArtifactFiles, *, long: bool
) -> StepOutcome:
    started = time.monotonic()
    task = state.task
    listed = [dict(a) for a in task.artifacts]  # the task item carries its files' summaries: no second read
    messages = build_messages(
        task=task,
        history=history,
        step=step,
        model=model,
        images=image_parts(task, listed, files.read),
        read=files.read,
    )
    settings = get_settings()
    deadline = started + (settings.run_step_time_budget_s if long else settings.step_time_budget_s)
    ctx = ToolContext(task_id=task.task_id, step_id=step.step_id, files=files, deadline=deadline)
    return run_turn(chat=llm.chat_model(), model=model, messages=messages, tools=all_tools(), ctx=ctx)


def get_step(task_id: str, step_id: str) -> Step:
    step = get_table().get_step(task_id, step_id)
    if step is None:
        if get_table().get_task_state(task_id) is None:
            raise TaskNotFound(task_id=task_id)
        raise StepNotFound(task_id=task_id, step_id=step_id)
    return _public(step)


def version(step: Step) -> tuple[Any, ...]:
    """What changes whenever the step's answer does: a step is written when it starts and when it ends."""
    return step.step_id, step.status, step.name, step.is_last, len(step.output or "")


def list_steps(task_id: str, *, page: PageRequest, revalidate: Callable[..., None] = lambda *version: None) -> StepList:
    """`revalidate` sees the list's version (from the task item, which every step write changes) before any step
    is read, and may stop there (a caller's copy that is still current)."""
    state = get_table().get_task_state(task_id)
    if state is None:
        raise TaskNotFound(task_id=task_id)
    revalidate(state.task.modified_at, state.task.status, state.step_count, state.lease_id)
    total = state.step_count
    first, last = page.start + 1, min(page.end, total)
    steps = get_table().steps_between(task_id, first, last) if first <= last else []
    return StepList(
        steps=[_public(s) for s in steps], pagination=Pagination.of(page=page.page, size=page.size, total=total)
    )
