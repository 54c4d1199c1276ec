"""The dev server with keys required (`AUTH=keys ADMIN_API_KEY=...`), over raw HTTP and WebSocket as any client
speaks to it: 401 in the spec's envelope (English or Chinese) without a valid key; the docs and CORS preflights open;
the WebSocket handshake takes `?token=`; the rate limit is each client's own; and no key is ever written to the
server's output. Each server is started here on a free port (never 8000), with its own environment."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from devserver.resources import free_port
from tests.waiting import wait_until

pytestmark = [pytest.mark.http, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]
API = "/ap/v1/agent"
REFUSED_INPUT = "made with a wrong key"
CHINESE = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class Server:
    base: str  # http://127.0.0.1:<port>
    operator_key: str
    log: Path

    @property
    def api(self) -> str:
        return f"{self.base}{API}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def new_key(self, name: str) -> tuple[str, str]:
        """A client key made by the operator: (its id, its secret)."""
        made = httpx.post(f"{self.api}/keys", json={"name": name}, headers=bearer(self.operator_key), timeout=30)
        assert made.status_code == 201, made.text
        return made.json()["key_id"], made.json()["api_key"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _start(tmp_path_factory: pytest.TempPathFactory, name: str, rate_limit: int) -> Iterator[Server]:
    """`python -m devserver` with AUTH=keys on a free port, its output in a file, ready when the (open) OpenAPI
    document answers; its process group is ended at the end."""
    port = free_port()
    operator_key = "adm-" + secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENAI_", "POWERTOOLS_"))}
    env.update(
        AUTH="keys",
        ADMIN_API_KEY=operator_key,
        RATE_LIMIT_PER_MINUTE=str(rate_limit),
        PYTHONUNBUFFERED="1",
        POWERTOOLS_LOG_LEVEL="DEBUG",  # everything the functions and the authorizer log, for the leak checks
    )
    log = tmp_path_factory.mktemp(name) / "output.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devserver", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", operator_key, log)
    deadline, last = time.monotonic() + 60, "no answer"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dev server exited: {server.output()[-3000:]}")
            try:
                answer = httpx.get(f"{server.api}/openapi.json", timeout=5)
                if answer.status_code == 200:
                    break
                last = f"{answer.status_code} {answer.text[:500]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise RuntimeError(f"dev server not ready in 60 s: {last}\n{server.output()[-3000:]}")
            time.sleep(0.2)  # polling the server's start, bounded by the deadline above
        yield server
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _start(tmp_path_factory, "devserver-keys", rate_limit=0)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Another server, with a limit of 20 requests a minute per client."""
    yield from _start(tmp_path_factory, "devserver-keys-limited", rate_limit=20)


def _unauthorized(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 401, answer.text
    body = answer.json()
    assert body["success"] is False and body["error"]["code"] == "UNAUTHORIZED"
    assert body["message"] == body["error"]["message"]
    assert body["error"]["details"]["request_id"]
    assert answer.headers["www-authenticate"] == "Bearer"
    return body["error"]


def test_no_key_a_wrong_key_or_a_revoked_key_is_401_in_the_envelope(server: Server) -> None:
    key_id, key = server.new_key("soon-revoked")
    with httpx.Client(base_url=server.api, timeout=30) as http:
        assert http.get("/tasks", headers=bearer(key)).status_code == 200
        revoked = http.delete(f"/keys/{key_id}", headers=bearer(server.operator_key))
        answers = {
            "none": http.get("/tasks"),
            "wrong": http.get("/tasks", headers=bearer("agk_0123456789abcdef_wrong")),
            "wrong x-api-key": http.get("/status", headers={"x-api-key": "not-a-key"}),
            "almost the operator's": http.post(
                "/tasks", json={"input": REFUSED_INPUT}, headers=bearer(server.operator_key + "x")
            ),
            "revoked": http.get("/tasks", headers=bearer(key)),
            "in the URL only": http.get("/tasks", params={"token": server.operator_key}),
        }
        chinese = http.get("/tasks", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        revoked_zh = http.get("/tasks", headers={**bearer(key), "Accept-Language": "zh"})
        unknown_task = http.get("/tasks/00000000-0000-4000-8000-000000000000")  # 401 before anything is looked up

    assert revoked.status_code == 200, revoked.text
    english = {name: _unauthorized(answer) for name, answer in answers.items()}
    assert {e["message"] for e in english.values()} == {"A valid API key is required"}
    for answer in (chinese, revoked_zh):
        error = _unauthorized(answer)
        assert CHINESE.search(error["message"]) and error["message"] != "A valid API key is required"
    assert _unauthorized(unknown_task)
    # The operator's list shows nothing was created by the refused POST
    listed = httpx.get(f"{server.api}/tasks", params={"size": 100}, headers=bearer(server.operator_key), timeout=30)
    assert listed.json()["pagination"]["total"] < 100
    assert REFUSED_INPUT not in {t["input"] for t in listed.json()["tasks"]}


def test_the_docs_and_cors_preflights_need_no_key(server: Server) -> None:
    with httpx.Client(base_url=server.api, timeout=30) as http:
        spec = http.get("/openapi.json")
        docs = http.get("/docs")
        preflight = http.options(
            "/tasks",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        task_preflight = http.options(
            "/tasks/00000000-0000-4000-8000-000000000000/steps",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )

    assert spec.status_code == 200 and spec.json()["paths"]
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    for answer in (preflight, task_preflight):
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"]
        assert "authorization" in answer.headers["access-control-allow-headers"].lower()


def _ws_url(server: Server, path: str, **query: str) -> str:
    url = server.base.replace("http://", "ws://") + API + path
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _handshake_refused(url: str, headers: dict[str, str] | None = None) -> int:
    """The status the handshake was refused with (AssertionError when it was accepted)."""
    try:
        with connect(url, additional_headers=headers, open_timeout=30):
            pass
    except InvalidStatus as exc:
        return int(exc.response.status_code)
    raise AssertionError(f"the handshake to {url} was accepted")


def test_a_websocket_handshake_takes_the_key_as_token(server: Server) -> None:
    _, alice = server.new_key("alice-ws")
    _, bob = server.new_key("bob-ws")
    created = httpx.post(f"{server.api}/tasks", json={"input": "watch me"}, headers=bearer(alice), timeout=30)
    task_id = created.json()["task_id"]
    path = f"/tasks/{task_id}/ws"

    without = _handshake_refused(_ws_url(server, path))
    wrong = _handshake_refused(_ws_url(server, path, token="agk_0123456789abcdef_wrong"))
    other_client = _handshake_refused(_ws_url(server, path, token=bob))  # bob's key, alice's task
    logs_without = _handshake_refused(_ws_url(server, "/logs/ws"))
    with connect(_ws_url(server, path, token=alice), open_timeout=30) as ws:
        first = json.loads(ws.recv(timeout=30))
    with connect(_ws_url(server, path), additional_headers=bearer(alice), open_timeout=30) as ws:
        by_header = json.loads(ws.recv(timeout=30))
    with connect(_ws_url(server, path, token=server.operator_key), open_timeout=30) as ws:
        by_operator = json.loads(ws.recv(timeout=30))

    assert (without, wrong, logs_without) == (401, 401, 401)
    assert other_client in (403, 404)  # the function refused $connect: the task is not bob's (API Gateway: 403)
    for message in (first, by_header, by_operator):
        assert message["task_id"] == task_id and message["status"] == "created"


def test_a_clients_rate_limit_is_its_own(limited: Server) -> None:
    _, alice = limited.new_key("alice-rl")
    _, bob = limited.new_key("bob-rl")
    with httpx.Client(base_url=limited.api, timeout=30) as http:
        answers = []
        while not answers or answers[-1].status_code != 429:
            assert len(answers) <= 21, "alice was never throttled"  # 20 a minute, then 429
            answers.append(http.get("/tasks", headers=bearer(alice)))
        alice_again = http.get("/status", headers=bearer(alice))
        bob_answers = [http.get("/tasks", headers=bearer(bob)) for _ in range(5)]
        operator = http.get("/keys", headers=bearer(limited.operator_key))

    assert [a.status_code for a in answers[:-1]] == [200] * (len(answers) - 1) and len(answers) >= 20
    assert answers[-1].json()["error"]["code"] in ("THROTTLED", "TOO_MANY_REQUESTS", "RATE_LIMITED")
    assert alice_again.status_code == 429
    assert [a.status_code for a in bob_answers] == [200] * 5  # alice's requests did not count against bob
    assert operator.status_code == 200


def test_the_server_never_writes_a_key(server: Server) -> None:
    _, key = server.new_key("quiet")
    created = httpx.post(f"{server.api}/tasks", json={"input": "x"}, headers=bearer(key), timeout=30)
    task_id = created.json()["task_id"]
    with connect(_ws_url(server, f"/tasks/{task_id}/ws", token=key), open_timeout=30) as ws:
        assert json.loads(ws.recv(timeout=30))["task_id"] == task_id
    with connect(_ws_url(server, "/logs/ws", token=key), open_timeout=30):
        pass
    with httpx.Client(base_url=server.api, timeout=30) as http:
        # A REST request with the key in its URL (which does not count there) and in its header (which does): it
        # reaches the function, whose access line names the URL
        in_url = http.get("/tasks", params={"token": key, "status": "created"}, headers=bearer(key))
        only_in_url = http.get(f"/tasks/{task_id}", params={"token": key})
        refused = http.get("/tasks", headers=bearer(key + "-wrong"))
        last = http.get(f"/tasks/{task_id}/steps", params={"token": "marker-value"}, headers=bearer(key))

    assert in_url.status_code == 200 and task_id in {t["task_id"] for t in in_url.json()["tasks"]}
    assert (only_in_url.status_code, refused.status_code, last.status_code) == (401, 401, 200)
    # The output is written as it happens (PYTHONUNBUFFERED): the last request's access line says it all has been
    last_line = f"GET {API}/tasks/{task_id}/steps 200"
    output = wait_until(
        lambda: next((text for text in [server.output()] if last_line in text), None),
        timeout_s=30,
        what="the server's access line for the last request",
    )
    for secret in (key, key.split("_", 2)[2], server.operator_key, key + "-wrong"):  # agk_<id>_<secret>
        assert secret not in output
    assert "marker-value" not in output  # a token's value, whatever it is, is not written
