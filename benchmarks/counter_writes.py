"""What the task counts' items weigh, and what that does to a create's write cost and to the creates a second the
table can take: DynamoDB bills a write by the size of the whole item written (the larger of before and after, in
1 KB units, twice for a transaction), and one item takes at most 1,000 write units a second.

Tasks are written through the storage adapter's own create_task and set_task_status (the transactions the API
makes) on an in-process moto, all in one counter shard (their ids chosen so), each created, started and completed:
one task a minute through `--minutes` minutes of one day, and one task a day through `--days` days. The shard's
items are then read back and sized by DynamoDB's documented rules (name bytes plus value bytes; a number is 1 byte
plus 1 per two significant digits): its totals, the largest day item and the largest minute item, and how many
items the shard holds.

Usage: python -m benchmarks.counter_writes [--minutes 60] [--days 30]
"""

from __future__ import annotations

import argparse
import math
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from benchmarks.ddb_calls import on_moto
from devserver.template import Template

LIFE = ("created", "running", "completed")  # a task's counted writes: its create and two moves
PARTITION_WCU = 1_000  # write units a second one item (one partition key) takes at most


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it, for the attribute types the counters use (S and N)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        else:
            digits = value["N"].lstrip("-").replace(".", "").strip("0") or "0"
            size += 1 + math.ceil(len(digits) / 2)
    return size


def transactional_wcu(size: int) -> int:
    return 2 * max(1, math.ceil(size / 1024))


def _ids_in_shard(shard: int) -> Any:
    from agent_core.storage.counters import counter_shard

    while True:
        task_id = str(uuid.uuid4())
        if counter_shard(task_id) == shard:
            yield task_id


def measure(minutes: int, days: int) -> dict[str, float]:
    with on_moto(Template()):
        from agent_core import aws
        from agent_core.storage import table as table_module
        from agent_core.storage.counters import days_partition, minutes_partition, shard_key
        from agent_core.storage.records import TaskRecord
        from agent_core.timeutil import to_iso

        table = table_module.get_table()
        ids = _ids_in_shard(0)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        moments = [start + timedelta(minutes=m) for m in range(minutes)]
        moments += [start + timedelta(days=d, hours=12) for d in range(1, days + 1)]
        for moment in moments:
            created = to_iso(moment)
            task = TaskRecord(next(ids), "sized", {}, "created", created, created)
            table.create_task(task)
            for old, new in pairwise(LIFE):
                table.set_task_status(
                    task.task_id, old=old, new=new, modified_at=created, created_at=created, owner=None
                )
        request = {"TableName": table.name, "KeyConditionExpression": "PK = :pk"}
        items = {
            pk: [item for page in table.pages(request | {"ExpressionAttributeValues": {":pk": {"S": pk}}})
                 for item in page["Items"]]
            for pk in (days_partition(0), minutes_partition(0))
        }  # fmt: skip
        shard = aws.client("dynamodb").get_item(TableName=table.name, Key=shard_key(0))["Item"]
        first_day = [item for item in items[minutes_partition(0)] if item["SK"]["S"].startswith("2026-01-01T")]
    return {
        "shard": item_bytes(shard),
        "day": max(map(item_bytes, items[days_partition(0)])),
        "minute": max(map(item_bytes, first_day)),
        "days": len(items[days_partition(0)]),
        "minutes": len(first_day),
    }


def report(found: dict[str, float], minutes: int, days: int) -> str:
    rows = [
        ("counter shard (totals)", "one item", found["shard"]),
        ("day counts", f"one item a day: {found['days']:.0f} items", found["day"]),
        ("minute counts", f"one item a minute: {found['minutes']:.0f} items", found["minute"]),
    ]
    lines = [
        f"Counter items of one shard after {minutes} minutes and {days} more days with a task, each created, started "
        "and completed (3 counted writes, each on all three items); the largest of each kind",
        f"{'item':<24} {'how many':<32} {'bytes':>6} {'WCU a write':>12} {'tasks/s per item':>17}",
    ]
    lines.append("-" * len(lines[1]))
    for name, many, size in rows:
        wcu = transactional_wcu(int(size))
        lines.append(f"{name:<24} {many:<32} {size:>6,.0f} {wcu:>12} {PARTITION_WCU / (wcu * len(LIFE)):>17.1f}")
    lines.append(
        "tasks/s per item: what keeps an item under one item's 1,000 write units a second (each item is written by "
        "its shard's tasks alone; the table takes that times the 32 shards). The items do not grow with the days "
        "and minutes counted: each holds a handful of numbers."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.counter_writes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=60, help="minutes of one day with a task (default 60)")
    parser.add_argument("--days", type=int, default=30, help="further days with a task (default 30)")
    args = parser.parse_args(argv)
    table = report(measure(args.minutes, args.days), args.minutes, args.days)
    print(table)
    return table


if __name__ == "__main__":
    main()
