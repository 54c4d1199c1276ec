"""The single DynamoDB table (DESIGN §2).

Layout:
  task      PK=TASK#<id>  SK=TASK        GSI1 (all tasks by creation)   GSI1PK=TASKS          GSI1SK=<created_at>#<id>
                                         GSI2 (tasks of one status)     GSI2PK=TASKS#<status> GSI2SK=<created_at>#<id>
  counters  PK=AGENT      SK=COUNTERS    tasks_total, tasks_<status>: updated in the transaction they count
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from .. import aws
from ..config import get_settings
from ..errors import Conflict
from .records import TaskRecord

_ser, _de = TypeSerializer(), TypeDeserializer()
COUNTERS_KEY = {"PK": {"S": "AGENT"}, "SK": {"S": "COUNTERS"}}
BY_CREATED, BY_STATUS = "ByCreated", "ByStatus"


def task_key(task_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"TASK#{task_id}"}, "SK": {"S": "TASK"}}


def _sort_key(created_at: str, task_id: str) -> str:
    return f"{created_at}#{task_id}"


def _to_item(plain: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in plain.items()}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def _task_from_item(item: dict[str, Any]) -> TaskRecord:
    plain = _from_item(item)
    return TaskRecord(
        task_id=plain["task_id"],
        input=plain["input"],
        # Stored as JSON text: DynamoDB maps refuse floats and empty keys that clients may well send.
        additional_input=json.loads(plain.get("additional_input") or "{}"),
        status=plain["status"],
        created_at=plain["created_at"],
        modified_at=plain["modified_at"],
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
                    "GSI1PK": "TASKS",
                    "GSI1SK": sort,
                    "GSI2PK": f"TASKS#{task.status}",
                    "GSI2SK": sort,
                }
            ),
        }
        self._transact(
            [
                {"Put": {"TableName": self.name, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}},
                self._count({"tasks_total": 1, f"tasks_{task.status}": 1}),
            ]
        )

    def get_task(self, task_id: str) -> TaskRecord | None:
        item = self.client.get_item(TableName=self.name, Key=task_key(task_id), ConsistentRead=True).get("Item")
        return _task_from_item(item) if item else None

    def first_tasks(
        self, *, limit: int, status: str | None = None, created_after: str | None = None
    ) -> list[TaskRecord]:
        """The newest `limit` tasks matching the filters, newest first (DynamoDB has no offset: pages are sliced)."""
        out: list[TaskRecord] = []
        for item in self._query_index(status=status, created_after=created_after, limit=limit):
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
        self._transact(
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
                self._count({f"tasks_{old}": -1, f"tasks_{new}": 1}),
            ]
        )

    def delete_task(self, task_id: str, *, status: str) -> None:
        """Deletes the task item and uncounts it; Conflict if it is gone or its status changed meanwhile."""
        self._transact(
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
                self._count({"tasks_total": -1, f"tasks_{status}": -1}),
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

    # -- counters ------------------------------------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        item = self.client.get_item(TableName=self.name, Key=COUNTERS_KEY, ConsistentRead=True).get("Item") or {}
        return {k: int(v) for k, v in _from_item(item).items() if k not in ("PK", "SK")}

    # -- helpers ---------------------------------------------------------------------------------------------------

    def _count(self, deltas: dict[str, int]) -> dict[str, Any]:
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

    def _transact(self, items: list[dict[str, Any]]) -> None:
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in reasons:
                    raise Conflict(str(reasons)) from exc
            raise

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

    def _query_index(self, *, status: str | None, created_after: str | None, limit: int) -> Iterator[dict[str, Any]]:
        for page in self._pages(self._index_query(status, created_after) | {"Limit": limit}):
            yield from page["Items"]

    def _pages(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            page = self.client.query(**request)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            request = request | {"ExclusiveStartKey": page["LastEvaluatedKey"]}


@lru_cache(maxsize=1)
def get_table() -> TaskTable:
    return TaskTable(get_settings().table_name)
