"""The Python client (clients/python) against the dev server over HTTP, its retry rules against a scripted
transport, and the `autogpt` command line."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from autogpt_client import ApiKey, AsyncAutoGPTClient, AutoGPTClient, CreatedKey, errors
from autogpt_client.cli import app
from tests.client.scripted import ScriptedSocket

pytestmark = pytest.mark.http
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(live_server: str) -> AutoGPTClient:
    return AutoGPTClient(base_url=live_server.removesuffix("/ap/v1/agent"))


def test_the_specs_sdk_example_and_the_rest_of_the_task_api(client: AutoGPTClient, tmp_path: Path) -> None:
    task = client.create_task(input="分析销售数据", additional_input={"priority": "high"})
    step = client.execute_step(task_id=task.task_id, input="开始分析")
    small = tmp_path / "sales.csv"
    small.write_text("m,a\nJan,1\n")
    large = tmp_path / "big.csv"
    large.write_bytes(b"x,y\n" + b"1,2\n" * 1_200_000)  # over the API's multipart limit: straight to S3
    seen: list[tuple[int, int]] = []

    up = client.upload_artifact(task.task_id, str(small), relative_path="data/sales.csv")
    big = client.upload_artifact(task.task_id, str(large), progress=lambda done, total: seen.append((done, total)))
    files = client.get_artifacts(task.task_id)
    client.download_artifact(task.task_id, big.artifact_id, save_to=str(tmp_path / "back.csv"))

    assert step.task_id == task.task_id and step.status == "completed"
    assert (up.relative_path, big.file_size) == ("data/sales.csv", large.stat().st_size)
    assert seen[-1] == (large.stat().st_size, large.stat().st_size)
    assert {a.file_name for a in files} == {"sales.csv", "big.csv"}
    assert client.download_artifact(task.task_id, up.artifact_id) == b"m,a\nJan,1\n"
    assert (tmp_path / "back.csv").read_bytes() == large.read_bytes()
    assert [s.step_id for s in client.list_steps(task.task_id).steps] == [step.step_id]
    assert client.get_step(task.task_id, step.step_id).name == step.name
    assert client.delete_artifact(task.task_id, up.artifact_id).success
    with pytest.raises(errors.TaskNotFound) as missing:
        client.get_task("00000000-0000-4000-8000-000000000000")
    assert (missing.value.code, missing.value.status) == ("TASK_NOT_FOUND", 404)
    assert missing.value.details["task_id"] == "00000000-0000-4000-8000-000000000000"
    assert client.delete_task(task.task_id).success
    assert client.status().version == "0.5.1"


def test_runs_and_live_status(client: AutoGPTClient) -> None:
    task = client.create_task(input="Summarise")
    watched = client.create_task(input="Summarise")

    run = client.run_task(task.task_id, poll_s=0.2)
    client.start_run(watched.task_id)
    updates = list(client.watch_task(watched.task_id))

    assert run.status == "completed" and run.steps and run.steps >= 2
    assert updates[-1]["status"] == "completed" and updates[-1]["progress"] == 1.0
    with pytest.raises(errors.InvalidRequest):
        client.cancel_task(task.task_id)  # no run in progress


def test_reads_asked_again_are_revalidated(client: AutoGPTClient) -> None:
    statuses: list[int] = []
    client.http.event_hooks["response"].append(lambda response: statuses.append(response.status_code))
    task = client.create_task(input="poll me")

    first, again = client.get_task(task.task_id), client.get_task(task.task_id)
    client.execute_step(task_id=task.task_id, input="go")
    changed = client.get_task(task.task_id)
    steps = [client.list_steps(task.task_id) for _ in range(2)]

    assert statuses == [200, 200, 304, 200, 200, 200, 304]
    assert again == first and changed.status == "running" != first.status
    assert steps[0] == steps[1] and len(steps[1].steps) == 1


def test_the_async_client_does_the_same(live_server: str) -> None:
    async def scenario() -> tuple[Any, list[str], Any]:
        async with AsyncAutoGPTClient(base_url=live_server) as client:
            task = await client.create_task(input="Summarise")
            run = await client.run_task(task.task_id, poll_s=0.2)
            listed = [t.task_id async for t in client.iter_tasks(size=2)]
            try:
                await client.get_step(task.task_id, "00000000-0000-4000-8000-000000000000")
            except errors.StepNotFound as exc:
                return run, listed, exc
            return run, listed, None

    loop = asyncio.new_event_loop()
    try:
        run, listed, missing = loop.run_until_complete(scenario())
    finally:
        loop.close()

    assert run.status == "completed"
    assert run.task_id in listed and len(listed) == len(set(listed))
    assert isinstance(missing, errors.StepNotFound) and missing.code == "STEP_NOT_FOUND"


def scripted(*answers: Any, api_key: str | None = None) -> tuple[AutoGPTClient, list[httpx.Request]]:
    """A client whose transport answers from a script (a status and JSON, or an exception to raise)."""
    seen: list[httpx.Request] = []
    pending = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body, headers = pending.pop(0)
        if isinstance(status, Exception):
            raise status
        return httpx.Response(status, json=body, headers=headers)

    client = AutoGPTClient(base_url="http://agent.test", max_retries=3, api_key=api_key)
    client.http = httpx.Client(transport=httpx.MockTransport(answer))
    return client, seen


TASK = {"task_id": "t1", "input": "x", "status": "created", "created_at": "a", "modified_at": "a"}


def envelope(code: str) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": code.lower(), "details": {}}}


def test_a_rate_limited_call_is_tried_again_after_retry_after() -> None:
    client, seen = scripted((429, envelope("RATE_LIMITED"), {"Retry-After": "0"}), (200, TASK, {}))

    task = client.create_task("x")

    assert task.task_id == "t1" and len(seen) == 2
    # The retry is the same request: the same Idempotency-Key, so the server runs it once
    assert seen[0].headers["Idempotency-Key"] == seen[1].headers["Idempotency-Key"]


def test_what_may_not_be_repeated_is_not() -> None:
    full, seen_full = scripted((429, envelope("INSUFFICIENT_RESOURCES"), {}))
    bad_gateway, seen_run = scripted((502, envelope("OPENAI_API_ERROR"), {}))

    with pytest.raises(errors.InsufficientResources):
        full.create_task("x")
    with pytest.raises(errors.OpenAIAPIError) as failed:
        bad_gateway.start_run("t1")  # a run's start carries no key: not repeated

    assert len(seen_full) == len(seen_run) == 1 and failed.value.status == 502


def test_reads_are_tried_again_after_a_502_or_a_lost_connection() -> None:
    client, seen = scripted(
        (httpx.ConnectError("refused"), None, None), (502, {"message": "Bad Gateway"}, {}), (200, TASK, {})
    )
    down, _ = scripted(*[(httpx.ConnectError("refused"), None, None)] * 4)

    assert client.get_task("t1").task_id == "t1" and len(seen) == 3
    with pytest.raises(errors.ConnectionFailed) as failed:
        down.get_task("t1")
    assert failed.value.code == "CONNECTION_ERROR"


def test_the_command_line(live_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sales.csv").write_text("month,amount\nJan,10\nFeb,32\n")
    runner = CliRunner()
    base = ["--base-url", live_server]

    followed = runner.invoke(app, [*base, "task", "create", "Summarise", "--file", "sales.csv", "--run", "--follow"])
    listed = runner.invoke(app, [*base, "--json", "task", "list", "--size", "100"])
    task_id = json.loads(listed.stdout)["tasks"][0]["task_id"]
    files = json.loads(runner.invoke(app, [*base, "--json", "artifact", "list", task_id]).stdout)
    report = next(f for f in files if f["file_name"] == "report.md")
    saved = runner.invoke(app, [*base, "artifact", "download", task_id, "report.md"])
    by_id = runner.invoke(app, [*base, "artifact", "download", task_id, report["artifact_id"], "-o", "again.md"])
    unknown = runner.invoke(app, [*base, "artifact", "download", task_id, "nothing.md"])
    missing = runner.invoke(app, [*base, "task", "show", "00000000-0000-4000-8000-000000000000"])
    status = runner.invoke(app, [*base, "--json", "status"])
    unreachable = runner.invoke(app, ["--base-url", "http://127.0.0.1:9", "task", "list"])

    assert followed.exit_code == 0 and "completed" in followed.stdout, followed.output
    assert listed.exit_code == 0 and {f["file_name"] for f in files} >= {"sales.csv", "report.md"}
    assert saved.exit_code == 0 and (tmp_path / "report.md").read_text().startswith("#")
    assert by_id.exit_code == 0 and (tmp_path / "again.md").read_text() == (tmp_path / "report.md").read_text()
    assert unknown.exit_code == 3
    assert missing.exit_code == 3 and "TASK_NOT_FOUND" in missing.output
    assert json.loads(status.stdout)["version"] == "0.5.1"
    assert unreachable.exit_code == 7


def test_the_package_installs_with_its_command(tmp_path: Path) -> None:
    target, source = tmp_path / "site", tmp_path / "source"
    shutil.copytree(ROOT / "clients/python", source)  # pip builds in the tree it installs: not in the repository's
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
    subprocess.run([*install, str(source)], check=True, capture_output=True, timeout=300)
    entry = next(target.glob("autogpt_client-*.dist-info")) / "entry_points.txt"
    helped = subprocess.run(
        [sys.executable, "-m", "autogpt_client.cli", "--help"], env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert "autogpt = autogpt_client.cli:main" in entry.read_text()
    assert helped.returncode == 0 and "task" in helped.stdout
    # --json anywhere, as scripts write it (the command itself: main() reads sys.argv)
    late = subprocess.run(
        [sys.executable, "-c", "from autogpt_client.cli import main; main()", "task", "list", "--json"],
        env={**os.environ, "PYTHONPATH": str(target), "AUTOGPT_BASE_URL": "http://127.0.0.1:9"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert late.returncode == 7 and json.loads(late.stdout)["error"]["code"] == "CONNECTION_ERROR"


# -- API keys (issue 21) ------------------------------------------------------------------------------------------

KEY = {
    "key_id": "0123456789abcdef",
    "name": "ci",
    "created_at": "2025-01-01T00:00:00Z",
    "budget_usd": None,
    "revoked_at": None,
}
ARTIFACT = {"artifact_id": "a1", "file_name": "big.bin", "relative_path": "big.bin", "file_size": 4_000_001}


def test_the_key_goes_as_a_bearer_token_to_the_api_and_never_to_s3(tmp_path: Path) -> None:
    large = tmp_path / "big.bin"
    large.write_bytes(b"x" * 4_000_001)  # over the multipart limit: a ticket, a presigned S3 POST, then complete
    ticket = {"artifact_id": "a1", "upload": {"url": "http://s3.test/bucket", "fields": {"key": "k"}}}
    keyed, seen = scripted((200, TASK, {}), (201, ticket, {}), (204, None, {}), (200, ARTIFACT, {}), api_key="sk-1")
    keyless, seen_keyless = scripted((200, TASK, {}))

    keyed.get_task("t1")
    keyed.upload_artifact("t1", str(large))
    keyless.get_task("t1")

    assert [r.url.host for r in seen] == ["agent.test", "agent.test", "s3.test", "agent.test"]
    assert [r.headers.get("authorization") for r in seen] == ["Bearer sk-1", "Bearer sk-1", None, "Bearer sk-1"]
    assert not any("x-api-key" in r.headers for r in [*seen, *seen_keyless])
    assert "authorization" not in seen_keyless[0].headers


def test_the_keys_routes() -> None:
    created = {**KEY, "budget_usd": 5.0, "api_key": "agk_the-secret"}
    revoked = {**KEY, "key_id": "fedcba9876543210", "revoked_at": "2025-01-02T00:00:00Z", "budget_usd": 2.5}
    client, seen = scripted(
        (201, created, {}),
        (201, {**KEY, "api_key": "agk_other"}, {}),
        (200, {"keys": [revoked, KEY]}, {}),
        (200, {"success": True, "message": "key revoked"}, {}),
        api_key="the-operator",
    )

    new = client.create_key("ci", budget_usd=5)
    plain = client.create_key("ci")
    listed = client.list_keys()
    gone = client.revoke_key("0123456789abcdef")

    asked = [(r.method, r.url.path) for r in seen]
    assert asked == [
        ("POST", "/ap/v1/agent/keys"),
        ("POST", "/ap/v1/agent/keys"),
        ("GET", "/ap/v1/agent/keys"),
        ("DELETE", "/ap/v1/agent/keys/0123456789abcdef"),
    ]
    assert [json.loads(r.content) for r in seen[:2]] == [{"name": "ci", "budget_usd": 5}, {"name": "ci"}]
    assert all(r.headers["authorization"] == "Bearer the-operator" for r in seen)
    assert isinstance(new, CreatedKey) and (new.key_id, new.api_key, new.budget_usd) == (
        KEY["key_id"],
        "agk_the-secret",
        5.0,
    )
    assert "agk_the-secret" not in repr(new) and new.model_dump()["api_key"] == "agk_the-secret"
    assert plain.budget_usd is None and plain.revoked_at is None
    assert all(isinstance(k, ApiKey) and not isinstance(k, CreatedKey) for k in listed)
    assert [(k.key_id, k.revoked_at, k.budget_usd) for k in listed] == [
        ("fedcba9876543210", "2025-01-02T00:00:00Z", 2.5),
        ("0123456789abcdef", None, None),
    ]
    assert (gone.success, gone.message) == (True, "key revoked")


def test_a_refused_key_is_an_error_of_its_own_and_is_not_retried() -> None:
    client, seen = scripted(
        (401, envelope("UNAUTHORIZED"), {}),
        (403, envelope("FORBIDDEN"), {}),
        (
            404,
            {"success": False, "error": {"code": "KEY_NOT_FOUND", "message": "no key", "details": {"key_id": "k"}}},
            {},
        ),
        (401, {"message": "Unauthorized"}, {}),  # a gateway's own answer, without the spec's envelope
        (403, {"message": "Forbidden"}, {}),
        api_key="sk-revoked",
    )

    with pytest.raises(errors.Unauthorized) as no_key:
        client.get_task("t1")  # a read, safe to repeat: still asked once
    with pytest.raises(errors.Forbidden) as not_operator:
        client.list_keys()
    with pytest.raises(errors.KeyNotFound) as unknown:
        client.revoke_key("k")
    with pytest.raises(errors.Unauthorized) as bare_401:
        client.status()
    with pytest.raises(errors.Forbidden) as bare_403:
        client.restart()

    assert len(seen) == 5
    assert (no_key.value.code, no_key.value.status, str(no_key.value)) == (
        "UNAUTHORIZED",
        401,
        "UNAUTHORIZED (401): unauthorized",
    )
    assert (not_operator.value.code, not_operator.value.status) == ("FORBIDDEN", 403)
    assert (unknown.value.code, unknown.value.status, unknown.value.details) == ("KEY_NOT_FOUND", 404, {"key_id": "k"})
    assert (bare_401.value.code, bare_401.value.message) == ("UNAUTHORIZED", "Unauthorized")
    assert (bare_403.value.code, bare_403.value.status) == ("FORBIDDEN", 403)
    assert all(isinstance(e.value, errors.AutoGPTError) for e in (no_key, not_operator, unknown))


UPDATE = {"type": "status_update", "task_id": "t1", "status": "completed", "progress": 1.0, "current_step": None}
RECORD = {"type": "log", "level": "INFO", "message": "hello", "timestamp": "a", "task_id": "t1", "component": "x"}


def test_the_live_channels_send_the_key_in_their_handshake() -> None:
    async def watched_async(base_url: str) -> list[dict[str, Any]]:
        async with AsyncAutoGPTClient(base_url=base_url, api_key="sk-1") as client:
            return [update async for update in client.watch_task("t1")]

    with ScriptedSocket([UPDATE]) as updates, ScriptedSocket([RECORD]) as logs:
        client = AutoGPTClient(base_url=updates.base_url, api_key="sk-1")
        watched = list(client.watch_task("t1"))
        logged = list(AutoGPTClient(base_url=logs.base_url, api_key="sk-1").stream_logs(level="INFO"))
        on_aws = AutoGPTClient(
            base_url="http://agent.test", api_key="sk-1", websocket_url=updates.base_url.replace("http", "ws")
        )
        watched_on_aws = list(on_aws.watch_task("t1"))
        loop = asyncio.new_event_loop()
        try:
            watched_async_ = loop.run_until_complete(watched_async(updates.base_url))
        finally:
            loop.close()

    assert watched == watched_on_aws == watched_async_ == [UPDATE] and logged == [RECORD]
    paths = [path for path, _ in updates.handshakes + logs.handshakes]
    assert paths == [
        "/ap/v1/agent/tasks/t1/ws",
        "/?task_id=t1&token=sk-1",  # on AWS the WebSocket authorizer reads ?token= alone
        "/ap/v1/agent/tasks/t1/ws",
        "/ap/v1/agent/logs/ws?level=INFO",
    ]
    assert all(headers.get("authorization") == "Bearer sk-1" for _, headers in updates.handshakes + logs.handshakes)


def test_a_refused_handshake_is_the_apis_error() -> None:
    async def watched_async(base_url: str) -> list[dict[str, Any]]:
        async with AsyncAutoGPTClient(base_url=base_url) as client:
            return [update async for update in client.watch_task("t1")]

    refusal = (401, {"success": False, "error": {"code": "UNAUTHORIZED", "message": "missing API key", "details": {}}})
    with ScriptedSocket([UPDATE], refuse=refusal) as refusing:
        client = AutoGPTClient(base_url=refusing.base_url)
        with pytest.raises(errors.Unauthorized) as watched:
            list(client.watch_task("t1"))
        with pytest.raises(errors.Unauthorized) as logged:
            list(client.stream_logs())
        loop = asyncio.new_event_loop()
        try:
            with pytest.raises(errors.Unauthorized) as watched_async_:
                loop.run_until_complete(watched_async(refusing.base_url))
        finally:
            loop.close()

    for refused in (watched, logged, watched_async_):
        assert (refused.value.code, refused.value.status, refused.value.message) == (
            "UNAUTHORIZED",
            401,
            "missing API key",
        )
    assert all("authorization" not in headers for _, headers in refusing.handshakes)
