"""What the adapters hand to the domain layer: plain records, no DynamoDB types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..models import RunStatus, StepStatus, TaskStatus


@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    input: str
    additional_input: dict[str, Any]
    status: TaskStatus
    created_at: str
    modified_at: str
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    owner: str | None = None  # the client whose key made it; None: the operator's (agent_core.auth)


@dataclass
class StepRecord:
    task_id: str
    step_id: str
    seq: int
    name: str
    status: StepStatus
    input: str | None
    additional_input: dict[str, Any]
    created_at: str
    modified_at: str
    output: str | None = None
    is_last: bool = False
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    additional_output: dict[str, Any] = field(default_factory=dict)
    # The turn as the model API saw it (assistant message, tool results), to rebuild the conversation.
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class TaskState:
    """A task with what only step execution needs: its step count and lease."""

    task: TaskRecord
    step_count: int
    lease_id: str | None
    lease_until: int
    # The run that holds the task (agent_core.runs), and the latest run's record, current or ended.
    run_id: str | None = None
    run: RunRecord | None = None
    watchers: int = 0  # WebSocket connections watching the task (storage/connections.py)


@dataclass
class RunRecord:
    """A multi-step run of a task: one Step Functions execution, named by run_id, or its resumption after a
    restart (a new run_id, the same base and budget)."""

    run_id: str
    task_id: str
    status: RunStatus
    max_steps: int
    base: int  # the task's step count when the run began: the run's steps are the ones after it
    started_at: str
    deadline: int = 0  # epoch seconds after which no step of the run starts (RUN_TIMEOUT_SECONDS from its start)
    ended_at: str | None = None
    reason: str | None = None  # why it failed
    stop_reason: str | None = None  # why it was stopped (cancelled, task deleted), until the run ends


# -- artifacts ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArtifactRecord:
    """A file of a task: its metadata, and the S3 object that holds its current content."""

    task_id: str
    artifact_id: str
    relative_path: str
    file_size: int
    content_type: str
    agent_created: bool
    created_at: str
    modified_at: str
    object_key: str
    step_id: str | None = None

    @property
    def file_name(self) -> str:
        return self.relative_path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class PendingUpload:
    """A presigned POST handed out and not yet finalized: what the object must be, and where it lands."""

    task_id: str
    artifact_id: str
    relative_path: str
    file_size: int
    content_type: str
    object_key: str
    created_at: str
    expires_at: int  # epoch seconds: the table's TTL removes an upload nobody finished
    # The size of an object that arrived with another size than declared (and was deleted), for the client to hear.
    received_size: int | None = None
