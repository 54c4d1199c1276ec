"""Step items: PK=TASK#<id> SK=STEP#<seq, dense from 1> (page N of steps is one Query); LSI ByRef: REF=STEP#<step_id>
finds a step by its id. Starting and finishing a step move the task item (lease, status, spend) and its counts in
the same transaction."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from .bucket import task_prefix
from .counters import Counters, status_index_key
from .dynamo import from_item, json_text, task_key, to_item
from .records import StepRecord, TaskState
from .tasks import state_from_item

BY_REF = "ByRef"
_JSON_FIELDS = ("additional_input", "artifacts", "additional_output", "messages")
# The task's memory (agent/context.py): the summary of its older steps, in an item of its own that sorts after
# every step and before the task item, so that one Query (newest first) reads the task, its memory and its latest
# steps. Step pages (STEP#000001..) never reach it; deleting the task removes it with the rest.
MEMORY_SK = "STEP#~MEMORY"


def _step_sk(seq: int) -> str:
    return f"STEP#{seq:06d}"


def step_object_key(task_id: str, step_id: str) -> str:
    """Where a step keeps what is too large for its item (a long tool argument, say): under the task's prefix, so
    deleting the task deletes it, and outside its artifacts (no artifact id matches `steps`)."""
    return f"{task_prefix(task_id)}steps/{step_id}/messages.json"


def _memory_item(task_id: str, memory: dict[str, Any], modified_at: str) -> dict[str, Any]:
    return {
        "PK": {"S": f"TASK#{task_id}"},
        "SK": {"S": MEMORY_SK},
        **to_item({"memory": json_text(memory), "modified_at": modified_at}),
    }


def _step_item(step: StepRecord) -> dict[str, Any]:
    plain = {k: v for k, v in vars(step).items() if v is not None}
    for key in _JSON_FIELDS:  # JSON text: floats and empty keys are legal there
        plain[key] = json_text(plain.get(key) or ({} if key.startswith("additional") else []))
    return {
        "PK": {"S": f"TASK#{step.task_id}"},
        "SK": {"S": _step_sk(step.seq)},
        **to_item({**plain, "REF": f"STEP#{step.step_id}"}),
    }


def _step_from_item(item: dict[str, Any]) -> StepRecord:
    plain = from_item(item)
    fields: dict[str, Any] = {k: plain.get(k) for k in StepRecord.__dataclass_fields__}
    for key in _JSON_FIELDS:
        fields[key] = json.loads(plain.get(key) or ("{}" if key.startswith("additional") else "[]"))
    fields["seq"] = int(plain["seq"])
    fields["is_last"] = bool(plain.get("is_last"))
    return StepRecord(**fields)


class StepItems(Counters):
    def load_task_with_steps(self, task_id: str) -> tuple[TaskState | None, list[StepRecord]]:
        """The task item and all its steps in one Query (SK from STEP# up to TASK covers exactly those)."""
        state, steps = None, []
        request = {
            "TableName": self.name,
            "ConsistentRead": True,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :first AND :task",
            "ExpressionAttributeValues": to_item({":pk": f"TASK#{task_id}", ":first": "STEP#", ":task": "TASK"}),
        }
        for page in self.pages(request):
            for item in page["Items"]:
                if item["SK"]["S"] == "TASK":
                    state = state_from_item(item)
                elif item["SK"]["S"] != MEMORY_SK:
                    steps.append(_step_from_item(item))
        return state, steps

    def load_for_step(
        self, task_id: str, latest: int
    ) -> tuple[TaskState | None, dict[str, Any] | None, list[StepRecord]]:
        """The task item, its memory and its `latest` newest steps (oldest first), in one Query read newest first:
        a step reads what it uses, however long the task has run."""
        state, memory, steps = None, None, list[StepRecord]()
        request = {
            "TableName": self.name,
            "ConsistentRead": True,
            "ScanIndexForward": False,
            "Limit": latest + 2,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :first AND :task",
            "ExpressionAttributeValues": to_item({":pk": f"TASK#{task_id}", ":first": "STEP#", ":task": "TASK"}),
        }
        for item in self.client.query(**request)["Items"]:
            if item["SK"]["S"] == "TASK":
                state = state_from_item(item)
            elif item["SK"]["S"] == MEMORY_SK:
                memory = json.loads(from_item(item).get("memory") or "{}")
            elif len(steps) < latest:
                steps.append(_step_from_item(item))
        return state, memory, steps[::-1]

    def start_step(
        self,
        state: TaskState,
        step: StepRecord,
        *,
        lease_id: str,
        lease_until: int,
        now: int,
        stale: list[StepRecord] | None = None,
        run_id: str | None = None,
    ) -> None:
        """Takes the task's lease, counts the step and stores it as running, in one transaction. Conflict when
        another step holds an unexpired lease, a run other than `run_id` holds the task, or the task changed since
        `state` was read. `stale` steps (left running by an invocation that died) are stored closed in the same
        transaction."""
        task = state.task
        values = {
            ":lease": lease_id,
            ":until": lease_until,
            ":now": now,
            ":seq": step.seq,
            ":prev": state.step_count,
            ":running": "running",
            ":old": task.status,
            ":gsi": status_index_key(task.task_id, "running"),
            ":m": step.created_at,
            ":run": run_id or "-",
        }
        items = [
            {
                "Update": {
                    "TableName": self.name,
                    "Key": task_key(task.task_id),
                    "UpdateExpression": "SET lease_id = :lease, lease_until = :until, step_count = :seq, "
                    "#s = :running, GSI2PK = :gsi, modified_at = :m",
                    "ConditionExpression": "attribute_exists(PK) AND #s = :old "
                    "AND (attribute_not_exists(lease_until) OR lease_until < :now) "
                    "AND (attribute_not_exists(step_count) OR step_count = :prev) "
                    "AND (attribute_not_exists(run_id) OR run_id = :run)",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": to_item(values),
                }
            },
            {
                "Put": {
                    "TableName": self.name,
                    "Item": _step_item(step),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]
        items += [{"Put": {"TableName": self.name, "Item": _step_item(s)}} for s in stale or []]
        if task.status != "running":
            items += self.count_task(task.task_id, task.created_at, {task.status: -1, "running": 1}, owner=task.owner)
        self.transact(items)

    def finish_step(
        self,
        step: StepRecord,
        *,
        task_created_at: str,
        task_owner: str | None,
        lease_id: str,
        old_status: str,
        new_status: str,
        tokens: int,
        cost_usd: float,
        memory: dict[str, Any] | None = None,
    ) -> None:
        """Stores the finished step, releases the lease and adds the spend to the task and the agent, together, with
        the task's new memory when the step compacted it. Conflict when the lease is no longer ours or the task's
        status is no longer `old_status` (a run ended)."""
        cost = Decimal(str(cost_usd))
        values = {
            ":lease": lease_id,
            ":old": old_status,
            ":new": new_status,
            ":gsi": status_index_key(step.task_id, new_status),
            ":m": step.modified_at,
            ":t": tokens,
            ":c": cost,
        }
        moves = {old_status: -1, new_status: 1} if new_status != old_status else {}
        spend = {"tokens_total": tokens, "cost_usd_total": cost}
        self.transact(
            [
                {"Put": {"TableName": self.name, "Item": _step_item(step)}},
                {
                    "Update": {
                        "TableName": self.name,
                        "Key": task_key(step.task_id),
                        "UpdateExpression": "SET #s = :new, GSI2PK = :gsi, modified_at = :m "
                        "REMOVE lease_id, lease_until ADD tokens_total :t, cost_usd :c",
                        "ConditionExpression": "lease_id = :lease AND #s = :old",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": to_item(values),
                    }
                },
                *self.count_task(step.task_id, task_created_at, moves, spend, owner=task_owner),
                *(
                    [{"Put": {"TableName": self.name, "Item": _memory_item(step.task_id, memory, step.modified_at)}}]
                    if memory is not None
                    else []
                ),
            ]
        )

    def get_step(self, task_id: str, step_id: str) -> StepRecord | None:
        items = self.client.query(
            TableName=self.name,
            IndexName=BY_REF,
            KeyConditionExpression="PK = :pk AND REF = :ref",
            ExpressionAttributeValues=to_item({":pk": f"TASK#{task_id}", ":ref": f"STEP#{step_id}"}),
        )["Items"]
        return _step_from_item(items[0]) if items else None

    def steps_between(self, task_id: str, first: int, last: int) -> list[StepRecord]:
        """Steps first..last (sequence numbers, inclusive), oldest first: one page is one Query."""
        request = {
            "TableName": self.name,
            "ConsistentRead": True,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :a AND :b",
            "ExpressionAttributeValues": to_item(
                {":pk": f"TASK#{task_id}", ":a": _step_sk(first), ":b": _step_sk(last)}
            ),
        }
        return [_step_from_item(item) for page in self.pages(request) for item in page["Items"]]
