"""The spec's objects at the API edge (request bodies, responses, query parameters). Field names are the spec's."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from .config import get_settings

TaskStatus = Literal["created", "running", "completed", "failed"]
TASK_STATUSES: tuple[str, ...] = ("created", "running", "completed", "failed")

# Objects and arrays in additional_input may nest this deep (answers are serialized recursively).
MAX_JSON_DEPTH = 32

TaskId = Annotated[UUID, Field(description="A task's id (UUID)")]
Timestamp = Annotated[str, Field(description="ISO 8601 UTC, e.g. 2024-01-15T10:30:00.000Z")]


class _Request(BaseModel):
    # Typos such as `inputs` are errors, not silently dropped fields.
    model_config = ConfigDict(extra="forbid")


class _InputBody(_Request):
    """`input` within the configured length, `additional_input` an object (null taken as empty)."""

    additional_input: Annotated[
        dict[str, Any],
        WithJsonSchema({"anyOf": [{"type": "object", "additionalProperties": True}, {"type": "null"}]}),
    ] = Field(default_factory=dict, description="Anything else the agent should know; null is taken as {}")

    @field_validator("input", check_fields=False)
    @classmethod
    def _input_fits(cls, value: str | None) -> str | None:
        limit = get_settings().max_input_chars
        if value is not None and len(value) > limit:
            raise ValueError(f"input is {len(value)} characters; the limit is {limit}")
        return value

    @field_validator("additional_input", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("additional_input")
    @classmethod
    def _additional_input_fits(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Whatever would break a later read is refused before anything is stored: nesting deeper than answers can
        be serialized, NaN or Infinity (not JSON), more bytes than the item and the model's prompt should carry."""
        depth = json_depth(value)
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"additional_input nests objects or arrays more than {MAX_JSON_DEPTH} levels deep")
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except ValueError as exc:
            raise ValueError("additional_input holds NaN or Infinity, which JSON does not allow") from exc
        try:
            size = len(text.encode())
        except UnicodeEncodeError as exc:
            raise ValueError("additional_input holds a lone surrogate (\\ud800-\\udfff), which is not text") from exc
        limit = get_settings().max_additional_input_bytes
        if size > limit:
            raise ValueError(f"additional_input is {size} bytes of JSON; the limit is {limit}")
        return value


def json_depth(value: Any) -> int:
    """How deeply objects and arrays nest in `value` (a scalar is 0), without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_JSON_DEPTH:  # deeper is refused anyway: no need to walk it all
            pending.extend((child, depth + 1) for child in children)
    return deepest


class TaskRequestBody(_InputBody):
    input: str = Field(min_length=1, description="What the agent should do")


class Artifact(BaseModel):
    artifact_id: str
    file_name: str
    relative_path: str
    file_size: int | None = None
    agent_created: bool = False
    created_at: Timestamp


class Task(BaseModel):
    task_id: str
    input: str
    additional_input: dict[str, Any]
    status: TaskStatus
    created_at: Timestamp
    modified_at: Timestamp
    artifacts: list[Artifact] = Field(default_factory=list)


class Pagination(BaseModel):
    """The spec's keys, and the Agent Protocol's keys for the same numbers."""

    page: int
    size: int
    total: int
    pages: int
    current_page: int
    page_size: int
    total_items: int
    total_pages: int

    @classmethod
    def of(cls, *, page: int, size: int, total: int) -> Pagination:
        pages = math.ceil(total / size) if size else 0
        return cls(
            page=page,
            size=size,
            total=total,
            pages=pages,
            current_page=page,
            page_size=size,
            total_items=total,
            total_pages=pages,
        )


class TaskList(BaseModel):
    tasks: list[Task]
    pagination: Pagination


_DELETED = {
    "task": ("Task deleted successfully", "任务已成功删除"),
    "artifact": ("File deleted successfully", "文件已成功删除"),
    "key": ("Key revoked", "密钥已吊销"),
}


class Deleted(BaseModel):
    success: Literal[True] = True
    message: str

    @classmethod
    def of(cls, what: Literal["task", "artifact", "key"], lang: str) -> Deleted:
        """The spec's success message in the caller's language."""
        en, zh = _DELETED[what]
        return cls(message=zh if lang == "zh" else en)


# -- artifacts -------------------------------------------------------------------------------------------------------

ArtifactId = Annotated[UUID, Field(description="An artifact's id (UUID)")]
RelativePath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        description="Where the file goes in the task: its full path and name when the last segment has an extension "
        "(data/sales.csv; a different name renames the upload), else a folder the file's own name is appended to "
        "(data/, data)",
    ),
]
FileName = Annotated[str, Field(min_length=1, max_length=255, description="The file's name, without folders")]


class ArtifactList(BaseModel):
    artifacts: list[Artifact]
    pagination: Pagination


class UploadRequestBody(_Request):
    """Asks for a presigned S3 POST, for files larger than the API accepts."""

    file_name: FileName
    relative_path: RelativePath | None = None
    file_size: int = Field(ge=0, description="Bytes; S3 accepts exactly this size")
    content_type: str | None = Field(default=None, max_length=255)


class PresignedPost(BaseModel):
    """POST the file to `url` as multipart/form-data: every one of `fields`, then `file` last."""

    url: str
    fields: dict[str, str]
    expires_at: Timestamp


class UploadTicket(BaseModel):
    artifact_id: str
    file_name: str
    relative_path: str
    file_size: int
    upload: PresignedPost


class DownloadLink(BaseModel):
    url: str
    expires_at: Timestamp


StepStatus = Literal["created", "running", "completed"]
StepId = Annotated[UUID, Field(description="A step's id (UUID)")]


class StepRequestBody(_InputBody):
    """Both fields optional: an empty body means "continue"."""

    input: str | None = Field(default=None, description="What the user adds for this step")


class Step(BaseModel):
    step_id: str
    task_id: str
    name: str
    status: StepStatus
    input: str | None
    additional_input: dict[str, Any]
    output: str | None
    additional_output: dict[str, Any]
    artifacts: list[Artifact]
    is_last: bool
    created_at: Timestamp


class StepList(BaseModel):
    steps: list[Step]
    pagination: Pagination


# -- runs and the agent ----------------------------------------------------------------------------------------------

RunStatus = Literal["running", "completed", "failed"]


class RunRequestBody(_Request):
    max_steps: int | None = Field(
        default=None, description="The run's step budget (default: the task's additional_input.max_steps, else 20)"
    )


class Run(BaseModel):
    """A multi-step run of a task (one Step Functions execution)."""

    task_id: str
    run_id: str
    status: RunStatus
    max_steps: int
    steps: int | None = Field(default=None, description="Steps the run has taken so far")
    started_at: Timestamp
    ended_at: Timestamp | None = None
    reason: str | None = Field(default=None, description="Why the run failed or was stopped")


class MemoryUsage(BaseModel):
    used: str
    total: str


class ApiUsage(BaseModel):
    openai_tokens_used: int
    openai_cost: float
    budget_usd: float | None = None
    budget_remaining_usd: float | None = None


class AgentStatus(BaseModel):
    agent_id: str
    status: Literal["running", "restarting"]
    version: str
    capabilities: list[str]
    active_tasks: int = Field(description="Tasks whose run is in progress")
    total_tasks: int
    uptime: Timestamp = Field(description="When the agent last started or restarted")
    memory_usage: MemoryUsage
    api_usage: ApiUsage
    limits: dict[str, int] = Field(default_factory=dict)


class RestartResult(BaseModel):
    success: Literal[True] = True
    message: str
    estimated_downtime: str
    resumed_tasks: list[str] = Field(default_factory=list)


# -- client keys (the operator's routes) -------------------------------------------------------------------------------

KeyId = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$", description="A client key's id (16 hex digits)")]


class KeyRequestBody(_Request):
    name: str = Field(min_length=1, max_length=100, description="Who the key is for (shown in lists, never secret)")
    budget_usd: float | None = Field(
        default=None,
        ge=0.000001,  # a millionth of a dollar at least: DynamoDB stores no number below 1e-130
        le=1_000_000,
        description="The client's own OpenAI budget: its steps get 429 beyond it",
    )

    @field_validator("name")
    @classmethod
    def _printable(cls, name: str) -> str:
        name = name.strip()
        if not name or not name.isprintable():
            raise ValueError("name must be printable text")
        return name


class ClientKey(BaseModel):
    key_id: str
    name: str
    created_at: Timestamp
    budget_usd: float | None = None
    revoked_at: Timestamp | None = None


class NewClientKey(ClientKey):
    api_key: str = Field(description="The secret: shown this once, never again (only its SHA-256 is kept)")


class KeyList(BaseModel):
    keys: list[ClientKey]
