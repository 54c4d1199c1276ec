"""The artifact bucket (DESIGN §4): the only module that knows S3 object names.

Layout: tasks/<task_id>/<artifact_id>/<version>. Each write of a file's content gets a fresh version, so a record
always names an object that exists, replacing a file never overwrites bytes that a record still points at, and a
write that fails half-way leaves only an object the caller can delete by its key. Everything of a task sits under
tasks/<task_id>/, which is what deleting a task removes.
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from .. import aws
from ..config import get_settings
from ..errors import StorageError

logger = Logger(child=True)
_KEY = re.compile(r"^tasks/(?P<task>[0-9a-f-]{36})/(?P<artifact>[0-9a-f-]{36})/(?P<version>[0-9a-f]+)$")
_MISSING = ("404", "NoSuchKey", "NotFound")


def task_prefix(task_id: str) -> str:
    return f"tasks/{task_id}/"


def new_object_key(task_id: str, artifact_id: str) -> str:
    """Where the next content of this artifact goes: a key nothing else uses."""
    return f"{task_prefix(task_id)}{artifact_id}/{secrets.token_hex(8)}"


def parse_object_key(key: str) -> tuple[str, str] | None:
    """(task_id, artifact_id) of one of our keys; None for any other key."""
    found = _KEY.match(key)
    return (found["task"], found["artifact"]) if found else None


class ArtifactBucket:
    def __init__(self, bucket_name: str, client: Any | None = None) -> None:
        self.name = bucket_name
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws.client("s3")

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        try:
            self.client.put_object(Bucket=self.name, Key=key, Body=data, ContentType=content_type)
        except ClientError as exc:
            raise self._failed("PutObject", exc) from exc

    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        try:
            body = self.client.get_object(Bucket=self.name, Key=key)["Body"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                return None
            raise self._failed("GetObject", exc) from exc
        with body:
            data: bytes = body.read()
        return data

    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when it does not exist (yet)."""
        try:
            return int(self.client.head_object(Bucket=self.name, Key=key)["ContentLength"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                return None
            raise self._failed("HeadObject", exc) from exc

    def delete(self, key: str) -> None:
        """Deleting a key that does not exist succeeds (S3's own rule), so a retry is always safe."""
        try:
            self.client.delete_object(Bucket=self.name, Key=key)
        except ClientError as exc:
            raise self._failed("DeleteObject", exc) from exc

    def delete_task_objects(self, task_id: str) -> int:
        """Deletes every object under the task's prefix, a thousand per request; returns how many.

        Raises StorageError when S3 refuses any of them: the caller keeps the task, and its retry finds only what
        is left."""
        deleted = 0
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.name, Prefix=task_prefix(task_id)
            ):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if not keys:
                    continue
                answer = self.client.delete_objects(Bucket=self.name, Delete={"Objects": keys, "Quiet": True})
                errors = answer.get("Errors") or []
                if errors:
                    logger.warning("objects not deleted", extra={"task_id": task_id, "errors": errors[:5]})
                    raise StorageError(operation="DeleteObjects", not_deleted=len(errors))
                deleted += len(keys)
        except ClientError as exc:
            raise self._failed("DeleteObjects", exc) from exc
        return deleted

    def presigned_get(self, key: str, *, content_type: str, content_disposition: str, expires_in: int) -> str:
        """A GET whose response carries our Content-Type and Content-Disposition (S3 adds Content-Length)."""
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.name,
                "Key": key,
                "ResponseContentType": content_type,
                "ResponseContentDisposition": content_disposition,
            },
            ExpiresIn=expires_in,
        )
        return url

    def presigned_post(self, key: str, *, content_type: str, size: int, expires_in: int) -> tuple[str, dict[str, str]]:
        """A browser-style POST to this one key; its policy admits exactly `size` bytes and this content type."""
        post = self.client.generate_presigned_post(
            Bucket=self.name,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", size, size]],
            ExpiresIn=expires_in,
        )
        return post["url"], post["fields"]

    def _failed(self, operation: str, exc: ClientError) -> StorageError:
        logger.warning(
            "S3 call failed",
            extra={"operation": operation, "code": exc.response.get("Error", {}).get("Code"), "bucket": self.name},
        )
        return StorageError(operation=operation)


@lru_cache(maxsize=1)
def get_bucket() -> ArtifactBucket:
    return ArtifactBucket(get_settings().bucket_name)
