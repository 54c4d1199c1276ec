"""One OpenAPI document for the whole API, built from every function's routes and models (scripts/openapi.py writes
it next to this module; a test keeps it current), and the routes that serve it with interactive docs: Swagger UI
from files installed with the layer (the fastapi-offline package ships its build), never from a CDN."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response

from . import API_PREFIX, VERSION
from .errors import RouteNotFound

DOCUMENT = Path(__file__).with_name("openapi.json")
# The paths keep the API's prefix (/ap/v1/agent/tasks), and the document is served at /ap/v1/agent/openapi.json:
# three levels up from it is the root they hang from, whatever the host, the port (the dev server's) or the stage
# prefix in front (https://....execute-api....amazonaws.com/prod/). Swagger UI resolves it against the document's URL.
SERVER = "../../.."

_ERROR_CODES = {
    400: ("INVALID_REQUEST", "a parameter or the body failed validation"),
    401: ("UNAUTHORIZED", "no key, an unknown one or a revoked one (when the API requires keys)"),
    403: ("FORBIDDEN", "the route is the operator's alone"),
    404: (
        "TASK_NOT_FOUND",
        "no such task; STEP_NOT_FOUND, ARTIFACT_NOT_FOUND for a step or file, RUN_NOT_FOUND for a task never run, "
        "KEY_NOT_FOUND for a client key, INVALID_REQUEST for an endpoint",
    ),
    405: ("INVALID_REQUEST", "the endpoint has no such method (see Allow)"),
    409: ("TASK_ALREADY_RUNNING", "a step or a run holds the task, or a request with this Idempotency-Key is at work"),
    413: ("PAYLOAD_TOO_LARGE", "the body is over the endpoint's limit"),
    429: ("RATE_LIMITED", "too many requests (RATE_LIMITED, with Retry-After) or INSUFFICIENT_RESOURCES"),
    500: ("INTERNAL_ERROR", "anything unexpected (details.request_id)"),
    502: ("OPENAI_API_ERROR", "the model API failed after retries"),
}
_ALL_CODES = [
    "INVALID_REQUEST", "UNAUTHORIZED", "FORBIDDEN", "TASK_NOT_FOUND", "STEP_NOT_FOUND", "ARTIFACT_NOT_FOUND",
    "RUN_NOT_FOUND", "KEY_NOT_FOUND",
    "TASK_ALREADY_RUNNING", "INSUFFICIENT_RESOURCES", "RATE_LIMITED", "PAYLOAD_TOO_LARGE", "OPENAI_API_ERROR",
    "INTERNAL_ERROR",
]  # fmt: skip
_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "message": {"type": "string", "description": "The error's message again (the Agent Protocol's shape)"},
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "enum": _ALL_CODES},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
        },
    },
}


_SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A client's key (made by the operator with POST /keys) or the operator's: Bearer <key>",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "The same key, as x-api-key"},
}
_OPERATOR_ONLY = {API_PREFIX + path for path in ("/keys", "/keys/{key_id}", "/restart")}


def build(apps: list[FastAPI]) -> dict[str, Any]:
    """The functions' documents merged, each operation with the error responses it can answer in the envelope."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Agent Protocol API (AutoGPT v0.5.1)", "version": VERSION},
        "servers": [{"url": SERVER, "description": "the API that served this document, on any host, port or stage"}],
        "paths": {},
        "components": {"schemas": {"Error": _ERROR_SCHEMA}, "securitySchemes": _SECURITY_SCHEMES},
        # Either scheme; the dev server asks for none unless AUTH=keys, a deployed stage for one on every route.
        "security": [{name: []} for name in _SECURITY_SCHEMES],
    }
    for app in apps:
        document = app.openapi()
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                merged["paths"].setdefault(path, {})[method] = _with_errors(path, method, operation)
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if name not in ("HTTPValidationError", "ValidationError"):  # never answered: errors are the envelope
                merged["components"]["schemas"][name] = schema
    merged["paths"] = dict(sorted(merged["paths"].items()))
    return merged


# GETs answered with an ETag, and 304 to an If-None-Match that names it (agent_core.conditional).
_REVALIDATED = {
    API_PREFIX + path
    for path in ("/tasks", "/tasks/{task_id}", "/tasks/{task_id}/steps", "/tasks/{task_id}/steps/{step_id}",
                 "/tasks/{task_id}/artifacts")
}  # fmt: skip


def _with_errors(path: str, method: str, operation: dict[str, Any]) -> dict[str, Any]:
    responses = {k: v for k, v in operation.get("responses", {}).items() if k != "422"}
    statuses = [400, 401, 404, 405, 429, 500]
    if path in _OPERATOR_ONLY:
        statuses.append(403)
    if method in ("post", "delete"):
        statuses.append(409)  # the task is held by a step or a run, or the same Idempotency-Key is still at work
    if method == "post":
        statuses.append(413)
    if method == "post" and path.endswith("/steps"):
        statuses.append(502)
    for status in sorted(statuses):
        code, when = _ERROR_CODES[status]
        responses[str(status)] = {
            "description": f"{code}: {when}",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    if method == "get" and path in _REVALIDATED:
        responses["200"].setdefault("headers", {})["ETag"] = {
            "description": "The answer's version: send it back in If-None-Match to be answered 304 while it holds",
            "schema": {"type": "string"},
        }
        responses["304"] = {"description": "Not modified: the copy named by If-None-Match is current (no body)"}
    return {**operation, "responses": dict(sorted(responses.items()))}


@cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return loaded


docs_router = APIRouter(prefix=API_PREFIX, include_in_schema=False)


@docs_router.get("/openapi.json")
async def openapi_document() -> JSONResponse:
    return JSONResponse(document())


@docs_router.get("/docs")
async def interactive_docs() -> HTMLResponse:
    # Relative URLs, so they resolve under a deployed stage's prefix (/dev/ap/v1/agent/...) as locally; each asset's
    # version in its query, so a browser may keep it for good. No favicon: a browser would ask the host's root.
    return get_swagger_ui_html(
        openapi_url="openapi.json",
        title="Agent Protocol API",
        swagger_js_url=f"docs/assets/swagger-ui-bundle.js?v={_assets_version()}",
        swagger_css_url=f"docs/assets/swagger-ui.css?v={_assets_version()}",
        swagger_favicon_url="data:,",
        swagger_ui_parameters={"validatorUrl": None},  # Swagger UI would send the document to validator.swagger.io
    )


# Swagger UI's files, and the type each is served with.
_ASSETS = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8", "swagger-ui.css": "text/css; charset=utf-8"}


@docs_router.get("/docs/assets/{name}")
async def docs_asset(name: str, request: Request) -> Response:
    kind = _ASSETS.get(name)
    if kind is None:
        raise RouteNotFound(method=request.method, path=request.url.path)
    # A year, immutable: the page names the assets' version, which changes with the installed files.
    return Response(_asset(name), media_type=kind, headers={"Cache-Control": "public, max-age=31536000, immutable"})


@cache
def _asset(name: str) -> bytes:
    spec = importlib.util.find_spec("fastapi_offline")  # found, not imported: only its files are wanted
    assert spec is not None and spec.origin is not None, "fastapi-offline (layers/common/requirements.txt)"
    return (Path(spec.origin).parent / "static" / name).read_bytes()


@cache
def _assets_version() -> str:
    digest = hashlib.blake2b(digest_size=6)
    for name in sorted(_ASSETS):
        digest.update(_asset(name))
    return digest.hexdigest()
