"""The task list over sharded index keys and counters (storage/counters.py, storage/tasks.py): pages in order, each
task once, totals exact, with and without the status and created_after filters, after deletes and status changes,
and a page reads about one page of the index at any depth.

Tasks are written with the adapter's create_task at chosen creation times (days, minutes, several in one minute and
one millisecond), then read through the handler."""

from __future__ import annotations

import itertools
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent_core import aws
from agent_core.config import get_settings
from agent_core.storage import counters
from agent_core.storage.counters import index_shard, index_shards
from agent_core.storage.records import TaskRecord
from agent_core.storage.table import get_table
from agent_core.timeutil import now_iso, to_iso

START = datetime(2026, 3, 1, 23, 50, tzinfo=UTC)


OTHER_CLIENT = "fedcba9876543210"


def _create(
    created: datetime, status: str = "created", task_id: uuid.UUID | None = None, owner: str | None = None
) -> TaskRecord:
    stamp = to_iso(created)
    record = TaskRecord(str(task_id or uuid.uuid4()), "x", {}, status, stamp, stamp, owner=owner)  # type: ignore[arg-type]
    get_table().create_task(record)
    return record


def _newest_first(records: list[TaskRecord]) -> list[str]:
    return [r.task_id for r in sorted(records, key=lambda r: (r.created_at, r.task_id), reverse=True)]


@pytest.fixture(autouse=True)
def sharded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The list at a stack's scale-out setting: 32 counter shards, 16 index shards (the default is one of each)."""
    monkeypatch.setenv("TASK_COUNT_SHARDS", "32")
    monkeypatch.setenv("TASK_INDEX_SHARDS", "16")
    get_settings.cache_clear()


@pytest.fixture(params=[None, "0123456789abcdef"], ids=["every task", "a client's own"])
def owner(request: pytest.FixtureRequest) -> str | None:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def api(api: Any, owner: str | None) -> Any:
    """The list as the operator sees it (every task), or as a client sees it (its own only)."""
    return api.as_client(owner) if owner else api


@pytest.fixture
def stored(aws_mock: None, owner: str | None) -> list[TaskRecord]:
    """80 tasks over two days: bursts of up to 7 in one minute (some in one millisecond), quiet hours between, a day
    boundary crossed; a third running. Then some deleted and some moved, as a user's would be. A client's list is
    read among another client's tasks, made in the same minutes."""
    rng, moment, records = random.Random(1), START, []
    while len(records) < 80:
        for _ in range(rng.choice([1, 1, 2, 3, 7])):
            status = "running" if len(records) % 3 == 0 else "created"
            created = moment + timedelta(milliseconds=rng.choice([0, 0, 5, 31_000]))
            records.append(_create(created, status, uuid.UUID(int=rng.getrandbits(128), version=4), owner))
            if owner:
                _create(created, status, owner=OTHER_CLIENT)
        moment += timedelta(minutes=rng.choice([1, 1, 2, 47, 600]))
    table, kept = get_table(), []
    for i, record in enumerate(records):
        if i % 10 == 0:
            table.delete_task(record.task_id, status=record.status, created_at=record.created_at, owner=owner)
            continue
        if record.status == "created" and i % 4 == 1:
            table.set_task_status(
                record.task_id,
                old="created",
                new="completed",
                modified_at=now_iso(),
                created_at=record.created_at,
                owner=owner,
            )
            record = TaskRecord(**{**vars(record), "status": "completed"})
        kept.append(record)
    return kept


def _all_pages(api: Any, size: int, **query: str) -> tuple[list[str], set[int]]:
    ids, totals = [], set()
    for page in range(1, 200):  # bounded: 80 tasks are at most 80 pages
        body = api("GET", "/tasks", query={**query, "page": page, "size": size}).json()
        totals.add(body["pagination"]["total_items"])
        if not body["tasks"]:
            return ids, totals
        assert len(body["tasks"]) <= size and body["pagination"]["total_pages"] >= page
        ids += [t["task_id"] for t in body["tasks"]]
    raise AssertionError("the pages never ended")


def test_the_tasks_spread_over_every_index_shard(stored: list[TaskRecord]) -> None:
    assert index_shards() == 16 and {index_shard(r.task_id) for r in stored} == set(range(16))


def test_pages_in_order_hold_every_task_once_with_an_exact_total(api: Any, stored: list[TaskRecord]) -> None:
    for status in (None, "running", "created", "completed"):
        expected = _newest_first([r for r in stored if status in (None, r.status)])
        for size in (3, 100):
            ids, totals = _all_pages(api, size, **({"status": status} if status else {}))

            assert ids == expected and totals == {len(expected)}, (status, size)


def test_pages_are_the_same_when_a_days_minutes_are_read_one_at_a_time(
    api: Any, stored: list[TaskRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the minute counts read in the smallest rounds: one minute item per shard first, then 4, 16, ...
    monkeypatch.setattr(counters, "_FIRST_MINUTES", 1)
    for status in (None, "created"):
        expected = _newest_first([r for r in stored if status in (None, r.status)])
        for size in (1, 4):
            # When every page is read
            ids, totals = _all_pages(api, size, **({"status": status} if status else {}))
            # Then they are the list in order, each task once, whatever shard read ahead of another
            assert ids == expected and totals == {len(expected)}, (status, size)


def test_created_after_counts_and_pages_exactly_inside_a_busy_minute(api: Any, stored: list[TaskRecord]) -> None:
    # Given a moment inside a minute that holds several tasks
    ordered = sorted(stored, key=lambda r: r.created_at)
    busy = next(r for r, n in itertools.pairwise(ordered) if r.created_at[:16] == n.created_at[:16])
    for status in (None, "running"):
        expected = _newest_first([r for r in stored if r.created_at > busy.created_at and status in (None, r.status)])

        ids, totals = _all_pages(api, 4, created_after=busy.created_at, **({"status": status} if status else {}))

        assert ids == expected and totals == {len(expected)}, status


def test_counters_are_exact_after_creates_deletes_and_moves(stored: list[TaskRecord], owner: str | None) -> None:
    counters = get_table().counters(owner)

    assert counters["tasks_total"] == len(stored)
    for status in ("created", "running", "completed"):
        assert counters[f"tasks_{status}"] == sum(r.status == status for r in stored)


def test_concurrent_creates_are_each_counted_once(api: Any, aws_mock: None, owner: str | None) -> None:
    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda i: _create(START + timedelta(seconds=i % 5), owner=owner), range(40)))

    ids, totals = _all_pages(api, 10)

    assert ids == _newest_first(created) and totals == {40}
    assert get_table().counters(owner)["tasks_total"] == 40
    assert get_table().counters()["tasks_total"] == 40  # the agent's count holds every client's


@pytest.mark.parametrize("status", [None, "created"])
def test_a_page_reads_about_one_page_of_the_index_at_any_depth(
    api: Any, stored: list[TaskRecord], status: str | None
) -> None:
    # Given the tasks each Query reads (the counters' Queries read count items, which are not tasks)
    read: list[int] = []
    aws.client("dynamodb").meta.events.register(
        "after-call.dynamodb.Query",
        lambda parsed, **_: read.append(sum("GSI1SK" in item for item in parsed.get("Items", []))),
    )
    matching = sorted((r for r in stored if status in (None, r.status)), key=lambda r: r.created_at, reverse=True)
    per_minute: dict[str, int] = {}
    for record in matching:
        per_minute[record.created_at[:16]] = per_minute.get(record.created_at[:16], 0) + 1
    pages = -(-len(matching) // 10)
    for page in (1, pages // 2, pages):
        read.clear()
        api("GET", "/tasks", query={"page": page, "size": 10, **({"status": status} if status else {})})
        # Then it read its own tasks and, at most, the tasks of its first minute before it: never the pages before
        first = matching[(page - 1) * 10]
        assert sum(read) <= 10 + per_minute[first.created_at[:16]], (page, read)


def test_creates_share_no_counters_item(api: Any, aws_mock: None) -> None:
    # Given the items each create's transaction updates
    updated: list[set[str]] = []
    aws.client("dynamodb").meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: updated.append(
            {op["Update"]["Key"]["PK"]["S"] for op in params["TransactItems"] if "Update" in op}
        ),
    )

    for _ in range(40):
        api("POST", "/tasks", json_body={"input": "x"})

    # Then no item is in every create (the one counters item was), and they spread over the counter shards
    assert len(updated) == 40 and not set.intersection(*updated)
    shards = {pk for keys in updated for pk in keys if pk.count("#") == 1}  # COUNTERS#<nn>, not its day items
    assert len(shards) >= 10  # of 32: about 23 expected
