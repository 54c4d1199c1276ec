"""Endpoints and their dependencies run on the invocation's event loop (agent_core.api.InvocationRoute): no worker
thread per request, which anyio would start anew for each Lambda invocation."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant

from agent_core import aws
from agent_core.api import api_routes
from devserver.gateway import load_handler
from tests.conftest import TEMPLATE, Api


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for inner in dependant.dependencies:
        yield from _dependants(inner)


def _apps() -> dict[str, Any]:
    found = {}
    for route in TEMPLATE.routes():
        if route.function == "ConsoleFunction":
            continue
        load_handler(route)  # imports the function's module, as the gateway does
        module = sys.modules[f"_function_{route.function}_{route.handler.rsplit('.', 1)[0]}"]
        found[route.function] = module.app
    return found


# The console's function serves built files with a plain handler: no FastAPI app, no AWS call.
@pytest.mark.parametrize("function", sorted({route.function for route in TEMPLATE.routes()} - {"ConsoleFunction"}))
def test_every_endpoint_and_dependency_of_a_function_is_a_coroutine(function: str) -> None:
    # Given the function's app as Lambda imports it
    app = _apps()[function]
    routes = list(api_routes(app.router.routes))
    assert routes
    # When each route's endpoint and every dependency it resolves are looked at
    sync = [
        f"{route.path}: {getattr(dep.call, '__qualname__', dep.call)}"
        for route in routes
        for dep in _dependants(route.dependant)
        if dep.call is not None and not asyncio.iscoroutinefunction(dep.call)
    ]
    # Then none is a plain function or class, which FastAPI would hand to a worker thread
    assert sync == []


def test_a_request_runs_its_aws_calls_on_the_invoking_thread(api: Api) -> None:
    # Given a task, and a record of the thread each DynamoDB call is made on
    task_id = api("POST", "/tasks", json_body={"input": "x"}).json()["task_id"]
    threads: list[threading.Thread] = []
    aws.client("dynamodb").meta.events.register(
        "before-call.dynamodb", lambda **_: threads.append(threading.current_thread())
    )
    before = {thread.ident for thread in threading.enumerate()}
    # When the function answers a GET and a POST (a list's shard queries run in parallel, on threads of its own)
    assert api("GET", f"/tasks/{task_id}").status == 200
    assert api("POST", "/tasks", json_body={"input": "y"}, headers={"Idempotency-Key": "k"}).status == 200
    # Then every call was made on this thread, and no thread was started for them
    assert threads and set(threads) == {threading.current_thread()}
    assert {thread.ident for thread in threading.enumerate()} <= before | {None}
