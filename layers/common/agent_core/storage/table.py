"""The single DynamoDB table (DESIGN §2).

Layout:
  task      PK=TASK#<id>  SK=TASK        GSI1 (all tasks by creation)   GSI1PK=TASKS          GSI1SK=<created_at>#<id>
                                         GSI2 (tasks of one status)     GSI2PK=TASKS#<status> GSI2SK=<created_at>#<id>
  counters  PK=AGENT      SK=COUNTERS    tasks_total, tasks_<status>, tokens_total, cost_usd_total: updated in the
                                         transaction of the write they count
  step      PK=TASK#<id>  SK=STEP#<seq>  seq dense from 1 (page N of steps is one Query); LSI ByRef: REF=STEP#<step_id>
  artifact  PK=TASK#<id>  SK=ARTIFACT#<artifact_id>  a file's metadata and its object's key (see the artifacts section)
  upload    PK=TASK#<id>  SK=UPLOAD#<artifact_id>    a presigned upload not finalized yet (TTL: expires_at)
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from decimal import Decimal
from functools import lru_cache
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from .. import aws
from ..config import get_settings
from ..errors import Conflict
from .records import ArtifactRecord, PendingUpload, RunRecord, StepRecord, TaskRecord, TaskState

_ser, _de = TypeSerializer(), TypeDeserializer()
_CONFLICT_ATTEMPTS = 5
_CONFLICT_BACKOFF_S = 0.02
COUNTERS_KEY = {"PK": {"S": "AGENT"}, "SK": {"S": "COUNTERS"}}
BY_CREATED, BY_STATUS, BY_REF = "ByCreated", "ByStatus", "ByRef"
_JSON_FIELDS = ("additional_input", "artifacts", "additional_output", "messages")


def task_key(task_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"TASK#{task_id}"}, "SK": {"S": "TASK"}}


def _sort_key(created_at: str, task_id: str) -> str:
    return f"{created_at}#{task_id}"


def _to_item(plain: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in plain.items()}


def _cancellation_reasons(exc: ClientError) -> str | None:
    """Why a transaction was cancelled ("ConditionalCheckFailed", "TransactionConflict", ...), or None for any other
    error. The codes come in CancellationReasons, or only in the message."""
    error = exc.response["Error"]
    if error["Code"] not in ("TransactionCanceledException", "TransactionConflictException"):
        return None
    reasons = [str(r.get("Code")) for r in exc.response.get("CancellationReasons", [])]
    text = f"{' '.join(reasons)} {error.get('Message', '')}".strip()
    return text if "ConditionalCheckFailed" in text or "TransactionConflict" in text else None


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def _task_from_item(item: dict[str, Any]) -> TaskRecord:
    return _task_from_plain(_from_item(item))


def _task_from_plain(plain: dict[str, Any]) -> TaskRecord:
    return TaskRecord(
        task_id=plain["task_id"],
        input=plain["input"],
        # Stored as JSON text: DynamoDB maps refuse floats and empty keys that clients may well send.
        additional_input=json.loads(plain.get("additional_input") or "{}"),
        status=plain["status"],
        created_at=plain["created_at"],
        modified_at=plain["modified_at"],
        artifacts=_artifact_summaries(plain.get("artifacts")),
    )


def _decimal(value: float) -> Decimal:
    return Decimal(str(value))


def _step_sk(seq: int) -> str:
    return f"STEP#{seq:06d}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _step_item(step: StepRecord) -> dict[str, Any]:
    plain = {k: v for k, v in vars(step).items() if v is not None}
    for key in _JSON_FIELDS:  # JSON text: floats and empty keys are legal there
        plain[key] = _json(plain.get(key) or ({} if key.startswith("additional") else []))
    return {
        "PK": {"S": f"TASK#{step.task_id}"},
        "SK": {"S": _step_sk(step.seq)},
        **_to_item({**plain, "REF": f"STEP#{step.step_id}"}),
    }


def _step_from_item(item: dict[str, Any]) -> StepRecord:
    plain = _from_item(item)
    fields: dict[str, Any] = {k: plain.get(k) for k in StepRecord.__dataclass_fields__}
    for key in _JSON_FIELDS:
        fields[key] = json.loads(plain.get(key) or ("{}" if key.startswith("additional") else "[]"))
    fields["seq"] = int(plain["seq"])
    fields["is_last"] = bool(plain.get("is_last"))
    return StepRecord(**fields)


def _state_from_item(item: dict[str, Any]) -> TaskState:
    plain = _from_item(item)
    return TaskState(
        task=_task_from_plain(plain),
        step_count=int(plain.get("step_count", 0)),
        lease_id=plain.get("lease_id"),
        lease_until=int(plain.get("lease_until", 0)),
        run_id=plain.get("run_id"),
        run=RunRecord(**json.loads(plain["run"])) if plain.get("run") else None,
        watchers=int(plain.get("watchers", 0)),
    )


class TaskTable:
    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws.client("dynamodb")

    # -- tasks -------------------------------------------------------------------------------------------------

    def create_task(self, task: TaskRecord) -> None:
        """One transaction: the task item and the counters that count it."""
        sort = _sort_key(task.created_at, task.task_id)
        item = {
            **task_key(task.task_id),
            **_to_item(
                {
                    "task_id": task.task_id,
                    "input": task.input,
                    "status": task.status,
                    "additional_input": json.dumps(task.additional_input, ensure_ascii=False, separators=(",", ":")),
                    "created_at": task.created_at,
                    "modified_at": task.modified_at,
                    "artifacts": {},  # the artifact summary (artifacts section); a map so files add and go in place
                    "GSI1PK": "TASKS",
                    "GSI1SK": sort,
                    "GSI2PK": f"TASKS#{task.status}",
                    "GSI2SK": sort,
                }
            ),
        }
        self.transact(
            [
                {"Put": {"TableName": self.name, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}},
                self.count({"tasks_total": 1, f"tasks_{task.status}": 1}),
            ]
        )

    def get_task(self, task_id: str) -> TaskRecord | None:
        item = self.client.get_item(TableName=self.name, Key=task_key(task_id), ConsistentRead=True).get("Item")
        return _task_from_item(item) if item else None

    def first_tasks(
        self, *, limit: int, status: str | None = None, created_after: str | None = None, oldest_first: bool = False
    ) -> list[TaskRecord]:
        """The newest (or oldest) `limit` tasks matching the filters, in that order (DynamoDB has no offset:
        pages are sliced from this)."""
        out: list[TaskRecord] = []
        query = self._query_index(status=status, created_after=created_after, limit=limit, forward=oldest_first)
        for item in query:
            out.append(_task_from_item(item))
            if len(out) == limit:
                break
        return out

    def count_tasks(self, *, status: str | None, created_after: str) -> int:
        """Counts index entries newer than `created_after` (counters cannot answer a time filter)."""
        total = 0
        for page in self._pages(self._index_query(status, created_after) | {"Select": "COUNT"}):
            total += page["Count"]
        return total

    def set_task_status(self, task_id: str, *, old: str, new: str, modified_at: str) -> None:
        """Moves the task and its counters together; Conflict if its status is no longer `old`."""
        self.transact(
            [
                {
                    "Update": {
                        "TableName": self.name,
                        "Key": task_key(task_id),
                        "UpdateExpression": "SET #s = :new, GSI2PK = :gsi, modified_at = :m",
                        "ConditionExpression": "#s = :old",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": _to_item(
                            {":new": new, ":old": old, ":gsi": f"TASKS#{new}", ":m": modified_at}
                        ),
                    }
                },
                self.count({f"tasks_{old}": -1, f"tasks_{new}": 1}),
            ]
        )

    def delete_task(self, task_id: str, *, status: str) -> None:
        """Deletes the task item and uncounts it; Conflict if it is gone or its status changed meanwhile."""
        self.transact(
            [
                {
                    "Delete": {
                        "TableName": self.name,
                        "Key": task_key(task_id),
                        "ConditionExpression": "#s = :s",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":s": {"S": status}},
                    }
                },
                self.count({"tasks_total": -1, f"tasks_{status}": -1}),
            ]
        )

    def delete_task_children(self, task_id: str) -> int:
        """Deletes every item under the task's partition except the task item itself; returns how many."""
        keys = [
            {"PK": item["PK"], "SK": item["SK"]}
            for page in self._pages(
                {
                    "TableName": self.name,
                    "KeyConditionExpression": "PK = :pk",
                    "ExpressionAttributeValues": {":pk": {"S": f"TASK#{task_id}"}},
                    "ProjectionExpression": "PK, SK",
                }
            )
            for item in page["Items"]
            if item["SK"]["S"] != "TASK"
        ]
        for start in range(0, len(keys), 25):
            requests = [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]
            pending: dict[str, Any] = {self.name: requests}
            while pending:  # BatchWriteItem may hand some requests back under load
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        return len(keys)

    # -- steps: PK=TASK#<id> SK=STEP#<seq, dense from 1>; REF=STEP#<step_id> for the ByRef index ------------------

    def load_task_with_steps(self, task_id: str) -> tuple[TaskState | None, list[StepRecord]]:
        """The task item and all its steps in one Query (SK from STEP# up to TASK covers exactly those)."""
        state, steps = None, []
        request = {
            "TableName": self.name,
            "ConsistentRead": True,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :first AND :task",
            "ExpressionAttributeValues": _to_item({":pk": f"TASK#{task_id}", ":first": "STEP#", ":task": "TASK"}),
        }
        for page in self._pages(request):
            for item in page["Items"]:
                if item["SK"]["S"] == "TASK":
                    state = _state_from_item(item)
                else:
                    steps.append(_step_from_item(item))
        return state, steps

    def start_step(
        self,
        state: TaskState,
        step: StepRecord,
        *,
        lease_id: str,
        lease_until: int,
        now: int,
        stale: list[StepRecord] | None = None,
        run_id: str | None = None,
    ) -> None:
        """Takes the task's lease, counts the step and stores it as running, in one transaction. Conflict when
        another step holds an unexpired lease, a run other than `run_id` holds the task, or the task changed since
        `state` was read. `stale` steps (left running by an invocation that died) are stored closed in the same
        transaction."""
        old = state.task.status
        values = {
            ":lease": lease_id,
            ":until": lease_until,
            ":now": now,
            ":seq": step.seq,
            ":prev": state.step_count,
            ":running": "running",
            ":old": old,
            ":gsi": "TASKS#running",
            ":m": step.created_at,
            ":run": run_id or "-",
        }
        items = [
            {
                "Update": {
                    "TableName": self.name,
                    "Key": task_key(state.task.task_id),
                    "UpdateExpression": "SET lease_id = :lease, lease_until = :until, step_count = :seq, "
                    "#s = :running, GSI2PK = :gsi, modified_at = :m",
                    "ConditionExpression": "attribute_exists(PK) AND #s = :old "
                    "AND (attribute_not_exists(lease_until) OR lease_until < :now) "
                    "AND (attribute_not_exists(step_count) OR step_count = :prev) "
                    "AND (attribute_not_exists(run_id) OR run_id = :run)",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": _to_item(values),
                }
            },
            {
                "Put": {
                    "TableName": self.name,
                    "Item": _step_item(step),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]
        items += [{"Put": {"TableName": self.name, "Item": _step_item(s)}} for s in stale or []]
        if old != "running":
            items.append(self.count({f"tasks_{old}": -1, "tasks_running": 1}))
        self.transact(items)

    def finish_step(
        self, step: StepRecord, *, lease_id: str, old_status: str, new_status: str, tokens: int, cost_usd: float
    ) -> None:
        """Stores the finished step, releases the lease and adds the spend to the task and the agent, together.
        Conflict when the lease is no longer ours or the task's status is no longer `old_status` (a run ended)."""
        values = {
            ":lease": lease_id,
            ":old": old_status,
            ":new": new_status,
            ":gsi": f"TASKS#{new_status}",
            ":m": step.modified_at,
            ":t": tokens,
            ":c": _decimal(cost_usd),
        }
        deltas: dict[str, Any] = {"tokens_total": tokens, "cost_usd_total": _decimal(cost_usd)}
        if new_status != old_status:
            deltas.update({f"tasks_{old_status}": -1, f"tasks_{new_status}": 1})
        self.transact(
            [
                {"Put": {"TableName": self.name, "Item": _step_item(step)}},
                {
                    "Update": {
                        "TableName": self.name,
                        "Key": task_key(step.task_id),
                        "UpdateExpression": "SET #s = :new, GSI2PK = :gsi, modified_at = :m "
                        "REMOVE lease_id, lease_until ADD tokens_total :t, cost_usd :c",
                        "ConditionExpression": "lease_id = :lease AND #s = :old",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": _to_item(values),
                    }
                },
                self.count(deltas),
            ]
        )

    def get_step(self, task_id: str, step_id: str) -> StepRecord | None:
        items = self.client.query(
            TableName=self.name,
            IndexName=BY_REF,
            KeyConditionExpression="PK = :pk AND REF = :ref",
            ExpressionAttributeValues=_to_item({":pk": f"TASK#{task_id}", ":ref": f"STEP#{step_id}"}),
        )["Items"]
        return _step_from_item(items[0]) if items else None

    def steps_between(self, task_id: str, first: int, last: int) -> list[StepRecord]:
        """Steps first..last (sequence numbers, inclusive), oldest first: one page is one Query."""
        request = {
            "TableName": self.name,
            "ConsistentRead": True,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :a AND :b",
            "ExpressionAttributeValues": _to_item(
                {":pk": f"TASK#{task_id}", ":a": _step_sk(first), ":b": _step_sk(last)}
            ),
        }
        return [_step_from_item(item) for page in self._pages(request) for item in page["Items"]]

    def get_task_state(self, task_id: str) -> TaskState | None:
        item = self.client.get_item(TableName=self.name, Key=task_key(task_id), ConsistentRead=True).get("Item")
        return _state_from_item(item) if item else None

    # -- artifacts -------------------------------------------------------------------------------------------------
    # record   PK=TASK#<task_id>  SK=ARTIFACT#<artifact_id>  metadata, and object_key: the S3 object of its content
    # upload   PK=TASK#<task_id>  SK=UPLOAD#<artifact_id>    a presigned POST handed out, not yet finalized
    # summary  on the task item: artifacts = {<relative_path>: {i: artifact_id, n: file_size, t: created_at,
    #          a: agent_created}}, written in the same transaction as the record. GET /tasks/{id}, every item of
    #          GET /tasks (two calls per page, the index projects it) and each page of the artifact list read a
    #          task's files from the task item alone. Keyed by path, it makes a path unique within its task, and a
    #          file adds or leaves with one SET/REMOVE, no read first. Its size is capped (MAX_ARTIFACTS_PER_TASK,
    #          default 100; paths at most 512 bytes): about 60 KB at most, far below the item's 400 KB.

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
                    "ExpressionAttributeValues": _to_item(values),
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
                        "ExpressionAttributeValues": _to_item({":k": upload.object_key}),
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
                        "ExpressionAttributeValues": _to_item({":id": record.artifact_id, ":m": modified_at}),
                    }
                },
            ]
        )

    def put_upload(self, upload: PendingUpload) -> None:
        """Records a presigned upload (replacing an earlier one for the same artifact: the newest POST counts)."""
        plain = {k: v for k, v in vars(upload).items() if v is not None}
        item = {**_upload_key(upload.task_id, upload.artifact_id), **_to_item(plain)}
        self.client.put_item(TableName=self.name, Item=item)

    def get_upload(self, task_id: str, artifact_id: str) -> PendingUpload | None:
        key = _upload_key(task_id, artifact_id)
        item = self.client.get_item(TableName=self.name, Key=key, ConsistentRead=True).get("Item")
        if not item:
            return None
        plain = _from_item(item)
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
            "Item": {**_artifact_key(record.task_id, record.artifact_id), **_to_item(plain)},
            "ConditionExpression": condition,
        }
        if values:
            put["ExpressionAttributeValues"] = _to_item(values)
        return {"Put": put}

    def _delete_artifact_item(self, record: ArtifactRecord) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self.name,
                "Key": _artifact_key(record.task_id, record.artifact_id),
                "ConditionExpression": "object_key = :k",
                "ExpressionAttributeValues": _to_item({":k": record.object_key}),
            }
        }

    # -- counters ------------------------------------------------------------------------------------------------

    def counters(self) -> dict[str, int | float]:
        """Task counts by status (ints) and the agent's spend: tokens_total, cost_usd_total (a float)."""
        item = self.client.get_item(TableName=self.name, Key=COUNTERS_KEY, ConsistentRead=True).get("Item") or {}
        return {k: int(v) if v % 1 == 0 else float(v) for k, v in _from_item(item).items() if k not in ("PK", "SK")}

    # -- helpers ---------------------------------------------------------------------------------------------------

    def count(self, deltas: dict[str, int]) -> dict[str, Any]:
        names = {f"#c{i}": name for i, name in enumerate(deltas)}
        values = {f":c{i}": {"N": str(delta)} for i, delta in enumerate(deltas.values())}
        return {
            "Update": {
                "TableName": self.name,
                "Key": COUNTERS_KEY,
                "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(deltas))),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def transact(self, items: list[dict[str, Any]]) -> None:
        """One transaction. A failed condition is a Conflict at once. Another transaction on one of its items at the
        same moment (the counters item, mostly) leaves the write valid: it is tried again, with jitter, a few times."""
        for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
            try:
                self.client.transact_write_items(TransactItems=items)
                return
            except ClientError as exc:
                reasons = _cancellation_reasons(exc)
                if reasons is None:
                    raise
                if "ConditionalCheckFailed" in reasons or attempt == _CONFLICT_ATTEMPTS:
                    raise Conflict(reasons) from exc
                time.sleep(random.uniform(0, _CONFLICT_BACKOFF_S * 2**attempt))

    def _index_query(self, status: str | None, created_after: str | None) -> dict[str, Any]:
        pk, sk, index = ("GSI2PK", "GSI2SK", BY_STATUS) if status else ("GSI1PK", "GSI1SK", BY_CREATED)
        condition, values = f"{pk} = :pk", {":pk": {"S": f"TASKS#{status}" if status else "TASKS"}}
        if created_after:
            # `#` sorts after every character of the timestamp, so equal times are excluded ("after").
            condition += f" AND {sk} > :after"
            values[":after"] = {"S": created_after + "#~"}
        return {
            "TableName": self.name,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }

    def _query_index(
        self, *, status: str | None, created_after: str | None, limit: int, forward: bool = False
    ) -> Iterator[dict[str, Any]]:
        request = self._index_query(status, created_after) | {"Limit": limit, "ScanIndexForward": forward}
        for page in self._pages(request):
            yield from page["Items"]

    def _pages(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            page = self.client.query(**request)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            request = request | {"ExclusiveStartKey": page["LastEvaluatedKey"]}


# -- artifacts: keys and item shapes ----------------------------------------------------------------------------


def _artifact_key(task_id: str, artifact_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"TASK#{task_id}"}, "SK": {"S": f"ARTIFACT#{artifact_id}"}}


def _upload_key(task_id: str, artifact_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"TASK#{task_id}"}, "SK": {"S": f"UPLOAD#{artifact_id}"}}


def _summary_entry(record: ArtifactRecord) -> dict[str, Any]:
    return {"i": record.artifact_id, "n": record.file_size, "t": record.created_at, "a": record.agent_created}


def _artifact_summaries(summary: dict[str, Any] | None) -> list[dict[str, Any]]:
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
    plain = _from_item(item)
    fields: dict[str, Any] = {k: plain.get(k) for k in ArtifactRecord.__dataclass_fields__}
    fields.update(file_size=int(fields["file_size"]), agent_created=bool(fields["agent_created"]))
    return ArtifactRecord(**fields)


@lru_cache(maxsize=1)
def get_table() -> TaskTable:
    return TaskTable(get_settings().table_name)
