"""Task items, and the task list: page N found from the counts, read from the index around it.

  task  PK=TASK#<id>  SK=TASK  GSI ByCreated: GSI1PK=TASKS#<index shard>           GSI1SK=<created_at>#<id>
                               GSI ByStatus:  GSI2PK=TASKS#<status>#<index shard>  GSI2SK=<created_at>#<id>

A page of the list (newest first) starts at position (page - 1) * size. The day counts of the counter shards (one
Query per shard, at once) say which day holds that position, that day's minute counts (as many more) which minute,
and how many of the minute's tasks come before it; each index shard is then read from that minute down, no further
than its own counts say the page can reach (one Query per shard holding tasks of the page). A page reads itself plus
the tasks of its first minute that come before it: never the pages before it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from .artifacts import artifact_summaries
from .counters import (
    ALL,
    Counters,
    counter_shards,
    created_index_key,
    day_of,
    index_keys,
    index_shards,
    minute_key_of,
    scope_of,
    status_index_key,
)
from .dynamo import POOL, from_item, task_key, to_item
from .records import RunRecord, TaskRecord, TaskState

BY_CREATED, BY_STATUS = "ByCreated", "ByStatus"


def task_from_plain(plain: dict[str, Any]) -> TaskRecord:
    return TaskRecord(
        task_id=plain["task_id"],
        input=plain["input"],
        # Stored as JSON text: DynamoDB maps refuse floats and empty keys that clients may well send.
        additional_input=json.loads(plain.get("additional_input") or "{}"),
        status=plain["status"],
        created_at=plain["created_at"],
        modified_at=plain["modified_at"],
        artifacts=artifact_summaries(plain.get("artifacts")),
        owner=plain.get("owner"),
    )


def state_from_item(item: dict[str, Any]) -> TaskState:
    plain = from_item(item)
    return TaskState(
        task=task_from_plain(plain),
        step_count=int(plain.get("step_count", 0)),
        lease_id=plain.get("lease_id"),
        lease_until=int(plain.get("lease_until", 0)),
        run_id=plain.get("run_id"),
        run=RunRecord(**json.loads(plain["run"])) if plain.get("run") else None,
        watchers=int(plain.get("watchers", 0)),
    )


def task_item(task: TaskRecord) -> dict[str, Any]:
    sort = f"{task.created_at}#{task.task_id}"
    plain = {
        "task_id": task.task_id,
        "input": task.input,
        "status": task.status,
        "additional_input": json.dumps(task.additional_input, ensure_ascii=False, separators=(",", ":")),
        "created_at": task.created_at,
        "modified_at": task.modified_at,
        "artifacts": {},  # the artifact summary (storage/artifacts.py); a map so files add and go in place
        "GSI1PK": created_index_key(task.task_id),
        "GSI1SK": sort,
        "GSI2PK": status_index_key(task.task_id, task.status),
        "GSI2SK": sort,
        **({"owner": task.owner} if task.owner else {}),
    }
    return {**task_key(task.task_id), **to_item(plain)}


class TaskItems(Counters):
    def create_task(self, task: TaskRecord) -> None:
        """One transaction: the task item and the counts that count it."""
        put = {"TableName": self.name, "Item": task_item(task), "ConditionExpression": "attribute_not_exists(PK)"}
        counts = self.count_task(task.task_id, task.created_at, {ALL: 1, task.status: 1}, owner=task.owner)
        self.transact([{"Put": put}, *counts])

    def get_task(self, task_id: str) -> TaskRecord | None:
        item = self.client.get_item(TableName=self.name, Key=task_key(task_id), ConsistentRead=True).get("Item")
        return task_from_plain(from_item(item)) if item else None

    def get_owner(self, task_id: str) -> tuple[str | None, bool]:
        """(the task's owner, whether the task exists): the owner attribute alone, strongly consistent."""
        item = self.client.get_item(
            TableName=self.name, Key=task_key(task_id), ConsistentRead=True, ProjectionExpression="PK, #o",
            ExpressionAttributeNames={"#o": "owner"},
        ).get("Item")  # fmt: skip
        return (item["owner"]["S"] if item and "owner" in item else None), item is not None

    def get_task_state(self, task_id: str) -> TaskState | None:
        item = self.client.get_item(TableName=self.name, Key=task_key(task_id), ConsistentRead=True).get("Item")
        return state_from_item(item) if item else None

    def set_task_status(
        self, task_id: str, *, old: str, new: str, modified_at: str, created_at: str, owner: str | None
    ) -> None:
        """Moves the task and its counts together; Conflict if its status is no longer `old`."""
        values = {":new": new, ":old": old, ":gsi": status_index_key(task_id, new), ":m": modified_at}
        update = {
            "TableName": self.name,
            "Key": task_key(task_id),
            "UpdateExpression": "SET #s = :new, GSI2PK = :gsi, modified_at = :m",
            "ConditionExpression": "#s = :old",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": to_item(values),
        }
        self.transact([{"Update": update}, *self.count_task(task_id, created_at, {old: -1, new: 1}, owner=owner)])

    def delete_task(self, task_id: str, *, status: str, created_at: str, owner: str | None) -> None:
        """Deletes the task item and uncounts it; Conflict if it is gone or its status changed meanwhile."""
        delete = {
            "TableName": self.name,
            "Key": task_key(task_id),
            "ConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": status}},
        }
        uncount = self.count_task(task_id, created_at, {ALL: -1, status: -1}, owner=owner)
        self.transact([{"Delete": delete}, *uncount])

    def delete_task_children(self, task_id: str) -> int:
        """Deletes every item under the task's partition except the task item itself; returns how many."""
        request = {
            "TableName": self.name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"TASK#{task_id}"}},
            "ProjectionExpression": "PK, SK",
        }
        keys = [
            {"PK": item["PK"], "SK": item["SK"]}
            for page in self.pages(request)
            for item in page["Items"]
            if item["SK"]["S"] not in ("TASK", "OWNER")  # those two go with the task, in its transaction
        ]
        for start in range(0, len(keys), 25):
            pending: dict[str, Any] = {self.name: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]}
            while pending:  # BatchWriteItem may hand some requests back under load
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        return len(keys)

    # -- the list ------------------------------------------------------------------------------------------------

    def list_tasks(
        self,
        *,
        start: int,
        size: int,
        status: str | None = None,
        created_after: str | None = None,
        owner: str | None = None,
    ) -> tuple[int, list[TaskRecord]]:
        """How many tasks match, and the `size` of them from position `start`, newest first: of every task, or
        with `owner` of that client's only."""
        label, scope = status or ALL, scope_of(owner)
        if created_after:
            return self._list_after(label, status, scope, owner, start, size, created_after)
        if start == 0 and index_shards() == 1:
            return self._first_page(label, status, scope, size, owner)
        days = self.day_counts(label, list(range(counter_shards())), scope)  # day -> counter shard -> tasks
        total = sum(n for per_shard in days.values() for n in per_shard.values())
        return total, self._page(label, status, scope, owner, days, start, min(size, total - start))

    def _first_page(
        self, label: str, status: str | None, scope: str, size: int, owner: str | None
    ) -> tuple[int, list[TaskRecord]]:
        """The newest tasks of an unsharded index: no position to find, so the total (one BatchGetItem of the
        counter shards) and the index's newest `size` (one Query). Over several index shards the counts must say
        how many each holds of the page, or every shard would be read a page deep."""
        total = sum(self.label_totals(label, scope).values())
        size = min(size, total)
        if size <= 0:
            return total, []
        return total, self._read_page(status, scope, owner, "", 0, size, [size], newest_first=True)

    def _page(
        self,
        label: str,
        status: str | None,
        scope: str,
        owner: str | None,
        days: dict[str, dict[int, int]],
        start: int,
        size: int,
    ) -> list[TaskRecord]:
        """`size` tasks from position `start` of the list whose `days` counts are given."""
        if size <= 0:
            return []
        counted = sum(n for per_shard in days.values() for n in per_shard.values())
        # A page in the older half is found from the oldest end: the last page reads itself, not the list before it.
        newest_first = start + size / 2 <= counted / 2
        position = start if newest_first else counted - start - size
        skipped, minutes = self._minutes_from(label, days, position, scope, newest_first=newest_first)
        bound, skip, limits = _window(minutes, position - skipped, size, newest_first=newest_first)
        return self._read_page(status, scope, owner, bound, skip, size, limits, newest_first=newest_first)

    def _list_after(
        self, label: str, status: str | None, scope: str, owner: str | None, start: int, size: int, after: str
    ) -> tuple[int, list[TaskRecord]]:
        """The tasks created after `after`, which are the newest `total` of the list.

        A first page reads the index's newest after the moment, a task more than the page (one Query): when they
        all fit the page (a client polling for what is new), they are their own total. Else the total is the
        minute counts since the moment (one Query per counter shard; they also place any page) and the tasks of
        its own minute after it (a COUNT Query per index shard holding some): 3 calls for any page. Only a moment
        over a day of counted minutes back also reads the day counts, and a page past those minutes its own
        day's minutes, as a page without the filter does."""
        floor = f"{after}#~"  # `#` sorts after every character of a timestamp, so equal times are not "after"
        newest: list[dict[str, Any]] | None = None
        if start == 0 and index_shards() == 1:
            (key,) = index_keys(status, scope)
            newest = self._collect(self._index_query(status, key, since=floor), size + 1)
            if len(newest) <= size:
                return len(newest), self._tasks_of(newest, owner)
        own, shards = minute_key_of(after), list(range(counter_shards()))
        read, complete = self.minutes_since(label, shards, own, scope)
        minutes = {key: _by_index_shard(in_shards) for key, in_shards in read.items()}
        minutes[own] = self._count_in_minute(status, scope, minutes.get(own, {}), floor, own)
        if complete:
            days = {}
            total = sum(n for counts in minutes.values() for n in counts.values())
        else:  # the moment is over a day of minutes back: later days from the day counts
            days = self.day_counts(label, shards, scope)
            day = day_of(after)
            later = sum(n for d, per_shard in days.items() if d > day for n in per_shard.values())
            total = later + sum(n for key, counts in minutes.items() if day_of(key) == day for n in counts.values())
        size = min(size, total - start)
        if size <= 0:
            return total, []
        if newest is not None:
            return total, self._tasks_of(newest[:size], owner)
        if not complete:  # positions of this list are those of the whole list
            return total, self._page(label, status, scope, owner, days, start, size)
        bound, skip, limits = _window(sorted(minutes.items(), reverse=True), start, size, newest_first=True)
        return total, self._read_page(status, scope, owner, bound, skip, size, limits, newest_first=True, floor=floor)

    def _count_in_minute(
        self, status: str | None, scope: str, counts: dict[int, int], floor: str, minute: str
    ) -> dict[int, int]:
        """index shard -> the tasks of `minute` above `floor`, counted in the index (a COUNT Query per shard of
        `counts` holding some of the minute's tasks)."""
        keys, shards = index_keys(status, scope), [shard for shard, n in counts.items() if n]

        def count(shard: int) -> int:
            request = self._index_query(status, keys[shard], since=floor, before=f"{minute}~") | {"Select": "COUNT"}
            return sum(page["Count"] for page in self.pages(request))

        return dict(zip(shards, POOL.map(count, shards), strict=True))

    def _read_page(
        self,
        status: str | None,
        scope: str,
        owner: str | None,
        bound: str,
        skip: int,
        size: int,
        limits: list[int],
        *,
        newest_first: bool,
        floor: str = "",
    ) -> list[TaskRecord]:
        """`size` tasks after the first `skip` from `bound` on (newest first: the sort key the page starts under,
        "" for the newest, none at or below `floor`; else oldest first from that sort key on, the page turned round
        at the end), reading `limits[i]` from index shard i."""
        reads = [(key, limit) for key, limit in zip(index_keys(status, scope), limits, strict=True) if limit]

        def read(shard_read: tuple[str, int]) -> list[dict[str, Any]]:
            key, limit = shard_read
            if newest_first:
                return self._collect(self._index_query(status, key, before=bound, since=floor), limit)
            return self._collect(self._index_query(status, key, since=bound) | {"ScanIndexForward": True}, limit)

        # The shards' Queries at once: a page costs one round trip however many shards it spans.
        found = [item for part in POOL.map(read, reads) for item in part]
        found.sort(key=lambda item: item["GSI1SK"]["S"], reverse=newest_first)
        page = found[skip : skip + size]
        if not newest_first:
            page.reverse()
        return self._tasks_of(page, owner)

    def _tasks_of(self, page: list[dict[str, Any]], owner: str | None) -> list[TaskRecord]:
        """The tasks of index items: as they are, or for a client, read from the table."""
        if owner:  # the index holds the owner's places in it: the tasks themselves, in one BatchGetItem
            tasks = {item["PK"]["S"]: item for item in self.get_many([task_key(i["task_id"]["S"]) for i in page])}
            page = [tasks[item["PK"]["S"]] for item in page if item["PK"]["S"] in tasks]
        return [task_from_plain(from_item(item)) for item in page]

    def _minutes_from(
        self, label: str, days: dict[str, dict[int, int]], position: int, scope: str, *, newest_first: bool
    ) -> tuple[int, Iterator[tuple[str, dict[int, int]]]]:
        """The tasks of the whole days before `position` (counted from the newest task, or with `newest_first`
        false from the oldest), and the minutes from the day holding it on, in that order, with their tasks per
        index shard: read as they are needed, a round of minute counts at a time."""
        order = sorted(days, reverse=newest_first)
        skipped = 0
        while order and skipped + sum(days[order[0]].values()) <= position:
            skipped += sum(days[order.pop(0)].values())

        def minutes() -> Iterator[tuple[str, dict[int, int]]]:
            for day in order:
                for key, in_shards in self.minutes_in_order(label, day, list(days[day]), scope, newest_first):
                    yield key, _by_index_shard(in_shards)

        return skipped, minutes()

    def _collect(self, request: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        """The first `limit` items of a Query (more than one call only when a 1 MB page stops short of it)."""
        items: list[dict[str, Any]] = []
        while len(items) < limit:
            page = self.client.query(**request, Limit=limit - len(items))
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items

    def _index_query(
        self,
        status: str | None,
        key: str,
        *,
        before: str = "",
        since: str = "",
        between: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """A newest-first Query of one index shard, on sort keys below `before`, from `since` on, both, or `between`
        two (the bounds are never sort keys themselves: `<` and `<=` read alike)."""
        pk, sk = ("GSI2PK", "GSI2SK") if status else ("GSI1PK", "GSI1SK")
        condition, values = f"{pk} = :pk", {":pk": key}
        if before and since:
            between = (since, before)
        elif before:
            condition += f" AND {sk} < :upper"
            values[":upper"] = before
        elif since:
            condition += f" AND {sk} >= :lower"
            values[":lower"] = since
        if between:
            condition += f" AND {sk} BETWEEN :low AND :high"
            values.update({":low": between[0], ":high": between[1]})
        return {
            "TableName": self.name,
            "IndexName": BY_STATUS if status else BY_CREATED,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": to_item(values),
            "ScanIndexForward": False,
        }


def _by_index_shard(in_counter_shards: dict[int, int]) -> dict[int, int]:
    """counter shard -> tasks, as index shard -> tasks (an index shard's counts are those of its counter shards)."""
    counts: dict[int, int] = defaultdict(int)
    for shard, n in in_counter_shards.items():
        counts[shard % index_shards()] += n
    return counts


def _window(
    minutes: Iterable[tuple[str, dict[int, int]]], position: int, size: int, *, newest_first: bool
) -> tuple[str, int, list[int]]:
    """Where a page starts among `minutes` (minute key, index shard -> tasks), in reading order from the newest
    (or with `newest_first` false the oldest): the page's first minute as an index sort key bound (below its end;
    or from its start on), how many tasks of that minute come before the page, and how many tasks to read from
    each index shard."""
    bound, skip, before, remaining = "", 0, 0, 0
    limits = [0] * index_shards()
    for key, counts in minutes:
        in_minute = sum(counts.values())
        if not bound:
            if before + in_minute <= position:
                before += in_minute
                continue
            bound, skip = key + ("~" if newest_first else ""), position - before
            remaining = skip + size
        for shard, n in counts.items():
            limits[shard] += min(n, remaining)
        remaining -= min(in_minute, remaining)
        if not remaining:
            break
    return bound, skip, limits  # the counts ran out first (the index lags them): a short page
