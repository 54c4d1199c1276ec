"""Moves a stack's task list to other shard settings (docs/scaling.md): every task's (and every client-owned task's
list item's) index keys rewritten for TASK_INDEX_SHARDS, and every count rebuilt from the tasks for
TASK_COUNT_SHARDS, agent-wide and per client; the spend the counts held (tokens, cost) is kept.

Pause writes first (a create or a step during the move would be counted under the old layout), run this with the
new settings in the environment and the table named, then deploy the stack with the same settings:

  TABLE_NAME=<the stack's TableName> TASK_COUNT_SHARDS=1 TASK_INDEX_SHARDS=1 python scripts/reshard.py

It reads the whole table (a Scan) and rewrites what changes; run again, it changes nothing.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "common"), str(ROOT)]

_SPEND = ("tokens_total", "cost_usd_total")


def _scan(client: Any, table: str) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**request)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _write(client: Any, table: str, requests: list[dict[str, Any]]) -> None:
    for start in range(0, len(requests), 25):
        pending: dict[str, Any] = {table: requests[start : start + 25]}
        while pending:  # BatchWriteItem may hand some back under load
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def reshard() -> dict[str, int]:
    """Rewrites the table for the shard settings in the environment; returns what it changed."""
    from agent_core import aws
    from agent_core.config import get_settings

    client, table = aws.client("dynamodb"), get_settings().table_name
    tasks: dict[str, dict[str, Any]] = {}
    owned: dict[str, dict[str, Any]] = {}
    old_counts: list[dict[str, Any]] = []
    for item in _scan(client, table):
        pk, sk = item["PK"]["S"], item["SK"]["S"]
        if pk.startswith("TASK#") and sk == "TASK":
            tasks[pk.removeprefix("TASK#")] = item
        elif pk.startswith("TASK#") and sk == "OWNER":
            owned[pk.removeprefix("TASK#")] = item
        elif pk.startswith("COUNTERS"):
            old_counts.append(item)
    moved = _move_index_keys(client, table, tasks, owned)
    made = _rebuild_counts(client, table, tasks, old_counts)
    return {"tasks": len(tasks), "index_keys_moved": moved, "count_items": made, "old_count_items": len(old_counts)}


def _move_index_keys(
    client: Any, table: str, tasks: dict[str, dict[str, Any]], owned: dict[str, dict[str, Any]]
) -> int:
    """The task item's agent-wide index keys, and its list item's per owner, for the index shards now set."""
    from agent_core.storage.counters import created_index_key, scope_of, status_index_key
    from agent_core.storage.dynamo import from_item

    moved = 0
    for task_id, item in tasks.items():
        plain = from_item(item)
        owner, status = plain.get("owner"), plain["status"]
        places = [(item, "")] + ([(owned[task_id], scope_of(owner))] if owner and task_id in owned else [])
        for holder, scope in places:
            want = {"GSI1PK": created_index_key(task_id, scope), "GSI2PK": status_index_key(task_id, status, scope)}
            if all(holder.get(k, {}).get("S") == v for k, v in want.items()):
                continue
            client.update_item(
                TableName=table,
                Key={"PK": holder["PK"], "SK": holder["SK"]},
                UpdateExpression="SET GSI1PK = :g1, GSI2PK = :g2",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues={":g1": {"S": want["GSI1PK"]}, ":g2": {"S": want["GSI2PK"]}},
            )
            moved += 1
    return moved


def _rebuild_counts(client: Any, table: str, tasks: dict[str, dict[str, Any]], old_counts: list[dict[str, Any]]) -> int:
    """Every count anew from the tasks, the old count items deleted; returns how many count items were written."""
    items = count_items(tasks, old_counts)
    _write(client, table, [{"DeleteRequest": {"Key": {"PK": i["PK"], "SK": i["SK"]}}} for i in old_counts])
    _write(client, table, [{"PutRequest": {"Item": item}} for item in items])
    return len(items)


def count_items(tasks: dict[str, dict[str, Any]], old_counts: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The count items of `tasks` (task items by id) for the shard settings now set, per scope ("" agent-wide,
    "@<client>"), with the spend `old_counts` (count items as stored) held."""
    from agent_core.storage.counters import (
        ALL,
        counter_shard,
        day_key,
        day_of,
        minute_key,
        minute_of,
        scope_of,
        shard_key,
    )
    from agent_core.storage.dynamo import from_item

    totals: dict[str, Counter[str]] = defaultdict(Counter)  # a key, as text -> its counts
    keys: dict[str, dict[str, Any]] = {}

    def count(key: dict[str, Any], counts: dict[str, Any]) -> None:
        name = f"{key['PK']['S']}|{key['SK']['S']}"
        keys[name] = key
        totals[name].update(counts)

    for item in map(from_item, old_counts):
        if item["SK"] == "COUNTERS":  # a shard's totals: its spend moves to shard 0 of its scope
            scope = item["PK"].removeprefix("COUNTERS").rsplit("#", 1)[0]
            count(shard_key(0, scope), {k: item[k] for k in _SPEND if k in item})
    for task_id, item in tasks.items():
        created, status, owner = item["created_at"]["S"], item["status"]["S"], item.get("owner", {}).get("S")
        shard, day = counter_shard(task_id), day_of(created)
        for scope in ["", *([scope_of(owner)] if owner else [])]:
            count(shard_key(shard, scope), {"tasks_total": 1, f"tasks_{status}": 1})
            count(day_key(shard, day, scope), {ALL: 1, status: 1})
            count(minute_key(shard, day, minute_of(created), scope), {ALL: 1, status: 1})
    return [
        {**keys[name], **{k: {"N": str(Decimal(str(v)))} for k, v in counts.items() if v}}
        for name, counts in totals.items()
    ]


if __name__ == "__main__":
    from agent_core.config import get_settings

    settings = get_settings()
    print(f"table {settings.table_name}: {settings.task_count_shards} count shards, {settings.task_index_shards} index")
    print(reshard())
