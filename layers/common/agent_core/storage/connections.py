"""WebSocket connections in the single table (agent_core.push):

  subscriber  PK=WS#<channel>       SK=CONN#<connection_id>  one per connection: its filters, and whether it has
                                                             had its first message yet; a channel's subscribers
                                                             are one Query
  connection  PK=CONN#<connection_id> SK=CONN                the connection's channel and caller (client_id, role),
                                                             for $disconnect and a later subscribe (whose events
                                                             name the connection only)
  task        PK=TASK#<id> SK=TASK                           watchers: how many connections watch the task, so a
                                                             step with none makes no Query at all

Channels are `task:<task_id>` and `logs`. Both items expire with API Gateway's two-hour connection limit (TTL).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from ..errors import Conflict
from .dynamo import from_item, task_key, to_item
from .table import TaskTable

CONNECTION_TTL_S = 2 * 3600 + 300  # API Gateway closes a connection after 2 hours


def _subscriber_key(channel: str, connection_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"WS#{channel}"}, "SK": {"S": f"CONN#{connection_id}"}}


def _connection_key(connection_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"CONN#{connection_id}"}, "SK": {"S": "CONN"}}


def task_channel(task_id: str) -> str:
    return f"task:{task_id}"


class ConnectionStore:
    def __init__(self, table: TaskTable) -> None:
        self.table = table

    def add(
        self, connection_id: str, channel: str, filters: dict[str, str], *, ready: bool, caller: dict[str, str]
    ) -> None:
        """Subscribes the connection to `channel`. For a task's channel, the task is counted as watched, on
        condition that it exists: Conflict when it does not. `ready`: it may be sent to now (else after `ready`).
        `caller`: who connected (agent_core.auth), kept with the connection for its later subscribes."""
        expires = int(time.time()) + CONNECTION_TTL_S
        subscriber = {"connection_id": connection_id, "ready": ready, "expires_at": expires, **filters}
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table.name,
                    "Item": {**_subscriber_key(channel, connection_id), **to_item(subscriber)},
                }
            },
            {
                "Put": {
                    "TableName": self.table.name,
                    "Item": {
                        **_connection_key(connection_id),
                        **to_item({"channel": channel, "expires_at": expires, **caller}),
                    },
                }
            },
        ]
        if channel.startswith("task:"):
            items.append(self._watch(channel, +1, must_exist=True))
        self.table.transact(items)

    def get(self, connection_id: str) -> dict[str, Any] | None:
        """What is kept of the connection (its channel, its caller), None if it is not known."""
        item = self.table.client.get_item(TableName=self.table.name, Key=_connection_key(connection_id)).get("Item")
        return from_item(item) if item else None

    def remove(self, connection_id: str) -> dict[str, Any] | None:
        """Forgets the connection; returns what was kept of it (its channel, its caller), None if it was not known."""
        client = self.table.client
        item = client.get_item(TableName=self.table.name, Key=_connection_key(connection_id)).get("Item")
        if not item:
            return None
        known = from_item(item)
        channel = str(known["channel"])
        try:
            self.table.transact(
                [
                    {
                        "Delete": {
                            "TableName": self.table.name,
                            "Key": _connection_key(connection_id),
                            "ConditionExpression": "attribute_exists(PK)",
                        }
                    },
                    {"Delete": {"TableName": self.table.name, "Key": _subscriber_key(channel, connection_id)}},
                ]
            )
        except Conflict:
            return None  # removed meanwhile (a Gone seen by two pushes at once): counted down once
        if channel.startswith("task:"):
            with contextlib.suppress(Conflict):  # (the task was deleted)
                self.table.transact([self._watch(channel, -1, must_exist=True)])
        return known

    def ready(self, channel: str, connection_id: str) -> bool:
        """The connection may be sent to from now on; False when it is no longer on the channel."""
        client = self.table.client
        try:
            client.update_item(
                TableName=self.table.name,
                Key=_subscriber_key(channel, connection_id),
                UpdateExpression="SET ready = :t",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues={":t": {"BOOL": True}},
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def subscribers(self, channel: str) -> list[dict[str, Any]]:
        """The channel's connections that may be sent to: one Query."""
        request = {
            "TableName": self.table.name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"WS#{channel}"}},
        }
        now = int(time.time())
        items = (from_item(item) for page in self.table.pages(request) for item in page["Items"])
        return [s for s in items if s.get("ready") and int(s.get("expires_at", 0)) > now]

    def _watch(self, channel: str, delta: int, *, must_exist: bool) -> dict[str, Any]:
        task_id = channel.removeprefix("task:")
        update: dict[str, Any] = {
            "TableName": self.table.name,
            "Key": task_key(task_id),
            "UpdateExpression": "ADD watchers :d",
            "ExpressionAttributeValues": {":d": {"N": str(delta)}},
        }
        if must_exist:
            update["ConditionExpression"] = "attribute_exists(PK)"
        return {"Update": update}
