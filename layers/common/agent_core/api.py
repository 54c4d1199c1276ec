"""Everything the functions share on the HTTP side: the app factory with the spec's error envelope, request limits,
query dependencies, and the Lambda entry point."""

from __future__ import annotations

import collections
import functools
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BeforeValidator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import API_PREFIX, VERSION, auth, tasks
from .auth import Caller
from .conditional import NoStoreByDefault, NotModified, not_modified
from .config import get_settings
from .errors import (
    VALIDATION_ZH,
    AgentError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    RouteNotFound,
    Text,
    translate,
)
from .idempotency import remember_invocation
from .paging import PageRequest

logger = Logger()


def language(accept_language: str | None) -> str:
    """`zh` when Chinese is the caller's first choice among the two languages we speak, else `en`."""
    best, best_q = "en", 0.0
    for part in (accept_language or "").split(","):
        tag, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:  # q may follow other parameters; a malformed q counts as 0
            if param.lower().startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        primary = tag.lower().split("-")[0]
        lang = "zh" if primary == "zh" else "en" if primary in ("en", "*") else None
        if lang and q > best_q:  # q=0 means "not acceptable" (RFC 9110 §12.4.2)
            best, best_q = lang, q
    return best


async def request_language(request: Request) -> str:
    return language(request.headers.get("accept-language"))


# The caller's language for success messages, as a route parameter.
Lang = Annotated[str, Depends(request_language)]
# A client's key that makes a POST safe to retry (agent_core.idempotency).
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, description="Makes a retry return the first answer"),
]


async def request_caller(request: Request) -> Caller:
    """Who is calling, as the authorizer named it in the event (agent_core.auth)."""
    event = request.scope.get("aws.event") or {}
    return auth.from_context((event.get("requestContext") or {}).get("authorizer"))


# The caller, as a route parameter. Every API route depends on it (InvocationRoute), so with keys required a request
# that reached a function without the authorizer's word is refused.
CurrentCaller = Annotated[Caller, Depends(request_caller)]


async def _task_of_caller(request: Request, caller: CurrentCaller) -> None:
    """Every route under /tasks/{task_id}: another client's task is TASK_NOT_FOUND before anything else is read.
    It blocks the loop, as the endpoints do (InvocationRoute)."""
    try:
        task_id = str(uuid.UUID(request.path_params.get("task_id", "")))
    except ValueError:
        return  # not an id: the route's own validation answers 400
    tasks.check_visible(task_id, caller)


def request_id(scope: Scope) -> str:
    context = scope.get("aws.context")
    return getattr(context, "aws_request_id", None) or str(uuid.uuid4())


def error_response(error: AgentError, lang: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.body(lang), status_code=error.status, headers=headers)


def _lang(request: Request) -> str:
    return language(request.headers.get("accept-language"))


async def _agent_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AgentError)
    if "field" in exc.details and "in" not in exc.details:  # where the field came from, as validation errors say
        exc.details["in"] = _part_of(request, exc.details["field"])
    if exc.status >= 500:
        exc.details.setdefault("request_id", request_id(request.scope))
        log_server_error(request.scope, exc.status, exc.code, cause=str(exc.details.get("reason") or exc), error=exc)
    return error_response(exc, _lang(request))


def log_server_error(scope: Scope, status: int, code: str, *, cause: str, error: BaseException) -> None:
    """The one record of a 5xx: what the caller was told (its request id, code) and where and why it happened."""
    route = scope.get("route")
    method = scope.get("method", "")
    logger.error(
        "server error",
        exc_info=error,
        extra={
            "request_id": request_id(scope),
            "route": f"{method} {getattr(route, 'path', None) or scope.get('path', '')}",
            "task_id": (scope.get("path_params") or {}).get("task_id"),
            "status": status,
            "error_code": code,
            "cause": cause,
        },
    )


def _part_of(request: Request, field: str) -> str:
    if field in request.path_params:
        return "path"
    if field in request.query_params:
        return "query"
    if field.lower() in request.headers:
        return "header"
    kind = request.headers.get("content-type", "")
    return "form" if kind.startswith(("multipart/", "application/x-www-form-urlencoded")) else "body"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_field_error(e) for e in exc.errors()]
    first = errors[0] if errors else {"field": "body", "in": "body", "reason": Text("invalid", "无效")}
    where = {k: v for k, v in first.items() if k != "reason"}  # `reason` is the message argument, not a detail
    return error_response(InvalidRequest(first["reason"], **where, errors=errors), _lang(request))


def _field_error(error: dict[str, Any]) -> dict[str, Any]:
    """pydantic's error as the caller needs it: which field, where (body, query, path, header), and why."""
    where, *rest = error["loc"] or ("body",)
    if error["type"] == "json_invalid":
        return {"field": "body", "in": "body", "reason": "the body is not valid JSON"}
    field = ".".join(str(p) for p in rest) or where
    return {"field": field, "in": where, "reason": _reason(error)}


def _reason(error: dict[str, Any]) -> Text:
    """Why, in both languages. Our validators' own texts (a ValueError's) without pydantic's "Value error, " in
    front, in Chinese from the catalog; pydantic's, in Chinese by the error's type."""
    ctx = error.get("ctx") or {}
    if error["type"] in ("value_error", "assertion_error") and "error" in ctx:
        english = str(ctx["error"])
        return Text(english, translate(english, "zh"))
    template = VALIDATION_ZH.get(error["type"])
    if template is None:
        return Text(error["msg"], f"取值无效：{error['msg']}")
    values = {k: str(v).replace(" or ", ", ") for k, v in ctx.items()}  # `expected`: 'a', 'b' or 'c'
    return Text(error["msg"], template.format_map(collections.defaultdict(str, values)))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    details = {"method": request.method, "path": request.url.path}
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        return error_response(
            MethodNotAllowed(**details, allowed=allowed), _lang(request), headers={"Allow": ", ".join(allowed)}
        )
    if exc.status_code == 404:
        return error_response(RouteNotFound(**details), _lang(request))
    return error_response(InvalidRequest(str(exc.detail), **details), _lang(request))


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of this app answers on the request's path (Starlette names only the first route's)."""
    methods = {
        method
        for route in api_routes(request.app.router.routes)
        if route.path_regex.match(request.url.path)
        for method in route.methods or ()
    }
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods | {"OPTIONS"})


def api_routes(routes: Any) -> Iterator[APIRoute]:
    """The app's API routes, also those inside included routers (FastAPI keeps those nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (inner := getattr(route, "original_router", None) or getattr(route, "routes", None)) is not None:
            yield from api_routes(getattr(inner, "routes", inner))


class HeadAsGet:
    """HEAD answers as GET would, headers and all, without the body (FastAPI routes GET only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


class CatchAll:
    """Any unexpected exception becomes 500 INTERNAL_ERROR with the request id, logged with its traceback. A
    middleware rather than an exception handler: Starlette runs the handler for `Exception` outside every
    middleware, where the CORS middleware could not add its headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # too late for another answer
                raise
            rid = request_id(scope)
            log_server_error(scope, 500, InternalError.code, cause=f"{type(exc).__name__}: {exc}", error=exc)
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            lang = language(headers.get("accept-language"))
            await error_response(InternalError(request_id=rid), lang)(scope, receive, send)


class BodyLimit:
    """Refuses a body larger than the endpoint accepts before anything reads it (413 in the spec's envelope)."""

    def __init__(
        self, app: ASGIApp, limits: Callable[[str], int], too_large: type[PayloadTooLarge] = PayloadTooLarge
    ) -> None:
        self.app, self.limits, self.too_large = app, limits, too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            limit = self.limits(headers.get("content-type", ""))
            length = headers.get("content-length", "")
            if not length.isdigit():
                # API Gateway's proxy event often has no Content-Length: measure the body (Lambda hands it over whole).
                receive, body = await _buffered(receive)
                length = str(len(body))
            if int(length) > limit:
                error = self.too_large(
                    f"the body is {length} bytes; this endpoint accepts at most {limit}",
                    limit_bytes=limit,
                    size_bytes=int(length),
                )
                await error_response(error, language(headers.get("accept-language")))(scope, receive, send)
                return
        await self.app(scope, receive, send)


class FormEncodedJson:
    """`curl -d '{"input": ...}'` labels JSON as a form: a body that is a JSON object is read as JSON, whatever the
    label says (the JSON routes take nothing else; a real form would fail their validation either way)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers", [])
            kind = next((v for k, v in headers if k.lower() == b"content-type"), b"").split(b";")[0].strip().lower()
            if kind == b"application/x-www-form-urlencoded":
                receive, body = await _buffered(receive)
                if body.lstrip()[:1] == b"{":
                    relabelled = [(k, v) for k, v in headers if k.lower() != b"content-type"]
                    scope = {**scope, "headers": [*relabelled, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


async def _buffered(receive: Receive) -> tuple[Receive, bytes]:
    """Reads the whole body; returns a `receive` that replays it, and the body."""
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body, replayed = b"".join(chunks), False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay, body


class InvocationRoute(APIRoute):
    """A route whose endpoint runs on the invocation's event loop, never in a worker thread.

    Lambda hands an instance one request at a time, and Mangum runs it on a loop that ends with it. FastAPI would
    run a plain `def` endpoint in anyio's thread pool, which dies with that loop: every request paid for a new thread
    and two thread switches (1.7 ms of a 6.6 ms GET, 4.4 ms of a 13.5 ms POST on the dev server), and gained no
    concurrency, since there is nothing else for the loop to do. The endpoints block the loop instead; the dev server
    gives each request a loop of its own, as Lambda gives it an instance."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # Who may call is decided here, for every route at once: none can be added that forgets it.
        guards: list[Callable[..., Any]] = [request_caller]
        if "{task_id}" in path:
            guards.append(_task_of_caller)
        dependencies = list(kwargs.pop("dependencies", None) or [])
        present = {d.dependency for d in dependencies}
        dependencies += [Depends(guard) for guard in guards if guard not in present]
        super().__init__(path, _on_the_loop(endpoint), dependencies=dependencies, **kwargs)


def _on_the_loop(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)  # FastAPI reads the parameters and their annotations through __wrapped__
    async def call(*args: Any, **kwargs: Any) -> Any:
        return endpoint(*args, **kwargs)

    return call


def api_router(**kwargs: Any) -> APIRouter:
    """A function's router: the API's prefix, endpoints on the invocation's loop (InvocationRoute)."""
    return APIRouter(prefix=API_PREFIX, route_class=InvocationRoute, **kwargs)


def json_body_limit(content_type: str) -> int:
    return get_settings().max_json_body_bytes


def create_app(
    *routers: APIRouter,
    title: str,
    body_limit: Callable[[str], int] = json_body_limit,
    too_large: type[PayloadTooLarge] = PayloadTooLarge,
) -> FastAPI:
    """`body_limit` maps a request's content type to the most bytes it may have; `too_large` is the 413 it gets."""
    # Each function serves only its own routes, so a per-function OpenAPI document would mislead: none is served.
    # redirect_slashes off: behind a stage's prefix, Starlette's redirect of /tasks/ would point outside the API.
    app = FastAPI(title=title, version=VERSION, openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
    for router in routers:
        app.include_router(router)
    app.add_exception_handler(AgentError, _agent_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(NotModified, not_modified)
    app.add_middleware(FormEncodedJson)  # inside the body limit: it reads what the limit let through
    app.add_middleware(BodyLimit, limits=body_limit, too_large=too_large)
    app.add_middleware(CatchAll)
    app.add_middleware(NoStoreByDefault)  # outside CatchAll: its 500 is labelled too
    app.add_middleware(HeadAsGet)
    # Outermost, so refusals (413) carry the CORS headers too and a browser can read them.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(get_settings().cors_allow_origins),
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=[
            "Content-Type",
            "Accept-Language",
            "Idempotency-Key",
            "Authorization",
            "X-Api-Key",
            "If-None-Match",
        ],
        expose_headers=["Content-Disposition", "Location", "Retry-After", "ETag"],
        max_age=600,
    )
    return app


def _redact_access_lines() -> None:
    """Mangum logs each request's URL with its query string: a `token=` in it is not written out."""
    access = logging.getLogger("mangum.http")
    if not any(isinstance(f, auth.RedactTokens) for f in access.filters):
        access.addFilter(auth.RedactTokens())


def lambda_handler(app: FastAPI) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The function's entry: Mangum adapts API Gateway's event; Powertools adds the request's context to logs."""
    from aws_lambda_powertools.logging import correlation_paths
    from mangum import Mangum

    adapter = Mangum(app, lifespan="off")
    _redact_access_lines()

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        remember_invocation(context)
        # The id a 5xx's details.request_id gives the caller, on every record the request logs (thread-safe: the
        # dev server runs many requests in one process).
        logger.thread_safe_append_keys(request_id=getattr(context, "aws_request_id", None))
        return adapter(event, context)

    return handler


# -- query parameters shared by list endpoints -------------------------------------------------------------------


def _iso_8601(value: Any) -> Any:
    """pydantic also reads a number as a Unix time: `created_after=0.5` would mean 1970. The document says ISO 8601."""
    text = str(value).strip()
    if text.lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError("must be an ISO 8601 date-time, e.g. 2024-01-15T10:30:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_8601)]


# Beyond any list a task or the API can have (100 per page): a larger number is a mistake, answered as one.
MAX_PAGE = 1_000_000


def page_query(default_size: int) -> Callable[..., Awaitable[PageRequest]]:
    """`page`/`size` as the spec names them, `current_page`/`page_size` as the Agent Protocol does."""

    async def dependency(
        page: Annotated[int | None, Query(ge=1, le=MAX_PAGE, description="Page number, from 1")] = None,
        size: Annotated[int | None, Query(ge=1, le=100, description="Items per page, at most 100")] = None,
        current_page: Annotated[
            int | None, Query(ge=1, le=MAX_PAGE, description="Agent Protocol alias of page")
        ] = None,
        page_size: Annotated[int | None, Query(ge=1, le=100, description="Agent Protocol alias of size")] = None,
    ) -> PageRequest:
        for name, a, b in (("page", page, current_page), ("size", size, page_size)):
            if a is not None and b is not None and a != b:
                raise InvalidRequest(f"{name} and its alias disagree", field=name)
        return PageRequest(page=page or current_page or 1, size=size or page_size or default_size)

    return dependency


TaskPage = Annotated[PageRequest, Depends(page_query(default_size=10))]
