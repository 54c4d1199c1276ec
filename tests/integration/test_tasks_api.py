"""The Task API through its Lambda handler (Mangum, API-Gateway-shaped events) on moto: the spec's task object,
create / get / delete, and the counters behind the list totals."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agent_core.models import TASK_STATUSES
from agent_core.storage.table import get_table

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TASK_FIELDS = {"task_id", "input", "additional_input", "status", "created_at", "modified_at", "artifacts"}
SPEC_ADDITIONAL_INPUT = {
    "priority": "high",
    "deadline": "2024-01-31T23:59:59Z",
    "context": {"department": "sales", "region": "asia-pacific"},
}


def test_create_task_returns_the_spec_task_object(api) -> None:
    # When the spec's example request is posted
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = api(
        "POST", "/tasks", json_body={"input": "请分析这个销售数据文件", "additional_input": SPEC_ADDITIONAL_INPUT}
    )
    # Then every field of the spec's task object is there, with the Agent Protocol's 200
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    task = response.json()
    assert set(task) == TASK_FIELDS
    assert task["input"] == "请分析这个销售数据文件"
    assert task["additional_input"] == SPEC_ADDITIONAL_INPUT
    assert task["status"] == "created"
    assert task["artifacts"] == []
    assert str(uuid.UUID(task["task_id"])) == task["task_id"]
    assert ISO_Z.match(task["created_at"]) and task["modified_at"] == task["created_at"]
    created = datetime.fromisoformat(task["created_at"])
    assert before <= created <= datetime.now(UTC)


def test_create_task_without_additional_input_stores_an_empty_object(api) -> None:
    task = api("POST", "/tasks", json_body={"input": "hello"}).json()
    assert task["additional_input"] == {}
    assert api("GET", f"/tasks/{task['task_id']}").json()["additional_input"] == {}


def test_create_task_with_null_additional_input_stores_an_empty_object(api) -> None:
    task = api("POST", "/tasks", json_body={"input": "hello", "additional_input": None}).json()
    assert task["additional_input"] == {}


def test_create_task_keeps_json_values_dynamodb_maps_would_refuse(api, new_task) -> None:
    # Given additional_input with floats, an empty key, nulls, nested lists and non-ASCII text
    extra = {"ratio": 0.1, "": "empty key", "none": None, "rows": [[1, 2.5], []], "地区": "亚太"}
    task = new_task("round trip", **extra)
    # Then it reads back exactly
    assert api("GET", f"/tasks/{task['task_id']}").json()["additional_input"] == extra


def test_create_task_gives_each_task_its_own_id(new_task) -> None:
    assert len({new_task()["task_id"] for _ in range(5)}) == 5


def test_get_task_returns_what_create_returned(api, new_task) -> None:
    task = new_task("fetch me", priority="high")
    response = api("GET", f"/tasks/{task['task_id']}")
    assert response.status == 200
    assert response.json() == task


def test_get_task_accepts_an_upper_case_uuid(api, new_task) -> None:
    task = new_task()
    assert api("GET", f"/tasks/{task['task_id'].upper()}").json()["task_id"] == task["task_id"]


@pytest.mark.parametrize("status", TASK_STATUSES)
def test_get_task_reports_each_status(api, new_task, set_status, status: str) -> None:
    # Given a task moved to a status by the storage adapter
    task = new_task()
    if status != "created":
        set_status(task, status)
    # Then the API reports it, with modified_at moved on and created_at kept
    fetched = api("GET", f"/tasks/{task['task_id']}").json()
    assert fetched["status"] == status
    assert fetched["created_at"] == task["created_at"]
    assert ISO_Z.match(fetched["modified_at"]) and fetched["modified_at"] >= task["created_at"]


def test_get_task_unknown_id_is_404_task_not_found(api) -> None:
    task_id = str(uuid.uuid4())
    response = api("GET", f"/tasks/{task_id}")
    assert response.status == 404
    assert response.json() == {
        "success": False,
        "message": "The specified task does not exist",
        "error": {
            "code": "TASK_NOT_FOUND",
            "message": "The specified task does not exist",
            "details": {"task_id": task_id, "suggestion": "Check that the task ID is correct"},
        },
    }


@pytest.mark.parametrize("task_id", ["not-a-uuid", "550e8400-e29b-41d4-a716", "550e8400e29b41d4a716446655440000zz"])
def test_get_task_malformed_id_is_400_naming_the_path_parameter(api, task_id: str) -> None:
    response = api("GET", f"/tasks/{task_id}")
    assert response.status == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert error["details"]["field"] == "task_id" and error["details"]["in"] == "path"


def test_delete_task_answers_success_then_get_is_404(api, new_task) -> None:
    task = new_task()
    deleted = api("DELETE", f"/tasks/{task['task_id']}")
    assert deleted.status == 200
    assert deleted.json()["success"] is True and deleted.json()["message"]
    assert api("GET", f"/tasks/{task['task_id']}").json()["error"]["code"] == "TASK_NOT_FOUND"


def test_delete_task_twice_second_is_404(api, new_task) -> None:
    task = new_task()
    assert api("DELETE", f"/tasks/{task['task_id']}").status == 200
    second = api("DELETE", f"/tasks/{task['task_id']}")
    assert second.status == 404
    assert second.json()["error"]["code"] == "TASK_NOT_FOUND"


def test_delete_task_leaves_other_tasks(api, new_task) -> None:
    keep, drop = new_task("keep"), new_task("drop")
    api("DELETE", f"/tasks/{drop['task_id']}")
    assert api("GET", f"/tasks/{keep['task_id']}").status == 200
    assert [t["task_id"] for t in api("GET", "/tasks").json()["tasks"]] == [keep["task_id"]]


def test_delete_task_malformed_id_is_400(api) -> None:
    assert api("DELETE", "/tasks/not-a-uuid").json()["error"]["code"] == "INVALID_REQUEST"


def test_delete_task_in_another_status_uncounts_that_status(api, new_task, set_status) -> None:
    # Given a running task
    task = new_task()
    set_status(task, "running")
    # When it is deleted
    assert api("DELETE", f"/tasks/{task['task_id']}").status == 200
    # Then neither the total nor its status counts it
    counters = get_table().counters()
    assert counters["tasks_total"] == 0 and counters["tasks_running"] == 0


# -- counters: kept in the transaction of the write they count ----------------------------------------------------


def _totals(api) -> dict[str, int]:
    """The list totals the API reports, unfiltered and per status."""
    out = {"total": api("GET", "/tasks").json()["pagination"]["total"]}
    for status in TASK_STATUSES:
        out[status] = api("GET", "/tasks", query={"status": status}).json()["pagination"]["total"]
    return out


def test_counters_follow_create_status_change_and_delete(api, new_task, set_status) -> None:
    # Given five tasks, two of them moved on and one deleted
    tasks = [new_task(f"t{i}") for i in range(5)]
    set_status(tasks[0], "running")
    set_status(tasks[1], "running")
    set_status(tasks[1], "completed")
    set_status(tasks[2], "failed")
    api("DELETE", f"/tasks/{tasks[3]['task_id']}")
    # Then the adapter's counters and the API's list totals agree with what is stored
    expected = {"total": 4, "created": 1, "running": 1, "completed": 1, "failed": 1}
    counters = get_table().counters()
    assert {k.removeprefix("tasks_"): v for k, v in counters.items() if v} == expected
    assert _totals(api) == expected
    for status in TASK_STATUSES:
        listed = api("GET", "/tasks", query={"status": status, "size": 100}).json()["tasks"]
        assert len(listed) == expected[status]


def test_counters_are_untouched_by_refused_requests(api, new_task) -> None:
    new_task()
    api("POST", "/tasks", json_body={"input": ""})
    api("DELETE", f"/tasks/{uuid.uuid4()}")
    assert get_table().counters() == {"tasks_total": 1, "tasks_created": 1}


def test_counters_after_deleting_everything_are_zero(api, new_task) -> None:
    for task in [new_task() for _ in range(3)]:
        api("DELETE", f"/tasks/{task['task_id']}")
    assert _totals(api) == {"total": 0, "created": 0, "running": 0, "completed": 0, "failed": 0}
    assert api("GET", "/tasks").json()["tasks"] == []


def test_the_functions_answer_head_and_wrong_methods_as_on_aws(api) -> None:
    # API Gateway sends other methods to the path's ANY route, i.e. to the function that owns the path.
    task_id = api("POST", "/tasks", json_body={"input": "x"}).json()["task_id"]

    head = api("HEAD", f"/tasks/{task_id}")
    put = api("PUT", f"/tasks/{task_id}", headers={"Accept-Language": "zh"})
    get = api("GET", f"/tasks/{task_id}")

    assert head.status == 200 and head.body == b""
    assert dict(head.headers)["content-length"] == str(len(get.body))
    assert put.status == 405 and dict(put.headers)["allow"] == "DELETE, GET, HEAD, OPTIONS"
    assert put.json()["message"] == "该接口不支持此请求方法"
