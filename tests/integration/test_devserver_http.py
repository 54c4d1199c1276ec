"""The Task API over HTTP, through the dev server's emulated API Gateway (the session's `live_server`), and the
gateway's own answers: unknown routes, oversized requests and rate limiting, from template.yaml's GatewayResponses."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from urllib.parse import urljoin, urlparse

import httpx
import pytest
from starlette.testclient import TestClient

from agent_core.config import get_settings
from devserver import apigw
from devserver.gateway import Gateway
from devserver.template import Template

pytestmark = pytest.mark.http
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code
    return dict(body["error"])


def test_task_lifecycle_over_http(http: httpx.Client) -> None:
    # Create
    created = http.post("/tasks", json={"input": "分析销售数据", "additional_input": {"priority": "high"}})
    assert created.status_code == 200
    task = created.json()
    assert task["status"] == "created" and task["artifacts"] == []
    assert str(uuid.UUID(task["task_id"])) == task["task_id"]
    assert ISO_Z.match(task["created_at"]) and ISO_Z.match(task["modified_at"])
    # Get
    assert http.get(f"/tasks/{task['task_id']}").json() == task
    # List (only what was created since this task)
    since = (datetime.fromisoformat(task["created_at"]) - timedelta(milliseconds=1)).isoformat()
    listed = http.get("/tasks", params={"created_after": since}).json()
    assert [t["task_id"] for t in listed["tasks"]] == [task["task_id"]]
    # Delete, then it is gone
    deleted = http.delete(f"/tasks/{task['task_id']}")
    assert deleted.status_code == 200 and deleted.json()["success"] is True
    _error(http.get(f"/tasks/{task['task_id']}"), 404, "TASK_NOT_FOUND")
    _error(http.delete(f"/tasks/{task['task_id']}"), 404, "TASK_NOT_FOUND")


def test_list_tasks_over_http_speaks_both_pagination_dialects(http: httpx.Client) -> None:
    # Given three tasks created after a moment no other task shares
    first = http.post("/tasks", json={"input": "p0"}).json()
    for i in (1, 2):
        http.post("/tasks", json={"input": f"p{i}"})
    since = (datetime.fromisoformat(first["created_at"]) - timedelta(milliseconds=1)).isoformat()
    # When page 2 of size 2 is asked for both ways
    spec = http.get("/tasks", params={"created_after": since, "page": 2, "size": 2}).json()
    agent_protocol = http.get("/tasks", params={"created_after": since, "current_page": 2, "page_size": 2}).json()
    # Then both get the oldest task and the same pagination, under both sets of keys
    assert [t["input"] for t in spec["tasks"]] == [t["input"] for t in agent_protocol["tasks"]] == ["p0"]
    assert spec["pagination"] == agent_protocol["pagination"]
    assert spec["pagination"] == {
        "page": 2,
        "size": 2,
        "total": 3,
        "pages": 2,
        "current_page": 2,
        "page_size": 2,
        "total_items": 3,
        "total_pages": 2,
    }


def test_list_tasks_over_http_page_past_the_end_is_empty(http: httpx.Client) -> None:
    http.post("/tasks", json={"input": "at least one"})
    body = http.get("/tasks", params={"page": 10_000, "size": 100}).json()
    assert body["tasks"] == []
    assert body["pagination"]["total"] >= 1 and body["pagination"]["page"] == 10_000


@pytest.mark.parametrize(
    "query", ["size=0", "size=101", "page=0", "page=abc", "status=bogus", "created_after=soon", "created_after=0.5"]
)
def test_list_tasks_over_http_bad_query_is_400(http: httpx.Client, query: str) -> None:
    _error(http.get(f"/tasks?{query}"), 400, "INVALID_REQUEST")


def test_create_task_over_http_malformed_json_is_400(http: httpx.Client) -> None:
    response = http.post("/tasks", content=b"{not json", headers={"content-type": "application/json"})
    assert _error(response, 400, "INVALID_REQUEST")["details"]["field"] == "body"


def test_get_task_over_http_speaks_chinese_when_asked(http: httpx.Client) -> None:
    response = http.get(f"/tasks/{uuid.uuid4()}", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert _error(response, 404, "TASK_NOT_FOUND")["message"] == "指定的任务不存在"


def test_create_task_over_http_body_over_the_limit_is_413(http: httpx.Client) -> None:
    response = http.post("/tasks", json={"input": "x" * (get_settings().max_json_body_bytes + 1)})
    _error(response, 413, "PAYLOAD_TOO_LARGE")


def test_create_task_over_http_chunked_body_over_the_limit_is_413(http: httpx.Client) -> None:
    # Given a body sent in chunks, without Content-Length
    def chunks() -> Iterator[bytes]:
        yield b'{"input": "x"'
        for _ in range(5):
            yield b" " * (get_settings().max_json_body_bytes // 4)
        yield b"}"

    response = http.post("/tasks", content=chunks(), headers={"content-type": "application/json"})
    _error(response, 413, "PAYLOAD_TOO_LARGE")


def test_gateway_body_over_the_lambda_payload_limit_is_413(http: httpx.Client) -> None:
    response = http.post("/tasks", content=b"x" * apigw.LAMBDA_PAYLOAD_LIMIT, headers={"content-type": "text/plain"})
    _error(response, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/no-such-route"), ("GET", "/tasks/x/y/z"), ("POST", "/no-such-route")],
)
def test_gateway_unknown_route_is_404_envelope(http: httpx.Client, method: str, path: str) -> None:
    # When no route of template.yaml matches the path (a wrong method on a known path is a 405: below)
    response = http.request(method, path)
    # Then the gateway answers its MISSING_AUTHENTICATION_TOKEN response, in the spec's envelope
    error = _error(response, 404, "INVALID_REQUEST")
    assert error["details"]["method"] == method
    assert error["details"]["path"] == f"/ap/v1/agent{path}"
    assert uuid.UUID(error["details"]["request_id"])


def test_a_trailing_slash_reaches_the_function_as_on_api_gateway_and_is_no_route_of_it(http: httpx.Client) -> None:
    # API Gateway's REST APIs route /tasks/ to the /tasks resource; the function has no such path (and no redirect,
    # whose Location would miss the stage's prefix)
    response = http.get("/tasks/")
    error = _error(response, 404, "INVALID_REQUEST")
    assert error["details"]["path"] == "/ap/v1/agent/tasks/" and "location" not in response.headers


def test_gateway_unknown_route_outside_the_base_path_is_404_envelope(live_server: str) -> None:
    response = httpx.get(live_server.split("/ap/v1/agent")[0] + "/")
    _error(response, 404, "INVALID_REQUEST")


# -- rate limiting: a gateway of our own with a small limit ------------------------------------------------------


@pytest.fixture
def limited_gateway(aws_mock: None) -> Iterator[Gateway]:
    gateway = Gateway(Template(), rate_limit_per_minute=3)
    yield gateway
    gateway.pool.shutdown(wait=True)


def test_gateway_over_the_rate_limit_is_429_with_retry_after(limited_gateway: Gateway) -> None:
    client = TestClient(limited_gateway, base_url="http://testserver/ap/v1/agent", client=("198.51.100.7", 5000))
    # Given the limit's three requests, all served
    assert client.post("/tasks", json={"input": "one"}).status_code == 200
    assert client.get("/tasks").status_code == 200
    assert client.get(f"/tasks/{uuid.uuid4()}").status_code == 404
    # When a fourth comes in the same minute
    response = client.get("/tasks")
    # Then the gateway's THROTTLED response answers it, and says when to retry
    assert response.status_code == 429
    assert response.headers["retry-after"] == "60"
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "RATE_LIMITED"


def test_gateway_rate_limit_is_per_client(limited_gateway: Gateway) -> None:
    busy = TestClient(limited_gateway, base_url="http://testserver/ap/v1/agent", client=("198.51.100.7", 5000))
    other = TestClient(limited_gateway, base_url="http://testserver/ap/v1/agent", client=("198.51.100.8", 5000))
    for _ in range(3):
        busy.get("/tasks")
    assert busy.get("/tasks").status_code == 429
    assert other.get("/tasks").status_code == 200


def test_gateway_rate_limit_counts_refused_requests_too(limited_gateway: Gateway) -> None:
    client = TestClient(limited_gateway, base_url="http://testserver/ap/v1/agent", client=("198.51.100.9", 5000))
    for _ in range(3):
        assert client.get("/no-such-route").status_code == 404
    assert client.get("/tasks").status_code == 429


def test_delete_answers_in_the_callers_language(http) -> None:
    task_id = http.post("/tasks", json={"input": "bye"}).json()["task_id"]
    response = http.delete(f"/tasks/{task_id}", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert response.json() == {"success": True, "message": "任务已成功删除"}


def test_browser_preflight_and_answers_carry_cors_headers(http: httpx.Client) -> None:
    origin = {"Origin": "https://app.example"}
    preflight = http.options(
        "/tasks",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,idempotency-key",
        },
    )
    created = http.post("/tasks", json={"input": "from a browser"}, headers=origin)
    unknown_route = http.get("/nope", headers=origin)
    too_large = http.post("/tasks", content=b"x" * (600 * 1024), headers={**origin, "Content-Type": "application/json"})

    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "Idempotency-Key" in preflight.headers["access-control-allow-headers"]
    for response in (preflight, created, unknown_route, too_large):
        assert response.headers.get("access-control-allow-origin") == "*", response
    assert (created.status_code, unknown_route.status_code, too_large.status_code) == (200, 404, 413)


def test_conditional_gets_over_http(http: httpx.Client) -> None:
    origin = {"Origin": "https://app.example"}
    task_id = http.post("/tasks", json={"input": "poll me"}).json()["task_id"]
    first = http.get(f"/tasks/{task_id}", headers=origin)
    etag = first.headers["etag"]
    preflight = http.options(
        f"/tasks/{task_id}",
        headers={**origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "if-none-match"},
    )

    unchanged = http.get(f"/tasks/{task_id}", headers={**origin, "If-None-Match": etag})
    http.post(f"/tasks/{task_id}/steps", json={"input": "go"})
    changed = http.get(f"/tasks/{task_id}", headers={"If-None-Match": etag})

    assert "ETag" in first.headers["access-control-expose-headers"]  # a page can read it
    assert "If-None-Match" in preflight.headers["access-control-allow-headers"]  # and send it back
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == etag
    assert changed.status_code == 200 and changed.headers["etag"] != etag and changed.json()["status"] == "running"


def test_a_taken_port_is_said_before_anything_starts() -> None:
    import subprocess
    import sys

    from devserver.template import ROOT

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "devserver", "--port", str(port)], cwd=ROOT, capture_output=True, text=True,
            timeout=30,
        )  # fmt: skip

    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is not free" in done.stderr and f"PORT={port + 1} make dev" in done.stderr
    assert "Agent Protocol API" not in done.stdout  # no ready line before the failure


# -- what the gateway answers itself ----------------------------------------------------------------------------------


@pytest.fixture
def gateway_client(aws_mock: None) -> Iterator[TestClient]:
    gateway = Gateway(Template(), rate_limit_per_minute=2)
    yield TestClient(gateway, base_url="http://testserver/ap/v1/agent", client=("198.51.100.9", 5000))
    gateway.pool.shutdown(wait=True)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/tasks", "GET, HEAD, OPTIONS, POST"),
        ("DELETE", f"/tasks/{uuid.uuid4()}/steps", "GET, HEAD, OPTIONS, POST"),
        ("PATCH", f"/tasks/{uuid.uuid4()}", "DELETE, GET, HEAD, OPTIONS"),
    ],
)
def test_a_wrong_method_is_405_with_allow(gateway_client: TestClient, method: str, path: str, allow: str) -> None:
    response = gateway_client.request(method, path, headers={"Accept-Language": "zh"})

    assert response.status_code == 405 and response.headers["allow"] == allow
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
    assert response.json()["message"] == "该接口不支持此请求方法"


def test_head_answers_as_get_without_a_body(gateway_client: TestClient) -> None:
    response = gateway_client.head("/tasks")

    assert response.status_code == 200 and response.content == b""
    assert int(response.headers["content-length"]) > 0


def test_gateway_errors_speak_chinese_when_asked(gateway_client: TestClient) -> None:
    missing = gateway_client.get("/no-such-thing", headers={"Accept-Language": "zh-CN"})
    for _ in range(3):
        limited = gateway_client.get("/tasks", headers={"Accept-Language": "zh", "Origin": "https://app.example"})

    assert missing.status_code == 404 and missing.json()["message"] == "接口不存在"
    assert limited.status_code == 429 and limited.json()["error"]["message"] == "请求过于频繁"
    assert "Retry-After" in limited.headers["access-control-expose-headers"]


def test_a_multipart_over_the_limit_is_refused_as_the_waf_does(gateway_client: TestClient) -> None:
    task_id = gateway_client.post("/tasks", json={"input": "x"}).json()["task_id"]

    response = gateway_client.post(f"/tasks/{task_id}/artifacts", files={"file": ("big.bin", b"0" * 4_600_000)})

    assert response.status_code == 413
    assert response.json()["error"]["details"]["limit_bytes"] == 4_500_000


def test_the_whole_apis_openapi_document_and_docs_are_served(http: httpx.Client) -> None:
    document = http.get("/openapi.json")
    docs = http.get("/docs")

    assert document.status_code == 200 and document.json()["openapi"].startswith("3.")
    paths = document.json()["paths"]
    assert {
        "/ap/v1/agent/tasks",
        "/ap/v1/agent/tasks/{task_id}/steps",
        "/ap/v1/agent/tasks/{task_id}/artifacts",
    } <= set(paths)
    step_post = paths["/ap/v1/agent/tasks/{task_id}/steps"]["post"]["responses"]
    assert {"200", "400", "404", "409", "429", "502"} <= set(step_post) and "422" not in step_post
    assert docs.status_code == 200 and b"openapi.json" in docs.content


def test_the_documents_server_is_the_api_that_served_it(live_server: str) -> None:
    # Given the document as a client fetches it, from the dev server on its own (random) port
    doc_url = f"{live_server}/openapi.json"
    document = httpx.get(doc_url, timeout=30).json()
    server = document["servers"][0]["url"]
    list_path = next(path for path in document["paths"] if path.endswith("/tasks"))
    # When its server is resolved against the document's URL, as OpenAPI and Swagger UI say, and joined with a path
    target = urljoin(doc_url, server).rstrip("/") + list_path
    # Then that is this server's list of tasks, and would be a deployed stage's under its prefix
    assert "localhost:8000" not in server
    assert httpx.get(target, timeout=30).status_code == 200, target
    stage = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/prod"
    on_aws = f"{stage}{list_path.removesuffix('/tasks')}/openapi.json"
    assert urljoin(on_aws, server).rstrip("/") + list_path == stage + list_path


def _references(page: str) -> list[str]:
    """What an HTML page makes a browser fetch: its src and href attributes, and any other http(s) URL in it."""
    found = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page)
    return found + [u for u in re.findall(r"https?://[^\s\"'<>)]+", page) if u not in found]


def test_docs_load_swagger_ui_from_the_api_itself(live_server: str) -> None:
    # Given the docs page
    docs_url = f"{live_server}/docs"
    page = httpx.get(docs_url, timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    # Then everything it references is on this host (no CDN: the page works offline), and each asset is there
    references = [r for r in _references(page.text) if not r.startswith("data:")]
    assert {urlparse(urljoin(docs_url, r)).netloc for r in references} == {urlparse(live_server).netloc}, references
    assets = {urlparse(r).path.rsplit("/", 1)[-1]: urljoin(docs_url, r) for r in references}
    assert set(assets) == {"swagger-ui-bundle.js", "swagger-ui.css"}
    for name, kind in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css")):
        asset = httpx.get(assets[name], timeout=30)
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind), (name, asset.headers)
        assert "max-age=31536000" in asset.headers["cache-control"] and len(asset.content) > 10_000
    assert "SwaggerUIBundle" in httpx.get(assets["swagger-ui-bundle.js"], timeout=30).text
    assert "validatorUrl" in page.text  # Swagger UI would otherwise send the document to validator.swagger.io
    missing = httpx.get(f"{live_server}/docs/assets/nothing.js", timeout=30)
    assert missing.status_code == 404 and missing.json()["success"] is False


def test_the_committed_openapi_document_is_current() -> None:
    import subprocess
    import sys

    from devserver.template import ROOT

    done = subprocess.run([sys.executable, "scripts/openapi.py", "--check"], cwd=ROOT, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
