"""GET /tasks through the handler: pagination (the spec's names and the Agent Protocol's), the status and
created_after filters, and what each costs in DynamoDB calls."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from agent_core import aws
from agent_core.models import TASK_STATUSES


@pytest.fixture
def seven(new_task) -> list[dict]:
    """Seven tasks, newest first (the list's order)."""
    return [new_task(f"task {i}") for i in range(7)][::-1]


def _ids(response) -> list[str]:
    return [t["task_id"] for t in response.json()["tasks"]]


def _pagination(page: int, size: int, total: int, pages: int) -> dict[str, int]:
    return {
        "page": page,
        "size": size,
        "total": total,
        "pages": pages,
        "current_page": page,
        "page_size": size,
        "total_items": total,
        "total_pages": pages,
    }


def test_list_tasks_defaults_to_page_1_of_10_newest_first(api, seven) -> None:
    response = api("GET", "/tasks")
    assert response.status == 200
    assert _ids(response) == [t["task_id"] for t in seven]
    assert response.json()["pagination"] == _pagination(1, 10, 7, 1)


def test_list_tasks_items_are_full_task_objects(api, seven) -> None:
    assert api("GET", "/tasks").json()["tasks"][0] == seven[0]


def test_list_tasks_empty_table_has_zero_pages(api) -> None:
    response = api("GET", "/tasks")
    assert response.json() == {"tasks": [], "pagination": _pagination(1, 10, 0, 0)}


@pytest.mark.parametrize(("page", "expected"), [(1, slice(0, 3)), (2, slice(3, 6)), (3, slice(6, 7))])
def test_list_tasks_pages_slice_in_order(api, seven, page: int, expected: slice) -> None:
    response = api("GET", "/tasks", query={"page": page, "size": 3})
    assert _ids(response) == [t["task_id"] for t in seven[expected]]
    assert response.json()["pagination"] == _pagination(page, 3, 7, 3)


def test_list_tasks_page_past_the_end_is_empty_with_totals(api, seven) -> None:
    response = api("GET", "/tasks", query={"page": 4, "size": 3})
    assert response.status == 200
    assert response.json() == {"tasks": [], "pagination": _pagination(4, 3, 7, 3)}


def test_list_tasks_size_100_is_the_maximum(api, seven) -> None:
    assert api("GET", "/tasks", query={"size": 100}).json()["pagination"]["size"] == 100


@pytest.mark.parametrize(
    "query",
    [{"size": 0}, {"size": 101}, {"size": -1}, {"page": 0}, {"page": -3}, {"page": "abc"}, {"page": "1.5"}],
    ids=["size=0", "size=101", "size=-1", "page=0", "page=-3", "page=abc", "page=1.5"],
)
def test_list_tasks_bad_paging_is_400_naming_the_parameter(api, query: dict) -> None:
    response = api("GET", "/tasks", query=query)
    assert response.status == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert error["details"]["field"] == next(iter(query)) and error["details"]["in"] == "query"


@pytest.mark.parametrize(
    "query", [{"page_size": 0}, {"page_size": 101}, {"current_page": 0}], ids=["page_size=0", "page_size=101", "cp=0"]
)
def test_list_tasks_bad_agent_protocol_paging_is_400(api, query: dict) -> None:
    response = api("GET", "/tasks", query=query)
    assert response.status == 400
    assert response.json()["error"]["details"]["field"] == next(iter(query))


def test_list_tasks_agent_protocol_aliases_page_the_same(api, seven) -> None:
    # Given the same page asked for with the spec's names and with the Agent Protocol's
    spec = api("GET", "/tasks", query={"page": 2, "size": 2})
    agent_protocol = api("GET", "/tasks", query={"current_page": 2, "page_size": 2})
    # Then both answer the same tasks, with both sets of pagination keys
    assert agent_protocol.status == 200
    assert _ids(agent_protocol) == _ids(spec) == [t["task_id"] for t in seven[2:4]]
    assert agent_protocol.json()["pagination"] == spec.json()["pagination"] == _pagination(2, 2, 7, 4)


def test_list_tasks_alias_agreeing_with_the_spec_name_is_accepted(api, seven) -> None:
    response = api("GET", "/tasks", query={"page": 2, "current_page": 2, "size": 5, "page_size": 5})
    assert response.status == 200 and response.json()["pagination"] == _pagination(2, 5, 7, 2)


@pytest.mark.parametrize(
    ("query", "field"),
    [({"page": 1, "current_page": 2}, "page"), ({"size": 5, "page_size": 6}, "size")],
    ids=["page", "size"],
)
def test_list_tasks_alias_disagreeing_with_the_spec_name_is_400(api, query: dict, field: str) -> None:
    response = api("GET", "/tasks", query=query)
    assert response.status == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
    assert response.json()["error"]["details"]["field"] == field


# -- status filter ---------------------------------------------------------------------------------------------


@pytest.fixture
def one_per_status(new_task, set_status) -> dict[str, dict]:
    tasks = {status: new_task(status) for status in TASK_STATUSES}
    for status, task in tasks.items():
        if status == "completed":
            set_status(task, "running")
        if status != "created":
            set_status(task, status)
    return tasks


@pytest.mark.parametrize("status", TASK_STATUSES)
def test_list_tasks_status_filter_returns_only_that_status(api, one_per_status, status: str) -> None:
    response = api("GET", "/tasks", query={"status": status})
    assert response.status == 200
    assert _ids(response) == [one_per_status[status]["task_id"]]
    assert response.json()["tasks"][0]["status"] == status
    assert response.json()["pagination"] == _pagination(1, 10, 1, 1)


def test_list_tasks_status_filter_pages_newest_first(api, new_task) -> None:
    tasks = [new_task(f"t{i}") for i in range(3)][::-1]
    response = api("GET", "/tasks", query={"status": "created", "page": 2, "size": 2})
    assert _ids(response) == [tasks[2]["task_id"]]
    assert response.json()["pagination"] == _pagination(2, 2, 3, 2)


@pytest.mark.parametrize("status", ["bogus", "CREATED", "", "done"])
def test_list_tasks_unknown_status_is_400(api, status: str) -> None:
    response = api("GET", "/tasks", query={"status": status})
    assert response.status == 400
    assert response.json()["error"]["details"]["field"] == "status"


# -- created_after filter --------------------------------------------------------------------------------------


def _moment(task: dict) -> datetime:
    return datetime.fromisoformat(task["created_at"])


def test_list_tasks_created_after_with_z_excludes_older_and_equal(api, seven) -> None:
    # Given the creation time of the fourth newest task
    pivot = seven[3]
    response = api("GET", "/tasks", query={"created_after": pivot["created_at"]})
    # Then only the tasks created after it are listed, and the total counts only those
    newer = [t["task_id"] for t in seven if t["created_at"] > pivot["created_at"]]
    assert _ids(response) == newer
    assert response.json()["pagination"]["total"] == len(newer)


def test_list_tasks_created_after_with_an_offset_is_the_same_instant(api, seven) -> None:
    # Given the fourth newest task's creation time written in UTC+08:00
    pivot = seven[3]
    moment = _moment(pivot).astimezone(timezone(timedelta(hours=8))).isoformat()
    assert moment.endswith("+08:00")
    # Then it filters exactly as the same instant written with Z
    response = api("GET", "/tasks", query={"created_after": moment})
    assert _ids(response) == _ids(api("GET", "/tasks", query={"created_after": pivot["created_at"]}))
    assert _ids(response) == [t["task_id"] for t in seven if t["created_at"] > pivot["created_at"]]


def test_list_tasks_created_after_in_the_future_is_empty(api, seven) -> None:
    response = api("GET", "/tasks", query={"created_after": "2999-01-01T00:00:00Z"})
    assert response.json() == {"tasks": [], "pagination": _pagination(1, 10, 0, 0)}


def test_list_tasks_created_after_combines_with_status_and_paging(api, one_per_status) -> None:
    long_ago = "2000-01-01T00:00:00Z"
    response = api("GET", "/tasks", query={"created_after": long_ago, "status": "failed", "size": 1})
    assert _ids(response) == [one_per_status["failed"]["task_id"]]
    assert response.json()["pagination"] == _pagination(1, 1, 1, 1)


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2024-13-01T00:00:00Z",
        "2024-01-15T25:00:00Z",
        "",
        "0001-01-01T00:00:00+01:00",  # before year 1 once in UTC
        "9999-12-31T23:59:59-01:00",  # after year 9999 once in UTC
    ],
)
def test_list_tasks_malformed_created_after_is_400(api, value: str) -> None:
    response = api("GET", "/tasks", query={"created_after": value})
    assert response.status == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
    assert response.json()["error"]["details"]["field"] == "created_after"


# -- DynamoDB cost ---------------------------------------------------------------------------------------------


def test_list_tasks_deep_page_makes_three_calls(api, seven, ddb_calls) -> None:
    # Given a deep page (page 3 of 3), with the default single shard
    ddb_calls.clear()
    response = api("GET", "/tasks", query={"page": 3, "size": 3})
    assert len(response.json()["tasks"]) == 1 and response.json()["pagination"]["total"] == 7
    # Then the total and the page's place came from the counts (the days, then the day's minutes), the page from one
    # Query of the index: no counting, no reading of the pages before it
    assert ddb_calls == ["Query", "Query", "Query"]


def test_list_tasks_pages_read_themselves_from_the_nearer_end(api, new_task) -> None:
    # Given 40 tasks made within moments of each other (a minute or two: the counts cannot narrow a page down)
    made = [new_task(f"t{i}")["task_id"] for i in range(40)]
    read: list[int] = []
    aws.client("dynamodb").meta.events.register(
        "after-call.dynamodb.Query",
        lambda parsed, **_: read.append(sum("GSI1SK" in item for item in parsed.get("Items", []))),
    )
    for page, skipped in ((1, 0), (2, 5), (7, 5), (8, 0)):
        read.clear()
        # When a page of 5 is read from either half of the list
        ids = [t["task_id"] for t in api("GET", "/tasks", query={"page": page, "size": 5}).json()["tasks"]]
        # Then it is the right page, and the index gave it and at most the tasks of its minute on the nearer side
        assert ids == made[::-1][(page - 1) * 5 : page * 5]
        assert 5 <= sum(read) <= 5 + skipped, (page, read)  # fewer skipped if the tasks straddle two minutes


def test_list_tasks_first_page_makes_two_calls(api, seven, ddb_calls) -> None:
    # The newest tasks need no position: the totals, then the index's newest
    ddb_calls.clear()
    assert len(_ids(api("GET", "/tasks", query={"size": 3}))) == 3
    assert ddb_calls == ["BatchGetItem", "Query"]


def test_list_tasks_created_after_first_page_is_one_call_when_all_that_is_new_fits(api, seven, ddb_calls) -> None:
    # A client polling for what is new: the index's newest after the moment, one more than the page asks for
    ddb_calls.clear()
    listed = api("GET", "/tasks", query={"created_after": seven[3]["created_at"], "size": 5}).json()
    assert [t["task_id"] for t in listed["tasks"]] == [t["task_id"] for t in seven[:3]]
    assert listed["pagination"]["total"] == 3 and ddb_calls == ["Query"]


def test_list_tasks_created_after_first_page_counts_what_does_not_fit(api, seven, ddb_calls) -> None:
    # More is new than the page holds: the page from the index, the total from the minute counts since the moment
    # and a count of the index's tasks of its own minute after it
    ddb_calls.clear()
    listed = api("GET", "/tasks", query={"created_after": seven[6]["created_at"], "size": 2}).json()
    assert [t["task_id"] for t in listed["tasks"]] == [t["task_id"] for t in seven[:2]]
    assert listed["pagination"]["total"] == 6
    assert ddb_calls == ["Query"] * 3


@pytest.mark.parametrize("status", [None, "created"])
def test_list_tasks_created_after_any_page_makes_three_calls(api, seven, ddb_calls, status) -> None:
    # Given the tasks after the oldest, three pages of 2
    query = {"created_after": seven[6]["created_at"], "size": 2, **({"status": status} if status else {})}
    for page, expected in ((2, seven[2:4]), (3, seven[4:6]), (4, [])):
        ddb_calls.clear()
        listed = api("GET", "/tasks", query={**query, "page": page}).json()
        # Then each page is the list's, the total exact, from the minutes since the moment, the index's count of
        # its own minute and (for a page that holds tasks) one read of the index
        assert [t["task_id"] for t in listed["tasks"]] == [t["task_id"] for t in expected]
        assert listed["pagination"]["total"] == 6
        assert ddb_calls == ["Query"] * (3 if expected else 2), page


def test_list_tasks_created_after_a_moment_over_a_day_of_minutes_back(api, aws_mock, monkeypatch) -> None:
    # Given tasks on three days, and the minute counts since a moment read two minutes at a time (a day's worth on
    # AWS: a moment's own day, here one minute, is always whole in what is read)
    from agent_core.storage import counters
    from agent_core.storage.records import TaskRecord
    from agent_core.storage.table import get_table

    monkeypatch.setattr(counters, "_MINUTES_SINCE", 2)
    moments = ["2026-03-01T10:00:01.000000Z", "2026-03-01T10:00:02.000000Z", "2026-03-01T10:00:03.000000Z"]
    moments += [f"2026-03-0{day}T{hour}:00:00.000000Z" for day in (2, 3) for hour in (10, 11, 12)]
    made = [
        TaskRecord(f"00000000-0000-4000-8000-00000000000{i}", "x", {}, "created", m, m) for i, m in enumerate(moments)
    ]
    for record in made:
        get_table().create_task(record)
    newest_first = [r.task_id for r in made[::-1]]
    for size in (1, 3, 4):
        # When every page of the tasks after the oldest is read
        pages = [
            api("GET", "/tasks", query={"created_after": moments[0], "size": size, "page": n}).json()
            for n in range(1, 10)
        ]
        # Then the day counts (and the minutes of a page's own day) place the pages: each task once, total exact
        assert [t["task_id"] for p in pages for t in p["tasks"]] == newest_first[:-1]
        assert {p["pagination"]["total"] for p in pages} == {8}


def test_list_tasks_status_page_reads_one_index_shard_for_one_task(api, one_per_status, ddb_calls) -> None:
    ddb_calls.clear()
    api("GET", "/tasks", query={"status": "running"})
    # the status's total, then its index partition
    assert ddb_calls == ["BatchGetItem", "Query"]


def test_list_tasks_page_past_the_end_skips_the_query(api, seven, ddb_calls) -> None:
    ddb_calls.clear()
    api("GET", "/tasks", query={"page": 9})
    assert ddb_calls == ["Query"]  # the day counts say the page is past the end


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_list_tasks_pages_tile_the_whole_list(api, seven, size: int) -> None:
    # Whichever end a page is read from, the pages in order are the list, each task once
    pages = -(-len(seven) // size)
    tiled = [i for page in range(1, pages + 1) for i in _ids(api("GET", "/tasks", query={"page": page, "size": size}))]
    assert tiled == [t["task_id"] for t in seven]


@pytest.mark.parametrize("query", [{"page": "99999999999999999999"}, {"current_page": "1000001"}])
def test_page_numbers_beyond_any_list_are_400(api, query: dict[str, str]) -> None:
    response = api("GET", "/tasks", query=query)

    assert response.status == 400 and response.json()["error"]["details"]["in"] == "query"


def test_the_last_allowed_page_number_answers_an_empty_page(api) -> None:
    response = api("GET", "/tasks", query={"page": "1000000"})

    assert response.status == 200 and response.json()["tasks"] == []
