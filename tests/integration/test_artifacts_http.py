"""Artifacts over HTTP against the dev server (the session's `live_server`): uploads, downloads that follow the
307 to moto's presigned URL and compare bytes, a 20 MB presigned POST finalized by the S3 event, payload limits."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.http


@pytest.fixture
def task(http: httpx.Client) -> Iterator[str]:
    task_id = str(http.post("/tasks", json={"input": "files over http"}).json()["task_id"])
    yield task_id
    http.delete(f"/tasks/{task_id}")


def upload(http: httpx.Client, task_id: str, name: str, data: bytes, path: str | None = None) -> httpx.Response:
    fields = {"relative_path": path} if path is not None else {}
    return http.post(f"/tasks/{task_id}/artifacts", data=fields, files={"file": (name, data)})


def download(http: httpx.Client, task_id: str, artifact_id: str) -> httpx.Response:
    return http.get(f"/tasks/{task_id}/artifacts/{artifact_id}", follow_redirects=True)


def test_upload_then_download_over_http_byte_for_byte(http: httpx.Client, task: str) -> None:
    data = os.urandom(300_000)
    artifact = upload(http, task, "sales_data.csv", data, "data/sales_data.csv").json()

    redirect = http.get(f"/tasks/{task}/artifacts/{artifact['artifact_id']}")
    followed = download(http, task, artifact["artifact_id"])

    assert redirect.status_code == 307 and redirect.headers["location"].startswith("http://127.0.0.1:")
    assert followed.status_code == 200 and followed.content == data
    assert followed.headers["content-disposition"] == 'attachment; filename="sales_data.csv"'
    assert followed.headers["content-type"] == "text/csv"
    assert followed.headers["content-length"] == str(len(data))


def test_non_ascii_name_downloads_with_filename_star(http: httpx.Client, task: str) -> None:
    artifact = upload(http, task, "月度报告.txt", "你好".encode(), "reports/月度报告.txt").json()

    followed = download(http, task, artifact["artifact_id"])

    assert artifact["file_name"] == "月度报告.txt" and artifact["relative_path"] == "reports/月度报告.txt"
    assert followed.status_code == 200 and followed.content == "你好".encode()
    assert "filename*=UTF-8''%E6%9C%88%E5%BA%A6%E6%8A%A5%E5%91%8A.txt" in followed.headers["content-disposition"]


def _listed(http: httpx.Client, task_id: str, artifact_id: str, timeout_s: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for artifact in http.get(f"/tasks/{task_id}").json()["artifacts"]:
            if artifact["artifact_id"] == artifact_id:
                return dict(artifact)
        time.sleep(0.05)
    raise AssertionError(f"{artifact_id} was not finalized in {timeout_s} s")


def test_20_mb_presigned_upload_is_finalized_by_the_s3_event(http: httpx.Client, task: str) -> None:
    data = os.urandom(20 * 1024 * 1024)
    ticket = http.post(
        f"/tasks/{task}/artifacts/uploads",
        json={"file_name": "big.bin", "relative_path": "blobs/big.bin", "file_size": len(data)},
    ).json()

    posted = httpx.post(
        ticket["upload"]["url"], data=ticket["upload"]["fields"], files={"file": ("big.bin", data)}, timeout=60
    )
    artifact = _listed(http, task, ticket["artifact_id"])  # no `complete` call: the dev server saw the object
    followed = download(http, task, ticket["artifact_id"])

    assert posted.status_code == 204
    assert artifact["file_size"] == len(data) and artifact["relative_path"] == "blobs/big.bin"
    assert followed.status_code == 200 and followed.content == data


def test_multipart_over_the_api_limit_is_413_over_http(http: httpx.Client, task: str) -> None:
    just_over = upload(http, task, "big.bin", b"\0" * 4_600_000)  # reaches the function: the app answers
    far_over = upload(http, task, "big.bin", b"\0" * 7 * 1024 * 1024)  # the gateway answers (WAF in AWS)

    for response in (just_over, far_over):
        assert response.status_code == 413
        error = response.json()["error"]
        assert error["code"] == "PAYLOAD_TOO_LARGE" and "/artifacts/uploads" in error["details"]["suggestion"]
    assert http.get(f"/tasks/{task}/artifacts").json()["artifacts"] == []


def test_deleting_the_task_takes_the_files_with_it(http: httpx.Client) -> None:
    task_id = http.post("/tasks", json={"input": "short-lived"}).json()["task_id"]
    artifact = upload(http, task_id, "a.txt", b"a").json()
    url = http.get(f"/tasks/{task_id}/artifacts/{artifact['artifact_id']}", params={"redirect": "false"}).json()["url"]

    assert http.delete(f"/tasks/{task_id}").status_code == 200
    # the URL outlives the object: S3 answers 404, or 403 to a signer that may not list the bucket (moto does)
    assert httpx.get(url).status_code in (403, 404)


def test_delete_over_http_answers_in_the_callers_language(http: httpx.Client, task: str) -> None:
    artifact_id = upload(http, task, "a.txt", b"a").json()["artifact_id"]
    chinese = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}

    deleted = http.delete(f"/tasks/{task}/artifacts/{artifact_id}", headers=chinese)
    again = http.delete(f"/tasks/{task}/artifacts/{artifact_id}", headers=chinese)

    assert deleted.json() == {"success": True, "message": "文件已成功删除"}
    assert again.status_code == 404 and again.json()["error"]["message"] == "文件不存在"
    assert again.json()["error"]["details"]["suggestion"] == "请检查文件ID是否正确"
