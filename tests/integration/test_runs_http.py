"""A run on the dev server, as a user starts it: the real state machine on moto's interpreter, the runner and the
run_events functions behind it, the offline model."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.http


def test_an_auto_run_task_completes_on_the_dev_server_and_writes_its_report(http: httpx.Client) -> None:
    csv = ("sales.csv", b"month,amount\nJan,10\nFeb,32\n", "text/csv")
    task = http.post("/tasks", json={"input": "Summarize the data", "additional_input": {"auto_run": True}}).json()
    task_id = task["task_id"]
    http.post(f"/tasks/{task_id}/artifacts", files={"file": csv})  # a file, while it runs: the agent lists it

    deadline = time.monotonic() + 60
    run = http.get(f"/tasks/{task_id}/run").json()
    while run["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        run = http.get(f"/tasks/{task_id}/run").json()
    done = http.get(f"/tasks/{task_id}").json()
    steps = http.get(f"/tasks/{task_id}/steps", params={"size": 100}).json()["steps"]
    status = http.get("/status").json()

    assert task["status"] == "running"
    assert run["status"] == "completed" and done["status"] == "completed"
    assert len(steps) >= 2 and steps[-1]["is_last"] is True
    assert "report.md" in {a["file_name"] for a in done["artifacts"]}
    assert status["active_tasks"] == 0 and status["status"] == "running"
