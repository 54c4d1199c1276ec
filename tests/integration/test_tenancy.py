"""Tenancy (issue 21), in process through the real functions: a client's key sees its own tasks only, and another
client's task does not exist for it, on every route under /tasks/{task_id} the template has (a route added later is
covered without touching this file); lists, totals, /status and idempotency keys are per client; the operator's
routes refuse clients; a client's own budget; the WebSocket API's channels and log stream per client."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

from agent_core import auth, aws, push
from agent_core.config import get_settings
from devserver import apigw, lambdas
from devserver.gateway import load_handler
from devserver.template import Route
from tests.conftest import API, ROOT, TEMPLATE, Api, _reset_caches
from tests.fake_model import completion
from tests.integration.test_artifacts_api import multipart
from tests.waiting import wait_until

ALICE, BOB = "a1a1a1a1a1a1a1a1", "b0b0b0b0b0b0b0b0"
TASK_ROUTES = [r for r in TEMPLATE.routes() if "{task_id}" in r.path and r.method != "ANY"]


def _ids(route: Route) -> str:
    return f"{route.method} {route.path.removeprefix(API)}"


@pytest.fixture
def alice(api: Api) -> Api:
    return api.as_client(ALICE)


@pytest.fixture
def bob(api: Api) -> Api:
    return api.as_client(BOB)


def new_task(caller: Api, text: str = "Summarise") -> str:
    response = caller("POST", "/tasks", json_body={"input": text})
    assert response.status == 200, response.body
    return str(response.json()["task_id"])


def _a_task_with_everything(alice: Api) -> dict[str, str]:
    """Alice's task with a step, an uploaded file and a pending presigned upload: the ids the routes take."""
    task_id = new_task(alice)
    body, content_type = multipart({}, {"file": ("notes.txt", b"hello")})
    uploaded = alice("POST", f"/tasks/{task_id}/artifacts", body=body, headers={"content-type": content_type})
    assert uploaded.status == 200, uploaded.body
    step = alice("POST", f"/tasks/{task_id}/steps")
    assert step.status == 200, step.body
    return {"task_id": task_id, "artifact_id": uploaded.json()["artifact_id"], "step_id": step.json()["step_id"]}


def _call(caller: Api, route: Route, params: dict[str, str], **headers: str) -> apigw.ProxyResponse:
    """The route called with `params` in its path and a body it would accept."""
    path = re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], route.path).removeprefix(API)
    kwargs: dict[str, Any] = {"headers": dict(headers)}
    if route.method == "POST" and path.endswith("/artifacts"):
        body, content_type = multipart({"relative_path": "b/evil.txt"}, {"file": ("evil.txt", b"from bob")})
        kwargs.update(body=body, headers={**kwargs["headers"], "content-type": content_type})
    elif route.method == "POST" and path.endswith("/uploads"):
        kwargs["json_body"] = {"file_name": "evil.csv", "file_size": 3}
    elif route.method == "POST" and path.endswith("/steps"):
        kwargs["json_body"] = {"input": "do what bob says"}
    elif route.method == "POST" and path.endswith("/run"):
        kwargs["json_body"] = {"max_steps": 2}
    return caller(route.method, path, **kwargs)


def _snapshot(api: Api, task_id: str) -> dict[str, Any]:
    """Everything the operator can read of a task, and its files in the bucket."""
    listed = aws.client("s3").list_objects_v2(Bucket=get_settings().bucket_name, Prefix=f"tasks/{task_id}/")
    return {
        "task": api("GET", f"/tasks/{task_id}").json(),
        "steps": api("GET", f"/tasks/{task_id}/steps").json(),
        "artifacts": api("GET", f"/tasks/{task_id}/artifacts").json(),
        "run": api("GET", f"/tasks/{task_id}/run").json(),
        "objects": sorted((o["Key"], o["Size"], o["ETag"]) for o in listed.get("Contents", [])),
    }


def _without(body: dict[str, Any], task_id: str) -> str:
    """The body with the task's id (which the error names) and any request id put aside."""
    error = body.get("error", {})
    error.get("details", {}).pop("request_id", None)
    return json.dumps(body, sort_keys=True).replace(task_id, "<task>")


def test_the_task_routes_are_found() -> None:
    # Tasks, steps, artifacts (multipart, presigned upload, its completion) and runs at least
    found = {_ids(r) for r in TASK_ROUTES}
    assert {
        "GET /tasks/{task_id}",
        "DELETE /tasks/{task_id}",
        "POST /tasks/{task_id}/steps",
        "GET /tasks/{task_id}/steps/{step_id}",
        "POST /tasks/{task_id}/artifacts",
        "POST /tasks/{task_id}/artifacts/uploads/{artifact_id}/complete",
        "DELETE /tasks/{task_id}/artifacts/{artifact_id}",
        "POST /tasks/{task_id}/run",
        "POST /tasks/{task_id}/cancel",
    } <= found
    assert len(found) == len(TASK_ROUTES) >= 14


@pytest.mark.parametrize("route", TASK_ROUTES, ids=_ids)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_another_clients_task_is_not_found_on_every_task_route(api: Api, alice: Api, bob: Api, route, lang) -> None:
    ids = _a_task_with_everything(alice)
    before = _snapshot(api, ids["task_id"])
    nowhere = {**ids, "task_id": str(uuid.uuid4())}

    refused = _call(bob, route, ids, **{"Accept-Language": lang})
    missing = _call(bob, route, nowhere, **{"Accept-Language": lang})
    missing_for_the_operator = _call(api, route, nowhere, **{"Accept-Language": lang})

    assert refused.status == 404, refused.body
    assert refused.json()["error"]["code"] == "TASK_NOT_FOUND"
    assert refused.json()["error"]["details"]["task_id"] == ids["task_id"]
    # Nothing tells bob that the task is there: the answer is the one a task nobody made gets, headers included
    assert _without(refused.json(), ids["task_id"]) == _without(missing.json(), nowhere["task_id"])
    assert _without(refused.json(), ids["task_id"]) == _without(missing_for_the_operator.json(), nowhere["task_id"])
    assert (missing.status, missing_for_the_operator.status) == (404, 404)
    assert set(refused.headers) == set(missing.headers)
    # ...and alice's task, its steps, files and run are as they were
    assert _snapshot(api, ids["task_id"]) == before
    assert alice("GET", f"/tasks/{ids['task_id']}").status == 200


def test_the_operator_reads_and_a_client_reads_its_own(api: Api, alice: Api) -> None:
    ids = _a_task_with_everything(alice)

    for caller in (api, alice):
        task = caller("GET", f"/tasks/{ids['task_id']}")
        steps = caller("GET", f"/tasks/{ids['task_id']}/steps")
        step = caller("GET", f"/tasks/{ids['task_id']}/steps/{ids['step_id']}")
        artifacts = caller("GET", f"/tasks/{ids['task_id']}/artifacts")
        assert (task.status, steps.status, step.status, artifacts.status) == (200, 200, 200, 200)
        assert [a["artifact_id"] for a in artifacts.json()["artifacts"]] == [ids["artifact_id"]]


# -- lists and totals ---------------------------------------------------------------------------------------------


def _listed(caller: Api, **query: str) -> tuple[set[str], int]:
    page = caller("GET", "/tasks", query={"size": "100", **query})
    assert page.status == 200, page.body
    body = page.json()
    total, pages = len(body["tasks"]), 1 if body["tasks"] else 0
    assert body["pagination"] == {
        "page": 1, "size": 100, "total": total, "pages": pages,
        "current_page": 1, "page_size": 100, "total_items": total, "total_pages": pages,
    }  # fmt: skip
    return {t["task_id"] for t in body["tasks"]}, total


def test_each_client_lists_its_own_tasks_with_its_own_totals(api: Api, alice: Api, bob: Api) -> None:
    operators = new_task(api)
    a_created = [new_task(alice) for _ in range(2)]
    a_running = new_task(alice)
    assert alice("POST", f"/tasks/{a_running}/steps").status == 200  # the offline model's first step: running
    b_created = new_task(bob)
    b_running = [new_task(bob) for _ in range(2)]
    for task_id in b_running:
        assert bob("POST", f"/tasks/{task_id}/steps").status == 200
    since = api("GET", f"/tasks/{a_created[1]}").json()["created_at"]
    assert api("GET", f"/tasks/{a_running}").json()["status"] == "running"

    assert _listed(alice) == ({*a_created, a_running}, 3)
    assert _listed(bob) == ({b_created, *b_running}, 3)
    assert _listed(alice, status="created") == (set(a_created), 2)
    assert _listed(alice, status="running") == ({a_running}, 1)
    assert _listed(bob, status="created") == ({b_created}, 1)
    assert _listed(bob, status="running") == (set(b_running), 2)
    assert _listed(alice, status="completed") == (set(), 0)
    assert _listed(alice, created_after=since) == ({a_running}, 1)
    assert _listed(bob, created_after=since) == ({b_created, *b_running}, 3)
    assert _listed(bob, created_after=since, status="running") == (set(b_running), 2)
    everything = {operators, *a_created, a_running, b_created, *b_running}
    assert _listed(api) == (everything, 7)
    assert _listed(api, status="running") == ({a_running, *b_running}, 3)
    second = alice("GET", "/tasks", query={"size": "1", "page": "2"}).json()
    assert (second["pagination"]["total"], second["pagination"]["pages"], len(second["tasks"])) == (3, 3, 1)
    assert second["tasks"][0]["task_id"] in {*a_created, a_running}
    # A client with no task at all
    assert _listed(api.as_client("c0c0c0c0c0c0c0c0")) == (set(), 0)


# -- the operator's routes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/restart", None),
        ("POST", "/keys", {"name": "mallory"}),
        ("GET", "/keys", None),
        ("DELETE", "/keys/0123456789abcdef", None),
    ],
)
def test_the_operators_routes_are_forbidden_to_a_client(api: Api, alice: Api, method, path, body) -> None:
    record, _ = auth.create_key("kept")
    target = path.replace("0123456789abcdef", record.key_id)

    english = alice(method, target, json_body=body)
    chinese = alice(method, target, json_body=body, headers={"Accept-Language": "zh"})

    assert english.status == chinese.status == 403
    assert english.json()["error"]["code"] == chinese.json()["error"]["code"] == "FORBIDDEN"
    assert english.json()["error"]["message"].isascii()
    assert re.search(r"[\u4e00-\u9fff]", chinese.json()["error"]["message"]), chinese.json()
    assert english.json()["error"]["message"] != chinese.json()["error"]["message"]
    # Nothing happened: the key is still there and unrevoked, no other was made
    keys = api("GET", "/keys").json()["keys"]
    assert [(k["key_id"], k["revoked_at"]) for k in keys] == [(record.key_id, None)]
    assert api("GET", "/status").json()["status"] == "running"


# -- /status ------------------------------------------------------------------------------------------------------


def test_status_counts_a_clients_own_tasks_and_spend(api: Api, model_api) -> None:
    model_api.side_effect = [completion({"content": "a"}), completion({"content": "b"}, prompt=2000)]
    a_key, _ = auth.create_key("alice", budget_usd=5)
    b_key, _ = auth.create_key("bob")
    alice, bob = api.as_client(a_key.key_id), api.as_client(b_key.key_id)
    a_tasks = [new_task(alice) for _ in range(2)]
    b_task = new_task(bob)
    new_task(api)
    assert alice("POST", f"/tasks/{a_tasks[0]}/steps").status == 200
    assert bob("POST", f"/tasks/{b_task}/steps").status == 200

    mine, theirs, whole = (c("GET", "/status").json() for c in (alice, bob, api))

    a_cost, b_cost = (1000 * 0.15 + 100 * 0.60) / 1e6, (2000 * 0.15 + 100 * 0.60) / 1e6
    assert (mine["total_tasks"], theirs["total_tasks"], whole["total_tasks"]) == (2, 1, 4)
    assert mine["api_usage"]["openai_cost"] == pytest.approx(a_cost, abs=1e-6)
    assert theirs["api_usage"]["openai_cost"] == pytest.approx(b_cost, abs=1e-6)
    assert whole["api_usage"]["openai_cost"] == pytest.approx(a_cost + b_cost, abs=1e-6)
    assert mine["api_usage"]["openai_tokens_used"] == 1100 and theirs["api_usage"]["openai_tokens_used"] == 2100
    assert whole["api_usage"]["openai_tokens_used"] == 3200
    assert mine["api_usage"]["budget_usd"] == 5 and theirs["api_usage"]["budget_usd"] is None
    assert mine["api_usage"]["budget_remaining_usd"] == pytest.approx(5 - a_cost, abs=1e-6)


# -- idempotency --------------------------------------------------------------------------------------------------


def test_the_same_idempotency_key_is_each_clients_own(api: Api, alice: Api, bob: Api) -> None:
    key = {"Idempotency-Key": "same-key-for-both"}

    a_first = alice("POST", "/tasks", json_body={"input": "alice's"}, headers=key).json()
    b_first = bob("POST", "/tasks", json_body={"input": "bob's"}, headers=key).json()
    a_again = alice("POST", "/tasks", json_body={"input": "alice's"}, headers=key).json()
    b_again = bob("POST", "/tasks", json_body={"input": "bob's"}, headers=key).json()

    assert a_first["task_id"] != b_first["task_id"]
    assert (a_again["task_id"], b_again["task_id"]) == (a_first["task_id"], b_first["task_id"])
    assert (a_first["input"], b_first["input"]) == ("alice's", "bob's")
    assert _listed(alice) == ({a_first["task_id"]}, 1) and _listed(bob) == ({b_first["task_id"]}, 1)
    assert bob("GET", f"/tasks/{a_first['task_id']}").status == 404


# -- a client's budget --------------------------------------------------------------------------------------------


def test_a_clients_spent_budget_stops_its_steps_only(api: Api, model_api) -> None:
    model_api.side_effect = [completion({"content": "expensive"}, prompt=1_000_000)] + [
        completion({"content": "cheap"})
    ] * 3
    thrifty, _ = auth.create_key("thrifty", budget_usd=0.0001)
    other, _ = auth.create_key("other", budget_usd=100)
    a, b = api.as_client(thrifty.key_id), api.as_client(other.key_id)
    a_task, b_task = new_task(a), new_task(b)

    first = a("POST", f"/tasks/{a_task}/steps")
    refused = a("POST", f"/tasks/{a_task}/steps")
    refused_zh = a("POST", f"/tasks/{new_task(a)}/steps", headers={"Accept-Language": "zh"})
    allowed = b("POST", f"/tasks/{b_task}/steps")
    operators = api("POST", f"/tasks/{new_task(api)}/steps")

    assert first.status == 200 and first.json()["additional_output"]["cost_usd"] > 0.0001
    assert refused.status == 429, refused.body
    error = refused.json()["error"]
    assert error["code"] == "INSUFFICIENT_RESOURCES" and error["details"]["key_id"] == thrifty.key_id
    assert error["details"]["budget_usd"] == 0.0001 and error["details"]["spent_usd"] > 0.0001
    assert refused_zh.status == 429 and refused_zh.json()["error"]["code"] == "INSUFFICIENT_RESOURCES"
    assert allowed.status == 200 and allowed.json()["output"] == "cheap"
    assert operators.status == 200
    assert len(a("GET", f"/tasks/{a_task}/steps").json()["steps"]) == 1  # the refused step was not recorded


# -- keys required: defence in depth ------------------------------------------------------------------------------


def test_with_keys_required_a_request_without_the_authorizers_word_is_refused(
    api: Api, alice: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = new_task(alice)
    monkeypatch.setenv("AUTH", "keys")
    _reset_caches()

    answers = {
        "list": api("GET", "/tasks"),
        "get": api("GET", f"/tasks/{task_id}"),
        "create": api("POST", "/tasks", json_body={"input": "x"}),
        "status": api("GET", "/status"),
        "keys": api("GET", "/keys"),
        "zh": api("GET", "/tasks", headers={"Accept-Language": "zh"}),
    }
    as_alice = alice("GET", f"/tasks/{task_id}")

    for name, answer in answers.items():
        assert answer.status == 401, (name, answer.body)
        assert answer.json()["error"]["code"] == "UNAUTHORIZED", name
    assert re.search(r"[\u4e00-\u9fff]", answers["zh"].json()["error"]["message"])
    assert as_alice.status == 200  # the authorizer's context is all it takes
    assert _listed(alice) == ({task_id}, 1)  # and nothing was created by the refused POST


# -- the WebSocket API --------------------------------------------------------------------------------------------

WS = TEMPLATE.of_type("AWS::Serverless::Function")["WsFunction"]
WS_ROUTE = Route("WsFunction", "WEBSOCKET", "WsFunction", ROOT / WS["CodeUri"], WS["Handler"])


def ws(route_key: str, connection_id: str, client: str | None, *, query: dict[str, str] | None = None) -> int:
    """One WebSocket event through the ws function, as API Gateway sends it after the authorizer named `client`."""
    request: dict[str, Any] = {"routeKey": route_key, "connectionId": connection_id, "eventType": "CONNECT"}
    if client is not None:
        request["authorizer"] = {"client_id": client, "role": "client", "principalId": client}
    event = {"requestContext": request, "queryStringParameters": query, "body": None}
    answer = load_handler(WS_ROUTE)(event, apigw.LambdaContext(function_name="WsFunction"))
    wait_until(lambda: not lambdas.in_flight(), what="the first message (sent by an async invocation)")
    return int(answer["statusCode"])


def received(connection_id: str) -> list[dict[str, Any]]:
    connections = apigatewaymanagementapi_backends["123456789012"]["us-east-1"].connections
    if connection_id not in connections:
        return []
    data, decoder, out, at = connections[connection_id].data.decode(), json.JSONDecoder(), [], 0
    while at < len(data):
        message, at = decoder.raw_decode(data, at)
        out.append(message)
    return out


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


def test_a_client_watches_its_own_tasks_only(api: Api, alice: Api) -> None:
    task_id = new_task(alice)

    assert ws("$connect", "bob-1", BOB, query={"task_id": task_id}) == 404
    assert ws("$connect", "alice-1", ALICE, query={"task_id": task_id}) == 200
    assert ws("$connect", "operator-1", None, query={"task_id": task_id}) == 200
    alice("POST", f"/tasks/{task_id}/steps")

    assert received("bob-1") == []
    assert [m["status"] for m in received("alice-1")] == ["created", "running", "running"]
    assert [m["status"] for m in received("operator-1")] == ["created", "running", "running"]
    assert {s["connection_id"] for s in push.connections().subscribers(f"task:{task_id}")} == {
        "alice-1",
        "operator-1",
    }


def test_a_clients_log_stream_carries_its_own_tasks_records_only(
    api: Api, alice: Api, bob: Api, info_logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(push, "_subscribers_cache", (0.0, []))
    a_task, b_task = new_task(alice), new_task(bob)
    assert ws("$connect", "alice-logs", ALICE, query={"channel": "logs"}) == 200
    assert ws("$connect", "bob-logs", BOB, query={"channel": "logs"}) == 200
    assert ws("$connect", "bob-on-alice", BOB, query={"channel": "logs", "task_id": a_task}) == 200
    assert ws("$connect", "operator-logs", None, query={"channel": "logs"}) == 200

    alice("POST", f"/tasks/{a_task}/steps")
    bob("POST", f"/tasks/{b_task}/steps")

    assert received("alice-logs") and {m["task_id"] for m in received("alice-logs")} == {a_task}
    assert received("bob-logs") and {m["task_id"] for m in received("bob-logs")} == {b_task}
    assert received("bob-on-alice") == []  # asking for alice's task by its id changes nothing
    assert {m["task_id"] for m in received("operator-logs")} == {a_task, b_task}


def subscribe(connection_id: str, message: dict[str, Any]) -> int:
    """A `subscribe` message on an open connection (its event names the connection only, no authorizer)."""
    event = {
        "requestContext": {"routeKey": "$default", "connectionId": connection_id, "eventType": "MESSAGE"},
        "body": json.dumps({"action": "subscribe", **message}),
    }
    answer = load_handler(WS_ROUTE)(event, apigw.LambdaContext(function_name="WsFunction"))
    wait_until(lambda: not lambdas.in_flight(), what="the first message (sent by an async invocation)")
    return int(answer["statusCode"])


def test_a_refused_switch_keeps_the_connection_and_its_caller(
    api: Api, alice: Api, bob: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given keys required, and bob's connection on his own task
    monkeypatch.setenv("AUTH", "keys")
    get_settings.cache_clear()
    a_task, b_task = new_task(alice), new_task(bob)
    assert ws("$connect", "bob-1", BOB, query={"task_id": b_task}) == 200
    # When he asks to switch to alice's task, then to a malformed one
    assert subscribe("bob-1", {"task_id": a_task}) == 404
    assert subscribe("bob-1", {"task_id": "not-an-id"}) == 400
    # Then his connection is still his: a switch to his own task's channel, and to his log stream, are accepted
    assert subscribe("bob-1", {"task_id": b_task}) == 200
    assert subscribe("bob-1", {"channel": "logs"}) == 200
