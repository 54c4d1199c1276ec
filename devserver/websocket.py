"""The WebSocket API for the dev server, on the REST API's port: the spec's paths (`/ap/v1/agent/tasks/{task_id}/ws`,
`/ap/v1/agent/logs/ws`) mapped onto the template's WebSocket function with API-Gateway-shaped events (`$connect`
with the query string a deployed client would send, `$default`, `$disconnect`), and the `@connections/{id}`
management endpoint that `post_to_connection` reaches (POST delivers, DELETE disconnects, GET describes, an unknown
connection answers 410 Gone), as API Gateway does."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from agent_core import auth

from . import apigw
from .template import Route, Template

_TASK_PATH = re.compile(r"^/ap/v1/agent/tasks/(?P<task_id>[^/]+)/ws/?$")
_LOGS_PATH = re.compile(r"^/ap/v1/agent/logs/ws/?$")
CONNECTIONS_PATH = re.compile(r"^(?:/[^/@]+)?/@connections/(?P<connection_id>[^/]+)$")
_CLOSE = object()


def websocket_route(template: Template) -> Route | None:
    """The function behind the template's WebSocket integration (`IntegrationUri` names its Arn)."""
    for props in template.of_type("AWS::ApiGatewayV2::Integration").values():
        uri = props.get("IntegrationUri", {})
        found = re.search(r"\$\{(\w+)\.Arn\}", json.dumps(uri))
        if found:
            name = found.group(1)
            function = template.of_type("AWS::Serverless::Function")[name]
            return Route(name, "WEBSOCKET", name, template.path.parent / function["CodeUri"], function["Handler"])
    return None


class WebSockets:
    def __init__(
        self,
        route: Route,
        handler: Callable[..., dict[str, Any]],
        pool: Executor,
        stage: str,
        *,
        authorize: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]],
    ) -> None:
        self.function = route.function
        self.handler = handler
        self.authorize = authorize
        self.pool = pool
        self.stage = stage
        self.open: dict[str, asyncio.Queue[Any]] = {}

    async def serve(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """One client connection, from the handshake to the close."""
        params = self._subscription(scope)
        await receive()  # websocket.connect
        if params is None:
            await send({"type": "websocket.close", "code": 1008})  # before accept: the handshake is refused (403)
            return
        connection_id = uuid.uuid4().hex[:16] + "="
        caller = None
        if auth.required():  # the API's authorizer on $connect, with the handshake's headers and query string
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
            event = self._event("$connect", "CONNECT", connection_id, query=params)
            arn = apigw.method_arn(self.stage, "", "$connect")
            caller = await self.authorize(apigw.authorizer_event({**event, "headers": headers}, arn))
            if caller is None:
                await self._refuse(scope, send, 401, b'{"message": "Unauthorized"}')
                return
        answer = await self._invoke("$connect", "CONNECT", connection_id, query=params, authorizer=caller)
        if answer.get("statusCode", 200) >= 300:  # as API Gateway refuses a $connect its function refused
            await send({"type": "websocket.close", "code": 1008})
            return
        outbox: asyncio.Queue[Any] = asyncio.Queue()
        self.open[connection_id] = outbox
        await send({"type": "websocket.accept"})
        writer = asyncio.create_task(self._write(outbox, send))
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                body = message.get("text") or (message.get("bytes") or b"").decode("utf-8", "replace")
                await self._invoke("$default", "MESSAGE", connection_id, body=body)
        finally:
            self.open.pop(connection_id, None)
            writer.cancel()
            await self._invoke("$disconnect", "DISCONNECT", connection_id)

    async def manage(self, request: Request, connection_id: str) -> Response:
        """`@connections/{id}`: what `post_to_connection`, `delete_connection` and `get_connection` reach."""
        outbox = self.open.get(connection_id)
        if outbox is None:
            gone = json.dumps({"message": f"connection {connection_id} is gone"})
            return Response(gone, status_code=410, headers={"x-amzn-ErrorType": "GoneException"})
        if request.method == "POST":
            outbox.put_nowait((await request.body()).decode("utf-8", "replace"))
            return Response(status_code=200)
        if request.method == "DELETE":
            outbox.put_nowait(_CLOSE)
            return Response(status_code=204)
        return Response(json.dumps({"connectedAt": "", "identity": {"sourceIp": "127.0.0.1"}}), status_code=200)

    def _subscription(self, scope: dict[str, Any]) -> dict[str, str] | None:
        """The query string a deployed client sends for the spec's path (None: no such path)."""
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        path = scope["path"]
        if found := _TASK_PATH.match(path):
            return {**query, "task_id": found.group("task_id")}
        if _LOGS_PATH.match(path):
            return {**query, "channel": "logs"}
        return None

    @staticmethod
    async def _refuse(scope: dict[str, Any], send: Any, status: int, body: bytes) -> None:
        """The handshake answered with `status`, as API Gateway answers a refused $connect (where the server can;
        else a plain refusal, which clients see as 403)."""
        if "websocket.http.response" not in (scope.get("extensions") or {}):
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = [(b"content-type", b"application/json")]
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})

    async def _invoke(
        self,
        route_key: str,
        kind: str,
        connection_id: str,
        *,
        query: dict[str, str] | None = None,
        body: str = "",
        authorizer: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        event = self._event(route_key, kind, connection_id, query=query, body=body)
        if authorizer is not None:
            event["requestContext"]["authorizer"] = authorizer
        context = apigw.LambdaContext(function_name=self.function)
        try:
            result = await asyncio.get_running_loop().run_in_executor(self.pool, self.handler, event, context)
        except Exception:  # a crashed $connect refuses the connection, as on AWS
            return {"statusCode": 500}
        return result or {}

    def _event(
        self, route_key: str, kind: str, connection_id: str, *, query: dict[str, str] | None = None, body: str = ""
    ) -> dict[str, Any]:
        return {
            "requestContext": {
                "routeKey": route_key,
                "eventType": kind,
                "connectionId": connection_id,
                "stage": self.stage,
                "apiId": "local",
                "domainName": "localhost",
                "requestId": str(uuid.uuid4()),
                "connectedAt": int(time.time() * 1000),
            },
            "queryStringParameters": query or None,
            "body": body or None,
            "isBase64Encoded": False,
        }

    @staticmethod
    async def _write(outbox: asyncio.Queue[Any], send: Any) -> None:
        while (text := await outbox.get()) is not _CLOSE:
            await send({"type": "websocket.send", "text": text})
        await send({"type": "websocket.close", "code": 1000})
