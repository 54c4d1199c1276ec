"""Lambda's Invoke API for the dev server and the tests: moto answers it, and for every function the template
declares, the invoke runs that function's real handler with the payload, as Lambda would (the sandbox function that
the steps function invokes, the workers Step Functions calls). Other names keep moto's own behaviour."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from moto.awslambda.models import LambdaBackend

from .apigw import LAMBDA_PAYLOAD_LIMIT, LambdaContext
from .gateway import Handler, load_handler
from .template import Route, Template

log = logging.getLogger("devserver.lambdas")
_handlers: dict[str, Handler] = {}
_timeouts: dict[str, int] = {}


def route_invokes(template: Template) -> None:
    """Registers the template's functions (by their local names) and patches moto's invoke once."""
    for name, props in template.of_type("AWS::Serverless::Function").items():
        route = Route(
            function=name, method="INVOKE", path=name, code_uri=template.path.parent / props["CodeUri"],
            handler=props["Handler"],
        )  # fmt: skip
        _handlers[template.physical_name(name)] = _lazy(route)
        _timeouts[template.physical_name(name)] = int(props.get("Timeout") or template.global_function("Timeout") or 3)
    if not getattr(LambdaBackend.invoke, "_routed", False):
        original = LambdaBackend.invoke

        def invoke(
            self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> Any:
            name = function_name.split(":function:")[-1].split(":")[0]
            if name not in _handlers:
                return original(self, function_name, qualifier, body, headers, response_headers)
            if headers.get("X-Amz-Invocation-Type") == "Event":  # asynchronous: answered at once, queued
                _count(+1)
                _async_pool.submit(_run_queued, name, body)
                return b""
            return _invoke(name, body, response_headers)

        invoke._routed = True  # type: ignore[attr-defined]
        LambdaBackend.invoke = invoke  # type: ignore[method-assign]


def _lazy(route: Route) -> Handler:
    """Imports the function's module on its first invoke, like a cold start (and keeps the dev server's start fast)."""

    def call(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return load_handler(route)(event, context)

    return call


_in_flight = 0
_in_flight_lock = threading.Lock()


def in_flight() -> int:
    """Invocations under way or queued (the tests wait for none before their moto goes)."""
    return _in_flight


# Asynchronous invocations wait in a queue for a few workers, as Lambda's own queue feeds them: a burst of them
# (50 WebSocket clients connecting at once) does not starve the requests that made it of the one process's time.
_async_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lambda-async")


def _count(delta: int) -> None:
    global _in_flight
    with _in_flight_lock:
        _in_flight += delta


def _invoke(name: str, body: Any, response_headers: dict[str, str]) -> bytes:
    _count(+1)
    try:
        return _run(name, body, response_headers)
    finally:
        _count(-1)


def _run_queued(name: str, body: Any) -> None:
    try:
        _run(name, body, {})
    finally:
        _count(-1)


def _run(name: str, body: Any, response_headers: dict[str, str]) -> bytes:
    raw = body if isinstance(body, bytes) else (body or "").encode("utf-8")
    if len(raw) > LAMBDA_PAYLOAD_LIMIT:
        response_headers["x-amz-function-error"] = "Unhandled"
        return _error("RequestEntityTooLargeException", f"{len(raw)} bytes, over {LAMBDA_PAYLOAD_LIMIT}")
    context = LambdaContext(function_name=name)
    context.deadline_ms = context.deadline_ms - 29_000 + _timeouts[name] * 1000
    try:
        result = _handlers[name](json.loads(raw or b"{}"), context)
        return json.dumps(result).encode("utf-8")
    except Exception as exc:  # what Lambda reports as an unhandled function error
        log.exception("%s failed", name)
        response_headers["x-amz-function-error"] = "Unhandled"
        return _error(type(exc).__name__, str(exc))


def _error(kind: str, message: str) -> bytes:
    return json.dumps({"errorType": kind, "errorMessage": message}).encode("utf-8")
