"""Artifact items (a file's metadata and its object's key), pending uploads, and the summary of a task's files on
the task item.

record   PK=TASK#<task_id>  SK=ARTIFACT#<artifact_id>  metadata, and object_key: the S3 object of its content
upload   PK=TASK#<task_id>  SK=UPLOAD#<artifact_id>    a presigned POST handed out, not yet finalized
summary  on the task item: artifacts = {<relative_path>: {i: artifact_id, n: file_size, t: created_at,
         a: agent_created}}, written in the same transaction as the record. GET /tasks/{id}, every item of
         GET /tasks (the index projects it) and each page of the artifact list read a
         task's files from the task item alone. Keyed by path, it makes a path unique within its task, and a
         file adds or leaves with one SET/REMOVE, no read first. Its size is capped (MAX_ARTIFACTS_PER_TASK,
         default 100; paths at most 512 bytes): about 60 KB at most, far below the item's 400 KB.
"""

from __future__ import annotations

from typing import Any

from .dynamo import Table, from_item, task_key, to_item
from .records import ArtifactRecord, PendingUpload


class ArtifactItems(Table):
    def get_artifact(self, task_id: str, artifact_id: str) -> ArtifactRecord | None:
        key = _artifact_key(task_id, artifact_id)
        item = self.client.get_item(TableName=self.name, Key=key, ConsistentRead=True).get("Item")
        return _artifact_from_item(item) if item else None

    def commit_artifact(
        self,
        record: ArtifactRecord,
        *,
        previous: ArtifactRecord | None,
        upload: PendingUpload | None = None,
        max_artifacts: int,
    ) -> None:
        """Stores `record` as the file at its path, with its summary, in one transaction: a new path (`previous` is
        None, and the task holds fewer than `max_artifacts` files), new content for the same artifact, or a new
        artifact that supersedes `previous` (its record goes). With `upload`, that pending upload is consumed.
        Conflict when the task is gone, is full, or the path no longer holds `previous`."""
        names = {"#p": record.relative_path}
        values: dict[str, Any] = {":e": _summary_entry(record), ":m": record.modified_at}
        items: list[dict[str, Any]] = []
        if previous is None:
            items.append(self._put_artifact(record, "attribute_not_exists(SK)"))
            condition = "attribute_exists(PK) AND attribute_not_exists(artifacts.#p) AND size(artifacts) < :cap"
            values[":cap"] = max_artifacts
        else:
            if previous.artifact_id == record.artifact_id:
                items.append(self._put_artifact(record, "object_key = :k", {":k": previous.object_key}))
            else:
                items.append(self._delete_artifact_item(previous))
                items.append(self._put_artifact(record, "attribute_not_exists(SK)"))
            condition = "artifacts.#p.i = :prev"
            values[":prev"] = previous.artifact_id
        items.append(
            {
                "Update": {
                    "TableName": self.name,
                    "Key": task_key(record.task_id),
                    "UpdateExpression": "SET artifacts.#p = :e, modified_at = :m",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": to_item(values),
                }
            }
        )
        if upload is not None:
            items.append(
                {
                    "Delete": {
                        "TableName": self.name,
                        "Key": _upload_key(upload.task_id, upload.artifact_id),
                        "ConditionExpression": "object_key = :k",
                        "ExpressionAttributeValues": to_item({":k": upload.object_key}),
                    }
                }
            )
        self.transact(items)

    def delete_artifact(self, record: ArtifactRecord, *, modified_at: str) -> None:
        """Removes the record and its summary together; Conflict when either changed since `record` was read."""
        self.transact(
            [
                self._delete_artifact_item(record),
                {
                    "Update": {
                        "TableName": self.name,
                        "Key": task_key(record.task_id),
                        "UpdateExpression": "REMOVE artifacts.#p SET modified_at = :m",
                        "ConditionExpression": "artifacts.#p.i = :id",
                        "ExpressionAttributeNames": {"#p": record.relative_path},
                        "ExpressionAttributeValues": to_item({":id": record.artifact_id, ":m": modified_at}),
                    }
                },
            ]
        )

    def put_upload(self, upload: PendingUpload) -> None:
        """Records a presigned upload (replacing an earlier one for the same artifact: the newest POST counts)."""
        plain = {k: v for k, v in vars(upload).items() if v is not None}
        item = {**_upload_key(upload.task_id, upload.artifact_id), **to_item(plain)}
        self.client.put_item(TableName=self.name, Item=item)

    def get_upload(self, task_id: str, artifact_id: str) -> PendingUpload | None:
        key = _upload_key(task_id, artifact_id)
        item = self.client.get_item(TableName=self.name, Key=key, ConsistentRead=True).get("Item")
        if not item:
            return None
        plain = from_item(item)
        fields: dict[str, Any] = {k: plain.get(k) for k in PendingUpload.__dataclass_fields__}
        fields.update(file_size=int(fields["file_size"]), expires_at=int(fields["expires_at"]))
        if fields["received_size"] is not None:
            fields["received_size"] = int(fields["received_size"])
        return PendingUpload(**fields)

    def _put_artifact(
        self, record: ArtifactRecord, condition: str, values: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        plain = {k: v for k, v in vars(record).items() if v is not None}
        put: dict[str, Any] = {
            "TableName": self.name,
            "Item": {**_artifact_key(record.task_id, record.artifact_id), **to_item(plain)},
            "ConditionExpression": condition,
        }
        if values:
            put["ExpressionAttributeValues"] = to_item(values)
        return {"Put": put}

    def _delete_artifact_item(self, record: ArtifactRecord) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self.name,
                "Key": _artifact_key(record.task_id, record.artifact_id),
                "ConditionExpression": "object_key = :k",
                "ExpressionAttributeValues": to_item({":k": record.object_key}),
            }
        }


def _artifact_key(task_id: str, artifact_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"TASK#{task_id}"}, "SK": {"S": f"ARTIFACT#{artifact_id}"}}


def _upload_key(task_id: str, artifact_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"TASK#{task_id}"}, "SK": {"S": f"UPLOAD#{artifact_id}"}}


def _summary_entry(record: ArtifactRecord) -> dict[str, Any]:
    return {"i": record.artifact_id, "n": record.file_size, "t": record.created_at, "a": record.agent_created}


def artifact_summaries(summary: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The task item's summary as the API's artifact objects, oldest first."""
    artifacts = [
        {
            "artifact_id": entry["i"],
            "file_name": path.rsplit("/", 1)[-1],
            "relative_path": path,
            "file_size": int(entry["n"]),
            "agent_created": bool(entry["a"]),
            "created_at": entry["t"],
        }
        for path, entry in (summary or {}).items()
    ]
    return sorted(artifacts, key=lambda a: (a["created_at"], a["artifact_id"]))


def _artifact_from_item(item: dict[str, Any]) -> ArtifactRecord:
    plain = from_item(item)
    fields: dict[str, Any] = {k: plain.get(k) for k in ArtifactRecord.__dataclass_fields__}
    fields.update(file_size=int(fields["file_size"]), agent_created=bool(fields["agent_created"]))
    return ArtifactRecord(**fields)
