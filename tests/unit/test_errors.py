"""The error classes: the spec's code table, and the envelope each one produces in both languages."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from agent_core import errors

# The spec's table (错误代码), plus the codes we add (DESIGN §1, and RUN_NOT_FOUND).
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
    (errors.RunNotFound, "RUN_NOT_FOUND", 404, "该任务尚未运行过"),
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


# -- the details' prose in Chinese -----------------------------------------------------------------------------------

CJK = re.compile(r"[\u4e00-\u9fff]")
ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "layers" / "common" / "agent_core").rglob("*.py"), *(ROOT / "functions").glob("*/app.py")])
VALIDATORS = {"models.py", "api.py"}  # where a ValueError's text becomes a validation error's reason


def _error_names() -> set[str]:
    names, pending = set(), [errors.AgentError]
    while pending:
        kind = pending.pop()
        names.add(kind.__name__)
        pending.extend(kind.__subclasses__())
    return names


def _sample(node: ast.expr) -> str | None:
    """The text a literal (or an f-string, with 7 for each value) gives at run time; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(str(p.value) if isinstance(p, ast.Constant) else "7" for p in node.values)
    return None


def _literal_prose() -> list[tuple[str, int, str]]:
    """Every reason (an API error's first argument, a validator's ValueError) and suggestion the code writes."""
    names, found = _error_names(), []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            texts = [k.value for k in node.keywords if k.arg == "suggestion"]
            if node.args and (callee in names or (callee == "ValueError" and path.name in VALIDATORS)):
                texts.append(node.args[0])
            found += [(path.name, node.lineno, t) for t in map(_sample, texts) if t]
    return found


def test_the_code_raises_errors_with_prose_at_all() -> None:
    assert len(_literal_prose()) > 40  # the scan sees the code's reasons (a broken scan would pass the next test)


@pytest.mark.parametrize(("file", "line", "text"), _literal_prose(), ids=lambda v: str(v)[:40])
def test_every_reason_and_suggestion_in_the_code_has_its_chinese(file: str, line: int, text: str) -> None:
    chinese = errors.translate(text, "zh")
    assert chinese != text and CJK.search(chinese), f"{file}:{line}: add {text!r} to errors.CATALOG_ZH"


def test_translate_fills_the_values_into_the_chinese() -> None:
    assert (
        errors.translate("the file has 12 bytes; files may have at most 10", "zh") == "文件为 12 字节，文件最大 10 字节"
    )
    assert errors.translate("files of type (no extension) are not accepted", "zh") == "不接受没有扩展名的文件"
    assert errors.translate("files of type .exe are not accepted", "zh") == "不接受 .exe 类型的文件"
    # a literal {task_id} in a suggestion stays as it is
    assert errors.translate(errors.UploadTooLarge.suggestion_en, "zh") == errors.UploadTooLarge.suggestion_zh
    assert errors.translate("wait for the run to end, or stop it with POST /tasks/{task_id}/cancel", "zh") == (
        "请等待运行结束，或通过 POST /tasks/{task_id}/cancel 停止运行"
    )


def test_translate_leaves_english_and_unknown_text_alone() -> None:
    assert errors.translate("the file needs a name", "en") == "the file needs a name"
    assert errors.translate("something nobody wrote", "zh") == "something nobody wrote"
    text = errors.Text("two words", "两个词")
    assert (errors.translate(text, "zh"), errors.translate(text, "en")) == ("两个词", "two words")
    assert type(errors.translate(text, "en")) is str


def test_every_sentence_of_the_details_is_translated_and_nothing_else() -> None:
    error = errors.InvalidRequest(
        "the file needs a name",
        field="file",
        file_name="the file needs a name",  # data, even when it reads like a sentence
        errors=[{"field": "a", "reason": errors.Text("bad", "不对")}],
    )

    details = error.body("zh")["error"]["details"]

    assert details == {
        "field": "file",
        "file_name": "the file needs a name",
        "errors": [{"field": "a", "reason": "不对"}],
        "reason": "文件必须有名称",
    }
    assert error.body("en")["error"]["details"]["errors"] == [{"field": "a", "reason": "bad"}]


def test_a_callers_suggestion_is_translated_too() -> None:
    details = errors.InsufficientResources(suggestion="retry in a second").body("zh")["error"]["details"]
    assert details["suggestion"] == "请一秒后重试"


def test_an_envelope_made_elsewhere_is_localized() -> None:
    gateway = {
        "success": False,
        "message": "Request body too large",
        "error": {
            "code": "PAYLOAD_TOO_LARGE",
            "message": "Request body too large",
            "details": {"limit_bytes": 4500000, "suggestion": errors.UploadTooLarge.suggestion_en},
        },
    }

    localized = errors.localized_envelope(gateway, "zh")

    assert localized["message"] == localized["error"]["message"] == "请求体过大"
    assert localized["error"]["details"] == {"limit_bytes": 4500000, "suggestion": errors.UploadTooLarge.suggestion_zh}
    assert gateway["message"] == "Request body too large"  # a copy: the template's body stays as it is


def test_run_not_found_is_ours_in_the_spec_pattern() -> None:
    error = errors.RunNotFound(task_id="t")
    assert (error.code, error.status) == ("RUN_NOT_FOUND", 404)
    assert error.body("zh")["error"]["details"] == {
        "task_id": "t",
        "suggestion": "请通过 POST /tasks/{task_id}/run 启动运行",
    }
