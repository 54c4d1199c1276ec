"""Task rules: create, read, list with the spec's filters and pagination, delete with everything under the task."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from . import idempotency
from .agent import catalog
from .auth import Caller
from .errors import Conflict, InsufficientResources, InvalidRequest, TaskAlreadyRunning, TaskNotFound
from .models import Artifact, Pagination, Task, TaskList
from .paging import PageRequest
from .storage.bucket import get_bucket
from .storage.records import TaskRecord
from .storage.table import get_table
from .timeutil import now_iso, to_iso


def _public(record: TaskRecord) -> Task:
    return Task(
        task_id=record.task_id,
        input=record.input,
        additional_input=record.additional_input,
        status=record.status,
        created_at=record.created_at,
        modified_at=record.modified_at,
        artifacts=[Artifact(**a) for a in record.artifacts],
    )


def create_task(
    *, input: str, additional_input: dict[str, Any], owner: str | None = None, idempotency_key: str | None = None
) -> Task:
    """A new task of `owner` (a client's key id; None: the operator's); with an idempotency key, a retry answers the
    task the first request created. With `additional_input.auto_run`, its run starts at once (a refused start leaves
    the task created, and says so)."""
    request = {"input": input, "additional_input": additional_input}
    operation = f"tasks.create@{owner}" if owner else "tasks.create"  # one client's key never answers another's
    task = idempotency.once(operation, idempotency_key, request, Task, lambda: _create(input, additional_input, owner))
    if additional_input.get("auto_run") is True and task.status == "created":
        from . import runs  # here, not at import: reading tasks needs none of runs' orchestration and pushes

        try:
            runs.start_run(task.task_id)
        except InsufficientResources as exc:
            exc.details.update(
                task_id=task.task_id,
                suggestion="the task was created; start it later with POST /tasks/{task_id}/run",
            )
            raise
        return get_task(task.task_id)
    return task


def _create(input: str, additional_input: dict[str, Any], owner: str | None) -> Task:
    from . import runs

    catalog.check_agent_options(additional_input)  # a bad model or image list fails now, not at the first step
    runs.check_run_options(additional_input)
    now = now_iso()
    record = TaskRecord(
        task_id=str(uuid.uuid4()),
        input=input,
        additional_input=additional_input,
        status="created",
        created_at=now,
        modified_at=now,
        owner=owner,
    )
    try:
        get_table().create_task(record)
    except Conflict as exc:  # other writes kept meeting this one on its counter shard, even after retries
        raise InsufficientResources(
            "the task store is busy with other writes; try again", retry_after_s=1, suggestion="retry in a second"
        ) from exc
    return _public(record)


def load_task(task_id: str) -> TaskRecord:
    record = get_table().get_task(task_id)
    if record is None:
        raise TaskNotFound(task_id=task_id)
    return record


def get_task(task_id: str) -> Task:
    return _public(load_task(task_id))


def check_visible(task_id: str, caller: Caller) -> None:
    """TASK_NOT_FOUND, exactly as for a task that does not exist, when the task is another client's: nothing
    tells a client that someone else's task is there. The operator sees every task without a read."""
    if caller.operator:
        return
    if get_table().get_owner(task_id) != (caller.client_id, True):
        raise TaskNotFound(task_id=task_id)


def version(task: Task) -> tuple[str, ...]:
    """What changes whenever the task's answer does (every write to a task sets modified_at; the rest guards against
    two writes in one millisecond)."""
    return task.task_id, task.modified_at, task.status, *(a.artifact_id for a in task.artifacts)


def list_tasks(
    *,
    page: PageRequest,
    status: str | None = None,
    created_after: datetime | None = None,
    owner: str | None = None,
) -> TaskList:
    """A page of every task, or of `owner`'s only (its totals too)."""
    table = get_table()
    try:
        after = to_iso(created_after) if created_after else None
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00: valid ISO 8601, but before year 1 in UTC
        raise InvalidRequest("created_after is out of range", field="created_after", **{"in": "query"}) from exc
    total, records = table.list_tasks(start=page.start, size=page.size, status=status, created_after=after, owner=owner)
    return TaskList(
        tasks=[_public(r) for r in records],
        pagination=Pagination.of(page=page.page, size=page.size, total=total),
    )


def delete_task(task_id: str) -> None:
    """Removes what lives under the task first, the task item last: a failure part-way leaves a task that a retry
    of the same DELETE finishes, never children whose task is gone."""
    table = get_table()
    state = table.get_task_state(task_id)
    if state is None:
        raise TaskNotFound(task_id=task_id)
    from . import runs

    runs.stop_for_deletion(state)  # its run stops and gives back its slot before the task goes
    record = state.task
    for attempt in range(3):
        if attempt or state.run_id:
            record = load_task(task_id)
        get_bucket().delete_task_objects(task_id)  # the files' objects first: when S3 fails, the task stays
        table.delete_task_children(task_id)
        try:
            table.delete_task(task_id, status=record.status, created_at=record.created_at, owner=record.owner)
            return
        except Conflict:
            continue  # its status changed (or it was deleted) meanwhile: look again
    load_task(task_id)
    raise TaskAlreadyRunning("the task kept changing while being deleted", task_id=task_id)
