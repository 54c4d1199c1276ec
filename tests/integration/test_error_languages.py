"""Every error the API answers speaks the caller's language to the end: under `Accept-Language: zh` the message and
every sentence in `details` (`reason`, `suggestion`, each field error's `reason`) are Chinese, and pydantic's
"Value error, " never reaches a caller. One table of error paths, through the real handlers."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from agent_core.config import get_settings
from agent_core.runs import store
from agent_core.storage.records import RunRecord
from agent_core.storage.table import get_table
from agent_core.timeutil import now_iso
from devserver.apigw import ProxyResponse
from tests.fake_model import failure

CJK = re.compile(r"[\u4e00-\u9fff]")
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
Call = Callable[..., ProxyResponse]


def multipart(fields: dict[str, str], files: list[tuple[str, bytes]]) -> tuple[bytes, dict[str, str]]:
    parts = [f'--b\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    for name, data in files:
        parts.append(f'--b\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'.encode() + data)
        parts.append(b"\r\n")
    return b"".join([*parts, b"--b--\r\n"]), {"content-type": "multipart/form-data; boundary=b"}


def upload(api: Call, task: str, files: list[tuple[str, bytes]], headers: dict[str, str], **fields: str) -> Any:
    body, kind = multipart(fields, files)
    return api("POST", f"/tasks/{task}/artifacts", body=body, headers={**kind, **headers})


def hold_a_run(task: str) -> None:
    """The task held by a run, as a start leaves it (its slot taken), without an execution."""
    run = RunRecord(str(uuid.uuid4()), task, "running", max_steps=5, base=0, started_at=now_iso(), deadline=2**31)
    state = get_table().get_task_state(task)
    assert state is not None
    store().acquire(state, run, limit=5, now=int(time.time()))


def _budget_spent(api: Call, task: str, h: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OPENAI_BUDGET_USD", "0")
    get_settings.cache_clear()
    return api("POST", f"/tasks/{task}/steps", json_body={}, headers=h)


def _every_slot_taken(api: Call, task: str, h: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MAX_CONCURRENT_RUNS", "1")
    get_settings.cache_clear()
    other = api("POST", "/tasks", json_body={"input": "other"}).json()["task_id"]
    hold_a_run(other)
    return api("POST", f"/tasks/{task}/run", headers=h)


def _reused_idempotency_key(api: Call, task: str, h: dict[str, str], _: Any) -> Any:
    api("POST", "/tasks", json_body={"input": "a"}, headers={"Idempotency-Key": "k-1"})
    return api("POST", "/tasks", json_body={"input": "b"}, headers={**h, "Idempotency-Key": "k-1"})


def _step_while_a_run_holds_the_task(api: Call, task: str, h: dict[str, str], _: Any) -> Any:
    hold_a_run(task)
    return api("POST", f"/tasks/{task}/steps", json_body={}, headers=h)


def _second_run(api: Call, task: str, h: dict[str, str], _: Any) -> Any:
    hold_a_run(task)
    return api("POST", f"/tasks/{task}/run", headers=h)


def _complete_before_upload(api: Call, task: str, h: dict[str, str], _: Any) -> Any:
    ticket = api("POST", f"/tasks/{task}/artifacts/uploads", json_body={"file_name": "a.csv", "file_size": 3})
    return api("POST", f"/tasks/{task}/artifacts/uploads/{ticket.json()['artifact_id']}/complete", headers=h)


def _too_many_files(api: Call, task: str, h: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MAX_ARTIFACTS_PER_TASK", "1")
    get_settings.cache_clear()
    upload(api, task, [("a.csv", b"1")], {})
    return upload(api, task, [("b.csv", b"2")], h)


_ID = str(uuid.uuid4())
_DEEP: Any = 1
for _ in range(40):
    _DEEP = [_DEEP]


def request(method: str, path: str, **kwargs: Any) -> Callable[..., Any]:
    """A plain request; `{t}` in the path is the test's task. `content_type` labels a raw `body`."""
    content_type = kwargs.pop("content_type", None)

    def call(api: Call, task: str, headers: dict[str, str], _: Any) -> Any:
        more = {"content-type": content_type} if content_type else {}
        return api(method, path.format(t=task), headers={**headers, **more}, **kwargs)

    return call


def new_task(**additional_input: Any) -> Callable[..., Any]:
    return request("POST", "/tasks", json_body={"input": "x", "additional_input": additional_input})


def upload_of(files: list[tuple[str, bytes]], **fields: str) -> Callable[..., Any]:
    return lambda api, task, headers, _: upload(api, task, files, headers, **fields)


def _disagreeing_paths(api: Call, task: str, h: dict[str, str], _: Any) -> Any:
    body, kind = multipart({"relative_path": "a.csv"}, [("a.csv", b"1")])
    return api("POST", f"/tasks/{task}/artifacts", body=body, query={"relative_path": "b.csv"}, headers={**h, **kind})


JSON = "application/json"
# name -> (status, code, the request: (api, a task's id, headers, monkeypatch) -> response)
CASES: dict[str, tuple[int, str, Callable[..., Any]]] = {
    "task: input missing": (400, "INVALID_REQUEST", request("POST", "/tasks", json_body={})),
    "task: input not a string": (400, "INVALID_REQUEST", request("POST", "/tasks", json_body={"input": 5})),
    "task: unknown field": (400, "INVALID_REQUEST", request("POST", "/tasks", json_body={"input": "x", "inputs": 1})),
    "task: input too long (a validator's ValueError)": (
        400, "INVALID_REQUEST", request("POST", "/tasks", json_body={"input": "x" * 70_000})),
    "task: additional_input too deep": (400, "INVALID_REQUEST", new_task(a=_DEEP)),
    "task: NaN in additional_input": (
        400, "INVALID_REQUEST", request("POST", "/tasks", body=b'{"input": "x", "additional_input": {"a": NaN}}',
                                        content_type=JSON)),
    "task: model not allowed": (400, "INVALID_REQUEST", new_task(model="nope")),
    "task: images not URLs": (400, "INVALID_REQUEST", new_task(images=[1])),
    "task: auto_run not a boolean": (400, "INVALID_REQUEST", new_task(auto_run="y")),
    "task: max_steps out of range": (400, "INVALID_REQUEST", new_task(max_steps=0)),
    "task: malformed JSON": (400, "INVALID_REQUEST", request("POST", "/tasks", body=b'{"input": ', content_type=JSON)),
    "task: body over the limit": (
        413, "PAYLOAD_TOO_LARGE", request("POST", "/tasks", json_body={"input": "x" * 600_000})),
    "task: reused Idempotency-Key": (400, "INVALID_REQUEST", _reused_idempotency_key),
    "list: size 0": (400, "INVALID_REQUEST", request("GET", "/tasks", query={"size": 0})),
    "list: size not a number": (400, "INVALID_REQUEST", request("GET", "/tasks", query={"size": "ten"})),
    "list: unknown status": (400, "INVALID_REQUEST", request("GET", "/tasks", query={"status": "done"})),
    "list: created_after a number": (400, "INVALID_REQUEST", request("GET", "/tasks", query={"created_after": "5"})),
    "list: created_after not a date": (
        400, "INVALID_REQUEST", request("GET", "/tasks", query={"created_after": "soon"})),
    "list: page and its alias disagree": (
        400, "INVALID_REQUEST", request("GET", "/tasks", query={"page": 1, "current_page": 2})),
    "task: id not a UUID": (400, "INVALID_REQUEST", request("GET", "/tasks/nope")),
    "task: not found": (404, "TASK_NOT_FOUND", request("GET", f"/tasks/{_ID}")),
    "task: delete not found": (404, "TASK_NOT_FOUND", request("DELETE", f"/tasks/{_ID}")),
    "step: not found": (404, "STEP_NOT_FOUND", request("GET", "/tasks/{t}/steps/" + _ID)),
    "step: budget spent": (429, "INSUFFICIENT_RESOURCES", _budget_spent),
    "step: while a run holds the task": (409, "TASK_ALREADY_RUNNING", _step_while_a_run_holds_the_task),
    "run: never run": (404, "RUN_NOT_FOUND", request("GET", "/tasks/{t}/run")),
    "run: cancel without a run": (400, "INVALID_REQUEST", request("POST", "/tasks/{t}/cancel")),
    "run: max_steps out of range": (
        400, "INVALID_REQUEST", request("POST", "/tasks/{t}/run", json_body={"max_steps": 0})),
    "run: a second run": (409, "TASK_ALREADY_RUNNING", _second_run),
    "run: every slot taken": (429, "INSUFFICIENT_RESOURCES", _every_slot_taken),
    "artifact: not found": (404, "ARTIFACT_NOT_FOUND", request("GET", "/tasks/{t}/artifacts/" + _ID)),
    "artifact: delete not found": (404, "ARTIFACT_NOT_FOUND", request("DELETE", "/tasks/{t}/artifacts/" + _ID)),
    "upload: no file": (400, "INVALID_REQUEST", upload_of([], relative_path="a.csv")),
    "upload: two files": (400, "INVALID_REQUEST", upload_of([("a.csv", b"1"), ("b.csv", b"2")])),
    "upload: path leaves the task": (400, "INVALID_REQUEST", upload_of([("a.csv", b"1")], relative_path="../a.csv")),
    "upload: absolute path": (400, "INVALID_REQUEST", upload_of([("a.csv", b"1")], relative_path="/etc/a.csv")),
    "upload: backslash": (400, "INVALID_REQUEST", upload_of([("a.csv", b"1")], relative_path="a\\b.csv")),
    "upload: control character": (400, "INVALID_REQUEST", upload_of([("a.csv", b"1")], relative_path="a\x07.csv")),
    "upload: type not allowed": (400, "INVALID_REQUEST", upload_of([("a.exe", b"1")])),
    "upload: no extension": (400, "INVALID_REQUEST", upload_of([("blob", b"1")])),
    "upload: form and query disagree": (400, "INVALID_REQUEST", _disagreeing_paths),
    "upload: not multipart": (
        400, "INVALID_REQUEST",
        request("POST", "/tasks/{t}/artifacts", body=b"--x", content_type="multipart/form-data")),
    "upload: 5 MB multipart": (413, "PAYLOAD_TOO_LARGE", upload_of([("big.csv", b"0" * 5_000_000)])),
    "upload: the task is full": (429, "INSUFFICIENT_RESOURCES", _too_many_files),
    "presigned: file too large": (
        400, "INVALID_REQUEST",
        request("POST", "/tasks/{t}/artifacts/uploads", json_body={"file_name": "a.csv", "file_size": 200_000_000})),
    "presigned: complete before the upload": (400, "INVALID_REQUEST", _complete_before_upload),
    "route: wrong method": (405, "INVALID_REQUEST", request("PUT", "/tasks")),
}  # fmt: skip


def _prose(details: dict[str, Any]) -> list[str]:
    """The sentences in details: its reason and suggestion, and each field error's reason."""
    texts = [details[k] for k in ("reason", "suggestion") if k in details]
    return texts + [e["reason"] for e in details.get("errors", []) if "reason" in e]


@pytest.fixture
def task(api: Call) -> str:
    return str(api("POST", "/tasks", json_body={"input": "x"}).json()["task_id"])


@pytest.mark.parametrize("case", list(CASES))
def test_every_error_speaks_chinese_to_the_end(api: Call, task: str, monkeypatch: pytest.MonkeyPatch, case: str):
    status, code, call = CASES[case]
    response = call(api, task, ZH, monkeypatch)

    body = response.json()
    assert (response.status, body["error"]["code"]) == (status, code), response.body
    assert CJK.search(body["message"]) and CJK.search(body["error"]["message"]), body
    for text in _prose(body["error"]["details"]):
        assert CJK.search(text), (case, text)
    assert "Value error" not in response.body.decode(), body


@pytest.mark.parametrize("case", list(CASES))
def test_english_errors_stay_english_without_pydantics_prefix(
    api: Call, task: str, monkeypatch: pytest.MonkeyPatch, case: str
):
    response = CASES[case][2](api, task, {"Accept-Language": "en"}, monkeypatch)

    body = response.json()
    assert not CJK.search(json.dumps(body, ensure_ascii=False)), body
    assert "Value error" not in response.body.decode(), body


def test_a_model_api_failure_speaks_chinese(api: Call, task: str, model_api: Any) -> None:
    model_api.side_effect = [failure(500)] * 3

    response = api("POST", f"/tasks/{task}/steps", json_body={}, headers=ZH)

    body = response.json()
    assert (response.status, body["error"]["code"]) == (502, "OPENAI_API_ERROR")
    assert body["error"]["details"]["reason"] == "模型 API 返回了 500"


def test_the_gateways_refusal_of_a_5_mb_upload_speaks_chinese(http: httpx.Client) -> None:
    task_id = http.post("/tasks", json={"input": "x"}).json()["task_id"]

    response = http.post(
        f"/tasks/{task_id}/artifacts",
        files={"file": ("big.csv", b"0" * 5_000_000)},
        headers={"Accept-Language": "zh-CN"},
    )

    body = response.json()
    assert (response.status_code, body["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert body["error"]["message"] == "请求体过大"
    assert body["error"]["details"]["suggestion"].startswith("较大的文件请通过 POST /tasks/{task_id}/artifacts/uploads")
