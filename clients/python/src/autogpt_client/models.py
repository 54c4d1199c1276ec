"""The API's objects as the client returns them (unknown fields are kept, so a newer server does not break it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Artifact(_Model):
    artifact_id: str
    file_name: str
    relative_path: str
    file_size: int | None = None
    agent_created: bool = False
    created_at: str | None = None


class Task(_Model):
    task_id: str
    input: str
    additional_input: dict[str, Any] = Field(default_factory=dict)
    status: str
    created_at: str
    modified_at: str
    artifacts: list[Artifact] = Field(default_factory=list)


class Step(_Model):
    step_id: str
    task_id: str
    name: str | None = None
    status: str
    input: str | None = None
    additional_input: dict[str, Any] = Field(default_factory=dict)
    output: str | None = None
    additional_output: dict[str, Any] = Field(default_factory=dict)
    artifacts: list[Artifact] = Field(default_factory=list)
    is_last: bool = False
    created_at: str | None = None


class Pagination(_Model):
    page: int
    size: int
    total: int
    pages: int


class TaskList(_Model):
    tasks: list[Task]
    pagination: Pagination


class StepList(_Model):
    steps: list[Step]
    pagination: Pagination


class Run(_Model):
    task_id: str
    run_id: str
    status: str
    max_steps: int
    steps: int | None = None
    started_at: str
    ended_at: str | None = None
    reason: str | None = None


class AgentStatus(_Model):
    agent_id: str
    status: str
    version: str
    capabilities: list[str] = Field(default_factory=list)
    active_tasks: int
    total_tasks: int
    uptime: str
    memory_usage: dict[str, Any] = Field(default_factory=dict)
    api_usage: dict[str, Any] = Field(default_factory=dict)


class RestartResult(_Model):
    success: bool
    message: str
    estimated_downtime: str


class Deleted(_Model):
    success: bool
    message: str


class ApiKey(_Model):
    """An API key as listed (`GET /keys`): never its secret."""

    key_id: str
    name: str
    created_at: str
    budget_usd: float | None = None
    revoked_at: str | None = None


class CreatedKey(ApiKey):
    """A new key (`POST /keys`): `api_key` is its secret, which the server shows this once (kept out of repr)."""

    api_key: str = Field(repr=False)


class KeyList(_Model):
    keys: list[ApiKey]
