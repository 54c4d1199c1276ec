"""Counters, spread over shards so that no one item takes every create (README "Listing tasks at scale").

  shard     PK=COUNTERS#<nn>        SK=COUNTERS  tasks_total, tasks_<status>, tokens_total, cost_usd_total, and per
                                                 day of creation: `all|<YYYY-MM-DD>`, `<status>|<YYYY-MM-DD>`
  day       PK=COUNTERS#<nn>#<day>  SK=MINUTES   per minute of that day: `all|<HH:MM>`, `<status>|<HH:MM>`
  limits    PK=AGENT                SK=COUNTERS  runs_active: a limit checked in a condition, not a tally, so one item

A task is counted in the shards of its id (CRC-32 of the id, COUNTER_SHARDS of them), in the transaction that writes
it: the counts are exact whatever runs at the same time. Reads sum the shards (one BatchGetItem). The per-day and
per-minute counts let a page of the task list find where it starts without reading the tasks before it
(storage/tasks.py).
"""

from __future__ import annotations

import zlib
from collections import Counter
from typing import Any

from .dynamo import Table, from_item

# 32 counter shards. A counted write costs 2 WCU per KB of the shard item and of the day item, which grow with the
# days and minutes counted (up to 28 KB and 84 KB: benchmarks/counter_writes, README "Listing tasks at scale"), so
# sustained, an item's 1,000 WCU/s holds a few tasks a second per shard. The list index needs fewer keys.
COUNTER_SHARDS = 32
INDEX_SHARDS = 16  # a divisor of COUNTER_SHARDS: an index shard's counts are those of its counter shards
LIMITS_KEY = {"PK": {"S": "AGENT"}, "SK": {"S": "COUNTERS"}}
ALL = "all"  # the label of counts over every status


def counter_shard(task_id: str) -> int:
    return zlib.crc32(task_id.encode()) % COUNTER_SHARDS


def index_shard(task_id: str) -> int:
    return counter_shard(task_id) % INDEX_SHARDS


def created_index_key(task_id: str) -> str:
    """The task's partition in the ByCreated index."""
    return f"TASKS#{index_shard(task_id):02d}"


def status_index_key(task_id: str, status: str) -> str:
    """The task's partition in the ByStatus index."""
    return f"TASKS#{status}#{index_shard(task_id):02d}"


def index_keys(status: str | None) -> list[str]:
    """Every partition of the list index (ByStatus for a status, else ByCreated)."""
    return [f"TASKS#{status}#{i:02d}" if status else f"TASKS#{i:02d}" for i in range(INDEX_SHARDS)]


def shard_key(shard: int) -> dict[str, Any]:
    return {"PK": {"S": f"COUNTERS#{shard:02d}"}, "SK": {"S": "COUNTERS"}}


def day_key(shard: int, day: str) -> dict[str, Any]:
    return {"PK": {"S": f"COUNTERS#{shard:02d}#{day}"}, "SK": {"S": "MINUTES"}}


def bucket(label: str, when: str) -> str:
    return f"{label}|{when}"


def day_of(created_at: str) -> str:
    return created_at[:10]


def minute_of(created_at: str) -> str:
    return created_at[11:16]


class Counters(Table):
    def count(self, deltas: dict[str, int]) -> dict[str, Any]:
        """An update of the limits item (runs_active) for a transaction."""
        return self._add(LIMITS_KEY, deltas)

    def count_task(
        self, task_id: str, created_at: str, statuses: dict[str, int], spend: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """The updates, for the transaction that writes the task, of its shard's counts: `statuses` maps a status to
        +1 or -1 (a create, a move, a delete), ALL to the change of the total; `spend` adds tokens and cost."""
        shard, day, minute = counter_shard(task_id), day_of(created_at), minute_of(created_at)
        totals = {"tasks_total" if label == ALL else f"tasks_{label}": n for label, n in statuses.items()}
        days = {bucket(label, day): n for label, n in statuses.items()}
        updates = []
        if totals or spend:
            updates.append(self._add(shard_key(shard), {**totals, **days, **(spend or {})}))
        if statuses:
            updates.append(self._add(day_key(shard, day), {bucket(lbl, minute): n for lbl, n in statuses.items()}))
        return updates

    def counters(self) -> dict[str, int | float]:
        """Task counts by status (ints) and the agent's spend (tokens_total; cost_usd_total, a float), summed over
        the shards, and runs_active: one BatchGetItem."""
        merged: Counter[str] = Counter()
        for item in self.shard_items().values():
            merged.update({k: v for k, v in item.items() if "|" not in k and k not in ("PK", "SK")})
        return {k: int(v) if v % 1 == 0 else float(v) for k, v in merged.items()}

    def shard_items(self) -> dict[int, dict[str, Any]]:
        """Every counter shard by number, and the limits item as -1, as plain dicts (absent ones count nothing)."""
        keys = [shard_key(s) for s in range(COUNTER_SHARDS)] + [LIMITS_KEY]
        return {_shard_of(item): item for item in map(from_item, self.get_many(keys))}

    def minute_counts(self, day: str, shards: list[int]) -> dict[int, dict[str, Any]]:
        """The per-minute counts of `day` in each of `shards`."""
        return {_shard_of(item): item for item in map(from_item, self.get_many([day_key(s, day) for s in shards]))}

    def _add(self, key: dict[str, Any], deltas: dict[str, Any]) -> dict[str, Any]:
        names = {f"#c{i}": name for i, name in enumerate(deltas)}
        values = {f":c{i}": {"N": str(delta)} for i, delta in enumerate(deltas.values())}
        return {
            "Update": {
                "TableName": self.name,
                "Key": key,
                "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(deltas))),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }


def _shard_of(plain: dict[str, Any]) -> int:
    """COUNTERS#<nn>[#<day>] -> nn; the limits item -> -1."""
    pk = str(plain["PK"])
    return int(pk.split("#")[1]) if pk.startswith("COUNTERS#") else -1
