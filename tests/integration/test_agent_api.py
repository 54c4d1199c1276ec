"""The agent function's answers that do not need a run: /status's uptime (when the agent started, not when it was
first asked) and a run asked of a task that never had one."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from agent_core.runs import store
from agent_core.storage.table import get_table


def _moment(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def test_uptime_is_when_the_stack_came_up_not_the_first_status_call(api) -> None:
    # Given a stack that came up (its table created) a while before anyone asks for its status
    table = get_table()
    created = table.client.describe_table(TableName=table.name)["Table"]["CreationDateTime"]
    time.sleep(1.2)
    asked = datetime.now(UTC)
    # When /status is asked for, twice
    first = api("GET", "/status").json()["uptime"]
    second = api("GET", "/status").json()["uptime"]
    # Then the start is the stack's, recorded once for every process to read
    assert abs(_moment(first) - created) < timedelta(milliseconds=5), (first, created)
    assert _moment(first) < asked - timedelta(seconds=1)
    assert second == first == store().agent_state()["started_at"]


def test_a_restart_still_moves_the_start(api) -> None:
    before = api("GET", "/status").json()["uptime"]
    time.sleep(0.01)
    assert api("POST", "/restart").status == 200
    assert api("GET", "/status").json()["uptime"] > before


def test_status_during_a_first_restart_has_a_start(api) -> None:
    # Given a restart under way before any start was recorded (its state item has a status and no start)
    store().set_agent_state(status="restarting")
    # When /status is asked for
    response = api("GET", "/status")
    # Then it answers, restarting, from the stack's start
    assert response.status == 200, response.body
    assert response.json()["status"] == "restarting" and response.json()["uptime"].endswith("Z")


def test_dev_server_uptime_is_its_start(live_server: str) -> None:
    # The session's dev server was up before this test began, whoever asked for /status first
    began = datetime.now(UTC)
    uptime = httpx.get(f"{live_server}/status", timeout=30).json()["uptime"]
    assert _moment(uptime) < began


def test_the_run_of_a_task_never_run_is_404_run_not_found(api, new_task) -> None:
    task_id = new_task()["task_id"]

    english = api("GET", f"/tasks/{task_id}/run")
    chinese = api("GET", f"/tasks/{task_id}/run", headers={"Accept-Language": "zh-CN"})
    missing = api("GET", f"/tasks/{uuid.uuid4()}/run")

    assert english.status == 404, english.body
    assert english.json()["error"]["code"] == "RUN_NOT_FOUND"
    assert english.json()["error"]["details"]["suggestion"] == "POST /tasks/{task_id}/run to start one"
    assert chinese.json()["error"]["message"] == "该任务尚未运行过"
    assert chinese.json()["error"]["details"]["suggestion"] == "请通过 POST /tasks/{task_id}/run 启动运行"
    assert (missing.status, missing.json()["error"]["code"]) == (404, "TASK_NOT_FOUND")
