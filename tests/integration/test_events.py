"""The sample events in events/ are what API Gateway sends: each one is answered by the function the template
routes it to (the same files work with `sam local invoke -e events/<file>`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_core import runs
from agent_core.storage.records import RunRecord, TaskRecord
from agent_core.storage.table import get_table
from agent_core.timeutil import now_iso
from devserver import apigw
from devserver.gateway import load_handler
from devserver.template import Route, Template

EVENTS = sorted((Path(__file__).resolve().parents[2] / "events").glob("*.json"))
ROUTES = Template().routes()


def _load(path: Path) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(path.read_text())
    return event


def _route(event: dict[str, Any]) -> Route:
    return next(r for r in ROUTES if r.path == event["resource"] and r.method in (event["httpMethod"], "ANY"))


def _invoke(event: dict[str, Any]) -> apigw.ProxyResponse:
    return apigw.parse_response(load_handler(_route(event))(event, apigw.LambdaContext()))


def _seed_task(task_id: str) -> None:
    now = "2024-01-15T10:30:00.000Z"
    get_table().create_task(
        TaskRecord(
            task_id=task_id, input="seeded", additional_input={}, status="created", created_at=now, modified_at=now
        )
    )


def test_every_route_has_a_sample_event() -> None:
    # Given the template's API routes and the sample events
    sampled = {(e["httpMethod"], e["resource"]) for e in map(_load, EVENTS)}
    # Then each route has at least one event
    routes = list(ROUTES)
    assert routes
    # An ANY route (other methods: 405) is sampled by events/method_not_allowed.json on its function's paths.
    sampled_paths = {path for _, path in sampled}
    missing = [
        f"{r.method} {r.path}"
        for r in routes
        if (r.method, r.path) not in sampled and not (r.method == "ANY" and r.path in sampled_paths)
    ]
    assert not missing, f"add an events/*.json for: {missing}"


@pytest.mark.parametrize("path", EVENTS, ids=[p.stem for p in EVENTS])
def test_invoke_sample_event_answers_from_its_function(aws_mock: None, path: Path) -> None:
    # Given a sample event, and the task it names (if any) in the table
    event = _load(path)
    if task_id := (event.get("pathParameters") or {}).get("task_id"):
        _seed_task(task_id)
    # When the function the template routes it to handles it
    response = _invoke(event)
    # Then it answers with success, or (for a child the event names that does not exist) the spec's 404 envelope
    if path.stem == "interactive_docs":  # an HTML page
        assert response.status == 200 and b"openapi.json" in response.body
        return
    if path.stem == "docs_asset":  # Swagger UI's stylesheet, from the layer
        assert response.status == 200 and dict(response.headers)["content-type"].startswith("text/css")
        return
    if path.stem.startswith("console"):  # the web console's files (built by `make console`, which `make test` runs)
        _check_console_sample(path.stem, event, response)
        return
    body = response.json()
    if response.status == 404:
        assert body["success"] is False and body["error"]["code"].endswith("_NOT_FOUND")
    elif path.stem in ("get_run", "cancel_run"):  # the seeded task has never been run
        assert response.status == 400 and "run" in body["error"]["details"]["reason"]
    elif path.stem == "method_not_allowed":  # the ANY route: a method the path does not have
        assert response.status == 405 and dict(response.headers)["allow"] == "GET, HEAD, OPTIONS, POST"
    else:
        assert 200 <= response.status < 400, body
        assert not (isinstance(body, dict) and body.get("success") is False)


def _check_console_sample(stem: str, event: dict[str, Any], response: apigw.ProxyResponse) -> None:
    headers = {k.lower(): v for k, v in response.headers}
    if stem == "console":  # into the directory, under the stage
        assert response.status == 308 and headers["location"] == "console/index.html"
    elif stem == "console_page":  # names the API by the request's own address and stage
        api = f'<meta name="autogpt-api" content="https://{event["requestContext"]["domainName"]}/dev"'
        assert response.status == 200 and api.encode() in response.body and headers["cache-control"] == "no-cache"
    else:  # app-HASH.js: the sample names no build's file; a build's asset is named in its page
        assert response.status == 404 and headers["content-type"].startswith("text/plain")
        page = _invoke(_load(EVENTS[0].with_name("console_page.json"))).body.decode()
        name = page.split('src="./assets/', 1)[1].split('"', 1)[0]
        event = {**event, "path": f"/console/assets/{name}", "pathParameters": {"name": name}}
        asset = _invoke(event)
        assert asset.status == 200 and "immutable" in dict(asset.headers)["Cache-Control"]


def test_invoke_task_events_behave_as_the_spec(aws_mock: None) -> None:
    # Given the task named by the get/delete samples
    events = {p.stem: _load(p) for p in EVENTS}
    _seed_task(events["get_task"]["pathParameters"]["task_id"])

    created = _invoke(events["create_task"])
    assert created.status == 200
    assert created.json()["input"] == json.loads(events["create_task"]["body"])["input"]
    assert created.json()["status"] == "created"

    listed = _invoke(events["list_tasks"]).json()  # page=1&size=10&status=created&created_after=2024-01-15T00:00:00Z
    assert listed["pagination"]["size"] == 10 and listed["pagination"]["total"] == 2
    assert {t["status"] for t in listed["tasks"]} == {"created"}
    assert _invoke(events["list_tasks_agent_protocol"]).json()["pagination"]["page_size"] == 5

    fetched = _invoke(events["get_task"])
    assert fetched.status == 200 and fetched.json()["task_id"] == events["get_task"]["pathParameters"]["task_id"]

    deleted = _invoke(events["delete_task"])
    assert deleted.status == 200 and deleted.json()["success"] is True


@pytest.mark.parametrize("name", ["get_task", "delete_task"])
def test_invoke_task_event_for_an_unknown_task_answers_404(aws_mock: None, name: str) -> None:
    # Given an empty table, when the sample's task is asked for
    response = _invoke(_load(next(p for p in EVENTS if p.stem == name)))
    # Then the spec's envelope says it does not exist, in the language the event asks for (none: English)
    assert response.status == 404
    assert response.json()["error"]["code"] == "TASK_NOT_FOUND"
    assert response.json()["error"]["message"] == "The specified task does not exist"


def test_invoke_create_event_answers_in_the_language_it_asks_for(aws_mock: None) -> None:
    # Given the create sample (Accept-Language: zh-CN) with an empty input
    event = _load(next(p for p in EVENTS if p.stem == "create_task"))
    event["body"] = json.dumps({"input": ""})
    # Then the error message is the spec's Chinese text
    response = _invoke(event)
    assert response.status == 400
    assert response.json()["error"]["message"] == "请求参数无效"


def test_sandbox_sample_event_runs_its_code(aws_mock: None) -> None:
    # The sandbox function's event (what the steps function sends; `sam local invoke SandboxFunction -e ...`)
    root = Path(__file__).resolve().parents[2]
    props = Template().of_type("AWS::Serverless::Function")["SandboxFunction"]
    route = Route("SandboxFunction", "INVOKE", "SandboxFunction", root / props["CodeUri"], props["Handler"])
    event = _load(root / "events" / "lambda" / "sandbox_run.json")

    result = load_handler(route)(event, apigw.LambdaContext())

    assert result["exit_code"] == 0 and result["stdout"]["text"] == "2 42\n"
    assert [o["path"] for o in result["outputs"]] == ["output/total.txt"]


def test_run_samples_take_a_step_and_end_the_run(aws_mock: None) -> None:
    # The runner's event (what the state machine sends) and the execution's end (what EventBridge sends), for a
    # task the sample run holds: one step with the offline model, then the run ends and gives its slot back.
    root = Path(__file__).resolve().parents[2]
    functions = Template().of_type("AWS::Serverless::Function")
    step = _load(root / "events" / "lambda" / "run_step.json")
    ended = _load(root / "events" / "eventbridge" / "sfn_execution_succeeded.json")
    _seed_task(step["task_id"])
    state = get_table().get_task_state(step["task_id"])
    assert state is not None
    run = RunRecord(step["run_id"], step["task_id"], "running", max_steps=20, base=0, started_at=now_iso())
    runs.store().acquire(state, run, limit=5, now=0)

    def invoke(name: str, event: dict[str, Any]) -> Any:
        route = Route(name, "INVOKE", name, root / functions[name]["CodeUri"], functions[name]["Handler"])
        return load_handler(route)(event, apigw.LambdaContext())

    stepped = invoke("RunnerFunction", step)
    invoke("RunEventsFunction", ended)

    assert stepped == {**step, "done": 1, "is_last": False}
    task = get_table().get_task_state(step["task_id"])
    assert task is not None and task.run_id is None and task.run is not None
    assert task.run.status == task.task.status == "completed"  # the sample's output says is_last
    assert int(get_table().counters()["runs_active"]) == 0


def test_websocket_samples_subscribe_a_connection(aws_mock: None) -> None:
    # `sam local invoke WsFunction -e events/websocket/connect.json`: the sample's task is watched; then the
    # connection moves to the log stream
    root = Path(__file__).resolve().parents[2]
    props = Template().of_type("AWS::Serverless::Function")["WsFunction"]
    route = Route("WsFunction", "WEBSOCKET", "WsFunction", root / props["CodeUri"], props["Handler"])
    connect = _load(root / "events" / "websocket" / "connect.json")
    subscribe = _load(root / "events" / "websocket" / "subscribe_logs.json")
    context = apigw.LambdaContext(function_name="WsFunction")

    refused = load_handler(route)(connect, context)  # no such task yet
    _seed_task(connect["queryStringParameters"]["task_id"])
    accepted = load_handler(route)(connect, context)
    moved = load_handler(route)(subscribe, context)

    assert (refused["statusCode"], accepted["statusCode"], moved["statusCode"]) == (404, 200, 200)
    assert get_table().get_task_state(connect["queryStringParameters"]["task_id"]).watchers == 0  # type: ignore[union-attr]
