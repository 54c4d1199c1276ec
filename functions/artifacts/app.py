"""Artifact routes: upload (multipart, or a presigned S3 POST for large files), list, download, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, File, Form, Query, UploadFile
from fastapi.responses import RedirectResponse

from agent_core import artifacts
from agent_core.api import Lang, api_router, create_app, lambda_handler, page_query
from agent_core.conditional import Conditional
from agent_core.config import get_settings
from agent_core.errors import InvalidRequest, UploadTooLarge
from agent_core.models import (
    Artifact,
    ArtifactId,
    ArtifactList,
    Deleted,
    DownloadLink,
    RelativePath,
    TaskId,
    UploadRequestBody,
    UploadTicket,
)
from agent_core.paging import PageRequest

router = api_router()
ArtifactPage = Annotated[PageRequest, Depends(page_query(default_size=10))]  # the task list's rules


@router.post("/tasks/{task_id}/artifacts")
def upload_artifact(
    task_id: TaskId,
    file: Annotated[list[UploadFile], File(description="The file (one)")],
    relative_path: Annotated[RelativePath | None, Form(description="Where the file goes in the task")] = None,
    relative_path_query: Annotated[RelativePath | None, Query(alias="relative_path")] = None,
) -> Artifact:
    if relative_path is not None and relative_path_query is not None and relative_path != relative_path_query:
        raise InvalidRequest("relative_path differs between the form and the query", field="relative_path")
    if len(file) != 1:  # one artifact per request: a second file would otherwise be dropped without a word
        raise InvalidRequest(f"send one file per request, not {len(file)}", field="file", files=len(file))
    return artifacts.upload_artifact(
        task_id=str(task_id),
        file_name=file[0].filename or "",
        data=file[0].file.read(),
        relative_path=relative_path if relative_path is not None else relative_path_query,
        content_type=file[0].content_type,
    )


@router.post("/tasks/{task_id}/artifacts/uploads")
def start_upload(task_id: TaskId, body: UploadRequestBody) -> UploadTicket:
    return artifacts.start_upload(
        task_id=str(task_id),
        file_name=body.file_name,
        relative_path=body.relative_path,
        file_size=body.file_size,
        content_type=body.content_type,
    )


@router.post("/tasks/{task_id}/artifacts/uploads/{artifact_id}/complete")
def complete_upload(task_id: TaskId, artifact_id: ArtifactId) -> Artifact:
    return artifacts.complete_upload(task_id=str(task_id), artifact_id=str(artifact_id))


@router.get("/tasks/{task_id}/artifacts")
def list_artifacts(task_id: TaskId, page: ArtifactPage, cache: Conditional) -> ArtifactList:
    found = artifacts.list_artifacts(task_id=str(task_id), page=page)
    cache.check(found.pagination.total, [(a.artifact_id, a.file_size) for a in found.artifacts])
    return found


@router.get("/tasks/{task_id}/artifacts/{artifact_id}", response_model=None)
def download_artifact(
    task_id: TaskId,
    artifact_id: ArtifactId,
    redirect: Annotated[bool, Query(description="false: answer {url, expires_at} instead of a 307")] = True,
) -> RedirectResponse | DownloadLink:
    link = artifacts.download_link(task_id=str(task_id), artifact_id=str(artifact_id))
    if not redirect:
        return link
    return RedirectResponse(link.url, status_code=307, headers={"Cache-Control": "no-store"})


@router.delete("/tasks/{task_id}/artifacts/{artifact_id}")
def delete_artifact(task_id: TaskId, artifact_id: ArtifactId, lang: Lang) -> Deleted:
    artifacts.delete_artifact(task_id=str(task_id), artifact_id=str(artifact_id))
    return Deleted.of("artifact", lang)


def body_limit(content_type: str) -> int:
    """Multipart uploads up to the API's payload limit (larger files take the presigned path); JSON as usual."""
    settings = get_settings()
    multipart = content_type.lower().startswith("multipart/")
    return settings.max_upload_body_bytes if multipart else settings.max_json_body_bytes


app = create_app(router, title="artifacts", body_limit=body_limit, too_large=UploadTooLarge)
handler = lambda_handler(app)
