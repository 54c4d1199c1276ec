"""The contract every tool implements, and what a tool sees of the task it works on."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

# What a tool's text output may cost the model's context; longer output is cut with a note saying so.
MAX_TOOL_OUTPUT_CHARS = 8_000


class TaskFiles(Protocol):
    """The task's artifacts as a file system (S3 objects behind artifact records)."""

    def list(self) -> list[dict[str, Any]]:
        """Artifact dicts: artifact_id, file_name, relative_path, file_size, agent_created, created_at."""
        ...

    def read(self, relative_path: str) -> bytes:
        """The file's bytes; raises FileNotFoundError when the task has no such file."""
        ...

    def write(self, relative_path: str, data: bytes, content_type: str | None = None) -> dict[str, Any]:
        """Stores (or replaces) a file as an agent-created artifact; returns the artifact dict."""
        ...


@dataclass
class ToolContext:
    task_id: str
    step_id: str
    files: TaskFiles
    # time.monotonic() by which the step must be done; long-running tools shorten their own limits to fit.
    deadline: float | None = None

    def seconds_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


@dataclass
class ToolResult:
    output: str
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    is_last: bool = False
    # Images for the model's next turn, by reference so a step's stored history stays small: {"path": <task file>}
    # (read again when the conversation is rebuilt) or {"data_url": ...} (small images only).
    images: list[dict[str, str]] = field(default_factory=list)
    error: bool = False
    # Set when the tool's own machinery failed (not what the model asked for): the step records it in
    # additional_output.error, completes, and leaves the task usable.
    failure: str | None = None


class Tool(Protocol):
    # Read-only members: a tool may define them on the class or set them per instance.
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def capabilities(self) -> tuple[str, ...]:  # what GET /status advertises for it
        ...

    @property
    def parameters(self) -> dict[str, Any]:  # JSON schema of the arguments
        ...

    def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult: ...


def truncate(text: str, limit: int = MAX_TOOL_OUTPUT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... [truncated: {len(text) - limit} more characters]"


def openai_schema(tool: Tool) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
    }
