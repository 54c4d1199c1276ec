"""Errors worth reading: every 5xx is logged once as a structured "server error" record carrying the request id the
caller got in `details.request_id`, the route, the task and the cause; every model error once as "model error"
(docs/operations.md has a Logs Insights query for each)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from agent_core import aws
from agent_core.api import logger
from tests.fake_model import failure


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """What the functions' Powertools logger writes (its JSON lines), from now on."""
    written = io.StringIO()
    before = logger.registered_handler.setStream(written)  # type: ignore[attr-defined]
    yield written
    logger.registered_handler.setStream(before)  # type: ignore[attr-defined]


def _records(logs: io.StringIO, message: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{"))
    return [r for r in lines if r.get("message") == message]


def test_an_unexpected_failure_is_one_server_error_record(api, new_task, logs) -> None:
    task_id = new_task()["task_id"]

    def broken(**_: Any) -> Any:
        parsed = {"Error": {"Code": "InternalServerError", "Message": "the disk is on fire"}}
        return AWSResponse("https://dynamodb", 500, {}, None), parsed

    aws.client("dynamodb").meta.events.register("before-call.dynamodb.GetItem", broken)
    response = api("GET", f"/tasks/{task_id}")

    assert response.status == 500
    request_id = response.json()["error"]["details"]["request_id"]
    [record] = _records(logs, "server error")
    assert record["level"] == "ERROR" and record["request_id"] == request_id
    assert record["route"] == "GET /ap/v1/agent/tasks/{task_id}" and record["task_id"] == task_id
    assert record["status"] == 500 and record["error_code"] == "INTERNAL_ERROR"
    assert "the disk is on fire" in record["cause"] and "Traceback" in record["exception"]


def test_a_model_failure_is_one_model_error_and_one_server_error(api, model_api, new_task, logs) -> None:
    model_api.side_effect = [failure(500)] * 3
    task_id = new_task()["task_id"]

    response = api("POST", f"/tasks/{task_id}/steps", json_body={"input": "go"})

    assert response.status == 502
    details = response.json()["error"]["details"]
    [model] = _records(logs, "model error")
    [server] = _records(logs, "server error")
    step = api("GET", f"/tasks/{task_id}/steps").json()["steps"][0]
    assert model["task_id"] == task_id and model["step_id"] == step["step_id"] and model["model"] == "gpt-4o-mini"
    assert model["error_code"] == "OPENAI_API_ERROR" and model["cause"]
    assert server["status"] == 502 and server["error_code"] == "OPENAI_API_ERROR"
    assert server["route"] == "POST /ap/v1/agent/tasks/{task_id}/steps"
    # the model's request id is the upstream's; the API's own is the one both records carry
    assert details["request_id"] == "req-500"
    assert server["request_id"] == model["request_id"] != details["request_id"]


def test_client_errors_are_not_logged_as_server_errors(api, logs) -> None:
    assert api("GET", "/tasks/00000000-0000-4000-8000-000000000000").status == 404
    assert _records(logs, "server error") == []
