"""Conditional GETs (RFC 9110 §13): a body's ETag is derived from what the body is made of (the stored items'
`modified_at`, status and counts, never the serialized body), and a request whose `If-None-Match` names it is
answered 304 before the body is built, for the step list before its steps are even read.

Responses with an ETag say `Cache-Control: no-cache` (a cache may keep them, and must ask again each time); every
other response says `no-store`: a presigned link, a run's progress or an error kept by a cache would be wrong."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from starlette.responses import Response as StarletteResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REVALIDATE = "no-cache"
NEVER_STORE = "no-store"


class NotModified(Exception):
    """The caller's copy is current: answered 304 with the ETag, no body."""

    def __init__(self, etag: str) -> None:
        super().__init__(etag)
        self.etag = etag


def etag_of(*parts: Any) -> str:
    digest = hashlib.blake2b(json.dumps(parts, default=str, separators=(",", ":")).encode(), digest_size=16)
    return f'"{digest.hexdigest()}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match's weak comparison: any listed tag equal to ours once `W/` is dropped, or `*`."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


class Revalidation:
    """A route's conditional answer: `check(version...)` stops the request with 304 when the caller's copy has that
    version, and otherwise labels the 200 with it. The path and query take part (each page has its own ETag)."""

    def __init__(self, request: Request, response: Response) -> None:
        self.request, self.response = request, response

    def check(self, *version: Any) -> None:
        etag = etag_of(self.request.url.path, self.request.url.query, *version)
        if matches(self.request.headers.get("if-none-match"), etag):
            raise NotModified(etag)
        self.response.headers["ETag"] = etag
        self.response.headers["Cache-Control"] = REVALIDATE


async def revalidation(request: Request, response: Response) -> Revalidation:
    return Revalidation(request, response)  # a coroutine: FastAPI would make a class in a worker thread


Conditional = Annotated[Revalidation, Depends(revalidation)]


async def not_modified(request: Request, exc: Exception) -> StarletteResponse:
    assert isinstance(exc, NotModified)
    return StarletteResponse(status_code=304, headers={"ETag": exc.etag, "Cache-Control": REVALIDATE})


class NoStoreByDefault:
    """`Cache-Control: no-store` on every response that did not choose otherwise."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def labelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", NEVER_STORE.encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, labelled)
