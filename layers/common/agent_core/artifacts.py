"""Artifact rules (DESIGN §4): a task's files, their records in DynamoDB and their bytes in S3.

Uploads through the API (multipart, up to the payload limit), presigned POSTs for larger files (finalized when S3
reports the object, or when the client asks), presigned GET downloads, the list, deletes, and the file operations
the agent's tools use (`list_task_files`, `read_task_file`, `write_agent_file`, `presigned_get_url`).

A path is unique within its task: writing to a path that holds a file replaces its content and keeps its
artifact_id. Every write stores the object first, under a key no record names yet, then commits the record and
the task's summary in one transaction: when S3 fails nothing is recorded, when the commit fails the object is
deleted again, and a replaced file's old object goes once the commit has succeeded.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from .config import get_settings
from .errors import (
    ArtifactNotFound,
    Conflict,
    InsufficientResources,
    InvalidRequest,
    StorageError,
    TaskAlreadyRunning,
    TaskNotFound,
    UploadTooLarge,
)
from .filenames import (
    check_file_type,
    content_disposition,
    content_type_for,
    file_name_of,
    normalize_relative_path,
    resolve_path,
    sanitize_file_name,
)
from .models import Artifact, ArtifactList, DownloadLink, Pagination, PresignedPost, UploadTicket
from .paging import PageRequest
from .storage.bucket import get_bucket, new_object_key, parse_object_key
from .storage.records import ArtifactRecord, PendingUpload, TaskRecord
from .storage.table import get_table
from .tasks import load_task
from .timeutil import now_iso, to_iso

logger = Logger(child=True)
_ATTEMPTS = 3
# A presigned upload's record outlives its URL by this much, then the table's TTL removes it.
_UPLOAD_RECORD_GRACE = timedelta(days=1)


def _public(record: ArtifactRecord) -> Artifact:
    return Artifact(
        artifact_id=record.artifact_id,
        file_name=record.file_name,
        relative_path=record.relative_path,
        file_size=record.file_size,
        agent_created=record.agent_created,
        created_at=record.created_at,
    )


# -- the API ---------------------------------------------------------------------------------------------------


def list_artifacts(*, task_id: str, page: PageRequest) -> ArtifactList:
    """Oldest first; one page is one read of the task item (its summary holds every file)."""
    files = load_task(task_id).artifacts
    return ArtifactList(
        artifacts=[Artifact(**a) for a in files[page.start : page.end]],
        pagination=Pagination.of(page=page.page, size=page.size, total=len(files)),
    )


def upload_artifact(
    *, task_id: str, file_name: str, data: bytes, relative_path: str | None, content_type: str | None
) -> Artifact:
    """A file uploaded through the API (multipart), up to the payload limit."""
    settings = get_settings()
    path = resolve_path(relative_path, sanitize_file_name(file_name, field="file"))
    name = file_name_of(path)  # the name it is stored under, which decides its type
    check_file_type(name, settings.allowed_file_types)
    if len(data) > settings.max_upload_body_bytes:
        raise UploadTooLarge(
            f"the file has {len(data)} bytes; the API accepts at most {settings.max_upload_body_bytes}",
            limit_bytes=settings.max_upload_body_bytes,
            size_bytes=len(data),
        )
    record = _store(
        load_task(task_id),
        path=path,
        data=data,
        content_type=content_type_for(name, content_type),
        agent_created=False,
        step_id=None,
    )
    return _public(record)


def start_upload(
    *, task_id: str, file_name: str, relative_path: str | None, file_size: int, content_type: str | None
) -> UploadTicket:
    """A presigned S3 POST for one file of exactly `file_size` bytes; the file is listed once it is finalized."""
    settings = get_settings()
    path = resolve_path(relative_path, sanitize_file_name(file_name))
    name = file_name_of(path)  # as for an upload through the API
    check_file_type(name, settings.allowed_file_types)
    if file_size > settings.max_file_bytes:
        raise InvalidRequest(
            f"the file has {file_size} bytes; files may have at most {settings.max_file_bytes}",
            field="file_size",
            limit_bytes=settings.max_file_bytes,
        )
    task = load_task(task_id)
    current = _current(task, path)
    if current is None:
        _check_room(task)
    artifact_id = current["artifact_id"] if current else str(uuid.uuid4())
    key = new_object_key(task_id, artifact_id)
    kind = content_type_for(name, content_type)
    expires = datetime.now(UTC) + timedelta(seconds=settings.upload_url_ttl_s)
    url, fields = get_bucket().presigned_post(
        key, content_type=kind, size=file_size, expires_in=settings.upload_url_ttl_s
    )
    upload = PendingUpload(
        task_id=task_id,
        artifact_id=artifact_id,
        relative_path=path,
        file_size=file_size,
        content_type=kind,
        object_key=key,
        created_at=now_iso(),
        expires_at=int((expires + _UPLOAD_RECORD_GRACE).timestamp()),
    )
    get_table().put_upload(upload)
    return UploadTicket(
        artifact_id=artifact_id,
        file_name=name,
        relative_path=path,
        file_size=file_size,
        upload=PresignedPost(url=url, fields=fields, expires_at=to_iso(expires)),
    )


def complete_upload(*, task_id: str, artifact_id: str) -> Artifact:
    """Finalizes a presigned upload now, checking the object's real size; the S3 event may have done it already."""
    upload = get_table().get_upload(task_id, artifact_id)
    if upload is None:
        return _public(_load(task_id, artifact_id))
    record = _finalize(upload, strict=True)
    assert record is not None  # strict: every failure raises
    return _public(record)


def finalize_object(*, object_key: str) -> Artifact | None:
    """S3 reported a new object: when it is a presigned upload's, record the file. Anything else (an API upload,
    an agent's write, an upload finalized already, a foreign key) is left alone."""
    parsed = parse_object_key(object_key)
    if parsed is None:
        return None
    upload = get_table().get_upload(*parsed)
    if upload is None or upload.object_key != object_key:
        return None  # an object of an earlier POST for the same file stays unlisted; deleting the task removes it
    record = _finalize(upload, strict=False)
    return _public(record) if record else None


def download_link(*, task_id: str, artifact_id: str) -> DownloadLink:
    """A presigned GET: the bytes go from S3 to the client, never through Lambda."""
    ttl = get_settings().download_url_ttl_s
    url = _presigned_get(_load(task_id, artifact_id), ttl)
    return DownloadLink(url=url, expires_at=to_iso(datetime.now(UTC) + timedelta(seconds=ttl)))


def delete_artifact(*, task_id: str, artifact_id: str) -> None:
    """The record and the summary go in one transaction, then the object."""
    table = get_table()
    for _ in range(_ATTEMPTS):
        record = _load(task_id, artifact_id)
        try:
            table.delete_artifact(record, modified_at=now_iso())
        except Conflict:
            continue  # replaced meanwhile: look again
        _discard(record.object_key)
        return
    raise TaskAlreadyRunning("the file kept changing while being deleted", artifact_id=artifact_id)


# -- the agent's file operations (agent/files.py) -------------------------------------------------------------------


def list_task_files(task_id: str) -> list[dict[str, Any]]:
    """The task's files as the API shows them, oldest first."""
    return [dict(a) for a in load_task(task_id).artifacts]


def read_task_file(task_id: str, relative_path: str) -> bytes:
    """The file's bytes; FileNotFoundError when the task has no such file (an invalid path names none)."""
    try:
        path, _ = normalize_relative_path(relative_path)
    except InvalidRequest as exc:
        raise FileNotFoundError(relative_path) from exc
    current = _current(load_task(task_id), path)
    record = get_table().get_artifact(task_id, current["artifact_id"]) if current else None
    data = get_bucket().read(record.object_key) if record else None
    if data is None:
        raise FileNotFoundError(relative_path)
    return data


def write_agent_file(
    task_id: str, relative_path: str, data: bytes, content_type: str | None, step_id: str | None
) -> dict[str, Any]:
    """Creates the file, or replaces the content of the one at that path (its artifact_id stays), as written by
    the agent. The upload allow-list does not apply: it limits what users send."""
    path, is_folder = normalize_relative_path(relative_path, field="path")
    if is_folder:
        raise InvalidRequest("the path must end with a file name", field="path")
    limit = get_settings().max_file_bytes
    if len(data) > limit:
        raise InvalidRequest(f"the file has {len(data)} bytes; files may have at most {limit}", field="data")
    record = _store(
        load_task(task_id),
        path=path,
        data=data,
        content_type=content_type_for(file_name_of(path), content_type),
        agent_created=True,
        step_id=step_id,
    )
    return _public(record).model_dump()


def presigned_get_url(task_id: str, artifact_id: str) -> str:
    return _presigned_get(_load(task_id, artifact_id), get_settings().download_url_ttl_s)


# -- the rules shared by every write ----------------------------------------------------------------------------


def _current(task: TaskRecord, path: str) -> dict[str, Any] | None:
    return next((a for a in task.artifacts if a["relative_path"] == path), None)


def _check_room(task: TaskRecord) -> None:
    limit = get_settings().max_artifacts_per_task
    if len(task.artifacts) >= limit:
        raise InsufficientResources(
            f"the task holds {limit} files, the most it may",
            task_id=task.task_id,
            limit=limit,
            suggestion="Delete files the task no longer needs, or replace one by uploading to its path",
        )


def _load(task_id: str, artifact_id: str) -> ArtifactRecord:
    record = get_table().get_artifact(task_id, artifact_id)
    if record is None:
        load_task(task_id)  # an unknown task is TASK_NOT_FOUND, not ARTIFACT_NOT_FOUND
        raise ArtifactNotFound(artifact_id=artifact_id)
    return record


def _presigned_get(record: ArtifactRecord, ttl: int) -> str:
    return get_bucket().presigned_get(
        record.object_key,
        content_type=record.content_type,
        content_disposition=content_disposition(record.file_name),
        expires_in=ttl,
    )


def _store(
    task: TaskRecord, *, path: str, data: bytes, content_type: str, agent_created: bool, step_id: str | None
) -> ArtifactRecord:
    """The object first, then the record; a failed commit takes the object back out."""
    current = _current(task, path)
    if current is None:
        _check_room(task)
    artifact_id = current["artifact_id"] if current else str(uuid.uuid4())
    key = new_object_key(task.task_id, artifact_id)
    get_bucket().put(key, data, content_type=content_type)
    try:
        return _commit(
            task,
            artifact_id=artifact_id,
            path=path,
            object_key=key,
            size=len(data),
            content_type=content_type,
            agent_created=agent_created,
            step_id=step_id,
        )
    except BaseException:
        _discard(key)
        raise


def _commit(
    task: TaskRecord,
    *,
    artifact_id: str,
    path: str,
    object_key: str,
    size: int,
    content_type: str,
    agent_created: bool,
    step_id: str | None,
    upload: PendingUpload | None = None,
) -> ArtifactRecord:
    """Records the object at `object_key` as the file at `path`, retrying when another write got there first."""
    table, limit = get_table(), get_settings().max_artifacts_per_task
    for _ in range(_ATTEMPTS):
        current = _current(task, path)
        previous = table.get_artifact(task.task_id, current["artifact_id"]) if current else None
        if previous is not None and previous.object_key == object_key:
            return previous  # committed already (the S3 event and the client's `complete` raced)
        if previous is None:
            _check_room(task)
        now = now_iso()
        record = ArtifactRecord(
            task_id=task.task_id,
            artifact_id=artifact_id,
            relative_path=path,
            file_size=size,
            content_type=content_type,
            agent_created=agent_created,
            created_at=previous.created_at if previous and previous.artifact_id == artifact_id else now,
            modified_at=now,
            object_key=object_key,
            step_id=step_id,
        )
        try:
            table.commit_artifact(record, previous=previous, upload=upload, max_artifacts=limit)
        except Conflict:
            task = load_task(task.task_id)  # the task, its files or the upload changed: look again
            continue
        if previous is not None:
            _discard(previous.object_key)
        return record
    raise TaskAlreadyRunning("the task's files kept changing while this one was stored", relative_path=path)


def _finalize(upload: PendingUpload, *, strict: bool) -> ArtifactRecord | None:
    """Records a presigned upload's object once it is there with the declared size. `strict` (the client asked)
    raises what is wrong; otherwise (the S3 event) it is logged and the upload stays pending."""
    bucket = get_bucket()
    size = bucket.size(upload.object_key)
    if size is None and strict and upload.received_size is not None:
        raise _wrong_size(upload, upload.received_size)  # the S3 event found it first, and deleted it
    if size is None:
        if strict:
            raise InvalidRequest(
                "the file has not been uploaded yet",
                artifact_id=upload.artifact_id,
                suggestion="POST the file to upload.url with upload.fields first",
            )
        return None
    if size != upload.file_size:
        _discard(upload.object_key)  # a key of this upload alone: no record names it
        if strict:
            raise _wrong_size(upload, size)
        get_table().put_upload(dataclasses.replace(upload, received_size=size))  # for the client's complete call
        logger.warning("upload of the wrong size deleted", extra={"key": upload.object_key, "size": size})
        return None
    try:
        return _commit(
            load_task(upload.task_id),
            artifact_id=upload.artifact_id,
            path=upload.relative_path,
            object_key=upload.object_key,
            size=size,
            content_type=upload.content_type,
            agent_created=False,
            step_id=None,
            upload=upload,
        )
    except TaskNotFound:
        _discard(upload.object_key)  # landed after its task was deleted
        if strict:
            raise
    except InsufficientResources:
        if strict:
            raise
        logger.warning("upload not recorded: the task is full", extra={"key": upload.object_key})
    return None


def _wrong_size(upload: PendingUpload, size: int) -> InvalidRequest:
    return InvalidRequest(
        f"the uploaded file has {size} bytes, not the {upload.file_size} declared; it was deleted",
        artifact_id=upload.artifact_id,
        size_bytes=size,
        declared_bytes=upload.file_size,
        suggestion="ask for a new upload with the file's real size (POST .../artifacts/uploads), then send it",
    )


def _discard(key: str) -> None:
    """Deletes an object no record names (any more). A failure leaves it under the task's prefix, where deleting
    the task finds it; the request it belongs to has its own outcome to report."""
    try:
        get_bucket().delete(key)
    except StorageError:
        logger.warning("object left behind", extra={"key": key})
