"""The spec's error codes as exceptions. Each class carries its code, HTTP status and message in both languages;
`http.py` turns any of them into the spec's envelope in one place."""

from __future__ import annotations

from typing import Any, ClassVar


class AgentError(Exception):
    """Base of every error the API reports to its caller."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    status: ClassVar[int] = 500
    message_en: ClassVar[str] = "Internal server error"
    message_zh: ClassVar[str] = "服务器内部错误"
    suggestion_en: ClassVar[str | None] = None
    suggestion_zh: ClassVar[str | None] = None

    def __init__(self, reason: str | None = None, **details: Any) -> None:
        super().__init__(reason or self.message_en)
        self.details: dict[str, Any] = {k: v for k, v in details.items() if v is not None}
        if reason:
            self.details.setdefault("reason", reason)

    def message(self, lang: str) -> str:
        return self.message_zh if lang == "zh" else self.message_en

    def body(self, lang: str) -> dict[str, Any]:
        details = dict(self.details)
        suggestion = self.suggestion_zh if lang == "zh" else self.suggestion_en
        if suggestion:
            details.setdefault("suggestion", suggestion)
        message = self.message(lang)
        # The top-level message is the Agent Protocol's error shape, so clients of either shape read it.
        return {
            "success": False,
            "message": message,
            "error": {"code": self.code, "message": message, "details": details},
        }


class InvalidRequest(AgentError):
    """A parameter or body failed validation."""

    code, status = "INVALID_REQUEST", 400
    message_en, message_zh = "Invalid request parameters", "请求参数无效"


class RouteNotFound(InvalidRequest):
    """No route matches the path (the spec has no code of its own for this)."""

    status = 404
    message_en, message_zh = "No such endpoint", "接口不存在"
    suggestion_en = "See README.md for the endpoints under /ap/v1/agent"
    suggestion_zh = "请参阅 README.md 中 /ap/v1/agent 下的接口列表"


class MethodNotAllowed(InvalidRequest):
    """The path exists, the method does not."""

    status = 405
    message_en, message_zh = "Method not allowed on this endpoint", "该接口不支持此请求方法"


class TaskNotFound(AgentError):
    """No task with this id."""

    code, status = "TASK_NOT_FOUND", 404
    message_en, message_zh = "The specified task does not exist", "指定的任务不存在"
    suggestion_en, suggestion_zh = "Check that the task ID is correct", "请检查任务ID是否正确"


class StepNotFound(AgentError):
    """No step with this id in the task."""

    code, status = "STEP_NOT_FOUND", 404
    message_en, message_zh = "The specified step does not exist", "步骤不存在"
    suggestion_en, suggestion_zh = "Check that the step ID is correct", "请检查步骤ID是否正确"


class ArtifactNotFound(AgentError):
    """No artifact with this id in the task."""

    code, status = "ARTIFACT_NOT_FOUND", 404
    message_en, message_zh = "The specified file does not exist", "文件不存在"
    suggestion_en, suggestion_zh = "Check that the artifact ID is correct", "请检查文件ID是否正确"


class TaskAlreadyRunning(AgentError):
    """The task is busy with a step or a run."""

    code, status = "TASK_ALREADY_RUNNING", 409
    message_en, message_zh = "The task is already running", "任务已在运行中"
    suggestion_en, suggestion_zh = "Wait for the current step to finish", "请等待当前步骤完成后重试"


class RunNotCurrent(TaskAlreadyRunning):
    """A step of a run that no longer holds its task (cancelled, or handed over by a restart). The state machine
    retries TaskAlreadyRunning, not this (it matches errors by class name): the execution ends."""


class InsufficientResources(AgentError):
    """A limit (concurrent runs, budget, item counts) is reached."""

    code, status = "INSUFFICIENT_RESOURCES", 429
    message_en, message_zh = "Insufficient resources", "资源不足"


class RateLimited(AgentError):
    """Too many requests from this client."""

    code, status = "RATE_LIMITED", 429
    message_en, message_zh = "Too many requests", "请求过于频繁"
    suggestion_en, suggestion_zh = "Retry after the time in Retry-After", "请在 Retry-After 指定的时间后重试"


class PayloadTooLarge(AgentError):
    """The request body exceeds what the endpoint accepts."""

    code, status = "PAYLOAD_TOO_LARGE", 413
    message_en, message_zh = "Request body too large", "请求体过大"


class UploadTooLarge(PayloadTooLarge):
    """A file too large to upload through the API: it has to go through a presigned S3 POST."""

    suggestion_en = "Upload larger files with POST /tasks/{task_id}/artifacts/uploads (presigned S3 POST, up to 100 MB)"
    suggestion_zh = "较大的文件请通过 POST /tasks/{task_id}/artifacts/uploads 获取预签名 S3 上传地址（最大 100MB）"


class FileTypeNotAllowed(InvalidRequest):
    """The file's type is not on the configured allow-list."""

    message_en, message_zh = "File type not allowed", "不支持的文件类型"
    suggestion_en = "Upload one of the types in details.allowed_types"
    suggestion_zh = "请上传 details.allowed_types 中列出的文件类型"


class OpenAIAPIError(AgentError):
    """The model provider failed after retries."""

    code, status = "OPENAI_API_ERROR", 502
    message_en, message_zh = "OpenAI API error", "OpenAI API错误"


class InternalError(AgentError):
    """Anything unexpected; details carry only the request id."""


class StorageError(InternalError):
    """S3 failed; details name the operation, never the provider's message."""

    message_en, message_zh = "File storage failed", "文件存储失败"


class Conflict(Exception):
    """A storage write lost a race (a condition failed); the domain layer decides what it means."""
