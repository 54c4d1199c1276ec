"""WebSocket pushes: a task's status changes to the connections watching it, the agent's log records to the log
stream's. Connections are found with one Query (storage/connections.py) and sent to with API Gateway's
`post_to_connection`; a connection that answers Gone is forgotten. A push never fails what caused it: a step or a
run goes on whatever happens here (WEBSOCKET_ENDPOINT unset: nothing is pushed)."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from .config import get_settings
from .storage.connections import ConnectionStore, task_channel
from .storage.records import RunRecord
from .storage.table import get_table
from .timeutil import now_iso

log = logging.getLogger(__name__)
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
LOGS = "logs"
_POOL_SIZE = 16  # connections sent to at once: 50 subscribers take about 3 rounds


@lru_cache(maxsize=1)
def connections() -> ConnectionStore:
    return ConnectionStore(get_table())


_creating = threading.Lock()


def management_client(endpoint: str) -> Any:
    with _creating:  # made once, even when a burst of pushes asks at the same moment
        return _made(endpoint)


@lru_cache(maxsize=4)
def _made(endpoint: str) -> Any:
    # A connection that does not answer quickly is not waited for: the step or run is.
    retries: Any = {"mode": "standard", "max_attempts": 2}
    config = Config(retries=retries, connect_timeout=2, read_timeout=5, max_pool_connections=_POOL_SIZE)
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint, config=config)


def _endpoint() -> str | None:
    return get_settings().websocket_endpoint


# -- status updates -----------------------------------------------------------------------------------------------


def progress(status: str, step_count: int, run: RunRecord | None) -> float:
    """0 to 1: the share of the run's step budget spent while a run goes (1.0 once the task is completed)."""
    if status == "completed":
        return 1.0
    if run is not None and run.status == "running" and run.max_steps:
        return round(min(0.99, max(0.0, (step_count - run.base) / run.max_steps)), 4)
    return round(min(0.99, step_count / (step_count + 1)), 4)


def status_update(
    task_id: str, status: str, *, step_count: int, run: RunRecord | None, current_step: str | None
) -> dict[str, Any]:
    return {
        "type": "status_update",
        "task_id": task_id,
        "status": status,
        "progress": progress(status, step_count, run),
        "current_step": current_step,
        "timestamp": now_iso(),
    }


def task_status(
    task_id: str,
    status: str,
    *,
    watchers: int,
    step_count: int,
    run: RunRecord | None,
    current_step: str | None,
) -> None:
    """Pushes a status change to the task's watchers (no Query at all when the task has none)."""
    endpoint = _endpoint()
    if not endpoint or watchers <= 0:
        return
    message = status_update(task_id, status, step_count=step_count, run=run, current_step=current_step)
    try:
        _send(endpoint, connections().subscribers(task_channel(task_id)), message)
    except Exception:
        log.warning("status push failed", exc_info=True, extra={"push": True})


def welcome(connection_id: str, task_id: str) -> None:
    """A new watcher's first message: the task's current status, sent before the connection is marked ready, so no
    change can overtake it; a change that lands before the mark is sent after it."""
    endpoint = _endpoint()
    if not endpoint:
        return
    sent = _send_status(endpoint, connection_id, task_id, wait_for_open_s=10.0)
    if sent is None or not connections().ready(task_channel(task_id), connection_id):
        return  # the task or the connection is gone, or the connection moved to another channel
    now = get_table().get_task_state(task_id)
    if now is not None and (now.task.status, now.task.modified_at) != sent:
        _send_status(endpoint, connection_id, task_id)


def _send_status(
    endpoint: str, connection_id: str, task_id: str, wait_for_open_s: float = 0.0
) -> tuple[str, str] | None:
    state = get_table().get_task_state(task_id)
    if state is None:
        return None
    current = f"step {state.step_count}" if state.step_count else None
    message = status_update(
        task_id, state.task.status, step_count=state.step_count, run=state.run, current_step=current
    )
    if not _post(endpoint, connection_id, message, wait_for_open_s=wait_for_open_s):
        return None
    return state.task.status, state.task.modified_at


# -- log records --------------------------------------------------------------------------------------------------


class PushLogHandler(logging.Handler):
    """The agent's log records that name a task (`extra={"task_id": ...}`), as `log` messages on the log stream:
    what is logged (at the logger's level) is what is pushed."""

    _local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        task_id = getattr(record, "task_id", None)
        endpoint = _endpoint()
        if not task_id or not endpoint or getattr(record, "push", False) or getattr(self._local, "busy", False):
            return
        self._local.busy = True  # what the push itself logs is not pushed
        try:
            message = {
                "type": "log",
                "level": record.levelname,
                "message": record.getMessage(),
                "timestamp": datetime.fromtimestamp(record.created, UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "task_id": task_id,
                "component": getattr(record, "component", None) or record.name,
            }
            wanted = [
                s
                for s in _log_subscribers()
                if s.get("task_id") in (None, task_id)
                and LEVELS.get(record.levelname, 0) >= LEVELS[s["level"]]
                and (not s.get("client_id") or s["client_id"] == _owner_of(task_id))
            ]
            _send(endpoint, wanted, message)
        except Exception:
            log.warning("log push failed", exc_info=True, extra={"push": True})
        finally:
            self._local.busy = False


@lru_cache(maxsize=4096)
def _owner_of(task_id: str) -> str | None:
    """The client a task belongs to (None: the operator's). A task's owner never changes: read once per process,
    and only when a client listens to the log stream."""
    return get_table().get_owner(task_id)[0]


_subscribers_cache: tuple[float, list[dict[str, Any]]] = (0.0, [])
_LOG_SUBSCRIBERS_TTL_S = 1.0  # the log stream's connections are read at most once a second per process


def _log_subscribers() -> list[dict[str, Any]]:
    global _subscribers_cache
    read_at, found = _subscribers_cache
    if time.monotonic() - read_at > _LOG_SUBSCRIBERS_TTL_S:
        found = connections().subscribers(LOGS)
        _subscribers_cache = (time.monotonic(), found)
    return found


def install_log_handler(logger: Any) -> None:
    """Adds the push handler to a module's child logger (Powertools'), once. Not to the service's logger: Powertools
    formats with that logger's first handler, which must stay its own."""
    std = getattr(logger, "_logger", logger)
    if not any(isinstance(h, PushLogHandler) for h in std.handlers):
        std.addHandler(PushLogHandler())


# -- sending ------------------------------------------------------------------------------------------------------


def _send(endpoint: str, subscribers: list[dict[str, Any]], message: dict[str, Any]) -> None:
    ids = [str(s["connection_id"]) for s in subscribers]
    if len(ids) == 1:
        _post(endpoint, ids[0], message)
    elif ids:
        with ThreadPoolExecutor(min(_POOL_SIZE, len(ids))) as pool:
            list(pool.map(lambda cid: _post(endpoint, cid, message), ids))


def _post(endpoint: str, connection_id: str, message: dict[str, Any], *, wait_for_open_s: float = 0.0) -> bool:
    """Sends one message; False when the connection is gone (it is then forgotten)."""
    client = management_client(endpoint)
    data = json.dumps(message, ensure_ascii=False).encode()
    deadline = time.monotonic() + wait_for_open_s
    while True:
        try:
            client.post_to_connection(ConnectionId=connection_id, Data=data)
            return True
        except client.exceptions.GoneException:
            if time.monotonic() < deadline:  # a connection just made may not be open yet
                time.sleep(0.1)
                continue
            connections().remove(connection_id)
            return False
        except Exception:
            log.warning("push to a connection failed", exc_info=True, extra={"push": True})
            return True
