"""The spec's error codes as exceptions. Each class carries its code, HTTP status and message in both languages;
`api.py` turns any of them into the spec's envelope in one place, in the caller's language: the message from the
class, and the prose in `details` (`reason`, `suggestion`, each field error's `reason`) from the catalog below."""

from __future__ import annotations

import re
from functools import cache
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
        if self.suggestion_en:
            details.setdefault("suggestion", Text(self.suggestion_en, self.suggestion_zh or self.suggestion_en))
        details = localized_details(details, lang)
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


class RunNotFound(AgentError):
    """The task exists but has never been run (the spec has no code for runs: ours, in the spec's pattern)."""

    code, status = "RUN_NOT_FOUND", 404
    message_en, message_zh = "The task has never been run", "该任务尚未运行过"
    suggestion_en = "POST /tasks/{task_id}/run to start one"
    suggestion_zh = "请通过 POST /tasks/{task_id}/run 启动运行"


class Unauthorized(AgentError):
    """No key, an unknown one or a revoked one (the spec's development profile has no auth: ours, in its pattern)."""

    code, status = "UNAUTHORIZED", 401
    message_en, message_zh = "A valid API key is required", "需要有效的 API 密钥"
    suggestion_en = "Send Authorization: Bearer <key> (or x-api-key: <key>; ?token=<key> on a WebSocket)"
    suggestion_zh = "请发送 Authorization: Bearer <key>（或 x-api-key: <key>；WebSocket 可用 ?token=<key>）"


class Forbidden(AgentError):
    """The key is valid, the route is the operator's alone."""

    code, status = "FORBIDDEN", 403
    message_en, message_zh = "Only the operator's key may do this", "只有运营者密钥可以执行此操作"


class KeyNotFound(AgentError):
    """No client key with this id."""

    code, status = "KEY_NOT_FOUND", 404
    message_en, message_zh = "The specified key does not exist", "指定的密钥不存在"
    suggestion_en, suggestion_zh = "List the keys with GET /keys", "请通过 GET /keys 查看密钥列表"


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


# -- the details' prose in the caller's language ---------------------------------------------------------------------


class Text(str):
    """Prose in English, which is what it is as a `str` (logs, the exception's text), with its Chinese beside it: for
    texts made from parts, such as a validation error's, which the catalog cannot hold."""

    zh: str

    def __new__(cls, en: str, zh: str) -> Text:
        text = super().__new__(cls, en)
        text.zh = zh
        return text


# The details' prose in Chinese, by its English text, as gettext keeps a catalog: the code raising an error writes
# English only, and the language is chosen here, once, when the envelope is made. `{name}` stands for any value (a
# number, a name) and comes back in the Chinese text; a literal `{task_id}` in a suggestion is matched as itself.
# tests/unit/test_errors.py checks that every literal reason and suggestion in the code has its entry here.
CATALOG_ZH: dict[str, str] = {
    # request validation (api.py, models.py)
    "the body is not valid JSON": "请求体不是有效的 JSON",
    "the body is {size} bytes; this endpoint accepts at most {limit}":
        "请求体为 {size} 字节，此接口最多接受 {limit} 字节",
    "{name} and its alias disagree": "{name} 与其别名的取值不一致",
    "must be an ISO 8601 date-time, e.g. 2024-01-15T10:30:00Z": "必须是 ISO 8601 日期时间，例如 2024-01-15T10:30:00Z",
    "input is {size} characters; the limit is {limit}": "input 有 {size} 个字符，上限为 {limit}",
    "additional_input nests objects or arrays more than {depth} levels deep":
        "additional_input 中对象或数组的嵌套超过 {depth} 层",
    "additional_input holds NaN or Infinity, which JSON does not allow":
        "additional_input 含有 NaN 或 Infinity，JSON 不允许这两个值",
    "additional_input holds a lone surrogate (\\ud800-\\udfff), which is not text":
        "additional_input 含有单独的代理码位（\\ud800-\\udfff），不是有效的文本",
    "additional_input is {size} bytes of JSON; the limit is {limit}":
        "additional_input 的 JSON 为 {size} 字节，上限为 {limit}",
    "created_after is out of range": "created_after 超出可表示的范围",
    # what Starlette and FastAPI say of a body they cannot parse
    "There was an error parsing the body": "无法解析请求体",
    "Missing boundary in multipart.": "multipart 请求缺少 boundary",
    "Invalid multipart data.": "multipart 数据无效",
    'The Content-Disposition header field "name" must be provided.': 'Content-Disposition 头必须提供 "name" 字段',
    "Too many files. Maximum number of files is {limit}.": "文件过多，最多 {limit} 个",
    "Too many fields. Maximum number of fields is {limit}.": "字段过多，最多 {limit} 个",
    "Part exceeded maximum size of {size}KB.": "某一部分超过了 {size}KB 的上限",
    "Field exceeded maximum size of {size}KB.": "某一字段超过了 {size}KB 的上限",
    # file names and paths (filenames.py)
    "backslashes are not allowed; use /": "不允许使用反斜杠，请使用 /",
    "control character U+{code} is not allowed": "不允许使用控制字符 U+{code}",
    "'..' is not allowed: the path must stay inside the task": "不允许使用 '..'：路径必须位于任务之内",
    "absolute paths are not allowed: give a path inside the task": "不允许使用绝对路径：请给出任务之内的路径",
    "a name may have at most {limit} bytes (UTF-8)": "名称最多 {limit} 字节（UTF-8）",
    "the path may have at most {limit} bytes (UTF-8)": "路径最多 {limit} 字节（UTF-8）",
    "the file needs a name": "文件必须有名称",
    "files of type (no extension) are not accepted": "不接受没有扩展名的文件",
    "files of type {extension} are not accepted": "不接受 {extension} 类型的文件",
    # artifacts (artifacts.py, functions/artifacts)
    "relative_path differs between the form and the query": "表单与查询参数中的 relative_path 不一致",
    "send one file per request, not {count}": "每个请求只能发送一个文件，而不是 {count} 个",
    "the file has {size} bytes; the API accepts at most {limit}": "文件为 {size} 字节，通过 API 上传最多 {limit} 字节",
    "the file has {size} bytes; files may have at most {limit}": "文件为 {size} 字节，文件最大 {limit} 字节",
    "the path must end with a file name": "路径必须以文件名结尾",
    "the task holds {limit} files, the most it may": "任务已有 {limit} 个文件，达到上限",
    "Delete files the task no longer needs, or replace one by uploading to its path":
        "请删除任务不再需要的文件，或上传到已有文件的路径以替换该文件",
    "the file kept changing while being deleted": "删除期间文件一直在变化，请重试",
    "the task's files kept changing while this one was stored": "保存此文件期间任务的文件一直在变化，请重试",
    "the file has not been uploaded yet": "文件尚未上传",
    "POST the file to upload.url with upload.fields first": "请先将文件连同 upload.fields 以 POST 上传到 upload.url",
    "the uploaded file has {size} bytes, not the {declared} declared; it was deleted":
        "上传的文件为 {size} 字节，而不是声明的 {declared} 字节；该文件已删除",
    "ask for a new upload with the file's real size (POST .../artifacts/uploads), then send it":
        "请按文件的实际大小重新申请上传（POST .../artifacts/uploads），然后再发送文件",
    # tasks, steps and runs
    "the task kept changing while being deleted": "删除期间任务一直在变化，请重试",
    "the task store is busy with other writes; try again": "任务存储正忙于其他写入，请重试",
    "retry in a second": "请一秒后重试",
    "the task was created; start it later with POST /tasks/{task_id}/run":
        "任务已创建；请稍后通过 POST /tasks/{task_id}/run 启动",
    "model {model} is not allowed": "不允许使用模型 {model}",
    "images must be a list of at most {limit} https:// or data:image/ URLs":
        "images 必须是最多 {limit} 个 https:// 或 data:image/ 地址的列表",
    "max_steps must be a whole number from 1 to {ceiling}": "max_steps 必须是 1 到 {ceiling} 之间的整数",
    "auto_run must be true or false": "auto_run 必须是 true 或 false",
    "the task kept changing; try again": "任务一直在变化，请重试",
    "a run is in progress on this task": "该任务正在运行中",
    "wait for the run to end, or stop it with POST /tasks/{task_id}/cancel":
        "请等待运行结束，或通过 POST /tasks/{task_id}/cancel 停止运行",
    "{limit} tasks are running, the most allowed at once": "已有 {limit} 个任务在运行，达到同时运行的上限",
    "retry when a run ends (GET /status shows active_tasks)": "请在有运行结束后重试（GET /status 中的 active_tasks）",
    "the task has no run in progress": "该任务没有正在进行的运行",
    "the run no longer holds this task": "该运行已不再持有此任务",
    "the OpenAI budget is spent": "OpenAI 预算已用完",
    "the client's budget is spent": "该客户端的预算已用完",
    "name must be printable text": "name 必须是可打印的文本",
    "the task was deleted while the step ran": "步骤执行期间任务已被删除",
    "the step outlived its lease; another step has the task": "步骤超出了租约时间，任务已由另一个步骤接手",
    "the task kept changing while the step was stored": "保存步骤期间任务一直在变化",
    "this Idempotency-Key was used with a different request": "此 Idempotency-Key 已用于另一个不同的请求",
    "a request with this Idempotency-Key is still being processed": "使用此 Idempotency-Key 的请求仍在处理中",
    "the model API answered {status}": "模型 API 返回了 {status}",
    "the model API timed out": "模型 API 超时",
    "the model API could not be reached": "无法连接模型 API",
    # the gateway's own answers (template.yaml's GatewayResponses and web ACL)
    "Upload large files with POST /tasks/{task_id}/artifacts/uploads":
        "较大的文件请通过 POST /tasks/{task_id}/artifacts/uploads 上传",
    "Request quota exceeded": "请求配额已用完",
    "Missing or invalid API key": "API 密钥缺失或无效",
    "A valid API key is required": "需要有效的 API 密钥",
    "Send Authorization: Bearer <key> (or x-api-key: <key>; ?token=<key> on a WebSocket)":
        "请发送 Authorization: Bearer <key>（或 x-api-key: <key>；WebSocket 可用 ?token=<key>）",
}  # fmt: skip
# A validation error's reason in Chinese by pydantic's error type, `{name}` from its context. A type not here reads
# "取值无效" with pydantic's English after it.
VALIDATION_ZH: dict[str, str] = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_type": "应为字符串",
    "string_too_short": "至少应有 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "string_unicode": "应为有效的 Unicode 字符串",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数，不能带小数部分",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "finite_number": "应为有限的数字",
    "bool_type": "应为布尔值",
    "bool_parsing": "应为布尔值（true 或 false）",
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "应大于或等于 {ge}",
    "less_than": "应小于 {lt}",
    "less_than_equal": "应小于或等于 {le}",
    "literal_error": "应为以下值之一：{expected}",
    "enum": "应为以下值之一：{expected}",
    "uuid_type": "应为 UUID 字符串",
    "uuid_parsing": "应为有效的 UUID",
    "datetime_type": "应为 ISO 8601 日期时间",
    "datetime_parsing": "应为有效的 ISO 8601 日期时间",
    "datetime_from_date_parsing": "应为有效的 ISO 8601 日期时间",
    "timezone_aware": "日期时间应带时区",
    "dict_type": "应为 JSON 对象",
    "model_type": "应为 JSON 对象",
    "model_attributes_type": "应为 JSON 对象",
    "list_type": "应为数组",
    "too_short": "至少应有 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "json_type": "应为 JSON",
    "json_invalid": "不是有效的 JSON",
}
_PROSE = ("reason", "suggestion")  # the details that are sentences; the others are data (ids, fields, sizes)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def translate(text: str, lang: str) -> str:
    """`text` in `lang`: English as it is, Chinese from the text itself (Text) or the catalog, else unchanged."""
    if lang != "zh":
        return str(text)
    if isinstance(text, Text):
        return text.zh
    catalog = _catalog()
    if text in catalog:
        return catalog[text]
    for pattern, zh in _patterns():
        if found := pattern.fullmatch(text):
            return _fill(zh, found.groupdict())
    return str(text)


def _fill(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), template)


def localized_details(details: dict[str, Any], lang: str) -> dict[str, Any]:
    """The details with their prose in `lang`, each field error's too."""
    out: dict[str, Any] = {}
    for key, value in details.items():
        if key in _PROSE and isinstance(value, str):
            value = translate(value, lang)
        elif key == "errors" and isinstance(value, list):
            value = [localized_details(v, lang) if isinstance(v, dict) else v for v in value]
        out[key] = value
    return out


def localized_envelope(body: dict[str, Any], lang: str) -> dict[str, Any]:
    """An error envelope made elsewhere (the gateway's responses, in English) in `lang`."""
    out = dict(body)
    if isinstance(out.get("message"), str):
        out["message"] = translate(out["message"], lang)
    if isinstance(error := out.get("error"), dict):
        error = out["error"] = dict(error)
        if isinstance(error.get("message"), str):
            error["message"] = translate(error["message"], lang)
        if isinstance(error.get("details"), dict):
            error["details"] = localized_details(error["details"], lang)
    return out


@cache
def _catalog() -> dict[str, str]:
    """The catalog, and every error class's message and suggestion (the gateway's bodies repeat them)."""
    found: dict[str, str] = {}
    pending: list[type[AgentError]] = [AgentError]
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        found[kind.message_en] = kind.message_zh
        if kind.suggestion_en and kind.suggestion_zh:
            found[kind.suggestion_en] = kind.suggestion_zh
    return {**found, **CATALOG_ZH}


@cache
def _patterns() -> list[tuple[re.Pattern[str], str]]:
    """The entries with placeholders as patterns: the literal parts as they are, each `{name}` any text."""
    patterns = []
    for en, zh in _catalog().items():
        parts = _PLACEHOLDER.split(en)  # literal, name, literal, name, ..., literal
        if len(parts) == 1:
            continue
        regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
        patterns.append((re.compile(regex, re.DOTALL), zh))
    return patterns
