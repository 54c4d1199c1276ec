"""`AutoGPTClient` (blocking) and `AsyncAutoGPTClient` (asyncio): the same operations (operations.py), the same
errors (errors.py), the same retries. A request is retried, with backoff and jitter, when the server refused it
before doing anything (429 RATE_LIMITED, honouring Retry-After) and, for calls that are safe to repeat (reads,
deletes, and the POSTs the client sends with an Idempotency-Key), after 502/503/504 or a connection failure. A GET
asked again sends the ETag of its last answer: the server answers 304 without a body when nothing changed.

An `api_key` goes as `Authorization: Bearer <key>` on the API's requests and on the WebSocket handshakes (never to
the presigned S3 URLs of large uploads); a refused key is errors.Unauthorized (401) or errors.Forbidden (403)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx

from . import errors, models
from . import operations as ops
from .operations import API_PREFIX, Call, Op, Progress

DEFAULT_BASE_URL = "http://localhost:8000"
_RETRY_STATUSES = {502, 503, 504}
_VALIDATED_KEPT = 256  # answers kept for revalidation


def _retry_delay(attempt: int, response: httpx.Response | None) -> float | None:
    """Seconds to wait before trying again, or None not to."""
    if response is not None:
        after = response.headers.get("retry-after", "")
        if after.isdigit():
            return float(after)
    return min(8.0, 0.25 * 2**attempt) * random.uniform(0.5, 1.0)


def _should_retry(call: Call, response: httpx.Response | None) -> bool:
    if response is None:  # the connection failed
        return call.safe_to_retry
    if response.status_code == 429:
        return _code(response) == "RATE_LIMITED"  # refused before it ran; a full agent is the caller's to decide
    return response.status_code in _RETRY_STATUSES and call.safe_to_retry


def _settle(
    call: Call, attempt: int, max_retries: int, outcome: httpx.Response | httpx.TransportError
) -> httpx.Response | float:
    """An attempt's outcome: the answer to return (an error raised), or the seconds to wait before the next."""
    response = outcome if isinstance(outcome, httpx.Response) else None
    if attempt < max_retries and _should_retry(call, response):
        return _retry_delay(attempt, response) or 0.0
    if response is None:
        raise errors.ConnectionFailed("CONNECTION_ERROR", str(outcome) or type(outcome).__name__, status=0)
    return _check(response)


def _code(response: httpx.Response) -> str | None:
    with contextlib.suppress(ValueError, AttributeError, KeyError, TypeError):
        return str(response.json()["error"]["code"])
    return None


def _refused_handshake(exc: Exception) -> errors.AutoGPTError | None:
    """The API's error for a WebSocket handshake it answered with an HTTP error (401 without a key), else None.
    websockets raises InvalidStatus (`.response`); its legacy asyncio client, InvalidStatusCode (`.status_code`)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(exc, "status_code", None)
    if not isinstance(status, int) or status < 400:
        return None
    body: Any = {}
    with contextlib.suppress(ValueError, TypeError):
        body = json.loads(getattr(response, "body", b"") or b"{}")
    return errors.from_response(status, body)


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {}
        raise errors.from_response(response.status_code, body)
    return response


class _ProgressReader:
    """A file whose reads report how much of it has been read (the upload's progress)."""

    def __init__(self, path: str, progress: Progress | None) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 - closed by the caller
        self.total = os.path.getsize(path)
        self.done = 0
        self.progress = progress

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size)
        self.done += len(chunk)
        if self.progress is not None:
            self.progress(self.done, self.total)
        return chunk

    def fileno(self) -> int:  # httpx sizes the body from it: S3 refuses a POST without Content-Length
        return self.file.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        self.file.close()


class _Base:
    """`base_url`: the server (the API's prefix is added); `websocket_url`: on AWS, the stack's WebSocketUrl."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        websocket_url: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix(API_PREFIX)
        self.max_retries = max_retries
        self.websocket_url = websocket_url
        # The key's headers: on the API's requests and WebSocket handshakes only (_request, watch_task, stream_logs).
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._api_key = api_key
        # The last answer to each GET that carried an ETag: asked again with If-None-Match, a 304 reuses it.
        self._validated: collections.OrderedDict[tuple[str, str], httpx.Response] = collections.OrderedDict()
        self._connect(timeout)

    def _connect(self, timeout: float) -> None:
        raise NotImplementedError

    def _url(self, call: Call) -> str:
        return call.path if call.path.startswith(("http://", "https://")) else self.base_url + API_PREFIX + call.path

    def _request(self, call: Call) -> dict[str, Any]:
        mine = not call.path.startswith(("http://", "https://"))  # a presigned S3 URL gets no key: S3 refuses it
        request: dict[str, Any] = {"headers": {**(self.headers if mine else {}), **call.headers}, "params": call.params}
        if (cached := self._validated.get(self._validator_key(call))) is not None:
            request["headers"]["If-None-Match"] = cached.headers["etag"]
        if call.json is not None:
            request["json"] = call.json
        if call.data is not None:
            request["data"] = call.data
        return request

    def _validator_key(self, call: Call) -> tuple[str, str]:
        cacheable = call.method == "GET" and not call.save_to
        return (self._url(call), json.dumps(call.params, sort_keys=True, default=str)) if cacheable else ("", "")

    def _revalidated(self, call: Call, response: httpx.Response) -> httpx.Response:
        """The answer to use: the kept one for a 304; a new answer with an ETag is kept (the latest 256)."""
        key = self._validator_key(call)
        if not key[0]:
            return response
        if response.status_code == 304 and key in self._validated:
            self._validated.move_to_end(key)
            return self._validated[key]
        if response.status_code == 200 and "etag" in response.headers:
            self._validated[key] = response
            self._validated.move_to_end(key)
            while len(self._validated) > _VALIDATED_KEPT:
                self._validated.popitem(last=False)
        return response

    def _channel_url(self, task_id: str | None, *, logs: bool, level: str | None = None) -> str:
        """A WebSocket channel: the spec's paths on the dev server, the stage URL with a query string on AWS."""
        query = {k: v for k, v in {"task_id": task_id, "level": level}.items() if v}
        if self.websocket_url:  # API Gateway's WebSocket API: no paths, the channel (and the key) in the query
            if self._api_key:  # its authorizer reads ?token= alone (a header-only handshake is refused there)
                query["token"] = self._api_key
            return f"{self.websocket_url}?{urlencode({**query, **({'channel': 'logs'} if logs else {})})}"
        root = self.base_url.replace("https://", "wss://").replace("http://", "ws://") + API_PREFIX
        if logs:
            return f"{root}/logs/ws" + (f"?{urlencode(query)}" if query else "")
        return f"{root}/tasks/{task_id}/ws"

    # -- the operations, once for both clients: `_run` executes them (or, async, returns an awaitable) -------------

    def _run(self, op: Op[Any]) -> Any:
        raise NotImplementedError

    def create_task(
        self, input: str, additional_input: dict[str, Any] | None = None, idempotency_key: str | None = None
    ) -> Any:
        return self._run(ops.create_task(input, additional_input, idempotency_key))

    def list_tasks(
        self, page: int = 1, size: int = 10, status: str | None = None, created_after: str | None = None
    ) -> Any:
        return self._run(ops.list_tasks(page, size, status, created_after))

    def get_task(self, task_id: str) -> Any:
        return self._run(ops.get_task(task_id))

    def delete_task(self, task_id: str) -> Any:
        return self._run(ops.delete_task(task_id))

    def execute_step(
        self,
        task_id: str,
        input: str | None = None,
        additional_input: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        return self._run(ops.execute_step(task_id, input, additional_input, idempotency_key))

    def list_steps(self, task_id: str, page: int = 1, size: int = 20) -> Any:
        return self._run(ops.list_steps(task_id, page, size))

    def get_step(self, task_id: str, step_id: str) -> Any:
        return self._run(ops.get_step(task_id, step_id))

    def get_artifacts(self, task_id: str) -> Any:
        return self._run(ops.get_artifacts(task_id))

    def upload_artifact(
        self, task_id: str, path: str, relative_path: str | None = None, progress: Progress | None = None
    ) -> Any:
        return self._run(ops.upload_artifact(task_id, path, relative_path, progress))

    def download_artifact(self, task_id: str, artifact_id: str, save_to: str | None = None) -> Any:
        return self._run(ops.download_artifact(task_id, artifact_id, save_to))

    def delete_artifact(self, task_id: str, artifact_id: str) -> Any:
        return self._run(ops.delete_artifact(task_id, artifact_id))

    def start_run(self, task_id: str, max_steps: int | None = None) -> Any:
        return self._run(ops.start_run(task_id, max_steps))

    def get_run(self, task_id: str) -> Any:
        return self._run(ops.get_run(task_id))

    def cancel_task(self, task_id: str) -> Any:
        return self._run(ops.cancel_run(task_id))

    def status(self) -> Any:
        return self._run(ops.status())

    def restart(self) -> Any:
        return self._run(ops.restart())

    # API keys: operator-only routes (the client must hold an operator's key, else errors.Forbidden)

    def create_key(self, name: str, budget_usd: float | None = None) -> Any:
        """A new client key; its `api_key` (the secret) is shown this once."""
        return self._run(ops.create_key(name, budget_usd))

    def list_keys(self) -> Any:
        """Every key, newest first, revoked ones too (`revoked_at` set); never their secrets."""
        return self._run(ops.list_keys())

    def revoke_key(self, key_id: str) -> Any:
        return self._run(ops.revoke_key(key_id))


class AutoGPTClient(_Base):
    """The blocking client. Methods return the API's objects (models.py) and raise errors.AutoGPTError subclasses."""

    http: httpx.Client

    def _connect(self, timeout: float) -> None:
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AutoGPTClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, op: Op[Any]) -> Any:
        try:
            call = next(op)
            while True:
                call = op.send(self._send(call))
        except StopIteration as done:
            return done.value

    def _send(self, call: Call) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            try:
                settled = _settle(call, attempt, self.max_retries, self._attempt(call))
            except httpx.TransportError as exc:
                settled = _settle(call, attempt, self.max_retries, exc)
            if isinstance(settled, httpx.Response):
                return self._revalidated(call, settled)
            time.sleep(settled)
        raise AssertionError("unreachable: the last attempt settles")

    def _attempt(self, call: Call) -> httpx.Response:
        request = self._request(call)
        reader = _ProgressReader(call.file[1], call.file[2]) if call.file else None
        try:
            if reader is not None and call.file is not None:
                request["files"] = {call.file[0]: (os.path.basename(call.file[1]), reader)}
            if not call.save_to:
                return self.http.request(
                    call.method, self._url(call), follow_redirects=call.follow_redirects, **request
                )
            with self.http.stream(call.method, self._url(call), follow_redirects=True, **request) as response:
                if response.status_code < 400:
                    with open(call.save_to, "wb") as out:
                        for chunk in response.iter_bytes():
                            out.write(chunk)
                else:
                    response.read()
                return response
        finally:
            if reader is not None:
                reader.close()

    def iter_tasks(self, size: int = 100, status: str | None = None) -> Iterator[models.Task]:
        """Every task, newest first, page after page."""
        page = 1
        while True:
            listed = self.list_tasks(page=page, size=size, status=status)
            yield from listed.tasks
            if page >= listed.pagination.pages:
                return
            page += 1

    def run_task(
        self,
        task_id: str,
        max_steps: int | None = None,
        poll_s: float = 1.0,
        on_update: Callable[..., None] | None = None,
    ) -> models.Run:
        """Starts the task's run and waits for its end; returns the ended run."""
        run = self.start_run(task_id, max_steps)
        while run.status == "running":
            time.sleep(poll_s)
            run = self.get_run(task_id)
            if on_update is not None:
                on_update(run)
        return run

    def _open(self, url: str) -> Any:
        """A WebSocket to `url` with the key's header; a handshake the server refuses is the API's error."""
        from websockets.sync.client import connect

        try:
            return connect(url, additional_headers=self.headers)
        except Exception as exc:
            if (refused := _refused_handshake(exc)) is not None:
                raise refused from exc
            raise

    def watch_task(self, task_id: str) -> Iterator[dict[str, Any]]:
        """The task's status updates (its current status first) until it is completed or failed."""
        with self._open(self._channel_url(task_id, logs=False)) as socket:
            for raw in socket:
                message = json.loads(raw)
                yield message
                if message.get("status") in ("completed", "failed"):
                    return

    def stream_logs(self, task_id: str | None = None, level: str | None = None) -> Iterator[dict[str, Any]]:
        """The agent's log records as they happen (of one task, from a minimum level), until the caller stops."""
        with self._open(self._channel_url(task_id, logs=True, level=level)) as socket:
            for raw in socket:
                yield json.loads(raw)


class AsyncAutoGPTClient(_Base):
    """The asyncio client: the same methods as AutoGPTClient, each returning an awaitable."""

    http: httpx.AsyncClient

    def _connect(self, timeout: float) -> None:
        self.http = httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncAutoGPTClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self, op: Op[Any]) -> Any:
        try:
            call = next(op)
            while True:
                call = op.send(await self._send(call))
        except StopIteration as done:
            return done.value

    async def _send(self, call: Call) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            try:
                settled = _settle(call, attempt, self.max_retries, await self._attempt(call))
            except httpx.TransportError as exc:
                settled = _settle(call, attempt, self.max_retries, exc)
            if isinstance(settled, httpx.Response):
                return self._revalidated(call, settled)
            await asyncio.sleep(settled)
        raise AssertionError("unreachable: the last attempt settles")

    async def _attempt(self, call: Call) -> httpx.Response:
        request = self._request(call)
        content = b""
        if call.file is not None:
            with open(call.file[1], "rb") as file:  # whole: httpx's async multipart takes bytes, not a sync file
                content = file.read()
            request["files"] = {call.file[0]: (os.path.basename(call.file[1]), content)}
        follow = call.follow_redirects or bool(call.save_to)
        response = await self.http.request(call.method, self._url(call), follow_redirects=follow, **request)
        if response.status_code < 400:
            if call.file is not None and call.file[2] is not None:
                call.file[2](len(content), len(content))
            if call.save_to:
                with open(call.save_to, "wb") as out:
                    out.write(response.content)
        return response

    async def iter_tasks(self, size: int = 100, status: str | None = None) -> AsyncIterator[models.Task]:
        page = 1
        while True:
            listed = await self.list_tasks(page=page, size=size, status=status)
            for task in listed.tasks:
                yield task
            if page >= listed.pagination.pages:
                return
            page += 1

    async def run_task(self, task_id: str, max_steps: int | None = None, poll_s: float = 1.0) -> models.Run:
        run = await self.start_run(task_id, max_steps)
        while run.status == "running":
            await asyncio.sleep(poll_s)
            run = await self.get_run(task_id)
        return run

    async def _open(self, url: str) -> Any:
        import websockets

        try:
            return await websockets.connect(url, additional_headers=self.headers)
        except Exception as exc:
            if (refused := _refused_handshake(exc)) is not None:
                raise refused from exc
            raise

    async def watch_task(self, task_id: str) -> AsyncIterator[dict[str, Any]]:
        async with await self._open(self._channel_url(task_id, logs=False)) as ws:
            async for raw in ws:
                message = json.loads(raw)
                yield message
                if message.get("status") in ("completed", "failed"):
                    return

    async def stream_logs(self, task_id: str | None = None, level: str | None = None) -> AsyncIterator[dict[str, Any]]:
        async with await self._open(self._channel_url(task_id, logs=True, level=level)) as ws:
            async for raw in ws:
                yield json.loads(raw)
