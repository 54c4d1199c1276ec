"""API Gateway's REST proxy integration, both ways: an HTTP request becomes the event a function receives, the
function's answer becomes the HTTP response. The tests build their events with the same code."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

# Lambda's limit on a synchronous invocation's payload; API Gateway's on a request body.
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024
API_BODY_LIMIT = 10 * 1024 * 1024


@dataclass
class LambdaContext:
    """What the Lambda runtime passes as `context`, as far as Powertools and Mangum read it."""

    function_name: str = "local"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    deadline_ms: float = field(default_factory=lambda: time.time() * 1000 + 29_000)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.deadline_ms - time.time() * 1000))


def _is_binary(content_type: str, binary_types: list[str]) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return any(media == t or (t.endswith("/*") and media.startswith(t[:-1])) for t in binary_types)


def rest_event(
    *,
    method: str,
    path: str,
    resource: str,
    path_parameters: dict[str, str] | None = None,
    query: str = "",
    headers: list[tuple[str, str]] | dict[str, str] | None = None,
    body: bytes = b"",
    binary_types: list[str] | None = None,
    stage: str = "dev",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The event of API Gateway's REST `aws_proxy` integration (payload format 1.0)."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    params = parse_qsl(query, keep_blank_values=True)
    qs: dict[str, str] = {}
    mqs: dict[str, list[str]] = {}
    for name, value in params:
        qs[name] = value
        mqs.setdefault(name, []).append(value)
    content_type = next((v for k, v in pairs if k.lower() == "content-type"), "")
    encoded = bool(body) and (_is_binary(content_type, binary_types or []) or not _is_utf8(body))
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method.upper(),
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": qs or None,
        "multiValueQueryStringParameters": mqs or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method.upper(),
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "accountId": "123456789012",
            "apiId": "local",
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": single.get("user-agent", "")},
        },
        "body": (base64.b64encode(body).decode() if encoded else body.decode()) if body else None,
        "isBase64Encoded": encoded,
    }


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def event_size(event: dict[str, Any]) -> int:
    return len(json.dumps(event).encode())


@dataclass
class ProxyResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.body)


def parse_response(result: dict[str, Any]) -> ProxyResponse:
    """What API Gateway sends back for a function's proxy result."""
    headers: list[tuple[str, str]] = []
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(v)) for v in values)
    seen = {k.lower() for k, _ in headers}
    headers.extend((k, str(v)) for k, v in (result.get("headers") or {}).items() if k.lower() not in seen)
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
    return ProxyResponse(status=int(result.get("statusCode", 502)), headers=headers, body=body)


def authorizer_event(request: dict[str, Any], method_arn: str) -> dict[str, Any]:
    """What a Lambda REQUEST authorizer receives for a request (REST) or a handshake (WebSocket `$connect`): the
    request's headers, query string and context, the method's ARN, and no body."""
    return {
        "type": "REQUEST",
        "methodArn": method_arn,
        **{k: v for k, v in request.items() if k not in ("body", "isBase64Encoded")},
    }


def method_arn(stage: str, method: str, path: str) -> str:
    return f"arn:aws:execute-api:us-east-1:123456789012:local/{stage}/{method}{path}"
