"""The request model of POST /tasks and the task object's shape."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agent_core.config import get_settings
from agent_core.models import TASK_STATUSES, Deleted, Task, TaskRequestBody, TaskStatus


def _fields(error: ValidationError) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in error.errors()]


def test_task_request_body_defaults_additional_input_to_empty() -> None:
    assert TaskRequestBody(input="x").additional_input == {}
    assert TaskRequestBody.model_validate({"input": "x", "additional_input": None}).additional_input == {}


def test_task_request_body_keeps_nested_additional_input() -> None:
    extra = {"priority": "high", "context": {"region": "apac", "weights": [0.5, 1]}}
    assert TaskRequestBody(input="x", additional_input=extra).additional_input == extra


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "input"),
        ({"input": ""}, "input"),
        ({"input": 5}, "input"),
        ({"input": None}, "input"),
        ({"input": "x", "additional_input": [1]}, "additional_input"),
        ({"input": "x", "additional_input": "s"}, "additional_input"),
        ({"input": "x", "inputs": "typo"}, "inputs"),
    ],
)
def test_task_request_body_refuses(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TaskRequestBody.model_validate(body)
    assert _fields(caught.value) == [field]


def test_task_request_body_input_limit_is_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a limit of 5 characters from the environment
    monkeypatch.setenv("MAX_INPUT_CHARS", "5")
    get_settings.cache_clear()
    # Then 5 characters (of any width) pass and 6 do not
    assert TaskRequestBody(input="数据分析报告"[:5]).input == "数据分析报"
    with pytest.raises(ValidationError, match="the limit is 5"):
        TaskRequestBody(input="x" * 6)


def test_task_status_values_are_the_spec() -> None:
    assert TASK_STATUSES == ("created", "running", "completed", "failed")
    assert TaskStatus.__args__ == TASK_STATUSES  # type: ignore[attr-defined]


def test_task_refuses_a_status_outside_the_spec() -> None:
    with pytest.raises(ValidationError):
        Task(
            task_id="t",
            input="x",
            additional_input={},
            status="paused",  # type: ignore[arg-type]
            created_at="2024-01-15T10:30:00.000Z",
            modified_at="2024-01-15T10:30:00.000Z",
        )


def test_task_serialises_the_spec_fields_with_empty_artifacts() -> None:
    task = Task(
        task_id="550e8400-e29b-41d4-a716-446655440000",
        input="x",
        additional_input={"a": 1},
        status="completed",
        created_at="2024-01-15T10:30:00.000Z",
        modified_at="2024-01-15T11:45:00.000Z",
    )
    assert task.model_dump() == {
        "task_id": "550e8400-e29b-41d4-a716-446655440000",
        "input": "x",
        "additional_input": {"a": 1},
        "status": "completed",
        "created_at": "2024-01-15T10:30:00.000Z",
        "modified_at": "2024-01-15T11:45:00.000Z",
        "artifacts": [],
    }


def test_deleted_is_always_success() -> None:
    assert Deleted(message="Task deleted").model_dump() == {"success": True, "message": "Task deleted"}
    with pytest.raises(ValidationError):
        Deleted(success=False, message="no")  # type: ignore[arg-type]


def test_deleted_message_follows_the_language() -> None:
    assert Deleted.of("task", "zh").message == "任务已成功删除"
    assert Deleted.of("artifact", "zh").message == "文件已成功删除"
    assert Deleted.of("task", "en").message == "Task deleted successfully"
