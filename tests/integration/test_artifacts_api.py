"""The Artifact API through its Lambda handler (API Gateway events, moto for S3 and DynamoDB): upload, presigned
upload and its finalizing, list, presigned download, delete, validation, limits, and partial failures."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from botocore.exceptions import ClientError

from agent_core import artifacts, aws
from agent_core.config import get_settings
from agent_core.errors import ArtifactNotFound, InvalidRequest, TaskNotFound
from agent_core.storage.counters import counter_shard, index_shard
from agent_core.storage.records import TaskRecord
from agent_core.storage.table import get_table
from devserver.apigw import LambdaContext, ProxyResponse, parse_response
from devserver.events import EventRouter, event_rules
from devserver.gateway import load_handler
from tests.conftest import ROOT, TEMPLATE

BUCKET = TEMPLATE.physical_name("ArtifactBucket")


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    for name, (file_name, data) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{file_name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def task_id(new_task: Callable[..., dict[str, Any]]) -> str:
    return str(new_task()["task_id"])


@pytest.fixture
def upload(api: Any) -> Callable[..., ProxyResponse]:
    def send(task_id: str, name: str, data: bytes, relative_path: str | None = None, **kwargs: Any) -> ProxyResponse:
        fields = {} if relative_path is None else {"relative_path": relative_path}
        body, content_type = multipart(fields, {"file": (name, data)})
        headers = {"content-type": content_type, **kwargs.pop("headers", {})}
        response: ProxyResponse = api("POST", f"/tasks/{task_id}/artifacts", body=body, headers=headers, **kwargs)
        return response

    return send


def s3() -> Any:
    return aws.client("s3")


def objects(task_id: str) -> dict[str, bytes]:
    listed = s3().list_objects_v2(Bucket=BUCKET, Prefix=f"tasks/{task_id}/").get("Contents", [])
    return {o["Key"]: s3().get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def items(task_id: str, prefix: str) -> list[dict[str, Any]]:
    table = get_table()
    return table.client.query(
        TableName=table.name,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :sk)",
        ExpressionAttributeValues={":pk": {"S": f"TASK#{task_id}"}, ":sk": {"S": prefix}},
    )["Items"]


def fail(service: str, operation: str, *, times: int = 1_000, after: int = 0) -> list[int]:
    """Makes the adapters' own (moto-backed) client raise on `operation`: a botocore event hook, nothing stubbed.
    Returns a counter of the calls seen."""
    seen = [0]

    def boom(**_: Any) -> None:
        seen[0] += 1
        if after < seen[0] <= after + times:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, operation)

    aws.client(service).meta.events.register(f"before-call.{service}.{operation}", boom)
    return seen


def error(response: ProxyResponse) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False
    return dict(body["error"])


# -- upload, list, task ------------------------------------------------------------------------------------------


def test_upload_returns_the_artifact_and_the_task_lists_it(api, task_id, upload) -> None:
    data = b"region,amount\napac,10\n"
    response = upload(task_id, "sales_data.csv", data, "data/sales_data.csv")

    assert response.status == 200, response.body
    artifact = response.json()
    assert artifact["file_name"] == "sales_data.csv" and artifact["relative_path"] == "data/sales_data.csv"
    assert artifact["file_size"] == len(data) and artifact["agent_created"] is False
    assert artifact["created_at"].endswith("Z") and uuid.UUID(artifact["artifact_id"])
    assert api("GET", f"/tasks/{task_id}").json()["artifacts"] == [artifact]
    assert list(objects(task_id).values()) == [data]
    record = items(task_id, "ARTIFACT#")[0]
    assert record["content_type"] == {"S": "text/csv"}


def test_upload_takes_relative_path_from_the_query_and_folders(api, task_id, upload) -> None:
    from_query = upload(task_id, "a.csv", b"1", query={"relative_path": "in/a.csv"}).json()
    folder = upload(task_id, "b.csv", b"2", "in").json()
    root = upload(task_id, "c.csv", b"3").json()
    backslash_name = upload(task_id, "C:\\fakepath\\d.csv", b"4").json()

    assert [a["relative_path"] for a in (from_query, folder, root, backslash_name)] == [
        "in/a.csv",
        "in/b.csv",
        "c.csv",
        "d.csv",
    ]
    disagreeing = upload(task_id, "e.csv", b"5", "x/e.csv", query={"relative_path": "y/e.csv"})
    assert disagreeing.status == 400 and error(disagreeing)["details"]["field"] == "relative_path"


@pytest.mark.parametrize(
    ("relative_path", "stored"),
    [
        ("data/renamed.csv", "data/renamed.csv"),  # a full path: the upload takes that name
        ("data/", "data/foo.csv"),  # a folder: the file keeps its own name
        ("data", "data/foo.csv"),  # a folder as Agent Protocol clients send one (no extension)
        (None, "foo.csv"),  # the root, under its own name
    ],
)
def test_upload_is_stored_at_its_relative_path_or_in_its_folder(
    api, task_id, upload, relative_path: str | None, stored: str
) -> None:
    artifact = upload(task_id, "foo.csv", b"a,b\n", relative_path).json()

    assert (artifact["relative_path"], artifact["file_name"]) == (stored, stored.rsplit("/", 1)[-1])
    download = api("GET", f"/tasks/{task_id}/artifacts/{artifact['artifact_id']}")
    query = parse_qs(urlparse(dict(download.headers)["location"]).query)
    assert query["response-content-disposition"] == [f'attachment; filename="{artifact["file_name"]}"']


def test_a_presigned_upload_is_renamed_by_its_relative_path_too(api, task_id) -> None:
    renamed = start(api, task_id, file_name="foo.csv", relative_path="data/renamed.csv", file_size=3).json()
    folder = start(api, task_id, file_name="foo.csv", relative_path="data/", file_size=3).json()

    assert (renamed["relative_path"], renamed["file_name"]) == ("data/renamed.csv", "renamed.csv")
    assert (folder["relative_path"], folder["file_name"]) == ("data/foo.csv", "foo.csv")


def test_a_renamed_upload_is_checked_and_typed_by_its_new_name(api, task_id, upload) -> None:
    refused = upload(task_id, "notes.txt", b"x", "bin/tool.exe")
    typed = upload(task_id, "notes.txt", b"x", "data/notes.csv")

    assert refused.status == 400 and error(refused)["details"]["file_name"] == "tool.exe"
    assert typed.status == 200 and items(task_id, "ARTIFACT#")[0]["content_type"] == {"S": "text/csv"}


def test_upload_to_an_existing_path_replaces_the_content_and_keeps_the_id(api, task_id, upload) -> None:
    first = upload(task_id, "notes.md", b"v1", "docs/notes.md").json()
    second = upload(task_id, "notes.md", b"version 2", "docs/notes.md").json()

    assert second["artifact_id"] == first["artifact_id"] and second["created_at"] == first["created_at"]
    assert second["file_size"] == len(b"version 2")
    assert api("GET", f"/tasks/{task_id}/artifacts").json()["artifacts"] == [second]
    assert list(objects(task_id).values()) == [b"version 2"]  # the old object is gone


def test_list_pages_oldest_first_with_the_task_rules(api, task_id, upload) -> None:
    ids = [upload(task_id, f"f{i}.txt", b"x").json()["artifact_id"] for i in range(5)]

    page2 = api("GET", f"/tasks/{task_id}/artifacts", query={"page": 2, "size": 2}).json()
    aliases = api("GET", f"/tasks/{task_id}/artifacts", query={"current_page": 3, "page_size": 2}).json()
    everything = api("GET", f"/tasks/{task_id}/artifacts").json()

    assert [a["artifact_id"] for a in page2["artifacts"]] == ids[2:4]
    assert page2["pagination"] == {
        "page": 2,
        "size": 2,
        "total": 5,
        "pages": 3,
        "current_page": 2,
        "page_size": 2,
        "total_items": 5,
        "total_pages": 3,
    }
    assert [a["artifact_id"] for a in aliases["artifacts"]] == ids[4:]
    assert [a["artifact_id"] for a in everything["artifacts"]] == ids
    assert api("GET", f"/tasks/{task_id}/artifacts", query={"size": 101}).status == 400


def test_list_page_reads_one_item(api, task_id, upload, ddb_calls) -> None:
    for i in range(3):
        upload(task_id, f"f{i}.txt", b"x")
    ddb_calls.clear()

    listed = api("GET", f"/tasks/{task_id}/artifacts", query={"page": 2, "size": 2})

    assert listed.status == 200 and len(listed.json()["artifacts"]) == 1
    assert ddb_calls == ["GetItem"]


def test_task_list_items_carry_artifacts_without_a_read_per_task(api, new_task, upload, ddb_calls) -> None:
    tasks = [new_task(f"task {i}")["task_id"] for i in range(3)]
    uploaded = {t: upload(t, "in.csv", t.encode()).json() for t in tasks}
    ddb_calls.clear()

    listed = api("GET", "/tasks", query={"size": 10}).json()["tasks"]

    # The counts (the shards' totals, then the days and minutes of the counter shards holding a task), then the
    # index (one Query per index shard holding a task): it projects the summary, no item is read per task
    counted = len({counter_shard(t) for t in tasks})
    assert ddb_calls[0] == "BatchGetItem" and set(ddb_calls[1:]) == {"Query"}, ddb_calls
    assert len(ddb_calls) <= 1 + 2 * counted + len({index_shard(t) for t in tasks})
    for task in listed:
        assert task["artifacts"] == [uploaded[task["task_id"]]]


# -- download ----------------------------------------------------------------------------------------------------


def test_download_redirects_to_a_presigned_get_with_the_spec_headers(api, task_id, upload) -> None:
    artifact = upload(task_id, "月度报告.txt", "你好".encode(), "reports/月度报告.txt").json()

    response = api("GET", f"/tasks/{task_id}/artifacts/{artifact['artifact_id']}")

    assert response.status == 307 and response.body == b""
    location = urlparse(response.header("location") or "")
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert params["response-content-type"] == "text/plain"
    assert "filename*=UTF-8''%E6%9C%88%E5%BA%A6%E6%8A%A5%E5%91%8A.txt" in params["response-content-disposition"]
    assert params["X-Amz-Expires"] == "300" and params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    key = location.path.lstrip("/").removeprefix(f"{BUCKET}/")  # virtual-hosted or path-style
    assert s3().get_object(Bucket=BUCKET, Key=key)["Body"].read() == "你好".encode()


def test_download_redirect_false_answers_url_and_expiry(api, task_id, upload, monkeypatch) -> None:
    monkeypatch.setenv("DOWNLOAD_URL_TTL_SECONDS", "60")
    get_settings.cache_clear()
    artifact = upload(task_id, "a.csv", b"1").json()

    link = api("GET", f"/tasks/{task_id}/artifacts/{artifact['artifact_id']}", query={"redirect": "false"}).json()

    assert set(link) == {"url", "expires_at"} and link["url"].startswith("https://")
    assert "X-Amz-Expires=60" in link["url"] and link["expires_at"].endswith("Z")


# -- not found, bad input ----------------------------------------------------------------------------------------


def test_unknown_task_and_artifact_are_their_own_404s(api, task_id, upload) -> None:
    unknown_task = str(uuid.uuid4())
    for response in (
        upload(unknown_task, "x.txt", b"x"),
        api("GET", f"/tasks/{unknown_task}/artifacts"),
        api("GET", f"/tasks/{unknown_task}/artifacts/{uuid.uuid4()}"),
        api("POST", f"/tasks/{unknown_task}/artifacts/uploads", json_body={"file_name": "a.csv", "file_size": 1}),
    ):
        assert response.status == 404 and error(response)["code"] == "TASK_NOT_FOUND"
    for method in ("GET", "DELETE"):
        response = api(method, f"/tasks/{task_id}/artifacts/{uuid.uuid4()}")
        assert response.status == 404 and error(response)["code"] == "ARTIFACT_NOT_FOUND"
    malformed = api("GET", f"/tasks/{task_id}/artifacts/not-a-uuid")
    assert malformed.status == 400 and error(malformed)["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize(
    "bad", ["../../etc/passwd", "/etc/passwd", "a/../../b", "a\\b", "a\x00b", "a\x1bb", "x" * 300, "a/\u202eb"]
)
def test_upload_refuses_paths_outside_the_task(api, task_id, upload, bad: str) -> None:
    response = upload(task_id, "x.txt", b"x", bad)

    assert response.status == 400
    assert error(response)["code"] == "INVALID_REQUEST" and error(response)["details"]["field"] == "relative_path"
    assert objects(task_id) == {} and items(task_id, "ARTIFACT#") == []


def test_upload_refuses_a_file_without_name_or_part(api, task_id, upload) -> None:
    nameless = upload(task_id, "..", b"x")
    body, content_type = multipart({"relative_path": "a.txt"}, {})
    no_file = api("POST", f"/tasks/{task_id}/artifacts", body=body, headers={"content-type": content_type})

    assert nameless.status == 400 and error(nameless)["details"]["field"] == "file"
    assert no_file.status == 400 and error(no_file)["details"]["field"] == "file"


def test_upload_refuses_types_off_the_allow_list(api, task_id, upload, monkeypatch) -> None:
    refused = upload(task_id, "setup.exe", b"MZ")
    monkeypatch.setenv("ALLOWED_FILE_TYPES", "csv,.PNG")
    get_settings.cache_clear()
    narrowed = upload(task_id, "notes.txt", b"x")
    accepted = upload(task_id, "chart.png", b"\x89PNG")

    assert refused.status == 400 and error(refused)["message"] == "File type not allowed"
    assert "exe" not in error(refused)["details"]["allowed_types"]
    assert narrowed.status == 400 and error(narrowed)["details"]["allowed_types"] == ["csv", "png"]
    assert accepted.status == 200


def test_multipart_over_the_api_limit_is_413_naming_the_presigned_path(api, task_id, upload, monkeypatch) -> None:
    monkeypatch.setenv("MAX_UPLOAD_BODY_BYTES", "2000")
    get_settings.cache_clear()

    response = upload(task_id, "big.bin", b"\0" * 3000, "big.bin", headers={"accept-language": "zh-CN"})

    assert response.status == 413
    assert error(response)["code"] == "PAYLOAD_TOO_LARGE" and error(response)["details"]["limit_bytes"] == 2000
    assert "/artifacts/uploads" in error(response)["details"]["suggestion"]
    assert objects(task_id) == {}


def test_the_task_cap_refuses_new_paths_but_not_replacements(api, task_id, upload, monkeypatch) -> None:
    monkeypatch.setenv("MAX_ARTIFACTS_PER_TASK", "2")
    get_settings.cache_clear()
    upload(task_id, "a.txt", b"a")
    upload(task_id, "b.txt", b"b")

    third = upload(task_id, "c.txt", b"c")
    presigned = api("POST", f"/tasks/{task_id}/artifacts/uploads", json_body={"file_name": "c.bin", "file_size": 9})
    replaced = upload(task_id, "b.txt", b"b2")

    assert third.status == 429 and error(third)["code"] == "INSUFFICIENT_RESOURCES"
    assert error(third)["details"]["limit"] == 2
    assert presigned.status == 429
    assert replaced.status == 200
    assert len(objects(task_id)) == 2


# -- delete ------------------------------------------------------------------------------------------------------


def test_delete_removes_record_summary_and_object(api, task_id, upload) -> None:
    keep = upload(task_id, "keep.txt", b"keep").json()
    gone = upload(task_id, "gone.txt", b"gone").json()

    response = api("DELETE", f"/tasks/{task_id}/artifacts/{gone['artifact_id']}")

    assert response.status == 200 and response.json() == {"success": True, "message": "File deleted successfully"}
    assert api("GET", f"/tasks/{task_id}").json()["artifacts"] == [keep]
    assert api("GET", f"/tasks/{task_id}/artifacts/{gone['artifact_id']}").status == 404
    assert list(objects(task_id).values()) == [b"keep"]
    assert upload(task_id, "gone.txt", b"again").json()["artifact_id"] != gone["artifact_id"]


@pytest.mark.parametrize(
    ("header", "deleted", "missing", "suggestion"),
    [
        ("zh-CN,zh;q=0.9", "文件已成功删除", "文件不存在", "请检查文件ID是否正确"),
        ("zh", "文件已成功删除", "文件不存在", "请检查文件ID是否正确"),
        (
            None,
            "File deleted successfully",
            "The specified file does not exist",
            "Check that the artifact ID is correct",
        ),
    ],
    ids=["zh-CN", "zh", "default"],
)
def test_delete_answers_in_the_callers_language(
    api, task_id, upload, header: str | None, deleted: str, missing: str, suggestion: str
) -> None:
    artifact_id = upload(task_id, "a.txt", b"a").json()["artifact_id"]
    headers = {"Accept-Language": header} if header else {}

    first = api("DELETE", f"/tasks/{task_id}/artifacts/{artifact_id}", headers=headers)
    again = api("DELETE", f"/tasks/{task_id}/artifacts/{artifact_id}", headers=headers)

    assert (first.status, first.json()) == (200, {"success": True, "message": deleted})
    assert again.status == 404 and error(again)["code"] == "ARTIFACT_NOT_FOUND"
    assert error(again)["message"] == again.json()["message"] == missing
    assert error(again)["details"] == {"artifact_id": artifact_id, "suggestion": suggestion}


def test_task_delete_removes_its_objects_and_no_others(api, task_id, upload) -> None:
    upload(task_id, "a.txt", b"a")
    upload(task_id, "b.txt", b"b")
    s3().put_object(Bucket=BUCKET, Key=f"tasks/{task_id}/stray", Body=b"x")  # an abandoned presigned upload
    other = api("POST", "/tasks", json_body={"input": "other"}).json()["task_id"]
    upload(other, "b.txt", b"b")

    response = api("DELETE", f"/tasks/{task_id}")

    assert response.status == 200
    assert objects(task_id) == {}
    assert list(objects(other).values()) == [b"b"]


# -- presigned uploads -------------------------------------------------------------------------------------------


def start(api, task_id: str, **body: Any) -> ProxyResponse:
    response: ProxyResponse = api("POST", f"/tasks/{task_id}/artifacts/uploads", json_body=body)
    return response


def test_presigned_upload_policy_enforces_size_and_type(api, task_id) -> None:
    response = start(api, task_id, file_name="big.bin", relative_path="blobs/", file_size=20_000_000)

    assert response.status == 200, response.body
    ticket = response.json()
    assert ticket["relative_path"] == "blobs/big.bin" and ticket["file_size"] == 20_000_000
    post = ticket["upload"]
    assert post["url"].startswith("https://") and post["expires_at"].endswith("Z")
    policy = json.loads(base64.b64decode(post["fields"]["policy"]))
    assert ["content-length-range", 20_000_000, 20_000_000] in policy["conditions"]
    assert {"Content-Type": "application/octet-stream"} in policy["conditions"]
    assert {"key": post["fields"]["key"]} in policy["conditions"]
    assert post["fields"]["key"].startswith(f"tasks/{task_id}/{ticket['artifact_id']}/")
    assert api("GET", f"/tasks/{task_id}/artifacts").json()["artifacts"] == []  # not listed until finalized


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"file_name": "huge.bin", "file_size": 200 * 1024 * 1024}, "file_size"),
        ({"file_name": "a.bin", "file_size": -1}, "file_size"),
        ({"file_name": "a.bin"}, "file_size"),
        ({"file_name": "a.bin", "file_size": 1, "relative_path": "../a.bin"}, "relative_path"),
        ({"file_name": "a.bin", "file_size": 1, "extra": 1}, "extra"),
    ],
)
def test_presigned_upload_refuses_bad_requests_before_any_url(api, task_id, body, field) -> None:
    response = start(api, task_id, **body)

    assert response.status == 400 and error(response)["code"] == "INVALID_REQUEST"
    assert error(response)["details"]["field"] == field
    assert items(task_id, "UPLOAD#") == []


def test_complete_checks_the_object_then_lists_it_once(api, task_id) -> None:
    ticket = start(api, task_id, file_name="report.pdf", relative_path="out/report.pdf", file_size=4).json()
    complete = f"/tasks/{task_id}/artifacts/uploads/{ticket['artifact_id']}/complete"

    early = api("POST", complete)
    s3().put_object(Bucket=BUCKET, Key=ticket["upload"]["fields"]["key"], Body=b"%PDF")
    done = api("POST", complete)
    again = api("POST", complete)

    assert early.status == 400 and "not been uploaded" in error(early)["details"]["reason"]
    assert done.status == 200 and done.json()["file_size"] == 4 and done.json()["relative_path"] == "out/report.pdf"
    assert again.json() == done.json()
    assert api("GET", f"/tasks/{task_id}").json()["artifacts"] == [done.json()]
    assert items(task_id, "UPLOAD#") == []
    assert items(task_id, "ARTIFACT#")[0]["content_type"] == {"S": "application/pdf"}


def test_complete_refuses_and_deletes_an_object_of_the_wrong_size(api, task_id) -> None:
    ticket = start(api, task_id, file_name="a.bin", file_size=10).json()
    key = ticket["upload"]["fields"]["key"]
    s3().put_object(Bucket=BUCKET, Key=key, Body=b"0123456789 and more")  # S3 enforces the policy; moto does not

    response = api("POST", f"/tasks/{task_id}/artifacts/uploads/{ticket['artifact_id']}/complete")

    assert response.status == 400 and error(response)["details"]["artifact_id"] == ticket["artifact_id"]
    assert (error(response)["details"]["size_bytes"], error(response)["details"]["declared_bytes"]) == (19, 10)
    assert objects(task_id) == {}
    assert api("GET", f"/tasks/{task_id}/artifacts").json()["artifacts"] == []


def test_complete_after_the_s3_event_deleted_the_wrong_size_still_says_why(api, task_id, events) -> None:
    # S3's event usually arrives first: it deletes the object; the client's complete must still hear the sizes.
    ticket = start(api, task_id, file_name="a.bin", file_size=10).json()
    s3().put_object(Bucket=BUCKET, Key=ticket["upload"]["fields"]["key"], Body=b"12345")
    events.drain()

    response = api("POST", f"/tasks/{task_id}/artifacts/uploads/{ticket['artifact_id']}/complete")

    assert response.status == 400
    assert "has 5 bytes, not the 10 declared" in error(response)["details"]["reason"]
    assert objects(task_id) == {}


@pytest.fixture
def events(api: Any) -> EventRouter:
    """The template's EventBridge rules on this test's moto; `drain()` invokes the finalizer like EventBridge."""
    return EventRouter(TEMPLATE).create()


def test_the_s3_event_finalizes_an_upload_without_complete(api, task_id, events) -> None:
    ticket = start(api, task_id, file_name="data.csv", relative_path="data/data.csv", file_size=3).json()

    s3().put_object(Bucket=BUCKET, Key=ticket["upload"]["fields"]["key"], Body=b"a,b")
    events.drain()

    listed = api("GET", f"/tasks/{task_id}/artifacts").json()["artifacts"]
    assert [(a["artifact_id"], a["file_size"], a["relative_path"]) for a in listed] == [
        (ticket["artifact_id"], 3, "data/data.csv")
    ]
    # the client's explicit complete, arriving after the event, answers the same artifact
    assert api("POST", f"/tasks/{task_id}/artifacts/uploads/{ticket['artifact_id']}/complete").json() == listed[0]


def test_the_s3_event_ignores_objects_that_are_no_upload(api, task_id, upload, events) -> None:
    upload(task_id, "a.txt", b"a")
    upload(task_id, "b.bin", b"b")
    s3().put_object(Bucket=BUCKET, Key="elsewhere/file.txt", Body=b"x")  # the rule's key prefix filters this out
    stale = start(api, task_id, file_name="b.bin", file_size=1).json()
    newer = start(api, task_id, file_name="b.bin", file_size=2).json()  # the newest POST for a file counts
    s3().put_object(Bucket=BUCKET, Key=stale["upload"]["fields"]["key"], Body=b"1")

    assert events.drain() == 3  # the two API uploads and the stale POST's object: each left alone
    listed = api("GET", f"/tasks/{task_id}/artifacts").json()["artifacts"]
    assert [(a["relative_path"], a["file_size"]) for a in listed] == [("a.txt", 1), ("b.bin", 1)]
    assert stale["artifact_id"] == newer["artifact_id"] == listed[1]["artifact_id"]
    assert len(items(task_id, "UPLOAD#")) == 1


def test_presigned_upload_to_an_existing_path_replaces_it(api, task_id, upload, events) -> None:
    first = upload(task_id, "data.csv", b"old").json()
    ticket = start(api, task_id, file_name="data.csv", file_size=3).json()
    assert ticket["artifact_id"] == first["artifact_id"]

    s3().put_object(Bucket=BUCKET, Key=ticket["upload"]["fields"]["key"], Body=b"new")
    events.drain()

    assert [a["artifact_id"] for a in api("GET", f"/tasks/{task_id}/artifacts").json()["artifacts"]] == [
        first["artifact_id"]
    ]
    assert list(objects(task_id).values()) == [b"new"]


# -- partial failures, injected into the real boto3 clients -------------------------------------------------------


def test_an_s3_failure_during_upload_leaves_no_record(api, task_id, upload) -> None:
    fail("s3", "PutObject")

    response = upload(task_id, "a.csv", b"a,b")

    assert response.status == 500
    # the operation and the request id to find it in the logs by; never the provider's message
    assert error(response) == {
        "code": "INTERNAL_ERROR",
        "message": "File storage failed",
        "details": {"operation": "PutObject", "request_id": error(response)["details"]["request_id"]},
    }
    assert items(task_id, "ARTIFACT#") == []
    assert api("GET", f"/tasks/{task_id}").json()["artifacts"] == []


def test_a_record_failure_during_upload_leaves_no_object(api, task_id, upload) -> None:
    seen = fail("dynamodb", "TransactWriteItems")

    response = upload(task_id, "a.csv", b"a,b")

    assert seen[0] == 1
    assert response.status == 500 and error(response)["code"] == "INTERNAL_ERROR"
    assert objects(task_id) == {}
    assert items(task_id, "ARTIFACT#") == []


def test_a_record_failure_during_finalize_keeps_the_upload_for_a_retry(api, task_id) -> None:
    ticket = start(api, task_id, file_name="a.bin", file_size=1).json()
    s3().put_object(Bucket=BUCKET, Key=ticket["upload"]["fields"]["key"], Body=b"1")
    complete = f"/tasks/{task_id}/artifacts/uploads/{ticket['artifact_id']}/complete"
    fail("dynamodb", "TransactWriteItems", times=1)

    failed = api("POST", complete)
    retried = api("POST", complete)

    assert failed.status == 500 and retried.status == 200
    assert list(objects(task_id).values()) == [b"1"]


def test_an_s3_failure_after_a_delete_leaves_an_unlisted_object_that_task_delete_removes(api, task_id, upload) -> None:
    artifact = upload(task_id, "a.txt", b"a").json()
    fail("s3", "DeleteObject")

    deleted = api("DELETE", f"/tasks/{task_id}/artifacts/{artifact['artifact_id']}")

    assert deleted.status == 200  # the file is gone for every reader: its record and summary went first
    assert api("GET", f"/tasks/{task_id}/artifacts/{artifact['artifact_id']}").status == 404
    assert list(objects(task_id).values()) == [b"a"]
    assert api("DELETE", f"/tasks/{task_id}").status == 200
    assert objects(task_id) == {}


def test_a_batch_delete_failure_keeps_the_task_and_a_retry_finishes(api, task_id, upload) -> None:
    upload(task_id, "a.txt", b"a")
    for i in range(1001):
        s3().put_object(Bucket=BUCKET, Key=f"tasks/{task_id}/stray/{i}", Body=b"x")
    fail("s3", "DeleteObjects", times=1, after=1)  # the first page goes, the second fails

    failed = api("DELETE", f"/tasks/{task_id}")

    assert failed.status == 500 and error(failed)["details"].keys() == {"operation", "request_id"}
    assert error(failed)["details"]["operation"] == "DeleteObjects"
    assert api("GET", f"/tasks/{task_id}").status == 200
    assert 0 < len(objects(task_id)) < 1002
    assert api("DELETE", f"/tasks/{task_id}").status == 200
    assert objects(task_id) == {}
    assert api("GET", f"/tasks/{task_id}").status == 404


# -- the agent's file operations (agent/files.py calls these) ------------------------------------------------------


def test_agent_writes_reads_and_lists_files(api, task_id, upload) -> None:
    user = upload(task_id, "input.csv", b"a,b", "data/input.csv").json()
    written = artifacts.write_agent_file(task_id, "./out//summary.md", b"# Summary", None, "step-1")
    rewritten = artifacts.write_agent_file(task_id, "out/summary.md", b"# Summary v2", "text/markdown", "step-2")

    assert written["relative_path"] == "out/summary.md" and written["agent_created"] is True
    assert rewritten["artifact_id"] == written["artifact_id"] and rewritten["file_size"] == len(b"# Summary v2")
    assert artifacts.read_task_file(task_id, "out/summary.md") == b"# Summary v2"
    assert artifacts.read_task_file(task_id, "data/input.csv") == b"a,b"
    assert artifacts.list_task_files(task_id) == [user, rewritten]
    assert api("GET", f"/tasks/{task_id}").json()["artifacts"] == [user, rewritten]
    record = items(task_id, f"ARTIFACT#{written['artifact_id']}")[0]
    assert record["step_id"] == {"S": "step-2"} and record["content_type"] == {"S": "text/markdown"}
    url = artifacts.presigned_get_url(task_id, written["artifact_id"])
    assert "response-content-disposition=attachment" in url


def test_agent_file_errors_follow_the_contract(api, task_id) -> None:
    for missing in ("nope.txt", "../../etc/passwd", "a\\b"):
        with pytest.raises(FileNotFoundError):
            artifacts.read_task_file(task_id, missing)
    for bad in ("../escape.txt", "/abs.txt", "folder/"):
        with pytest.raises(InvalidRequest):
            artifacts.write_agent_file(task_id, bad, b"x", None, None)
    with pytest.raises(TaskNotFound):
        artifacts.list_task_files(str(uuid.uuid4()))
    with pytest.raises(ArtifactNotFound):
        artifacts.presigned_get_url(task_id, str(uuid.uuid4()))
    # the allow-list limits what users upload, not what the agent writes
    assert artifacts.write_agent_file(task_id, "build/Makefile", b"all:", None, None)["file_name"] == "Makefile"


# -- the sample events in events/ ----------------------------------------------------------------------------------

EVENTS = ROOT / "events"
NOW = "2024-01-15T10:30:00.000Z"


def invoke(event: dict[str, Any]) -> ProxyResponse:
    """The sample event, to the function the template routes it to."""
    route = next(r for r in TEMPLATE.routes() if (r.method, r.path) == (event["httpMethod"], event["resource"]))
    return parse_response(load_handler(route)(event, LambdaContext()))


def test_every_artifact_route_has_a_sample_event() -> None:
    sampled = {(e["httpMethod"], e["resource"]) for e in (json.loads(p.read_text()) for p in EVENTS.glob("*.json"))}
    routes = [(r.method, r.path) for r in TEMPLATE.routes() if r.function == "ArtifactsFunction" and r.method != "ANY"]

    assert len(routes) == 6 and not [r for r in routes if r not in sampled]  # ANY routes: test_events


def test_sample_upload_then_the_eventbridge_sample_finalizes_a_presigned_upload(api) -> None:
    upload_event = json.loads((EVENTS / "upload_artifact.json").read_text())
    task_id = upload_event["pathParameters"]["task_id"]
    seeded = TaskRecord(task_id, input="x", additional_input={}, status="created", created_at=NOW, modified_at=NOW)
    get_table().create_task(seeded)
    uploaded = invoke(upload_event)
    start_event = json.loads((EVENTS / "start_upload.json").read_text())
    start_event["body"] = json.dumps({**json.loads(start_event["body"]), "file_size": 2048})  # keep the test light
    length = str(len(start_event["body"].encode()))
    start_event["headers"]["Content-Length"] = start_event["multiValueHeaders"]["Content-Length"][0] = length
    ticket = invoke(start_event).json()
    key = ticket["upload"]["fields"]["key"]
    s3().put_object(Bucket=BUCKET, Key=key, Body=b"\0" * ticket["file_size"])
    # the shape S3 sends through EventBridge in AWS (moto's differs in details), with this upload's key
    object_created = json.loads((EVENTS / "eventbridge" / "s3_object_created.json").read_text())
    object_created["detail"]["object"]["key"] = key
    finalizer = next(r for r in event_rules(TEMPLATE) if r.function == "UploadFinalizerFunction")

    result = load_handler(finalizer.route)(object_created, LambdaContext())

    assert uploaded.status == 200 and uploaded.json()["relative_path"] == "data/sales_data.csv"
    assert result == {"finalized": ticket["artifact_id"]}
    listed = api("GET", f"/tasks/{task_id}/artifacts").json()["artifacts"]
    assert [(a["relative_path"], a["file_size"]) for a in listed] == [
        ("data/sales_data.csv", uploaded.json()["file_size"]),
        ("data/sales_2023.parquet", 2048),
    ]


def test_two_files_in_one_upload_are_refused_not_half_kept(api) -> None:
    task_id = api("POST", "/tasks", json_body={"input": "x"}).json()["task_id"]
    body = b""
    for name in ("a.txt", "b.txt"):
        body += f'--b\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n{name}\r\n'.encode()
    body += b"--b--\r\n"

    response = api(
        "POST", f"/tasks/{task_id}/artifacts", body=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )

    assert response.status == 400 and response.json()["error"]["details"]["field"] == "file"
    assert api("GET", f"/tasks/{task_id}/artifacts").json()["artifacts"] == []
