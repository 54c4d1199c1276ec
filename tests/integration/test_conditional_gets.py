"""Conditional GETs through the handlers: an ETag on a task, a step, and the task, step and artifact lists;
`If-None-Match` with the current ETag answers 304 without a body (the step list without reading a step); any
change the body would show gives a new ETag. Everything else says `Cache-Control: no-store`."""

from __future__ import annotations

from typing import Any

import pytest


def _tag(api: Any, path: str, **kwargs: Any) -> str:
    response = api("GET", path, **kwargs)
    assert response.status == 200, response.body
    assert response.header("cache-control") == "no-cache"
    return str(response.header("etag"))


def _revalidate(api: Any, path: str, etag: str, **kwargs: Any) -> Any:
    return api("GET", path, headers={"If-None-Match": etag}, **kwargs)


def test_a_task_is_not_sent_again_until_it_changes(api, new_task) -> None:
    task_id = new_task()["task_id"]
    path = f"/tasks/{task_id}"
    etag = _tag(api, path)

    again = _revalidate(api, path, etag)
    assert again.status == 304 and again.body == b""
    assert again.header("etag") == etag and again.header("cache-control") == "no-cache"

    api("POST", f"{path}/steps", json_body={"input": "go"})  # the offline model: the task starts running

    changed = _revalidate(api, path, etag)
    assert changed.status == 200 and changed.json()["status"] == "running"
    assert changed.header("etag") != etag


@pytest.mark.parametrize("header", ['W/"{}"', '"something-else", {}', "*"], ids=["weak", "one of a list", "any"])
def test_if_none_match_is_compared_as_the_rfc_says(api, new_task, header: str) -> None:
    path = f"/tasks/{new_task()['task_id']}"
    etag = _tag(api, path)
    assert _revalidate(api, path, header.format(etag.strip('"') if header.startswith("W/") else etag)).status == 304


def test_another_tag_gets_the_body(api, new_task) -> None:
    path = f"/tasks/{new_task()['task_id']}"
    response = _revalidate(api, path, '"stale"')
    assert response.status == 200 and response.json()["task_id"] in path


def test_head_carries_the_same_etag(api, new_task) -> None:
    path = f"/tasks/{new_task()['task_id']}"
    etag = _tag(api, path)
    head = api("HEAD", path)
    assert head.status == 200 and head.header("etag") == etag and head.body == b""


def test_the_step_list_answers_304_from_the_task_item_alone(api, new_task, ddb_calls: list[str]) -> None:
    task_id = new_task()["task_id"]
    api("POST", f"/tasks/{task_id}/steps", json_body={"input": "one"})
    path = f"/tasks/{task_id}/steps"
    etag = _tag(api, path)
    ddb_calls.clear()

    assert _revalidate(api, path, etag).status == 304
    assert ddb_calls == ["GetItem"]  # the task item; no Query of its steps

    api("POST", f"/tasks/{task_id}/steps", json_body={"input": "two"})
    changed = _revalidate(api, path, etag)
    assert changed.status == 200 and len(changed.json()["steps"]) == 2


def test_each_page_has_its_own_etag(api, new_task) -> None:
    task_id = new_task()["task_id"]
    for text in ("one", "two"):
        api("POST", f"/tasks/{task_id}/steps", json_body={"input": text})
    path = f"/tasks/{task_id}/steps"
    first = _tag(api, path, query={"page": 1, "size": 1})
    second = _tag(api, path, query={"page": 2, "size": 1})
    assert first != second
    assert _revalidate(api, path, first, query={"page": 2, "size": 1}).status == 200


def test_a_step_is_revalidated_too(api, new_task) -> None:
    task_id = new_task()["task_id"]
    step_id = api("POST", f"/tasks/{task_id}/steps", json_body={"input": "go"}).json()["step_id"]
    path = f"/tasks/{task_id}/steps/{step_id}"
    assert _revalidate(api, path, _tag(api, path)).status == 304


def test_the_task_list_changes_its_etag_with_a_new_task(api, new_task) -> None:
    new_task()
    etag = _tag(api, "/tasks")
    assert _revalidate(api, "/tasks", etag).status == 304

    new_task()

    assert _revalidate(api, "/tasks", etag).status == 200


def test_the_artifact_list_changes_its_etag_with_an_upload(api, new_task) -> None:
    task_id = new_task()["task_id"]
    path = f"/tasks/{task_id}/artifacts"
    etag = _tag(api, path)
    assert _revalidate(api, path, etag).status == 304

    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    ).encode()
    uploaded = api("POST", path, body=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert uploaded.status in (200, 201), uploaded.body

    assert _revalidate(api, path, etag).status == 200
    assert _revalidate(api, f"/tasks/{task_id}", etag).status == 200


@pytest.mark.parametrize("path", ["/status", "/tasks/00000000-0000-4000-8000-000000000000"])
def test_answers_without_an_etag_are_not_stored(api, path: str) -> None:
    response = api("GET", path)
    assert response.header("etag") is None and response.header("cache-control") == "no-store"


def test_a_replaced_file_changes_the_tasks_etag(api, new_task) -> None:
    """A file uploaded again to its path keeps its artifact id: only the task's modified_at says it changed."""
    task_id = new_task()["task_id"]
    path = f"/tasks/{task_id}"

    def upload(content: str) -> dict[str, Any]:
        boundary = "b0undary"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
            f"Content-Type: text/plain\r\n\r\n{content}\r\n--{boundary}--\r\n"
        ).encode()
        answer = api(
            "POST",
            f"{path}/artifacts",
            body=body,
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert answer.status == 200, answer.body
        return dict(answer.json())

    first = upload("hello")
    etag = _tag(api, path)
    second = upload("hello, and more")
    again = _revalidate(api, path, etag)

    assert second["artifact_id"] == first["artifact_id"]
    assert again.status == 200 and again.json()["artifacts"][0]["file_size"] == len("hello, and more")
