"""Step rules: one step at a time per task (a lease with an expiry), the budget, and the record of every step,
whatever the model did."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from . import auth, idempotency, push, telemetry, utf8
from .agent import catalog, llm
from .agent.context import LOAD_STEPS, Memory, build_context, calibrate, clip, shrink_messages
from .agent.files import ArtifactFiles
from .agent.loop import StepOutcome, image_parts, request_head, run_turn, with_images
from .agent.registry import all_tools
from .agent.tools.base import ToolContext, openai_schema
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
from .storage.bucket import get_bucket
from .storage.records import StepRecord, TaskRecord, TaskState
from .storage.steps import step_object_key
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
) -> tuple[TaskState, list[StepRecord], Memory, StepRecord, str, str]:
    """Checks and takes the task: 404, 409 while a step runs or a run other than `run_id` holds the task, 400 for
    a model not allowed, 429 once the budget is spent; then the lease and the running step in one write."""
    table = get_table()
    # The task, its memory and its latest steps: every step the memory does not cover is among them (a compaction
    # folds the oldest before they would fall out), but for a task whose steps predate its memory.
    state, stored, history = table.load_for_step(task_id, LOAD_STEPS)
    if state is None:
        raise TaskNotFound(task_id=task_id)
    memory = Memory.from_dict(stored)
    if history and history[0].seq > memory.through_seq + 1:
        history = table.steps_between(task_id, memory.through_seq + 1, history[0].seq - 1) + history
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
    return state, history, memory, step, lease_id, model


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
    state, history, memory, step, lease_id, model = _start(task_id, input, additional_input, run_id)
    logger.info(f"step {step.seq} started", extra={"task_id": task_id, "component": "agent"})
    push.task_status(
        task_id, "running", watchers=state.watchers, step_count=step.seq - 1, run=state.run,
        current_step=f"step {step.seq}",
    )  # fmt: skip
    started = time.monotonic()
    files = ArtifactFiles(task_id, step.step_id)
    failure: Exception | None = None
    new_status, usage, cost = "running", _NO_USAGE, 0.0
    memo = _Compaction()
    try:
        outcome = _turn(state, history, memory, step, model, files, memo, long=run_id is not None)
        turn = outcome.turn
        usage, cost = memo.add(turn.usage, catalog.cost_usd(turn.model, turn.prompt_tokens, turn.completion_tokens))
        step.output, step.name, step.is_last = outcome.output, outcome.name, outcome.is_last
        step.messages = _storable(step, outcome.messages)
        step.additional_output = {
            "model": turn.model,
            "usage": usage,
            "cost_usd": cost,
            "tool_calls": outcome.tool_calls,
            "context": {**outcome.context, "sent_tokens": turn.prompt_tokens, **memo.report()},
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
        usage, cost = memo.failed(step)
    except Exception as exc:  # stored too, and the task is failed: nothing the user sent is lost
        failure, new_status = exc, "failed"
        _record_failure(
            step,
            name="internal_error",
            output="The step failed on an internal error.",
            model=model,
            error={"code": "INTERNAL_ERROR", "type": type(exc).__name__},
        )
        usage, cost = memo.failed(step)
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
        memory=memo.memory.as_dict() if memo.memory else None,
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


def _finish(
    step: StepRecord,
    task: TaskRecord,
    *,
    lease_id: str,
    new_status: str,
    tokens: int,
    cost_usd: float,
    memory: dict[str, Any] | None = None,
) -> str:
    """Stores the finished step; returns the task's status. When the task's status moved while it ran (its run was
    cancelled or ended), the step is kept and the task keeps the status its run's end gave it. A step the table
    refuses for another reason (an item too large, say) is stored as failed, without its turn: never half-written,
    and the task's lease is released either way."""
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
                memory=memory,
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
        except Exception as exc:
            if not step.messages and "error" in step.additional_output:
                raise  # already the smallest record there is
            logger.exception("the step could not be stored; storing it as failed", extra={"task_id": step.task_id})
            step.messages = []
            step.output = clip(step.output or "", 2_000) + "\nThe step could not be stored whole."
            step.additional_output = {
                **{k: step.additional_output.get(k) for k in ("model", "usage", "cost_usd")},
                "tool_calls": [],
                "error": {"code": "INTERNAL_ERROR", "type": "StepNotStored", "reason": type(exc).__name__},
            }
    raise TaskAlreadyRunning("the task kept changing while the step was stored", task_id=step.task_id)


# What a step's item keeps of its turn, at most: the rest goes to an object of the step's own (docs/agent.md).
STEP_INLINE_BYTES = 64_000


def _storable(step: StepRecord, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The turn as the step's item keeps it: whole when small; else whole in an S3 object of the step's own, and
    shortened in the item, each shortened text saying where the whole is."""
    data = json.dumps(messages).encode()  # \u escapes: lone surrogates a model wrote are kept, not fatal
    if len(data) <= STEP_INLINE_BYTES:
        return messages
    key = step_object_key(step.task_id, step.step_id)
    try:
        get_bucket().put(key, data, content_type="application/json")
        where = f"the step's stored turn ({len(data):,} bytes)"
    except Exception:  # the step still completes, shortened
        logger.exception("the step's turn was not stored whole", extra={"task_id": step.task_id})
        key, where = "", "no stored copy: storing it failed"
    shrunk = shrink_messages(messages, STEP_INLINE_BYTES, where)
    if key:
        shrunk[0] = {**shrunk[0], "_full": {"object": key, "bytes": len(data)}}
    return shrunk


class _Compaction:
    """What a step's compaction (if any) spent and made: added to the step's usage and cost."""

    def __init__(self) -> None:
        self.memory: Memory | None = None
        self.usage = dict(_NO_USAGE)
        self.cost = 0.0
        self.steps: tuple[int, int] | None = None

    def add(self, usage: dict[str, int], cost: float) -> tuple[dict[str, int], float]:
        total = {k: usage[k] + self.usage[k] for k in _NO_USAGE}
        return total, round(cost + self.cost, 8)

    def failed(self, step: StepRecord) -> tuple[dict[str, int], float]:
        usage, cost = self.add(dict(_NO_USAGE), 0.0)
        step.additional_output.update(usage=usage, cost_usd=cost, **({"context": self.report()} if self.memory else {}))
        return usage, cost

    def report(self) -> dict[str, Any]:
        if self.memory is None or self.steps is None:
            return {}
        return {"summary": {"steps": list(self.steps), "usage": self.usage, "cost_usd": self.cost}}


def _turn(
    state: TaskState,
    history: list[StepRecord],
    memory: Memory,
    step: StepRecord,
    model: str,
    files: ArtifactFiles,
    memo: _Compaction,
    *,
    long: bool,
) -> StepOutcome:
    started = time.monotonic()
    task = state.task
    listed = [dict(a) for a in task.artifacts]  # the task item carries its files' summaries: no second read
    tools = all_tools()
    schemas = [openai_schema(t) for t in tools]
    chat = llm.chat_model()

    def summarise(messages: list[dict[str, Any]]) -> Any:
        return chat.complete(model=model, messages=messages, tools=[])

    previous = history[-1].additional_output if history else {}
    context = build_context(
        head=request_head(task, listed, image_parts(task, listed, files.read), model),
        tail=[{"role": "user", "content": step.input}] if step.input else [],
        memory=memory,
        history=history,
        tools=schemas,
        budget=catalog.context_budget(model),
        calibration=calibrate(previous.get("context") if previous.get("model") == model else None),
        with_images=lambda m: with_images(m, model, files.read),
        summarise=summarise,
    )
    if context.memory is not None:
        summary = context.compaction_turns[-1]
        memo.memory = context.memory
        memo.usage = summary.usage
        memo.cost = catalog.cost_usd(summary.model, summary.prompt_tokens, summary.completion_tokens)
        memo.steps = (memory.through_seq + 1, context.memory.through_seq)
        logger.info(
            f"memory compacted: steps {memo.steps[0]} to {memo.steps[1]} summarised "
            f"({summary.prompt_tokens} tokens in, {summary.completion_tokens} out)",
            extra={"task_id": task.task_id, "component": "memory", "tier": "summary"},
        )
    settings = get_settings()
    deadline = started + (settings.run_step_time_budget_s if long else settings.step_time_budget_s)
    ctx = ToolContext(task_id=task.task_id, step_id=step.step_id, files=files, deadline=deadline)
    outcome = run_turn(chat=chat, model=model, messages=context.messages, tools=tools, ctx=ctx, schemas=schemas)
    outcome.context = context.report
    return outcome


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
