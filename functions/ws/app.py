"""The WebSocket API's routes. `$connect` subscribes the connection to a channel: `?task_id=<id>` (that task's
status updates; an unknown task is refused) or `?channel=logs` (the log stream, with optional `task_id` and minimum
`level`); `$disconnect` forgets it; `$default` takes `{"action": "subscribe", ...}` with the same keys to switch.
A task's watcher gets the task's current status first: API Gateway cannot send during `$connect`, so the function
invokes itself asynchronously to do it once the connection is open."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aws_lambda_powertools import Logger

from agent_core import auth, aws, push, tasks
from agent_core.errors import Conflict, TaskNotFound, Unauthorized
from agent_core.storage.connections import task_channel

logger = Logger()
_SUBSCRIBE_HELP = 'send {"action": "subscribe", "task_id": ...} or {"action": "subscribe", "channel": "logs"}'


def _answer(status: int, message: str = "") -> dict[str, Any]:
    return {"statusCode": status, "body": message}


def _subscription(params: dict[str, Any]) -> tuple[str, dict[str, str]] | str:
    """(channel, filters) from a query string or a subscribe message, or why it is not valid."""
    task_id = params.get("task_id")
    if task_id is not None:
        try:
            task_id = str(uuid.UUID(str(task_id)))
        except ValueError:
            return "task_id must be a task's id (UUID)"
    if params.get("channel") == push.LOGS:
        level = str(params.get("level") or "INFO").upper()
        if level not in push.LEVELS:
            return f"level must be one of {', '.join(push.LEVELS)}"
        return push.LOGS, {"level": level, **({"task_id": task_id} if task_id else {})}
    if params.get("channel") not in (None, "task"):
        return "channel must be logs, or a task_id be given"
    if not task_id:
        return "connect with ?task_id=<task id> (a task's status) or ?channel=logs (the log stream)"
    return task_channel(task_id), {}


def _subscribe(
    connection_id: str, params: dict[str, Any], caller: auth.Caller, context: Any, *, open_now: bool
) -> dict[str, Any]:
    """Subscribes the connection; a connection already on a channel (`open_now`: a subscribe message) leaves it
    only once the new one is known to be valid, so a refused switch keeps what it had."""
    found = _subscription(params)
    if isinstance(found, str):
        return _answer(400, found)
    channel, filters = found
    is_task = channel.startswith("task:")
    if not caller.operator:  # a client watches its own tasks, and hears only their log lines
        filters = {**filters, "client_id": caller.client_id}
    try:
        if is_task:
            tasks.check_visible(channel.removeprefix("task:"), caller)
        if open_now:
            push.connections().remove(connection_id)
        push.connections().add(connection_id, channel, filters, ready=not is_task, caller=caller.context())
    except (Conflict, TaskNotFound):
        return _answer(404, "no such task")
    if is_task:
        task_id = channel.removeprefix("task:")
        if open_now:
            push.welcome(connection_id, task_id)
        else:  # after $connect returns, when the connection is open
            aws.client("lambda").invoke(
                FunctionName=context.function_name,
                InvocationType="Event",
                Payload=json.dumps({"welcome": {"connection_id": connection_id, "task_id": task_id}}),
            )
    return _answer(200)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "welcome" in event:
        push.welcome(event["welcome"]["connection_id"], event["welcome"]["task_id"])
        return _answer(200)
    request = event.get("requestContext") or {}
    route, connection_id = request.get("routeKey"), str(request.get("connectionId"))
    if route == "$connect":
        try:
            caller = auth.from_context(request.get("authorizer"))
        except Unauthorized:
            return _answer(401, "a valid API key is required")
        query = event.get("queryStringParameters") or {}
        return _subscribe(connection_id, query, caller, context, open_now=False)
    if route == "$disconnect":
        push.connections().remove(connection_id)
        return _answer(200)
    try:
        message = json.loads(event.get("body") or "{}")
    except ValueError:
        message = None
    if not isinstance(message, dict) or message.get("action") != "subscribe":
        return _answer(400, _SUBSCRIBE_HELP)
    known = push.connections().get(connection_id)
    try:  # who connected, as $connect recorded it: the message itself carries no key
        caller = auth.from_context(known)
    except Unauthorized:
        return _answer(401, "a valid API key is required")
    return _subscribe(connection_id, message, caller, context, open_now=True)
