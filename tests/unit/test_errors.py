"""The error classes: the spec's code table, and the envelope each one produces in both languages."""

from __future__ import annotations

import pytest

from agent_core import errors

# The spec's table (错误代码), plus the two codes DESIGN §1 adds.
SPEC_CODES = [
    (errors.InvalidRequest, "INVALID_REQUEST", 400, "请求参数无效"),
    (errors.TaskNotFound, "TASK_NOT_FOUND", 404, "指定的任务不存在"),
    (errors.StepNotFound, "STEP_NOT_FOUND", 404, "步骤不存在"),
    (errors.ArtifactNotFound, "ARTIFACT_NOT_FOUND", 404, "文件不存在"),
    (errors.TaskAlreadyRunning, "TASK_ALREADY_RUNNING", 409, "任务已在运行中"),
    (errors.InsufficientResources, "INSUFFICIENT_RESOURCES", 429, "资源不足"),
    (errors.OpenAIAPIError, "OPENAI_API_ERROR", 502, "OpenAI API错误"),
    (errors.InternalError, "INTERNAL_ERROR", 500, "服务器内部错误"),
    (errors.RateLimited, "RATE_LIMITED", 429, "请求过于频繁"),
    (errors.PayloadTooLarge, "PAYLOAD_TOO_LARGE", 413, "请求体过大"),
]


@pytest.mark.parametrize(("cls", "code", "status", "zh"), SPEC_CODES, ids=[c[1] for c in SPEC_CODES])
def test_error_carries_the_spec_code_status_and_messages(cls: type[errors.AgentError], code: str, status: int, zh: str):
    error = cls()
    assert (error.code, error.status) == (code, status)
    assert error.body("zh")["error"]["message"] == zh
    english = error.body("en")["error"]["message"]
    assert english and english.isascii()


def test_error_body_is_the_spec_envelope() -> None:
    body = errors.TaskNotFound(task_id="invalid-task-id").body("zh")
    assert body == {
        "success": False,
        "message": "指定的任务不存在",  # the Agent Protocol's shape, beside the spec's envelope
        "error": {
            "code": "TASK_NOT_FOUND",
            "message": "指定的任务不存在",
            "details": {"task_id": "invalid-task-id", "suggestion": "请检查任务ID是否正确"},
        },
    }


def test_error_body_in_english_by_default_language() -> None:
    body = errors.TaskNotFound(task_id="t").body("en")
    assert body["error"]["message"] == "The specified task does not exist"
    assert body["error"]["details"]["suggestion"] == "Check that the task ID is correct"


def test_error_reason_goes_to_details_and_the_exception_text() -> None:
    error = errors.InvalidRequest("page and its alias disagree", field="page")
    assert str(error) == "page and its alias disagree"
    assert error.body("en")["error"]["details"] == {"field": "page", "reason": "page and its alias disagree"}


def test_error_details_drop_none_values() -> None:
    assert errors.InvalidRequest(field="x", hint=None).body("en")["error"]["details"] == {"field": "x"}


def test_error_suggestion_given_by_the_caller_wins() -> None:
    details = errors.TaskNotFound(suggestion="list the tasks first").body("en")["error"]["details"]
    assert details["suggestion"] == "list the tasks first"


def test_error_body_does_not_share_state_between_calls() -> None:
    error = errors.TaskNotFound(task_id="t")
    error.body("zh")
    assert error.body("en")["error"]["details"]["suggestion"] == "Check that the task ID is correct"
    assert "suggestion" not in error.details


def test_route_errors_are_invalid_request_with_their_own_status() -> None:
    assert (errors.RouteNotFound.code, errors.RouteNotFound.status) == ("INVALID_REQUEST", 404)
    assert (errors.MethodNotAllowed.code, errors.MethodNotAllowed.status) == ("INVALID_REQUEST", 405)


def test_every_api_error_is_an_agent_error() -> None:
    assert all(issubclass(cls, errors.AgentError) for cls, *_ in SPEC_CODES)
    assert not issubclass(errors.Conflict, errors.AgentError)  # a storage signal, never shown to a caller
