"""Multi-step runs: a task's steps taken one after another by a Step Functions execution until the agent finishes,
the step budget is spent or the time limit fires (docs/architecture.md).

The rules:
- at most `max_concurrent_runs` runs at once: a run holds a slot from its start to its end (storage/runs.py);
- while a run holds a task, only that run's steps run on it (anyone else gets 409 TASK_ALREADY_RUNNING);
- every end (success, failure, timeout, cancel, the task deleted, an abort) goes through `end_run`, which is
  idempotent: it may be reached by the caller that stopped the run and again by the execution's status event;
- a restart stops the executions and resumes each task from its last completed step, in a new execution that
  inherits the slot.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger

from . import orchestration, push
from .config import get_settings
from .errors import (
    Conflict,
    InsufficientResources,
    InvalidRequest,
    RunNotCurrent,
    RunNotFound,
    TaskAlreadyRunning,
    TaskNotFound,
)
from .models import RestartResult, Run, RunStatus
from .storage.records import RunRecord, TaskState
from .storage.runs import RunStore
from .storage.table import get_table
from .timeutil import now_iso

logger = Logger(child=True)
push.install_log_handler(logger)


_STEP_MARGIN_S = 10  # beyond a step's lease: its idempotency record and the answer to the state machine


class RunTimedOut(Exception):
    """The run reached its time limit (RUN_TIMEOUT_SECONDS): no further step starts. The state machine sees it by
    this name and ends the execution."""


@lru_cache(maxsize=1)
def store() -> RunStore:
    return RunStore(get_table())


def _public(run: RunRecord, state: TaskState | None = None) -> Run:
    done = (state.step_count - run.base) if state is not None else None
    return Run(
        run_id=run.run_id,
        task_id=run.task_id,
        status=run.status,
        max_steps=run.max_steps,
        steps=done,
        started_at=run.started_at,
        ended_at=run.ended_at,
        reason=run.reason,
    )


def max_steps_of(requested: Any) -> int:
    """The run's step budget: the request's (or the task's additional_input.max_steps), else the default."""
    settings = get_settings()
    if requested is None:
        return settings.run_max_steps_default
    ceiling = settings.run_max_steps_ceiling
    if isinstance(requested, bool) or not isinstance(requested, int) or not 1 <= requested <= ceiling:
        raise InvalidRequest(
            f"max_steps must be a whole number from 1 to {ceiling}", field="max_steps", ceiling=ceiling
        )
    return requested


def check_run_options(additional_input: dict[str, Any]) -> None:
    """A task's run options, checked when the task is created: auto_run (a boolean) and max_steps."""
    if not isinstance(additional_input.get("auto_run", False), bool):
        raise InvalidRequest("auto_run must be true or false", field="additional_input.auto_run")
    try:
        max_steps_of(additional_input.get("max_steps"))
    except InvalidRequest as exc:
        exc.details["field"] = "additional_input.max_steps"
        raise


# -- starting and stopping ----------------------------------------------------------------------------------------


def start_run(task_id: str, *, max_steps: int | None = None) -> Run:
    """Takes a slot and the task, then starts the execution. 404, 409 while a run or a step holds the task, 429
    when every slot is taken."""
    table, settings = get_table(), get_settings()
    for _ in range(3):
        state = table.get_task_state(task_id)
        if state is None:
            raise TaskNotFound(task_id=task_id)
        _check_free(state)
        budget = max_steps_of(max_steps if max_steps is not None else state.task.additional_input.get("max_steps"))
        run = RunRecord(
            run_id=str(uuid.uuid4()),
            task_id=task_id,
            status="running",
            max_steps=budget,
            base=state.step_count,
            started_at=now_iso(),
            deadline=int(time.time()) + settings.run_timeout_s,
        )
        try:
            store().acquire(state, run, limit=settings.max_concurrent_runs, now=int(time.time()))
        except Conflict:
            _explain_refusal(task_id)
            continue  # the task changed (a step ended) between the read and the write: look again
        logger.info(f"run started (at most {budget} steps)", extra={"task_id": task_id, "component": "runner"})
        push.task_status(
            task_id,
            "running",
            watchers=state.watchers,
            step_count=state.step_count,
            run=run,
            current_step="run started",
        )
        try:
            orchestration.start(run.run_id, _first_state(run, done=0))
        except Exception:
            # Nothing runs: the slot and the task go back at once (the task ends failed, with the reason).
            state = table.get_task_state(task_id)
            if state is not None:
                end_run(state, run, status="failed", reason="the run could not be started")
            store().release(run.run_id)
            raise
        return _public(run, state)
    raise TaskAlreadyRunning("the task kept changing; try again", task_id=task_id)


def _check_free(state: TaskState) -> None:
    task_id = state.task.task_id
    if state.run_id:
        raise TaskAlreadyRunning("a run is in progress on this task", task_id=task_id, run_id=state.run_id)
    now = int(time.time())
    if state.lease_id and state.lease_until >= now:
        raise TaskAlreadyRunning(task_id=task_id, retry_after_s=state.lease_until - now)


def _explain_refusal(task_id: str) -> None:
    """Why a slot could not be taken, when it is not the task itself: every slot is held."""
    state = get_table().get_task_state(task_id)
    if state is None:
        raise TaskNotFound(task_id=task_id)
    _check_free(state)
    limit = get_settings().max_concurrent_runs
    if store().active_count() >= limit:
        raise InsufficientResources(
            f"{limit} tasks are running, the most allowed at once",
            limit=limit,
            setting="MAX_CONCURRENT_RUNS",
            retry_after_s=30,
            suggestion="retry when a run ends (GET /status shows active_tasks)",
        )


def _first_state(run: RunRecord, *, done: int) -> dict[str, Any]:
    return {
        "task_id": run.task_id,
        "run_id": run.run_id,
        "max_steps": run.max_steps,
        "deadline": run.deadline,
        "done": done,
        "is_last": False,
    }


def cancel_run(task_id: str) -> Run:
    """Stops the task's run; the task ends `failed` (reason: cancelled). 400 when no run is in progress."""
    state = get_table().get_task_state(task_id)
    if state is None:
        raise TaskNotFound(task_id=task_id)
    if not state.run_id or state.run is None:
        raise InvalidRequest("the task has no run in progress", task_id=task_id)
    run = _stop(state, why="cancelled")
    state = get_table().get_task_state(task_id) or state
    return _public(run, state)


def stop_for_deletion(state: TaskState) -> None:
    """The task is about to be deleted: its run stops and gives its slot back."""
    if state.run_id and state.run is not None:
        _stop(state, why="the task was deleted")


def _stop(state: TaskState, *, why: str) -> RunRecord:
    """Ends the run first, then stops its execution: whatever the stop answers, the run has ended and its slot is
    free. An execution the stop did not reach ends at its next step, which finds the run no longer holds the task;
    its status event then finds nothing left to end."""
    assert state.run is not None
    ended = end_run(state, replace(state.run, stop_reason=why), status="failed", reason=why)
    orchestration.stop(ended.run_id, cause=why)
    return ended


# -- inside the execution -----------------------------------------------------------------------------------------


def run_step(state: dict[str, Any], remaining_ms: Callable[[], int] | None = None) -> dict[str, Any]:
    """The state machine's RunStep: the run's next steps, each once per (run, step number) however often it is
    retried. Steps follow one another in this invocation while it has time left for a whole step (its lease), the
    run goes on and its step budget is not spent: a step taken here costs no state transition, about half of a
    step's AWS bill with a model that answers in seconds (benchmarks/runs). `remaining_ms`: the Lambda context's
    clock; without it, one step. Returns the next state: steps done, and whether the agent said it is the last."""
    from . import steps  # the agent's code: only the runner needs it, the API's functions start without it

    task_id, run_id = str(state["task_id"]), str(state["run_id"])
    room_ms = (get_settings().run_step_lease_s + _STEP_MARGIN_S) * 1000
    taken = 0
    while True:
        _reload_after_restart()
        if time.time() >= int(state["deadline"]):
            raise RunTimedOut(f"the run exceeded its time limit ({get_settings().run_timeout_s} s)")
        number = int(state["done"]) + 1
        try:
            step = steps.execute_step(
                task_id, input=None, additional_input={}, idempotency_key=f"run:{run_id}:{number}", run_id=run_id
            )
        except RunNotCurrent:
            if taken == 0:  # the state machine sees it by name, and fails the execution
                raise
            return state  # ended (cancelled, handed over) after earlier steps here: the next RunStep says so
        taken += 1
        state = {**state, "done": number, "is_last": step.is_last}
        if step.is_last or number >= int(state["max_steps"]) or remaining_ms is None or remaining_ms() < room_ms:
            return state


_configuration_of = ""  # the agent start (or restart) this process's configuration was read after


def _reload_after_restart() -> None:
    """A restart reloads the configuration everywhere: a runner that read it before the latest restart reads it
    again (one GetItem a step)."""
    global _configuration_of
    started = str(store().agent_state().get("started_at", ""))
    if started > _configuration_of:
        if _configuration_of:
            reload_configuration()
        _configuration_of = started


# -- the end of a run ---------------------------------------------------------------------------------------------

_TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def on_execution_status(detail: dict[str, Any]) -> None:
    """A "Step Functions Execution Status Change" event: a run that ended is ended here (idempotent)."""
    status = detail.get("status")
    if status not in _TERMINAL:
        return
    run_id = str(detail["name"])
    task_id = json.loads(detail.get("input") or "{}").get("task_id")
    state = get_table().get_task_state(task_id) if task_id else None
    if state is not None and state.run_id == run_id and state.run is not None:
        final, reason = _outcome(status, detail, state)
        end_run(state, state.run, status=final, reason=reason)
    else:  # ended already (cancelled, handed over by a restart), or its task deleted: only the slot may be left
        store().release(run_id)


def reclaim_slots(*, grace_s: int, now: datetime | None = None) -> list[str]:
    """Gives back every slot whose run's execution has ended, through the same path as the execution's own status
    event (`on_execution_status`, then `end_run`): an end whose event was lost (run_events failing after its retries,
    an event not delivered) leaks no slot. A slot whose execution does not exist is a run that never started (its
    start failed after the slot was taken): given back once it is `grace_s` old, so a run starting now is left alone.
    Returns the run ids whose slots were given back."""
    now = now or datetime.now(UTC)
    reclaimed = []
    for slot in store().held_slots():
        run_id = str(slot["SK"]).removeprefix("RUN#")
        detail = orchestration.describe(run_id)
        if detail is None:
            started = datetime.fromisoformat(str(slot.get("started_at") or now.isoformat()).replace("Z", "+00:00"))
            if (now - started).total_seconds() < grace_s:
                continue
            cause = "the run's execution never started"
            detail = {"name": run_id, "status": "FAILED", "error": "ExecutionNotFound", "cause": cause}
            detail["input"] = json.dumps({"task_id": slot.get("task_id")})
        elif detail.get("status") not in _TERMINAL:
            continue
        logger.warning("reclaiming the slot of an ended run", extra={"run_id": run_id, "status": detail["status"]})
        on_execution_status(detail)
        reclaimed.append(run_id)
    return reclaimed


def _outcome(status: str, detail: dict[str, Any], state: TaskState) -> tuple[RunStatus, str | None]:
    assert state.run is not None
    if status == "SUCCEEDED":
        output = json.loads(detail.get("output") or "{}")
        if output.get("is_last"):
            return "completed", None
        return "failed", f"the run's step budget ({state.run.max_steps} steps) was spent before the agent finished"
    if status == "TIMED_OUT":
        return "failed", f"the run exceeded its time limit ({get_settings().run_timeout_s} s)"
    if status == "ABORTED":
        return "failed", state.run.stop_reason or "the run was stopped"
    error, cause = detail.get("error") or "", detail.get("cause") or ""
    with contextlib.suppress(ValueError, AttributeError):
        cause = json.loads(cause).get("errorMessage", cause)  # a Lambda error's cause is its JSON
    if error == RunTimedOut.__name__:
        return "failed", cause
    return "failed", f"{error}: {cause}".strip(": ") or "the run failed"


def end_run(state: TaskState, run: RunRecord, *, status: RunStatus, reason: str | None) -> RunRecord:
    """Frees the task from the run with its final status, and the run's slot; a no-op for a run already ended."""
    ended = replace(run, status=status, reason=reason, ended_at=now_iso())
    if ended.status == "completed":
        ended = replace(ended, reason=None)
    store().release(run.run_id)  # first: once a run reads as ended, its slot is free
    for _ in range(3):
        if state.run_id != run.run_id:
            break
        # A completed task stays completed (its last step said so) unless the run was stopped.
        final: RunStatus = "completed" if state.task.status == "completed" and run.stop_reason is None else status
        try:
            store().end(state, replace(ended, status=final), status=final)
            ended = replace(ended, status=final)
            _announce_end(state, ended)
            break
        except Conflict:
            fresh = get_table().get_task_state(run.task_id)
            if fresh is None:
                break
            state = fresh
    return ended


def _announce_end(state: TaskState, run: RunRecord) -> None:
    said = f"run {run.status}" + (f": {run.reason}" if run.reason else "")
    log = logger.info if run.status == "completed" else logger.warning
    log(said, extra={"task_id": run.task_id, "component": "runner"})
    push.task_status(
        run.task_id, run.status, watchers=state.watchers, step_count=state.step_count, run=run, current_step=said
    )


def get_run(task_id: str) -> Run:
    """The task's current run, or its last one."""
    state = get_table().get_task_state(task_id)
    if state is None:
        raise TaskNotFound(task_id=task_id)
    if state.run is None:
        raise RunNotFound(task_id=task_id)
    return _public(state.run, state)


# -- restart ------------------------------------------------------------------------------------------------------


def restart(lang: str = "en") -> RestartResult:
    """Stops every running execution and resumes its task from the last completed step in a new one; reloads the
    configuration; records the new start. Nothing done so far is lost: a step under way finishes and is kept."""
    started = time.monotonic()
    runs = store()
    runs.set_agent_state(status="restarting")
    try:
        resumed = _stop_and_hand_over(runs)
        reload_configuration()
    except Exception:
        runs.set_agent_state(status="running")  # not restarted (the start time stays), but not left "restarting"
        raise
    runs.set_agent_state(status="running", started_at=now_iso())
    for run, done in list(resumed):
        try:
            orchestration.start(run.run_id, _first_state(run, done=done))
        except Exception:  # the task is not left held by a run that never started
            resumed.remove((run, done))
            state = get_table().get_task_state(run.task_id)
            if state is not None:
                end_run(state, run, status="failed", reason="the run could not be resumed after the restart")
            runs.release(run.run_id)
    elapsed = time.monotonic() - started
    return RestartResult(
        success=True,
        message=_RESTARTED[lang].format(n=len(resumed)),
        estimated_downtime=f"{max(1, math.ceil(elapsed))}s",
        resumed_tasks=[run.task_id for run, _ in resumed],
    )


def _stop_and_hand_over(runs: RunStore) -> list[tuple[RunRecord, int]]:
    """Every held slot's run stopped and handed over to a new one (not started yet), with its steps done so far."""
    resumed: list[tuple[RunRecord, int]] = []
    for slot in runs.held_slots():
        run_id = slot["SK"].removeprefix("RUN#")
        state = get_table().get_task_state(str(slot["task_id"]))
        if state is None or state.run_id != run_id or state.run is None:
            orchestration.stop(run_id, cause="restart: the run no longer holds its task")
            runs.release(run_id)  # a slot whose end was never recorded
            continue
        new = replace(state.run, run_id=str(uuid.uuid4()), started_at=now_iso())
        try:
            runs.hand_over(state.run, new)  # first, so the old execution's end finds nothing of its own to end
        except Conflict:
            continue  # it ended meanwhile
        orchestration.stop(run_id, cause="agent restart")
        resumed.append((new, state.step_count - new.base))
    return resumed


_RESTARTED = {
    "en": "The agent restarted; {n} interrupted run(s) resumed from their last completed step",
    "zh": "智能体已重启，{n} 个被中断的任务已从最后完成的步骤继续运行",
}


def reload_configuration() -> None:
    """Settings, the model client and the parameters' cache are read again on next use."""
    from .agent import llm

    get_settings.cache_clear()
    llm.reload()
