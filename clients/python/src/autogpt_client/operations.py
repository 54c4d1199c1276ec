"""Every operation of the API once, without I/O: each is a generator that yields the HTTP calls it needs and gets
their responses back, so the sync and the async client run the same code (client.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from . import models

T = TypeVar("T")
Op = Generator["Call", httpx.Response, T]
Progress = Callable[[int, int], None]
API_PREFIX = "/ap/v1/agent"
# Files up to this size go through the API as multipart (its limit is 4.5 MB); larger ones straight to S3.
MULTIPART_LIMIT = 4_000_000


@dataclass
class Call:
    method: str
    path: str  # under the API's prefix, or a whole URL (a presigned S3 POST)
    json: Any = None
    params: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    file: tuple[str, str, Progress | None] | None = None  # (form field name, local path, progress callback)
    headers: dict[str, str] = field(default_factory=dict)
    safe_to_retry: bool = False  # the server gives the same answer again (GET, DELETE, keyed POSTs)
    follow_redirects: bool = False
    save_to: str | None = None  # stream the body to this file instead of reading it


def _key(idempotency_key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}


def create_task(input: str, additional_input: dict[str, Any] | None, idempotency_key: str | None) -> Op[models.Task]:
    body = {"input": input, "additional_input": additional_input or {}}
    r = yield Call("POST", "/tasks", json=body, headers=_key(idempotency_key), safe_to_retry=True)
    return models.Task.model_validate(r.json())


def list_tasks(page: int, size: int, status: str | None, created_after: str | None) -> Op[models.TaskList]:
    params = {"page": page, "size": size, "status": status, "created_after": created_after}
    r = yield Call("GET", "/tasks", params={k: v for k, v in params.items() if v is not None}, safe_to_retry=True)
    return models.TaskList.model_validate(r.json())


def get_task(task_id: str) -> Op[models.Task]:
    r = yield Call("GET", f"/tasks/{task_id}", safe_to_retry=True)
    return models.Task.model_validate(r.json())


def delete_task(task_id: str) -> Op[models.Deleted]:
    r = yield Call("DELETE", f"/tasks/{task_id}", safe_to_retry=True)
    return models.Deleted.model_validate(r.json())


def execute_step(
    task_id: str, input: str | None, additional_input: dict[str, Any] | None, idempotency_key: str | None
) -> Op[models.Step]:
    body = {"input": input, "additional_input": additional_input or {}}
    r = yield Call("POST", f"/tasks/{task_id}/steps", json=body, headers=_key(idempotency_key), safe_to_retry=True)
    return models.Step.model_validate(r.json())


def list_steps(task_id: str, page: int, size: int) -> Op[models.StepList]:
    r = yield Call("GET", f"/tasks/{task_id}/steps", params={"page": page, "size": size}, safe_to_retry=True)
    return models.StepList.model_validate(r.json())


def get_step(task_id: str, step_id: str) -> Op[models.Step]:
    r = yield Call("GET", f"/tasks/{task_id}/steps/{step_id}", safe_to_retry=True)
    return models.Step.model_validate(r.json())


def get_artifacts(task_id: str) -> Op[list[models.Artifact]]:
    found: list[models.Artifact] = []
    page = 1
    while True:
        r = yield Call("GET", f"/tasks/{task_id}/artifacts", params={"page": page, "size": 100}, safe_to_retry=True)
        body = r.json()
        found += [models.Artifact.model_validate(a) for a in body["artifacts"]]
        pages = (body.get("pagination") or {}).get("pages", 1)
        if page >= pages:
            return found
        page += 1


def upload_artifact(
    task_id: str, path: str, relative_path: str | None, progress: Progress | None
) -> Op[models.Artifact]:
    """Multipart through the API for small files; a presigned S3 POST, then `complete`, for large ones."""
    size = os.path.getsize(path)
    name = os.path.basename(path)
    if size <= MULTIPART_LIMIT:
        data = {"relative_path": relative_path} if relative_path else None
        r = yield Call("POST", f"/tasks/{task_id}/artifacts", data=data, file=("file", path, progress))
        return models.Artifact.model_validate(r.json())
    ticket_body = {"file_name": name, "file_size": size, **({"relative_path": relative_path} if relative_path else {})}
    r = yield Call("POST", f"/tasks/{task_id}/artifacts/uploads", json=ticket_body)
    ticket = r.json()
    upload = ticket["upload"]
    yield Call("POST", upload["url"], data=upload["fields"], file=("file", path, progress))
    r = yield Call("POST", f"/tasks/{task_id}/artifacts/uploads/{ticket['artifact_id']}/complete", safe_to_retry=True)
    return models.Artifact.model_validate(r.json())


def download_artifact(task_id: str, artifact_id: str, save_to: str | None) -> Op[bytes | None]:
    """The file's bytes (the API redirects to a presigned S3 URL), or None once written to `save_to`."""
    call = Call("GET", f"/tasks/{task_id}/artifacts/{artifact_id}", safe_to_retry=True, follow_redirects=True)
    call.save_to = save_to
    r = yield call
    return None if save_to else r.content


def delete_artifact(task_id: str, artifact_id: str) -> Op[models.Deleted]:
    r = yield Call("DELETE", f"/tasks/{task_id}/artifacts/{artifact_id}", safe_to_retry=True)
    return models.Deleted.model_validate(r.json())


def start_run(task_id: str, max_steps: int | None) -> Op[models.Run]:
    r = yield Call("POST", f"/tasks/{task_id}/run", json={"max_steps": max_steps} if max_steps else None)
    return models.Run.model_validate(r.json())


def get_run(task_id: str) -> Op[models.Run]:
    r = yield Call("GET", f"/tasks/{task_id}/run", safe_to_retry=True)
    return models.Run.model_validate(r.json())


def cancel_run(task_id: str) -> Op[models.Run]:
    r = yield Call("POST", f"/tasks/{task_id}/cancel", safe_to_retry=True)
    return models.Run.model_validate(r.json())


def status() -> Op[models.AgentStatus]:
    r = yield Call("GET", "/status", safe_to_retry=True)
    return models.AgentStatus.model_validate(r.json())


def restart() -> Op[models.RestartResult]:
    r = yield Call("POST", "/restart")
    return models.RestartResult.model_validate(r.json())


# -- API keys (operator-only routes: an operator's key, else 403 FORBIDDEN) -----------------------------------------


def create_key(name: str, budget_usd: float | None) -> Op[models.CreatedKey]:
    """Not repeated after a 5xx or a lost connection: a second key would be made, its secret never seen."""
    body: dict[str, Any] = {"name": name, **({"budget_usd": budget_usd} if budget_usd is not None else {})}
    r = yield Call("POST", "/keys", json=body)
    return models.CreatedKey.model_validate(r.json())


def list_keys() -> Op[list[models.ApiKey]]:
    r = yield Call("GET", "/keys", safe_to_retry=True)
    return models.KeyList.model_validate(r.json()).keys


def revoke_key(key_id: str) -> Op[models.Deleted]:
    r = yield Call("DELETE", f"/keys/{key_id}", safe_to_retry=True)
    return models.Deleted.model_validate(r.json())
