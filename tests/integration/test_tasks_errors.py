"""Refused requests through the handler: the spec's envelope, the offending field in `details`, request limits,
languages, unknown routes, and unexpected failures (500 with a request id, no internals)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from agent_core import aws
from agent_core.config import get_settings
from devserver import apigw
from devserver.gateway import load_handler
from devserver.template import Template

ROUTES = Template().routes()


def _error(response: apigw.ProxyResponse, status: int, code: str) -> dict[str, Any]:
    """The envelope's `error`, after checking the envelope's shape, status and code."""
    assert response.status == status, response.body
    body = response.json()
    assert set(body) == {"success", "message", "error"} and body["success"] is False
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["message"] == body["error"]["message"]  # the Agent Protocol's shape beside the spec's
    assert body["error"]["code"] == code
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": 5}, "input"),
        ({"input": ["a"]}, "input"),
        ({"input": None}, "input"),
        ({}, "input"),
        ({"additional_input": {"a": 1}}, "input"),
        ({"input": ""}, "input"),
        ({"input": "x", "additional_input": [1]}, "additional_input"),
        ({"input": "x", "additional_input": "text"}, "additional_input"),
        ({"input": "x", "inputs": "typo"}, "inputs"),
        ([{"input": "x"}], "body"),
        ("input", "body"),
    ],
    ids=[
        "input-int",
        "input-list",
        "input-null",
        "empty-object",
        "missing-input",
        "empty-input",
        "additional-list",
        "additional-string",
        "unknown-field",
        "array-body",
        "string-body",
    ],
)
def test_create_task_invalid_body_is_400_naming_the_field(api, body: Any, field: str) -> None:
    error = _error(api("POST", "/tasks", json_body=body), 400, "INVALID_REQUEST")
    assert error["message"] == "Invalid request parameters"
    assert error["details"]["field"] == field
    assert error["details"]["reason"]
    assert error["details"]["errors"][0]["field"] == field


def test_create_task_malformed_json_is_400(api) -> None:
    response = api("POST", "/tasks", body=b'{"input": "x",', headers={"content-type": "application/json"})
    error = _error(response, 400, "INVALID_REQUEST")
    assert error["details"]["field"] == "body"
    assert "JSON" in error["details"]["reason"]


def test_create_task_empty_body_is_400(api) -> None:
    _error(api("POST", "/tasks", body=b"", headers={"content-type": "application/json"}), 400, "INVALID_REQUEST")


def test_create_task_input_at_the_limit_is_accepted(api) -> None:
    limit = get_settings().max_input_chars
    assert api("POST", "/tasks", json_body={"input": "x" * limit}).status == 200


def test_create_task_input_over_the_limit_is_400(api) -> None:
    limit = get_settings().max_input_chars
    error = _error(api("POST", "/tasks", json_body={"input": "x" * (limit + 1)}), 400, "INVALID_REQUEST")
    assert error["details"]["field"] == "input"
    assert str(limit) in error["details"]["reason"]


def test_create_task_limit_counts_characters_not_bytes(api) -> None:
    # Given an input of exactly the limit in characters, each 3 bytes in UTF-8
    limit = get_settings().max_input_chars
    body = json.dumps({"input": "数" * limit}, ensure_ascii=False).encode()
    assert len(body) < get_settings().max_json_body_bytes
    assert api("POST", "/tasks", body=body, headers={"content-type": "application/json"}).status == 200


def test_create_task_additional_input_over_the_limit_is_400(api) -> None:
    limit = get_settings().max_additional_input_bytes
    response = api("POST", "/tasks", json_body={"input": "x", "additional_input": {"blob": "y" * limit}})
    error = _error(response, 400, "INVALID_REQUEST")
    assert error["details"]["field"] == "additional_input"


def test_create_task_body_over_the_limit_is_413(api) -> None:
    limit = get_settings().max_json_body_bytes
    response = api("POST", "/tasks", json_body={"input": "x" * (limit + 1)})
    error = _error(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"]["limit_bytes"] == limit
    assert error["details"]["size_bytes"] > limit


def test_create_task_body_over_the_limit_without_content_length_is_413(aws_mock) -> None:
    # Given a proxy event as API Gateway often sends it: a body, no Content-Length header
    body = json.dumps({"input": "x", "additional_input": {}}).encode() + b" " * get_settings().max_json_body_bytes
    route = next(r for r in ROUTES if r.function == "TasksFunction" and r.method == "POST")
    event = apigw.rest_event(
        method="POST", path=route.path, resource=route.path, headers={"Content-Type": "application/json"}, body=body
    )
    # Then the body itself is measured
    response = apigw.parse_response(load_handler(route)(event, apigw.LambdaContext()))
    assert _error(response, 413, "PAYLOAD_TOO_LARGE")["details"]["size_bytes"] == len(body)


def test_create_task_without_content_length_under_the_limit_is_created(aws_mock) -> None:
    route = next(r for r in ROUTES if r.function == "TasksFunction" and r.method == "POST")
    event = apigw.rest_event(
        method="POST",
        path=route.path,
        resource=route.path,
        headers={"Content-Type": "application/json"},
        body=b'{"input": "no length header"}',
    )
    response = apigw.parse_response(load_handler(route)(event, apigw.LambdaContext()))
    assert response.status == 200 and response.json()["input"] == "no length header"


def test_create_task_refusals_store_nothing(api) -> None:
    api("POST", "/tasks", json_body={"input": 5})
    api("POST", "/tasks", json_body={"input": "x" * (get_settings().max_input_chars + 1)})
    assert api("GET", "/tasks").json()["pagination"]["total"] == 0


# -- languages -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept_language", "message", "suggestion"),
    [
        (None, "The specified task does not exist", "Check that the task ID is correct"),
        ("zh", "指定的任务不存在", "请检查任务ID是否正确"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "指定的任务不存在", "请检查任务ID是否正确"),
        ("en-US,en;q=0.9,zh;q=0.8", "The specified task does not exist", "Check that the task ID is correct"),
        ("en;q=0.3, zh-TW;q=0.7", "指定的任务不存在", "请检查任务ID是否正确"),
        ("fr-FR", "The specified task does not exist", "Check that the task ID is correct"),
        ("zh;q=0", "The specified task does not exist", "Check that the task ID is correct"),
    ],
)
def test_get_task_not_found_speaks_the_negotiated_language(
    api, accept_language: str | None, message: str, suggestion: str
) -> None:
    headers = {"Accept-Language": accept_language} if accept_language else None
    error = _error(api("GET", f"/tasks/{uuid.uuid4()}", headers=headers), 404, "TASK_NOT_FOUND")
    assert error["message"] == message
    assert error["details"]["suggestion"] == suggestion


def test_create_task_invalid_speaks_chinese_when_asked(api) -> None:
    error = _error(api("POST", "/tasks", json_body={}, headers={"Accept-Language": "zh"}), 400, "INVALID_REQUEST")
    assert error["message"] == "请求参数无效"


def test_create_task_too_large_speaks_chinese_when_asked(api) -> None:
    big = {"input": "x" * (get_settings().max_json_body_bytes + 1)}
    error = _error(api("POST", "/tasks", json_body=big, headers={"Accept-Language": "zh"}), 413, "PAYLOAD_TOO_LARGE")
    assert error["message"] == "请求体过大"


# -- routes the function does not serve --------------------------------------------------------------------------


def _invoke_tasks_function(method: str, path: str, headers: dict[str, str] | None = None) -> apigw.ProxyResponse:
    route = next(r for r in ROUTES if r.function == "TasksFunction")
    event = apigw.rest_event(method=method, path=path, resource="/{proxy+}", headers=headers)
    return apigw.parse_response(load_handler(route)(event, apigw.LambdaContext()))


def test_handler_unknown_path_is_404_envelope(aws_mock) -> None:
    error = _error(_invoke_tasks_function("GET", "/ap/v1/agent/nothing-here"), 404, "INVALID_REQUEST")
    assert error["message"] == "No such endpoint"
    assert error["details"]["path"] == "/ap/v1/agent/nothing-here"
    assert error["details"]["method"] == "GET"


def test_handler_unknown_path_speaks_chinese_when_asked(aws_mock) -> None:
    response = _invoke_tasks_function("GET", "/ap/v1/agent/nothing-here", {"Accept-Language": "zh"})
    assert _error(response, 404, "INVALID_REQUEST")["message"] == "接口不存在"


def test_handler_unknown_method_is_405_envelope(aws_mock) -> None:
    response = _invoke_tasks_function("PUT", f"/ap/v1/agent/tasks/{uuid.uuid4()}")
    assert _error(response, 405, "INVALID_REQUEST")["details"]["method"] == "PUT"


# -- unexpected failures -----------------------------------------------------------------------------------------


@pytest.fixture
def failing_dynamodb(aws_mock) -> None:
    """The adapter's own DynamoDB client fails every call with an error full of internals."""

    def fail(**_: Any) -> None:
        raise RuntimeError("boom: arn:aws:dynamodb:us-east-1:123456789012:table/secret at /var/task/app.py")

    aws.client("dynamodb").meta.events.register("before-call.dynamodb.*", fail)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/ap/v1/agent/tasks", None),
        ("POST", "/ap/v1/agent/tasks", b'{"input": "x"}'),
        ("GET", f"/ap/v1/agent/tasks/{uuid.UUID(int=1)}", None),
        ("DELETE", f"/ap/v1/agent/tasks/{uuid.UUID(int=1)}", None),
    ],
    ids=["list", "create", "get", "delete"],
)
def test_storage_failure_is_500_with_the_request_id_and_no_internals(
    failing_dynamodb, method: str, path: str, body: bytes | None
) -> None:
    # Given a Lambda invocation with a known request id
    route = next(r for r in ROUTES if r.function == "TasksFunction" and r.method == method and r.pattern.match(path))
    params = route.pattern.match(path)
    assert params
    event = apigw.rest_event(
        method=method,
        path=path,
        resource=route.path,
        path_parameters=params.groupdict(),
        headers={"Content-Type": "application/json"},
        body=body or b"",
    )
    context = apigw.LambdaContext()
    # When the table fails
    response = apigw.parse_response(load_handler(route)(event, context))
    # Then the caller gets the envelope with the request id to quote, and nothing of the failure itself
    error = _error(response, 500, "INTERNAL_ERROR")
    assert error["message"] == "Internal server error"
    assert error["details"] == {"request_id": context.aws_request_id}
    assert b"boom" not in response.body and b"Traceback" not in response.body and b"arn:" not in response.body


def test_storage_failure_speaks_chinese_when_asked(failing_dynamodb, api) -> None:
    response = api("GET", "/tasks", headers={"Accept-Language": "zh-CN"})
    assert _error(response, 500, "INTERNAL_ERROR")["message"] == "服务器内部错误"


def test_storage_failure_still_answers_a_browser_with_cors_headers(failing_dynamodb, api) -> None:
    response = api("GET", "/tasks", headers={"Origin": "https://app.example"})
    assert _error(response, 500, "INTERNAL_ERROR")
    assert response.header("access-control-allow-origin") == "*"


@pytest.mark.parametrize("depth", [33, 256, 998, 5000])
def test_deeply_nested_additional_input_is_refused_before_anything_is_stored(api, depth: int) -> None:
    # Stored, such a value would break every later answer that includes it (a poison record).
    nested = "[" * depth + "]" * depth
    body = f'{{"input": "x", "additional_input": {{"a": {nested}}}}}'.encode()
    before = api("GET", "/tasks").json()["pagination"]["total"]

    response = api("POST", "/tasks", body=body, headers={"content-type": "application/json"})

    assert response.status == 400, response.body[:300]
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
    assert api("GET", "/tasks").json()["pagination"]["total"] == before


def test_additional_input_nested_to_the_limit_is_taken(api) -> None:
    nested: dict = {}
    for _ in range(31):
        nested = {"n": nested}

    response = api("POST", "/tasks", json_body={"input": "x", "additional_input": nested})

    assert response.status == 200
    assert api("GET", f"/tasks/{response.json()['task_id']}").json()["additional_input"] == nested


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(api, token: str) -> None:
    body = f'{{"input": "x", "additional_input": {{"v": {token}}}}}'.encode()

    response = api("POST", "/tasks", body=body, headers={"content-type": "application/json"})

    error = _error(response, 400, "INVALID_REQUEST")
    assert error["details"]["field"] == "additional_input"


def test_a_steps_additional_input_has_the_tasks_limit(api) -> None:
    task_id = api("POST", "/tasks", json_body={"input": "x"}).json()["task_id"]
    limit = get_settings().max_additional_input_bytes

    response = api("POST", f"/tasks/{task_id}/steps", json_body={"additional_input": {"blob": "y" * limit}})

    error = _error(response, 400, "INVALID_REQUEST")
    assert error["details"]["field"] == "additional_input"
    assert api("GET", f"/tasks/{task_id}/steps").json()["steps"] == []


def test_every_field_error_says_where_the_field_was(api) -> None:
    # A JSON body's field, a form's field, a query parameter, each named with its place.
    task_id = api("POST", "/tasks", json_body={"input": "x"}).json()["task_id"]
    body = b'--b\r\nContent-Disposition: form-data; name="relative_path"\r\n\r\n../x.txt\r\n'
    body += b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.txt"\r\n\r\nx\r\n--b--\r\n'
    form = api(
        "POST", f"/tasks/{task_id}/artifacts", body=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    big = api("POST", "/tasks", json_body={"input": "x", "additional_input": {"b": "y" * 70_000}})
    query = api("GET", "/tasks", query={"created_after": "9999-12-31T23:59:59-14:00"})

    details = form.json()["error"]["details"]
    assert form.status == 400 and (details["field"], details["in"]) == ("relative_path", "form")
    assert big.status == 400 and big.json()["error"]["details"]["in"] == "body"
    assert query.status == 400 and query.json()["error"]["details"]["in"] == "query"
    assert form.json()["message"] == form.json()["error"]["message"]  # the Agent Protocol's top-level message


@pytest.mark.parametrize(
    ("images", "status"),
    [
        (["https://example.com/a.png", "data:image/png;base64,iVBORw0KGgo="], 200),
        (["http://example.com/a.png"], 400),  # https only, as the README says
        (["ftp://example.com/a.png"], 400),
        ([f"https://example.com/{i}.png" for i in range(11)], 400),
    ],
)
def test_image_urls_follow_one_rule(api, images: list[str], status: int) -> None:
    response = api("POST", "/tasks", json_body={"input": "look", "additional_input": {"images": images}})

    assert response.status == status
    if status == 400:
        assert "https:// or data:image/ URLs" in response.json()["error"]["details"]["reason"]


def test_json_labelled_as_a_form_is_read_as_json(api) -> None:
    # What `curl -d '{...}' $B/tasks` sends, without -H 'Content-Type: application/json'
    body = b'{"input": "sent by curl -d", "additional_input": {"k": 1}}'

    response = api("POST", "/tasks", body=body, headers={"content-type": "application/x-www-form-urlencoded"})

    assert response.status == 200 and response.json()["input"] == "sent by curl -d"
    assert response.json()["additional_input"] == {"k": 1}
