"""Runs in the single table (agent_core.runs):

  slot      PK=RUNS   SK=RUN#<run_id>  task_id, started_at: exists exactly while the run holds one of the
                                       concurrent-run slots; runs_active on the limits item (storage/counters.py)
                                       counts these items. One item, unsharded: it is a limit every start
                                       checks in its condition, not a tally, and runs start far less often
                                       than tasks are created
  task      PK=TASK#<id> SK=TASK       run_id while a run holds the task (steps of any other caller are refused),
                                       run: the latest run's record (JSON)
  agent     PK=AGENT  SK=STATE         status (running, restarting) and started_at, the agent's "uptime"

Taking a slot, handing it to a resumed run and giving it back are transactions with the counter, conditioned on the
slot item: whatever order the ends of a run arrive in, and however often, a slot is released once.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from typing import Any

from ..errors import Conflict
from ..timeutil import to_iso
from .counters import LIMITS_KEY, status_index_key
from .dynamo import from_item, task_key, to_item
from .records import RunRecord, TaskState
from .table import TaskTable

AGENT_KEY = {"PK": {"S": "AGENT"}, "SK": {"S": "STATE"}}


def _slot_key(run_id: str) -> dict[str, Any]:
    return {"PK": {"S": "RUNS"}, "SK": {"S": f"RUN#{run_id}"}}


def _run_json(run: RunRecord) -> str:
    return json.dumps({k: v for k, v in asdict(run).items() if v is not None}, ensure_ascii=False)


class RunStore:
    def __init__(self, table: TaskTable) -> None:
        self.table = table

    def acquire(self, state: TaskState, run: RunRecord, *, limit: int, now: int) -> None:
        """Takes a slot (fewer than `limit` held) and the task (no run, no step under way, unchanged since `state`
        was read), and marks the task running, in one transaction. Conflict otherwise."""
        task = state.task
        old = task.status
        counters = self.table.count({"runs_active": 1})["Update"]
        counters["ConditionExpression"] = "attribute_not_exists(runs_active) OR runs_active < :limit"
        counters["ExpressionAttributeValues"][":limit"] = {"N": str(limit)}
        moves = {old: -1, "running": 1} if old != "running" else {}
        self.table.transact(
            [
                *self.table.count_task(task.task_id, task.created_at, moves, owner=task.owner),
                self._put_slot(run),
                {"Update": counters},
                {
                    "Update": {
                        "TableName": self.table.name,
                        "Key": task_key(run.task_id),
                        "UpdateExpression": "SET run_id = :r, run = :run, #s = :running, GSI2PK = :gsi, "
                        "modified_at = :m",
                        "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(run_id) AND #s = :old "
                        "AND (attribute_not_exists(lease_until) OR lease_until < :now)",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": to_item(
                            {
                                ":r": run.run_id,
                                ":run": _run_json(run),
                                ":running": "running",
                                ":old": old,
                                ":gsi": status_index_key(run.task_id, "running"),
                                ":m": run.started_at,
                                ":now": now,
                            }
                        ),
                    }
                },
            ]
        )

    def hand_over(self, old: RunRecord, new: RunRecord) -> None:
        """The task and the slot of `old` pass to `new` (a resumed run); the count of slots held does not change.
        Conflict when `old` no longer holds them."""
        self.table.transact(
            [
                {
                    "Delete": {
                        "TableName": self.table.name,
                        "Key": _slot_key(old.run_id),
                        "ConditionExpression": "attribute_exists(SK)",
                    }
                },
                self._put_slot(new),
                self._update_run(new, expected_run_id=old.run_id, keep_holding=True),
            ]
        )

    def release(self, run_id: str) -> bool:
        """Gives the run's slot back; False when it was given back already."""
        try:
            self.table.transact(
                [
                    {
                        "Delete": {
                            "TableName": self.table.name,
                            "Key": _slot_key(run_id),
                            "ConditionExpression": "attribute_exists(SK)",
                        }
                    },
                    self.table.count({"runs_active": -1}),
                ]
            )
        except Conflict:
            return False
        return True

    def end(self, state: TaskState, run: RunRecord, *, status: str) -> None:
        """Frees the task from the run, with the run's final record, and gives the task `status`. Conflict when the
        run no longer holds the task or its status changed since `state` was read."""
        old = state.task.status
        update = self._update_run(run, expected_run_id=run.run_id, keep_holding=False)["Update"]
        update["UpdateExpression"] += ", #s = :new, GSI2PK = :gsi"
        update["ConditionExpression"] += " AND #s = :old"
        update["ExpressionAttributeNames"] = {"#s": "status"}
        gsi = status_index_key(run.task_id, status)
        update["ExpressionAttributeValues"].update(to_item({":new": status, ":gsi": gsi, ":old": old}))
        moves = {old: -1, status: 1} if status != old else {}
        counts = self.table.count_task(run.task_id, state.task.created_at, moves, owner=state.task.owner)
        self.table.transact([{"Update": update}, *counts])

    def held_slots(self) -> list[dict[str, Any]]:
        """Every slot held now (at most the limit, plus any whose run ended without its end being recorded)."""
        request = {
            "TableName": self.table.name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "RUNS"}},
            "ConsistentRead": True,
        }
        return [from_item(item) for page in self.table.pages(request) for item in page["Items"]]

    def agent_state(self) -> dict[str, Any]:
        """The agent's status and start time ({} before anything recorded them)."""
        client = self.table.client
        item = client.get_item(TableName=self.table.name, Key=AGENT_KEY, ConsistentRead=True).get("Item")
        return from_item(item) if item else {}

    def set_agent_state(self, *, status: str, started_at: str | None = None) -> None:
        values: dict[str, Any] = {":s": status}
        expression = "SET #s = :s"
        if started_at is not None:
            expression += ", started_at = :t"
            values[":t"] = started_at
        self.table.client.update_item(
            TableName=self.table.name,
            Key=AGENT_KEY,
            UpdateExpression=expression,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=to_item(values),
        )

    def record_first_start(self) -> None:
        """Records the agent's start when none is: the table's creation, which is when the stack (or the dev server,
        which creates it as it starts) came up. Every function's process reads the same time, so whichever asks
        first records what any other would; a start recorded before (a restart) stays."""
        client = self.table.client
        created = client.describe_table(TableName=self.table.name)["Table"]["CreationDateTime"]
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
            client.update_item(
                TableName=self.table.name,
                Key=AGENT_KEY,
                UpdateExpression="SET started_at = :t, #s = if_not_exists(#s, :running)",
                ConditionExpression="attribute_not_exists(started_at)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_item({":t": to_iso(created), ":running": "running"}),
            )

    def active_count(self) -> int:
        client, key = self.table.client, LIMITS_KEY
        item = client.get_item(TableName=self.table.name, Key=key, ConsistentRead=True).get("Item") or {}
        return int(item.get("runs_active", {}).get("N", 0))

    def _put_slot(self, run: RunRecord) -> dict[str, Any]:
        item = {**_slot_key(run.run_id), **to_item({"task_id": run.task_id, "started_at": run.started_at})}
        return {"Put": {"TableName": self.table.name, "Item": item, "ConditionExpression": "attribute_not_exists(SK)"}}

    def _update_run(self, run: RunRecord, *, expected_run_id: str, keep_holding: bool) -> dict[str, Any]:
        values = {":run": _run_json(run), ":expected": expected_run_id, ":m": run.ended_at or run.started_at}
        if keep_holding:
            expression, values[":r"] = "SET run_id = :r, run = :run", run.run_id
        else:
            expression = "REMOVE run_id SET run = :run"
        return {
            "Update": {
                "TableName": self.table.name,
                "Key": task_key(run.task_id),
                "UpdateExpression": expression + ", modified_at = :m",
                "ConditionExpression": "run_id = :expected",
                "ExpressionAttributeValues": to_item(values),
            }
        }
