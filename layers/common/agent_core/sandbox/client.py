"""Runs a request in the sandbox function, the way the steps function reaches it on AWS: one synchronous Lambda
invoke (locally the dev server and the tests route it to the same handler)."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from .. import aws
from ..config import get_settings
from .protocol import LAMBDA_PAYLOAD_BYTES, SandboxRequest, SandboxResult


class SandboxUnavailable(Exception):
    """The sandbox could not be reached or failed itself (not the code it ran): said to the model as it is."""


def run(request: SandboxRequest) -> SandboxResult:
    payload = request.model_dump_json().encode("utf-8")
    if len(payload) > LAMBDA_PAYLOAD_BYTES:
        raise SandboxUnavailable(f"the request is {len(payload)} bytes, over Lambda's {LAMBDA_PAYLOAD_BYTES}")
    try:
        response = aws.client("lambda").invoke(FunctionName=get_settings().sandbox_function_name, Payload=payload)
        body = response["Payload"].read()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        busy = error.get("Code") in ("TooManyRequestsException", "ResourceConflictException")
        hint = " (every sandbox is busy: try again in a moment)" if busy else ""
        raise SandboxUnavailable(f"the sandbox function refused the run: {error.get('Code')}{hint}") from exc
    except BotoCoreError as exc:
        raise SandboxUnavailable(f"the sandbox function did not answer ({type(exc).__name__})") from exc
    if response.get("FunctionError"):
        raise SandboxUnavailable(f"the sandbox function failed ({_error_type(body)})")
    try:
        return SandboxResult.model_validate_json(body)
    except ValueError as exc:
        raise SandboxUnavailable("the sandbox function answered something that is not a result") from exc


def _error_type(body: bytes) -> str:
    try:
        return str(json.loads(body).get("errorType") or "unknown error")
    except (ValueError, AttributeError):
        return "unknown error"
