"""WebSocket pushes through the real ws function and agent_core.push, on moto: the table holds the connections,
moto's API Gateway management API records what is posted to each (`post_to_connection`), and a connection that is
gone is simulated by API Gateway's own 410 answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import botocore.awsrequest
import pytest
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

from agent_core import aws, push
from agent_core.config import get_settings
from agent_core.storage.table import get_table
from devserver import apigw, lambdas
from devserver.gateway import load_handler
from devserver.template import Route
from tests.conftest import ROOT, TEMPLATE
from tests.waiting import wait_until

WS = TEMPLATE.of_type("AWS::Serverless::Function")["WsFunction"]
ROUTE = Route("WsFunction", "WEBSOCKET", "WsFunction", ROOT / WS["CodeUri"], WS["Handler"])


def ws(route_key: str, connection_id: str, *, query: dict[str, str] | None = None, body: Any = None) -> int:
    """One WebSocket event through the ws function, as API Gateway sends it; returns its status code."""
    event = {
        "requestContext": {"routeKey": route_key, "connectionId": connection_id, "eventType": route_key.strip("$")},
        "queryStringParameters": query,
        "body": json.dumps(body) if body is not None else None,
    }
    answer = load_handler(ROUTE)(event, apigw.LambdaContext(function_name="WsFunction"))
    wait_until(lambda: not lambdas.in_flight(), what="the first message (sent by an async invocation)")
    return int(answer["statusCode"])


def received(connection_id: str) -> list[dict[str, Any]]:
    """What moto's management API recorded for the connection, message by message."""
    data = apigatewaymanagementapi_backends["123456789012"]["us-east-1"].connections[connection_id].data.decode()
    decoder, out, at = json.JSONDecoder(), [], 0
    while at < len(data):
        message, at = decoder.raw_decode(data, at)
        out.append(message)
    return out


@pytest.fixture
def gone(aws_mock: None) -> Iterator[set[str]]:
    """Connection ids API Gateway answers 410 Gone for (a client that went away without a $disconnect)."""
    ids: set[str] = set()

    def answer(request: Any, **_: Any) -> Any:
        if any(f"/@connections/{cid}" in request.url for cid in ids):
            body = json.dumps({"message": "Gone"}).encode()
            raw = botocore.awsrequest.AWSResponse(request.url, 410, {"x-amzn-ErrorType": "GoneException"}, None)
            raw._content = body  # type: ignore[attr-defined]
            return raw
        return None

    push.connections.cache_clear()
    aws.client("dynamodb")  # the table's client first: the hook below is for the management API's
    # Before moto's own before-send handler, which would answer first
    push.management_client(get_settings().websocket_endpoint or "").meta.events.register_first("before-send", answer)
    yield ids
    push._made.cache_clear()


def new_task(api: Any) -> str:
    return str(api("POST", "/tasks", json_body={"input": "Summarise"}).json()["task_id"])


def test_a_watcher_gets_the_current_status_then_every_change_of_a_step(api, gone) -> None:
    task_id = new_task(api)

    assert ws("$connect", "c1", query={"task_id": task_id}) == 200
    api("POST", f"/tasks/{task_id}/steps")

    messages = received("c1")
    assert [m["status"] for m in messages] == ["created", "running", "running"]
    assert [m["current_step"] for m in messages] == [None, "step 1", "list_files"]
    assert [m["progress"] for m in messages] == sorted(m["progress"] for m in messages)
    assert set(messages[0]) == {"type", "task_id", "status", "progress", "current_step", "timestamp"}
    assert get_table().get_task_state(task_id).watchers == 1  # type: ignore[union-attr]


def test_connect_refuses_an_unknown_task_and_bad_parameters(api, gone) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"

    assert ws("$connect", "c1", query={"task_id": unknown}) == 404
    assert ws("$connect", "c2", query={"task_id": "not-a-uuid"}) == 400
    assert ws("$connect", "c3", query={}) == 400
    assert ws("$connect", "c4", query={"channel": "logs", "level": "LOUD"}) == 400
    assert ws("$default", "c5", body={"action": "dance"}) == 400
    assert get_table().counters().get("tasks_total", 0) == 0  # nothing was created by a refusal


def test_disconnect_forgets_the_connection_and_the_task_is_no_longer_watched(api, gone) -> None:
    task_id = new_task(api)
    ws("$connect", "c1", query={"task_id": task_id})

    assert ws("$disconnect", "c1") == 200
    api("POST", f"/tasks/{task_id}/steps")

    assert get_table().get_task_state(task_id).watchers == 0  # type: ignore[union-attr]
    assert [m["status"] for m in received("c1")] == ["created"]  # nothing after it left
    assert ws("$disconnect", "c1") == 200  # twice: nothing to forget, no count below 0
    assert get_table().get_task_state(task_id).watchers == 0  # type: ignore[union-attr]


def test_a_connection_that_is_gone_is_forgotten_and_the_step_goes_on(api, gone) -> None:
    task_id = new_task(api)
    ws("$connect", "alive", query={"task_id": task_id})
    ws("$connect", "left", query={"task_id": task_id})
    gone.add("left")

    step = api("POST", f"/tasks/{task_id}/steps")

    assert step.status == 200
    assert len(received("alive")) == 3
    assert [s["connection_id"] for s in push.connections().subscribers(f"task:{task_id}")] == ["alive"]
    assert get_table().get_task_state(task_id).watchers == 1  # type: ignore[union-attr]


def test_a_push_that_fails_never_fails_the_step(api, gone, monkeypatch) -> None:
    task_id = new_task(api)
    ws("$connect", "c1", query={"task_id": task_id})
    monkeypatch.setenv("WEBSOCKET_ENDPOINT", "http://127.0.0.1:9/nowhere")  # nothing listens there
    get_settings.cache_clear()

    step = api("POST", f"/tasks/{task_id}/steps")

    assert step.status == 200 and step.json()["name"] == "list_files"


def test_subscribe_switches_a_connection_to_another_channel(api, gone) -> None:
    first, second = new_task(api), new_task(api)
    ws("$connect", "c1", query={"task_id": first})

    assert ws("$default", "c1", body={"action": "subscribe", "task_id": second}) == 200

    assert [m["task_id"] for m in received("c1")] == [first, second]  # the new task's status at once
    assert get_table().get_task_state(first).watchers == 0  # type: ignore[union-attr]
    assert get_table().get_task_state(second).watchers == 1  # type: ignore[union-attr]


@pytest.fixture
def info_logged() -> Iterator[None]:
    """The agent's loggers at INFO, as deployed (the tests' environment says WARNING)."""
    from agent_core import runs, steps

    loggers = [steps.logger, runs.logger]
    before = [lg.log_level for lg in loggers]
    for lg in loggers:
        lg.setLevel("INFO")
    yield
    for lg, level in zip(loggers, before, strict=True):
        lg.setLevel(level)


def test_the_log_stream_carries_the_agents_records_by_task_and_level(api, gone, info_logged, monkeypatch) -> None:
    monkeypatch.setattr(push, "_subscribers_cache", (0.0, []))
    watched, other = new_task(api), new_task(api)
    assert ws("$connect", "all", query={"channel": "logs"}) == 200
    assert ws("$connect", "one", query={"channel": "logs", "task_id": watched}) == 200
    assert ws("$connect", "warnings", query={"channel": "logs", "level": "warning"}) == 200

    api("POST", f"/tasks/{watched}/steps")
    api("POST", f"/tasks/{other}/steps")

    everything = received("all")
    assert {m["task_id"] for m in everything} == {watched, other}
    assert next(m["message"] for m in everything if m["task_id"] == watched) == "step 1 started"
    assert set(everything[0]) == {"type", "level", "message", "timestamp", "task_id", "component"}
    assert {m["task_id"] for m in received("one")} == {watched}
    assert "warnings" not in apigatewaymanagementapi_backends["123456789012"]["us-east-1"].connections
