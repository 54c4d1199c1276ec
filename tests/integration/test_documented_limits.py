"""The README's numbers, with no setting overridden, held at their boundaries through the handlers (and CORS on the
answers a browser most needs to read). A change to any default must change the README and this file together."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import boto3
import pytest
from starlette.testclient import TestClient

from agent_core.config import get_settings
from devserver.gateway import Gateway
from devserver.template import Template
from tests.fake_model import completion

TEMPLATE = Template()
ORIGIN = {"Origin": "https://app.example"}


def test_the_defaults_are_the_readmes() -> None:
    s = get_settings()

    assert s.max_json_body_bytes == 512 * 1024 and s.max_input_chars == 65_536
    assert s.max_additional_input_bytes == 65_536 and s.max_page_size == 100
    assert s.max_upload_body_bytes == 4_500_000 and s.max_file_bytes == 100 * 2**20
    assert s.max_artifacts_per_task == 100 and s.upload_url_ttl_s == 3600 and s.download_url_ttl_s == 300
    assert (s.sandbox_timeout_s, s.sandbox_memory_mb, s.sandbox_max_file_bytes) == (20, 512, 4 * 2**20)
    assert TEMPLATE.parameter_default("RateLimitPerMinute") == 100


def test_the_per_client_limit_is_the_same_100_a_minute_everywhere() -> None:
    acl = TEMPLATE.resources["RateLimitAcl"]["Properties"]["Rules"][0]["Statement"]["RateBasedStatement"]
    plan = TEMPLATE.resources["UsagePlan"]["Properties"]["Throttle"]

    assert acl["Limit"] == {"Ref": "RateLimitPerMinute"} and acl["EvaluationWindowSec"] == 60
    assert plan["RateLimit"] == pytest.approx(100 / 60, abs=0.01)


def test_a_json_body_of_exactly_the_limit_is_taken(api) -> None:
    body = json.dumps({"input": "x"}).encode()
    padded = body + b" " * (get_settings().max_json_body_bytes - len(body))

    response = api("POST", "/tasks", body=padded, headers={"content-type": "application/json"})

    assert len(padded) == 512 * 1024 and response.status == 200


def test_a_presigned_upload_of_exactly_100_mib_is_taken_and_one_byte_more_refused(api) -> None:
    task_id = api("POST", "/tasks", json_body={"input": "x"}).json()["task_id"]
    path = f"/tasks/{task_id}/artifacts/uploads"

    at = api("POST", path, json_body={"file_name": "a.bin", "file_size": 100 * 2**20})
    over = api("POST", path, json_body={"file_name": "b.bin", "file_size": 100 * 2**20 + 1})

    assert at.status == 200 and over.status in (400, 413)
    policy = json.loads(base64.b64decode(at.json()["upload"]["fields"]["policy"]))
    expires = time.mktime(time.strptime(policy["expiration"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert 3600 - 120 < expires - time.time() <= 3600 + 5  # the upload URL's lifetime


def test_a_task_holds_100_files_and_the_101st_is_refused(api) -> None:
    task_id = api("POST", "/tasks", json_body={"input": "x"}).json()["task_id"]

    def upload(name: str) -> Any:
        body = f'--b\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\nx\r\n--b--\r\n'
        headers = {"content-type": "multipart/form-data; boundary=b"}
        return api("POST", f"/tasks/{task_id}/artifacts", body=body.encode(), headers=headers)

    for i in range(100):
        assert upload(f"{i}.txt").status == 200
    refused = upload("100.txt")

    assert refused.status == 429 and refused.json()["error"]["code"] == "INSUFFICIENT_RESOURCES"


def test_idempotency_records_last_24_hours(api) -> None:
    api("POST", "/tasks", json_body={"input": "x"}, headers={"Idempotency-Key": "k-24h"})
    items = boto3.client("dynamodb").query(
        TableName=get_settings().table_name,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": "IDEMPOTENCY"}},
    )["Items"]

    assert len(items) == 1
    expiry = int(items[0]["expires_at"]["N"])  # the table's TTL attribute
    assert abs(expiry - time.time() - 24 * 3600) < 120


@pytest.mark.parametrize(("spent", "status"), [(0.999999, 200), (1.0, 429)])
def test_the_budget_refuses_steps_once_spent_and_not_before(
    api, model_api, monkeypatch: pytest.MonkeyPatch, spent: float, status: int
) -> None:
    from decimal import Decimal

    monkeypatch.setenv("OPENAI_BUDGET_USD", "1")
    get_settings.cache_clear()
    model_api.side_effect = [completion({"content": "ok"})]
    task_id = api("POST", "/tasks", json_body={"input": "x"}).json()["task_id"]
    table = boto3.resource("dynamodb").Table(get_settings().table_name)
    table.update_item(
        Key={"PK": "AGENT", "SK": "COUNTERS"}, UpdateExpression="SET cost_usd_total = :c",
        ExpressionAttributeValues={":c": Decimal(str(spent))},
    )  # fmt: skip

    response = api("POST", f"/tasks/{task_id}/steps")

    assert response.status == status


def test_browsers_can_read_a_redirect_a_413_and_a_429(aws_mock: None) -> None:
    gateway = Gateway(TEMPLATE, rate_limit_per_minute=5)
    client = TestClient(gateway, base_url="http://testserver/ap/v1/agent", client=("198.51.100.20", 5000))
    try:
        task_id = client.post("/tasks", json={"input": "x"}, headers=ORIGIN).json()["task_id"]
        artifact = client.post(
            f"/tasks/{task_id}/artifacts", files={"file": ("a.txt", b"hello")}, headers=ORIGIN
        ).json()["artifact_id"]
        redirect = client.get(f"/tasks/{task_id}/artifacts/{artifact}", headers=ORIGIN, follow_redirects=False)
        too_large = client.post(
            f"/tasks/{task_id}/artifacts", files={"file": ("big.bin", b"0" * 4_600_000)}, headers=ORIGIN
        )
        limited: Any = None
        for _ in range(5):
            limited = client.get("/tasks", headers=ORIGIN)
    finally:
        gateway.pool.shutdown(wait=True)

    assert redirect.status_code == 307 and redirect.headers["access-control-allow-origin"] == "*"
    assert "Location" in redirect.headers["access-control-expose-headers"]
    assert too_large.status_code == 413 and too_large.headers["access-control-allow-origin"] == "*"
    assert limited.status_code == 429 and limited.headers["access-control-allow-origin"] == "*"
    assert "Retry-After" in limited.headers["access-control-expose-headers"]


def test_the_readme_states_these_numbers() -> None:
    root = Template().path.parent
    readme = "\n".join(p.read_text() for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))])

    for figure in ("512 KiB", "65,536 characters", "64 KiB of JSON", "4,500,000 bytes", "100 MiB", "100 a minute",
                   "3600 s", "300 s", "20, 512", "64 KiB, 4 MiB"):  # fmt: skip
        assert figure in readme, figure
