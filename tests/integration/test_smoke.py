"""The Task API answers through its Lambda handler and over HTTP."""

from __future__ import annotations


def test_create_then_get_through_the_handler(api) -> None:
    created = api("POST", "/tasks", json_body={"input": "hello"})
    assert created.status == 200
    task_id = created.json()["task_id"]
    fetched = api("GET", f"/tasks/{task_id}")
    assert fetched.status == 200
    assert fetched.json()["input"] == "hello"


def test_create_then_list_over_http(http) -> None:
    task = http.post("/tasks", json={"input": "over http"}).json()
    listed = http.get("/tasks", params={"size": 100}).json()
    assert task["task_id"] in [t["task_id"] for t in listed["tasks"]]
