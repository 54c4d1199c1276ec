"""What each Task API request costs in DynamoDB calls, recorded with botocore's events on the adapter's client
(DESIGN §2: no request path scans; list totals come from the counters item)."""

from __future__ import annotations

import uuid


def test_create_task_is_one_transaction(api, ddb_calls) -> None:
    api("POST", "/tasks", json_body={"input": "x"})
    assert ddb_calls == ["TransactWriteItems"]


def test_get_task_is_one_consistent_read(api, new_task, ddb_calls) -> None:
    task = new_task()
    ddb_calls.clear()
    api("GET", f"/tasks/{task['task_id']}")
    assert ddb_calls == ["GetItem"]


def test_delete_task_of_a_task_without_children_costs_3_calls(api, new_task, ddb_calls) -> None:
    task = new_task()
    ddb_calls.clear()
    api("DELETE", f"/tasks/{task['task_id']}")
    # read it, find its children (none), then the task item and its counters in one transaction, last
    assert len(ddb_calls) <= 3
    assert ddb_calls[-1] == "TransactWriteItems"


def test_refused_requests_make_no_dynamodb_call(api, ddb_calls) -> None:
    api("POST", "/tasks", json_body={"input": 5})
    api("GET", "/tasks", query={"size": 0})
    api("GET", "/tasks/not-a-uuid")
    assert ddb_calls == []


def test_no_request_path_scans(api, new_task, set_status, ddb_calls) -> None:
    # Given every request the Task API serves, successful and not
    tasks = [new_task(f"t{i}") for i in range(4)]
    set_status(tasks[0], "running")
    set_status(tasks[1], "failed")
    for query in [
        {},
        {"page": 2, "size": 2},
        {"current_page": 1, "page_size": 3},
        {"page": 50},
        {"status": "running"},
        {"status": "completed"},
        {"created_after": tasks[1]["created_at"]},
        {"created_after": "2000-01-01T00:00:00Z", "status": "created", "page": 2, "size": 1},
    ]:
        assert api("GET", "/tasks", query=query).status == 200
    api("GET", f"/tasks/{tasks[2]['task_id']}")
    api("GET", f"/tasks/{uuid.uuid4()}")
    api("DELETE", f"/tasks/{tasks[3]['task_id']}")
    api("DELETE", f"/tasks/{tasks[3]['task_id']}")
    # Then DynamoDB was used (the recorder sees the adapter's calls) and never scanned
    assert {"TransactWriteItems", "GetItem", "Query"} <= set(ddb_calls)
    assert "Scan" not in ddb_calls
