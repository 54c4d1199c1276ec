"""The API's error envelope as exceptions: one class per code of the spec's table, each carrying `code`, `message`,
`details` and the HTTP `status`."""

from __future__ import annotations

from typing import Any


class AutoGPTError(Exception):
    """Any error the API answered (or the connection to it failed: `code` CONNECTION_ERROR, `status` 0)."""

    def __init__(self, code: str, message: str, *, status: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code} ({status}): {message}" if status else f"{code}: {message}")
        self.code, self.message, self.status = code, message, status
        self.details: dict[str, Any] = details or {}


class InvalidRequest(AutoGPTError):
    pass


class TaskNotFound(AutoGPTError):
    pass


class StepNotFound(AutoGPTError):
    pass


class ArtifactNotFound(AutoGPTError):
    pass


class TaskAlreadyRunning(AutoGPTError):
    pass


class InsufficientResources(AutoGPTError):
    pass


class RateLimited(AutoGPTError):
    pass


class PayloadTooLarge(AutoGPTError):
    pass


class OpenAIAPIError(AutoGPTError):
    pass


class InternalError(AutoGPTError):
    pass


class ConnectionFailed(AutoGPTError):
    pass


class Unauthorized(AutoGPTError):
    """401: no API key was sent, or the server does not know it (unknown or revoked)."""


class Forbidden(AutoGPTError):
    """403: the key is known but may not do this (a client's key on an operator-only route: keys, restart)."""


class KeyNotFound(AutoGPTError):
    pass


BY_CODE: dict[str, type[AutoGPTError]] = {
    "INVALID_REQUEST": InvalidRequest,
    "TASK_NOT_FOUND": TaskNotFound,
    "STEP_NOT_FOUND": StepNotFound,
    "ARTIFACT_NOT_FOUND": ArtifactNotFound,
    "TASK_ALREADY_RUNNING": TaskAlreadyRunning,
    "INSUFFICIENT_RESOURCES": InsufficientResources,
    "RATE_LIMITED": RateLimited,
    "PAYLOAD_TOO_LARGE": PayloadTooLarge,
    "OPENAI_API_ERROR": OpenAIAPIError,
    "INTERNAL_ERROR": InternalError,
    "UNAUTHORIZED": Unauthorized,
    "FORBIDDEN": Forbidden,
    "KEY_NOT_FOUND": KeyNotFound,
}
# An answer without the spec's envelope (a gateway's own `{"message": "Unauthorized"}`) is named by its status.
BY_STATUS = {401: "UNAUTHORIZED", 403: "FORBIDDEN"}


def from_response(status: int, body: Any) -> AutoGPTError:
    """The exception for an error answer: the spec's envelope when there is one, else what HTTP says."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "code" in error:
        code = str(error["code"])
        kind = BY_CODE.get(code, AutoGPTError)
        return kind(code, str(error.get("message", "")), status=status, details=error.get("details") or {})
    code = BY_STATUS.get(status) or ("INTERNAL_ERROR" if status >= 500 else "INVALID_REQUEST")
    message = body.get("message") if isinstance(body, dict) else None
    return BY_CODE[code](code, str(message or f"HTTP {status}"), status=status)
