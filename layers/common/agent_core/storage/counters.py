"""Counters, spread over shards so that no one item takes every create, and kept small so that no write grows
(docs/scaling.md).

  shard     PK=COUNTERS#<nn>         SK=COUNTERS      tasks_total, tasks_<status>, tokens_total, cost_usd_total
  day       PK=COUNTERS#<nn>#DAYS    SK=<YYYY-MM-DD>  all, <status>: the tasks created that day
  minute    PK=COUNTERS#<nn>#MINUTES SK=<YYYY-MM-DD>T<HH:MM>  all, <status>: the tasks created in that minute
  limits    PK=AGENT                 SK=COUNTERS      runs_active: a limit checked in a condition, one item

A client's own counts (its list and its totals, its spend) live beside them under COUNTERS@<client>#<nn>..., and its
tasks' places in the list indexes on a small item under the task, PK=TASK#<id> SK=OWNER, whose index keys are
TASKS@<client>#<nn> and TASKS@<client>#<status>#<nn>: the task item itself keeps the agent-wide ones. A task with
no owner (the operator's, and every task made before clients existed) is counted agent-wide only.

A task is counted in the shard of its id (CRC-32 of the id, TASK_COUNT_SHARDS of them), in the transaction that
writes it: the counts are exact whatever runs at the same time. DynamoDB bills a write by the whole item's size, and an
item takes at most 1,000 write units a second: each item here holds a handful of numbers, whatever the number of
days and minutes counted, so a counted write costs 2 units on each. Reads sum the shards: their totals with one
BatchGetItem, their days, one day's minutes, or the minutes since a moment with one Query per shard (in parallel).
The day and minute counts let a page of the task list find where it starts without reading the tasks before it
(storage/tasks.py). A shard's minutes share one partition, in time order, so the minutes since a moment are one
Query whatever days they span.
"""

from __future__ import annotations

import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

from ..config import get_settings
from .dynamo import POOL, Table, from_item

# A counted write is a transactional write (2 WCU) on three small items of its shard, so each shard item takes
# 1,000 / 2 = 500 counted writes a second: one shard (the default) is 500 creates a second, and a page of the list
# costs the fewest calls. A stack that needs more raises TASK_COUNT_SHARDS (and TASK_INDEX_SHARDS, a divisor of it:
# an index shard's counts are those of its counter shards); docs/scaling.md has the arithmetic and the migration.
LIMITS_KEY = {"PK": {"S": "AGENT"}, "SK": {"S": "COUNTERS"}}
_FIRST_MINUTES = 16  # minute items read per shard in a page's first round (then 4 times as many each round)
_MINUTES_A_DAY = 1440  # unsharded, a day's minutes are one Query (at most 94 KB of count items)
_MINUTES_SINCE = 1440  # minute items read per shard since a moment: a day's worth, so its own day is always whole
ALL = "all"  # the label of counts over every status


def counter_shards() -> int:
    return get_settings().task_count_shards


def index_shards() -> int:
    return get_settings().task_index_shards


def counter_shard(task_id: str) -> int:
    return zlib.crc32(task_id.encode()) % counter_shards()


def index_shard(task_id: str) -> int:
    return counter_shard(task_id) % index_shards()


def scope_of(owner: str | None) -> str:
    """The key prefix of an owner's counts and index partitions ("" for the agent-wide ones)."""
    return f"@{owner}" if owner else ""


def created_index_key(task_id: str, scope: str = "") -> str:
    """The task's partition in the ByCreated index."""
    return f"TASKS{scope}#{index_shard(task_id):02d}"


def status_index_key(task_id: str, status: str, scope: str = "") -> str:
    """The task's partition in the ByStatus index."""
    return f"TASKS{scope}#{status}#{index_shard(task_id):02d}"


def index_keys(status: str | None, scope: str = "") -> list[str]:
    """Every partition of the list index (ByStatus for a status, else ByCreated)."""
    return [f"TASKS{scope}#{status}#{i:02d}" if status else f"TASKS{scope}#{i:02d}" for i in range(index_shards())]


def owner_key(task_id: str) -> dict[str, Any]:
    """The item holding an owned task's places in its owner's list."""
    return {"PK": {"S": f"TASK#{task_id}"}, "SK": {"S": "OWNER"}}


def shard_key(shard: int, scope: str = "") -> dict[str, Any]:
    return {"PK": {"S": f"COUNTERS{scope}#{shard:02d}"}, "SK": {"S": "COUNTERS"}}


def days_partition(shard: int, scope: str = "") -> str:
    return f"COUNTERS{scope}#{shard:02d}#DAYS"


def minutes_partition(shard: int, scope: str = "") -> str:
    return f"COUNTERS{scope}#{shard:02d}#MINUTES"


def day_key(shard: int, day: str, scope: str = "") -> dict[str, Any]:
    return {"PK": {"S": days_partition(shard, scope)}, "SK": {"S": day}}


def minute_key(shard: int, day: str, minute: str, scope: str = "") -> dict[str, Any]:
    return {"PK": {"S": minutes_partition(shard, scope)}, "SK": {"S": f"{day}T{minute}"}}


def day_of(created_at: str) -> str:
    return created_at[:10]


def minute_of(created_at: str) -> str:
    return created_at[11:16]


def minute_key_of(created_at: str) -> str:
    """The sort key of the minute counts of a moment: YYYY-MM-DDTHH:MM."""
    return created_at[:16]


class Counters(Table):
    def count(self, deltas: dict[str, int]) -> dict[str, Any]:
        """An update of the limits item (runs_active) for a transaction."""
        return self._add(LIMITS_KEY, deltas)

    def count_task(
        self,
        task_id: str,
        created_at: str,
        statuses: dict[str, int],
        spend: dict[str, Any] | None = None,
        *,
        owner: str | None = None,
    ) -> list[dict[str, Any]]:
        """The updates, for the transaction that writes the task, of its shard's counts: `statuses` maps a status to
        +1 or -1 (a create, a move, a delete), ALL to the change of the total; `spend` adds tokens and cost. For an
        owned task, its owner's counts too, and its place in the owner's list (made, moved or removed with it)."""
        updates = self._count_in(task_id, created_at, statuses, spend, scope="")
        if owner:
            updates += self._count_in(task_id, created_at, statuses, spend, scope=scope_of(owner))
            updates += self._place_in_owner_list(task_id, created_at, statuses, owner)
        return updates

    def _count_in(
        self, task_id: str, created_at: str, statuses: dict[str, int], spend: dict[str, Any] | None, *, scope: str
    ) -> list[dict[str, Any]]:
        shard, day = counter_shard(task_id), day_of(created_at)
        totals = {"tasks_total" if label == ALL else f"tasks_{label}": n for label, n in statuses.items()}
        updates = []
        if totals or spend:
            updates.append(self._add(shard_key(shard, scope), {**totals, **(spend or {})}))
        if statuses:
            updates.append(self._add(day_key(shard, day, scope), statuses))
            updates.append(self._add(minute_key(shard, day, minute_of(created_at), scope), statuses))
        return updates

    def _place_in_owner_list(
        self, task_id: str, created_at: str, statuses: dict[str, int], owner: str
    ) -> list[dict[str, Any]]:
        if statuses.get(ALL, 0) < 0:
            return [{"Delete": {"TableName": self.name, "Key": owner_key(task_id)}}]
        new = next((label for label, n in statuses.items() if label != ALL and n > 0), None)
        if new is None:
            return []
        scope, sort = scope_of(owner), f"{created_at}#{task_id}"
        places = {
            ":id": {"S": task_id},
            ":g1": {"S": created_index_key(task_id, scope)},
            ":g2": {"S": status_index_key(task_id, new, scope)},
            ":sk": {"S": sort},
        }
        return [
            {
                "Update": {
                    "TableName": self.name,
                    "Key": owner_key(task_id),
                    "UpdateExpression": "SET task_id = :id, GSI1PK = :g1, GSI1SK = :sk, GSI2PK = :g2, GSI2SK = :sk",
                    "ExpressionAttributeValues": places,
                }
            }
        ]

    def counters(self, owner: str | None = None) -> dict[str, int | float]:
        """Task counts by status (ints) and the agent's spend (tokens_total; cost_usd_total, a float), summed over
        the shards, and runs_active: one BatchGetItem. With `owner`, that client's counts and spend (and the
        agent's runs_active)."""
        merged: Counter[str] = Counter()
        for item in self.shard_items(scope_of(owner)).values():
            merged.update({k: v for k, v in item.items() if k not in ("PK", "SK")})
        return {k: int(v) if v % 1 == 0 else float(v) for k, v in merged.items()}

    def shard_items(self, scope: str = "") -> dict[int, dict[str, Any]]:
        """Every counter shard by number, and the limits item as -1, as plain dicts (absent ones count nothing)."""
        keys = [shard_key(s, scope) for s in range(counter_shards())] + [LIMITS_KEY]
        return {_shard_of(item): item for item in map(from_item, self.get_many(keys))}

    def label_totals(self, label: str, scope: str = "") -> dict[int, int]:
        """counter shard -> tasks under `label` (ALL or a status), from the shard items."""
        name = "tasks_total" if label == ALL else f"tasks_{label}"
        return {shard: int(item.get(name, 0)) for shard, item in self.shard_items(scope).items() if shard >= 0}

    def day_counts(self, label: str, shards: list[int], scope: str = "") -> dict[str, dict[int, int]]:
        """day -> counter shard -> tasks under `label` created that day, for every day counted in `shards`."""
        days: dict[str, dict[int, int]] = defaultdict(dict)
        parts = POOL.map(lambda s: self._partition(days_partition(s, scope)), shards)
        for shard, items in zip(shards, parts, strict=True):
            for item in items:
                if item.get(label):
                    days[item["SK"]][shard] = int(item[label])
        return days

    def minutes_since(
        self, label: str, shards: list[int], since: str, scope: str = ""
    ) -> tuple[dict[str, dict[int, int]], bool]:
        """minute key -> counter shard -> tasks under `label`, for the minutes from `since` (a minute key) on, a
        day's worth of minute items per shard at most (one Query each); and whether that was every minute since."""
        request = {
            "TableName": self.name,
            "KeyConditionExpression": "PK = :pk AND SK >= :since",
            "ConsistentRead": True,
            "Limit": _MINUTES_SINCE,
        }

        def read(shard: int) -> dict[str, Any]:
            values = {":pk": {"S": minutes_partition(shard, scope)}, ":since": {"S": since}}
            return self.client.query(**request, ExpressionAttributeValues=values)

        minutes: dict[str, dict[int, int]] = defaultdict(dict)
        complete = True
        for shard, page in zip(shards, POOL.map(read, shards), strict=True):
            complete &= "LastEvaluatedKey" not in page
            for item in map(from_item, page["Items"]):
                if item.get(label):
                    minutes[item["SK"]][shard] = int(item[label])
        return minutes, complete

    def minutes_in_order(
        self, label: str, day: str, shards: list[int], scope: str = "", newest_first: bool = True
    ) -> Iterator[tuple[str, dict[int, int]]]:
        """(minute key, counter shard -> tasks under `label`) for `day` over `shards`, newest minute first (or oldest).

        Read in rounds, each shard's newest (or oldest) minutes first, four times as many each round: a minute is
        handed out once every shard has been read to it, and a caller that stops early (a page found its start)
        reads no more."""
        cursors: dict[int, dict[str, Any] | None] = dict.fromkeys(shards)  # shard -> where its next Query starts
        furthest: dict[int, str] = {}  # shard -> the minute furthest from the start read from it so far
        found: dict[str, dict[int, int]] = defaultdict(dict)
        batch = _FIRST_MINUTES if counter_shards() > 1 else _MINUTES_A_DAY

        def read(shard: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
            start = cursors[shard]
            page = self.client.query(
                TableName=self.name,
                KeyConditionExpression="PK = :pk AND SK BETWEEN :first AND :last",
                ExpressionAttributeValues={
                    ":pk": {"S": minutes_partition(shard, scope)},
                    ":first": {"S": f"{day}T"},
                    ":last": {"S": f"{day}T~"},
                },
                ConsistentRead=True,
                ScanIndexForward=not newest_first,
                Limit=batch,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            return [from_item(item) for item in page["Items"]], page.get("LastEvaluatedKey")

        while cursors:
            for shard, (items, next_start) in zip(list(cursors), POOL.map(read, list(cursors)), strict=True):
                if next_start is None:
                    del cursors[shard]  # read to its last minute
                else:
                    cursors[shard] = next_start
                if items:
                    furthest[shard] = items[-1]["SK"]
                for item in items:
                    if item.get(label):
                        found[item["SK"]][shard] = int(item[label])
            # A shard still being read has handed out every minute up to its furthest ("~"/"": none read yet).
            if newest_first:
                complete = max((furthest.get(shard, "~") for shard in cursors), default="")
                ready = sorted((m for m in found if m >= complete), reverse=True)
            else:
                complete = min((furthest.get(shard, "") for shard in cursors), default="~")
                ready = sorted(m for m in found if m <= complete)
            for minute in ready:
                yield minute, found.pop(minute)
            batch *= 4

    def _partition(self, pk: str) -> list[dict[str, Any]]:
        """Every item under `pk` (strongly consistent: counts written a moment ago are read)."""
        request = {
            "TableName": self.name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        return [from_item(item) for page in self.pages(request) for item in page["Items"]]

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
    """COUNTERS[@<client>]#<nn> -> nn; the limits item -> -1."""
    pk = str(plain["PK"])
    return int(pk.rsplit("#", 1)[1]) if pk.startswith("COUNTERS") else -1
