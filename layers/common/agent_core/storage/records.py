"""What the adapters hand to the domain layer: plain records, no DynamoDB types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    input: str
    additional_input: dict[str, Any]
    status: str
    created_at: str
    modified_at: str
    artifacts: list[dict[str, Any]] = field(default_factory=list)
