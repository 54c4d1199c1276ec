"""scripts/reshard.py: a stack's task list moved to other shard settings and back, with the lists, their totals
(agent-wide and a client's) and the spend the counts held all as they were."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from agent_core import aws
from agent_core.config import get_settings
from agent_core.storage.table import get_table
from scripts.reshard import reshard

CLIENT = "0123456789abcdef"


def _shards(monkeypatch: pytest.MonkeyPatch, count: int, index: int) -> None:
    monkeypatch.setenv("TASK_COUNT_SHARDS", str(count))
    monkeypatch.setenv("TASK_INDEX_SHARDS", str(index))
    get_settings.cache_clear()


def _lists(api: Any) -> dict[str, Any]:
    """Every page of size 7 of each list (the operator's and the client's, all and by status), with totals."""
    seen: dict[str, Any] = {}
    for who, caller in (("operator", api), ("client", api.as_client(CLIENT))):
        for status in (None, "created", "completed"):
            pages, totals = [], set()
            for page in range(1, 20):
                query = {"page": page, "size": 7, **({"status": status} if status else {})}
                body = caller("GET", "/tasks", query=query).json()
                totals.add(body["pagination"]["total"])
                if not body["tasks"]:
                    break
                pages += [t["task_id"] for t in body["tasks"]]
            seen[f"{who} {status}"] = (pages, totals)
    return seen


def test_a_stack_moves_to_one_shard_and_back_with_nothing_lost(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given tasks of the operator and of a client, some completed, and some spend, on 32 counter and 16 index shards
    _shards(monkeypatch, 32, 16)
    client = api.as_client(CLIENT)
    made = [api("POST", "/tasks", json_body={"input": f"o{i}"}).json() for i in range(24)]
    made += [client("POST", "/tasks", json_body={"input": f"c{i}"}).json() for i in range(11)]
    table = get_table()
    for task in made[::4]:
        record = table.get_task(task["task_id"])
        assert record is not None
        table.set_task_status(
            record.task_id, old="created", new="completed", modified_at=record.modified_at,
            created_at=record.created_at, owner=record.owner,
        )  # fmt: skip
        spend = {"tokens_total": 100, "cost_usd_total": Decimal("0.0125")}
        table.transact(table.count_task(record.task_id, record.created_at, {}, spend, owner=record.owner))
    before, spend_before = _lists(api), (table.counters(), table.counters(CLIENT))
    assert before["operator None"][1] == {35} and before["client None"][1] == {11}

    # When the stack moves to one shard of each, then back
    for count, index in ((1, 1), (32, 16)):
        _shards(monkeypatch, count, index)
        changed = reshard()

        # Then every list, page and total is as it was, and so is the spend
        assert changed["tasks"] == 35 and changed["index_keys_moved"] > 0
        assert _lists(api) == before
        assert (get_table().counters(), get_table().counters(CLIENT)) == spend_before

    # And run again, it changes no index key
    assert reshard()["index_keys_moved"] == 0


def test_minute_counts_of_the_layout_before_move_into_one_partition(api: Any) -> None:
    # Given a stack whose minute counts are laid out as before (a partition a day, PK=COUNTERS#<nn>#<day>, SK=HH:MM)
    made = [api("POST", "/tasks", json_body={"input": f"t{i}"}).json() for i in range(9)]
    before = _lists(api)
    client, name = aws.client("dynamodb"), get_table().name
    minutes = client.query(
        TableName=name,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": "COUNTERS#00#MINUTES"}},
    )["Items"]
    assert minutes
    for item in minutes:
        day, minute = item["SK"]["S"].split("T")
        client.delete_item(TableName=name, Key={"PK": item["PK"], "SK": item["SK"]})
        client.put_item(TableName=name, Item={**item, "PK": {"S": f"COUNTERS#00#{day}"}, "SK": {"S": minute}})
    assert _lists(api) != before  # a deep page is placed from minute counts that are not there

    # When it is resharded with its own settings
    reshard()

    # Then the lists are as they were, and no count of the old layout is left
    assert _lists(api) == before and len(made) == 9
    old = [i for i in client.scan(TableName=name)["Items"] if i["PK"]["S"].startswith("COUNTERS#00#2")]
    assert old == []
