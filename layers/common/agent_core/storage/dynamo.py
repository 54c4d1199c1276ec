"""What every record kind of the single table shares: item (de)serialisation, paged Queries, batched reads, and
transactions that retry a conflict with another transaction (DESIGN §2)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from .. import aws
from ..errors import Conflict

_ser, _de = TypeSerializer(), TypeDeserializer()
_CONFLICT_ATTEMPTS = 5
_CONFLICT_BACKOFF_S = 0.02
_BATCH_GET_KEYS = 100  # BatchGetItem's limit per call
# Reads sent at once (one Query per shard): a request costs one round trip however many shards it spans. Its threads
# start on first use.
POOL = ThreadPoolExecutor(max_workers=32)


def to_item(plain: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in plain.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def task_key(task_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"TASK#{task_id}"}, "SK": {"S": "TASK"}}


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _cancellation_reasons(exc: ClientError) -> str | None:
    """Why a transaction was cancelled ("ConditionalCheckFailed", "TransactionConflict", ...), or None for any other
    error. The codes come in CancellationReasons, or only in the message."""
    error = exc.response["Error"]
    if error["Code"] not in ("TransactionCanceledException", "TransactionConflictException"):
        return None
    reasons = [str(r.get("Code")) for r in exc.response.get("CancellationReasons", [])]
    text = f"{' '.join(reasons)} {error.get('Message', '')}".strip()
    return text if "ConditionalCheckFailed" in text or "TransactionConflict" in text else None


class Table:
    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws.client("dynamodb")

    def transact(self, items: list[dict[str, Any]]) -> None:
        """One transaction. A failed condition is a Conflict at once. Another transaction on one of its items at the
        same moment leaves the write valid: it is tried again, with jitter, a few times."""
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

    def pages(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every page of a Query."""
        while True:
            page = self.client.query(**request)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            request = request | {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    def get_many(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The items that exist among `keys` (strongly consistent, in no particular order): one BatchGetItem per 100
        keys, plus one per batch of keys DynamoDB hands back unprocessed under load."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), _BATCH_GET_KEYS):
            pending: dict[str, Any] = {
                self.name: {"Keys": keys[start : start + _BATCH_GET_KEYS], "ConsistentRead": True}
            }
            while pending:
                answer = self.client.batch_get_item(RequestItems=pending)
                found += answer["Responses"].get(self.name, [])
                pending = answer.get("UnprocessedKeys") or {}
        return found
