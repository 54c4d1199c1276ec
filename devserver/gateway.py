"""An emulated API Gateway (REST): routes each request by the template's API events to the function's Lambda
handler, with a proxy event like the real one, and answers what the gateway itself answers (unknown routes,
throttling, payload limits) with the template's GatewayResponses."""

from __future__ import annotations

import asyncio
import collections
import importlib.util
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from agent_core import auth
from agent_core.api import language
from agent_core.errors import MethodNotAllowed, localized_envelope

from . import apigw
from .template import Route, Template
from .websocket import CONNECTIONS_PATH, WebSockets, websocket_route

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
_import_lock = threading.Lock()


def load_handler(route: Route) -> Handler:
    """Imports `Handler` from `CodeUri` as Lambda would, each function under a module name of its own."""
    module_name, attr = route.handler.rsplit(".", 1)
    name = f"_function_{route.function}_{module_name}"
    with _import_lock:  # a half-imported module must never be visible to a concurrent request
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, route.code_uri / f"{module_name.replace('.', '/')}.py")
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # as import does: a dataclass looks its module up while it is being made
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
    return getattr(module, attr)  # type: ignore[no-any-return]


class RateLimiter:
    """A sliding one-minute window per client address: the template's per-client limit."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        if self.per_minute <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            hits = self._hits[client]
            while hits and hits[0] <= now - 60:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return False
            hits.append(now)
            return True


def _new_loop() -> None:
    # Mangum runs each invocation on the thread's current event loop; worker threads have none by default.
    asyncio.set_event_loop(asyncio.new_event_loop())


class Gateway:
    def __init__(self, template: Template, *, rate_limit_per_minute: int, stage: str = "dev") -> None:
        self.template = template
        self.routes = template.routes()
        self.handlers = {route.function: load_handler(route) for route in self.routes}
        self.binary_types = template.binary_media_types()
        self.limiter = RateLimiter(rate_limit_per_minute)
        self.stage = stage
        # Each request runs in a worker like a Lambda instance of its own, so a slow step never blocks other calls.
        self.pool = ThreadPoolExecutor(max_workers=32, initializer=_new_loop, thread_name_prefix="lambda")
        ws_route = websocket_route(template)
        # WebSocket events get a few workers of their own: a burst of handshakes is CPU work for this one process,
        # and 32 threads at it would leave the event loop, which completes the handshakes, no share of the GIL.
        ws_pool = ThreadPoolExecutor(max_workers=4, initializer=_new_loop, thread_name_prefix="lambda-ws")
        authorizer = template.authorizer_route()
        self.authorizer = load_handler(authorizer) if authorizer else None
        self.websockets = (
            WebSockets(ws_route, load_handler(ws_route), ws_pool, stage, authorize=self.authorize) if ws_route else None
        )

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            found = route.pattern.match(path)
            if found and route.method in (method, "ANY"):
                return route, found.groupdict()
        return None

    def gateway_response(self, kind: str, request: Request, request_id: str) -> Response:
        status, body, headers = self.template.gateway_response(kind)
        for var, value in (
            ("$context.path", request.url.path),
            ("$context.httpMethod", request.method),
            ("$context.requestId", request_id),
        ):
            body = body.replace(var, json.dumps(value)[1:-1])
        return Response(_localized(body, request), status_code=status, headers=headers, media_type="application/json")

    def allowed_methods(self, path: str) -> list[str]:
        """The methods the template routes for `path` (a 405's Allow), HEAD with GET and OPTIONS for CORS."""
        methods = {route.method for route in self.routes if route.pattern.match(path)}
        if "GET" in methods:
            methods.add("HEAD")
        return sorted(methods | {"OPTIONS"}) if methods else []

    def method_not_allowed(self, request: Request, allowed: list[str], request_id: str) -> Response:
        error = MethodNotAllowed(method=request.method, path=request.url.path, allowed=allowed, request_id=request_id)
        lang = language(request.headers.get("accept-language"))
        headers = {"Allow": ", ".join(allowed), **self.template.gateway_response("MISSING_AUTHENTICATION_TOKEN")[2]}
        return Response(json.dumps(error.body(lang)), status_code=405, headers=headers, media_type="application/json")

    def waf_upload_limit(self, request: Request) -> Response | None:
        """The WAF rule that refuses a multipart upload over the API's limit before it reaches the function."""
        limit = self.template.waf_upload_limit()
        length = request.headers.get("content-length", "")
        is_upload = request.method == "POST" and re.search(r"/tasks/[^/]+/artifacts/?$", request.url.path)
        if limit is None or not is_upload or not length.isdigit() or int(length) < limit[0]:
            return None
        return Response(_localized(limit[1], request), status_code=413, headers=limit[2], media_type="application/json")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # nothing to start or stop: acknowledge both
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        if scope["type"] == "websocket":
            if self.websockets is None:
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.websockets.serve(scope, receive, send)
            return
        request = Request(scope, receive)
        managed = CONNECTIONS_PATH.match(request.url.path)
        if managed and self.websockets is not None:  # the management API: not the public one, not rate limited
            response = await self.websockets.manage(request, managed.group("connection_id"))
        else:
            response = await self.handle(request)
        await response(scope, receive, send)

    async def authorize(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The authorizer's context for an authorizer event (None: refused), as API Gateway asks it: every time,
        with no cache of its own (the function's cache is off on the dev server: a revocation holds at once)."""
        if self.authorizer is None:
            return None
        loop = asyncio.get_running_loop()
        context = apigw.LambdaContext(function_name="authorizer")
        try:
            answer = await loop.run_in_executor(self.pool, self.authorizer, event, context)
        except Exception:  # "Unauthorized": API Gateway's 401
            return None
        allowed = any(s.get("Effect") == "Allow" for s in answer.get("policyDocument", {}).get("Statement", []))
        return {**(answer.get("context") or {}), "principalId": answer.get("principalId")} if allowed else None

    async def admit(self, request: Request, route: Route, event: dict[str, Any], address: str) -> Response | None:
        """With keys required, as API Gateway does before the function: the authorizer names the caller (put in
        the event), the caller's own rate limit applies (a request without a valid key counts against its address),
        and a route that needs a key refuses one without (401). None: go on."""
        caller = None
        if not route.open:
            arn = apigw.method_arn(self.stage, event["httpMethod"], request.url.path)
            caller = await self.authorize(apigw.authorizer_event(event, arn))
        request_id = event["requestContext"]["requestId"]
        if not self.limiter.allow(f"client:{caller['client_id']}" if caller else address):
            return self.gateway_response("THROTTLED", request, request_id)
        if caller is None and not route.open:
            return self.gateway_response("UNAUTHORIZED", request, request_id)
        if caller is not None:
            event["requestContext"]["authorizer"] = caller
        return None

    async def handle(self, request: Request) -> Response:
        context = apigw.LambdaContext()
        client = request.client.host if request.client else "unknown"
        keys_required = auth.required()
        # With keys, a client's requests count against its own limit (below); without, against its address's.
        if not keys_required and not self.limiter.allow(client):
            return self.gateway_response("THROTTLED", request, context.aws_request_id)
        if request.method == "OPTIONS" and any(r.pattern.match(request.url.path) for r in self.routes):
            return Response(status_code=200, headers=self.template.cors_headers())  # API Gateway's mock preflight
        head = request.method == "HEAD"  # answered as the GET, without its body
        matched = self.match("GET" if head else request.method, request.url.path)
        if matched is None:
            allowed = self.allowed_methods(request.url.path)
            if allowed:
                return self.method_not_allowed(request, allowed, context.aws_request_id)
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", request, context.aws_request_id)
        route, params = matched
        body = await request.body()  # read even when refused: a client cut off mid-upload sees a reset, not the 413
        if (refused := self.waf_upload_limit(request)) is not None:
            return refused
        if len(body) > apigw.API_BODY_LIMIT:
            return self.gateway_response("REQUEST_TOO_LARGE", request, context.aws_request_id)
        event = apigw.rest_event(
            method="GET" if head else request.method,
            path=request.url.path,
            resource=route.path,
            path_parameters=params,
            query=request.url.query,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
            body=body,
            binary_types=self.binary_types,
            stage=self.stage,
            source_ip=client,
        )
        if apigw.event_size(event) > apigw.LAMBDA_PAYLOAD_LIMIT:
            # Lambda would refuse this invocation; in AWS the WAF body-size rule answers it first, with this response.
            return self.gateway_response("REQUEST_TOO_LARGE", request, context.aws_request_id)
        if keys_required and (refused := await self.admit(request, route, event, client)) is not None:
            return refused
        handler = self.handlers[route.function]
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self.pool, handler, event, context)
        except Exception:  # a crashed invocation: API Gateway answers 502 with its DEFAULT_5XX body
            response = self.gateway_response("DEFAULT_5XX", request, context.aws_request_id)
            response.status_code = 502
            return response
        proxied = apigw.parse_response(result)
        out = Response(b"" if head else proxied.body, status_code=proxied.status)
        out.raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in proxied.headers
            if k.lower() != "content-length"
        ]
        out.headers["content-length"] = str(len(proxied.body))
        return out


def _localized(body: str, request: Request) -> str:
    """A gateway-made error body in Chinese for `Accept-Language: zh`, with the texts the functions use."""
    lang = language(request.headers.get("accept-language"))
    if lang != "zh":
        return body
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    return json.dumps(localized_envelope(doc, lang), ensure_ascii=False)
