"""Fixtures of the integration tests: DynamoDB call recording and task factories on top of tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from agent_core import aws
from agent_core.storage.table import get_table
from agent_core.timeutil import now_iso


@pytest.fixture
def ddb_calls(aws_mock: None) -> list[str]:
    """The DynamoDB operations (GetItem, Query, ...) that the handlers make during the test, in order.

    Recorded with botocore's own events on the client the table adapter uses, so nothing is stubbed out."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    aws.client("dynamodb").meta.events.register("before-call.dynamodb.*", record)
    return calls


@pytest.fixture
def new_task(api: Any) -> Callable[..., dict[str, Any]]:
    """Creates a task through the handler and returns its JSON."""

    def create(input: str = "analyse the sales data", **additional_input: Any) -> dict[str, Any]:
        response = api("POST", "/tasks", json_body={"input": input, "additional_input": additional_input})
        assert response.status == 200, response.body
        task: dict[str, Any] = response.json()
        return task

    return create


@pytest.fixture
def set_status() -> Callable[[dict[str, Any], str], None]:
    """Moves a task to another status with the real adapter (counters and index included)."""

    def move(task: dict[str, Any], new: str) -> None:
        table = get_table()
        owner = table.get_task(task["task_id"]).owner  # type: ignore[union-attr]
        table.set_task_status(
            task["task_id"],
            old=task["status"],
            new=new,
            modified_at=now_iso(),
            created_at=task["created_at"],
            owner=owner,
        )
        task["status"] = new

    return move
