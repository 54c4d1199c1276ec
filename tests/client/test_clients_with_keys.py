"""The clients against the dev server with authentication on (`AUTH=keys ADMIN_API_KEY=...`, issue 21): the
operator makes, lists and revokes client keys; each client sees its own tasks only; the live channels take the key
(the Python client in the handshake's header, the JavaScript client as `?token=`); the `autogpt` command line's
`keys` commands, and what it says without a key.

Needs the server side of issue 21 (the authorizer, the keys routes, the dev server's AUTH=keys). The dev server is
started here on a free port (never 8000), with its own environment."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from autogpt_client import AsyncAutoGPTClient, AutoGPTClient, errors
from autogpt_client.cli import app
from devserver.resources import free_port

pytestmark = [pytest.mark.http, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "clients" / "js"
API = "/ap/v1/agent"
OPERATOR_KEY = "operator-secret-for-tests"
KEY_ID = re.compile(r"[0-9a-f]{16}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m devserver` with AUTH=keys on a free port; yields its address (without the API's prefix)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENAI_"))}
    env.update(RATE_LIMIT_PER_MINUTE="0", PYTHONUNBUFFERED="1", AUTH="keys", ADMIN_API_KEY=OPERATOR_KEY)
    log = tmp_path_factory.mktemp("devserver-keys") / "output.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devserver", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline, last = time.monotonic() + 60, "no answer"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dev server exited: {log.read_text(errors='replace')[-3000:]}")
            try:
                headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
                answer = httpx.get(f"{base}{API}/tasks", headers=headers, timeout=5)
                if answer.status_code == 200:
                    break
                last = f"{answer.status_code} {answer.text[:500]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                output = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"dev server not ready in 60 s; GET /tasks as the operator: {last}\n{output}")
            time.sleep(0.2)  # polling the server's start, bounded by the deadline above
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def operator(server: str) -> AutoGPTClient:
    return AutoGPTClient(base_url=server, api_key=OPERATOR_KEY)


def test_keys_and_tenancy_with_the_python_client(server: str, operator: AutoGPTClient) -> None:
    alice_key = operator.create_key("alice", budget_usd=5)
    bob_key = operator.create_key("bob")
    alice = AutoGPTClient(base_url=server, api_key=alice_key.api_key)
    bob = AutoGPTClient(base_url=server, api_key=bob_key.api_key)
    nobody = AutoGPTClient(base_url=server)

    task = alice.create_task("Summarise")
    with pytest.raises(errors.TaskNotFound):
        bob.get_task(task.task_id)  # another client's task does not exist for bob
    with pytest.raises(errors.Unauthorized):
        nobody.list_tasks()
    with pytest.raises(errors.Unauthorized):
        AutoGPTClient(base_url=server, api_key="agk_0000000000000000_nothing").list_tasks()
    with pytest.raises(errors.Forbidden):
        alice.list_keys()  # operator-only
    with pytest.raises(errors.Forbidden):
        alice.create_key("mallory")
    listed = operator.list_keys()
    alice.start_run(task.task_id)
    updates = list(alice.watch_task(task.task_id))  # the key in the handshake's Authorization header
    with pytest.raises(errors.Unauthorized):
        list(nobody.watch_task(task.task_id))
    gone = operator.revoke_key(alice_key.key_id)
    with pytest.raises(errors.Unauthorized):
        alice.get_task(task.task_id)
    with pytest.raises(errors.KeyNotFound):
        operator.revoke_key("0000000000000000")
    after = {k.key_id: k for k in operator.list_keys()}

    assert KEY_ID.fullmatch(alice_key.key_id) and alice_key.budget_usd == 5 and alice_key.revoked_at is None
    assert alice_key.api_key and bob_key.budget_usd is None
    assert [k.key_id for k in listed][:2] == [bob_key.key_id, alice_key.key_id]  # newest first
    assert all("api_key" not in k.model_dump() for k in listed)
    assert updates[-1]["status"] in ("completed", "failed")
    assert gone.success and after[alice_key.key_id].revoked_at and after[bob_key.key_id].revoked_at is None
    assert bob.list_tasks().pagination.total == 0 and task.task_id in {t.task_id for t in operator.iter_tasks()}


def test_the_async_client_sends_the_key_too(server: str, operator: AutoGPTClient) -> None:
    key = operator.create_key("async")

    async def scenario() -> tuple[str, list[str]]:
        async with AsyncAutoGPTClient(base_url=server, api_key=key.api_key) as client:
            task = await client.create_task("Summarise")
            await client.start_run(task.task_id)
            return task.task_id, [u["status"] async for u in client.watch_task(task.task_id)]

    loop = asyncio.new_event_loop()
    try:
        task_id, statuses = loop.run_until_complete(scenario())
    finally:
        loop.close()

    assert statuses[-1] in ("completed", "failed") and operator.get_task(task_id).task_id == task_id


def test_the_command_lines_keys_commands(server: str, operator: AutoGPTClient) -> None:
    runner = CliRunner()
    as_operator = ["--base-url", server, "--api-key", OPERATOR_KEY]

    created = runner.invoke(app, [*as_operator, "keys", "create", "from-the-cli", "--budget-usd", "1.5"])
    secret = created.stdout.strip()
    listed = runner.invoke(app, [*as_operator, "--json", "keys", "list"])
    key_id = next(k["key_id"] for k in json.loads(listed.stdout) if k["name"] == "from-the-cli")
    as_client = runner.invoke(app, ["--base-url", server, "task", "list"], env={"AUTOGPT_API_KEY": secret})
    not_operator = runner.invoke(app, ["--base-url", server, "--api-key", secret, "keys", "list"])
    no_key = runner.invoke(app, ["--base-url", server, "task", "list"], env={"AUTOGPT_API_KEY": ""})
    revoked = runner.invoke(app, [*as_operator, "keys", "revoke", key_id])
    refused = runner.invoke(app, ["--base-url", server, "--api-key", secret, "task", "list"])

    assert created.exit_code == 0 and "will NOT be shown again" in created.stderr, created.output
    assert secret and "\n" not in secret
    assert as_client.exit_code == 0, as_client.output
    assert not_operator.exit_code == 9 and "FORBIDDEN (403)" in not_operator.stderr
    assert no_key.exit_code == 9 and "pass --api-key KEY or set AUTOGPT_API_KEY" in no_key.stderr
    assert revoked.exit_code == 0 and revoked.stdout.startswith(key_id)
    assert refused.exit_code == 9 and "refused (unknown or revoked)" in refused.stderr


def test_the_javascript_client_sends_the_key_and_its_websockets_the_token(
    server: str, operator: AutoGPTClient, js_client: Path
) -> None:
    key = operator.create_key("js")
    script = """
        import { AutoGPTClient } from "./dist/esm/index.js";
        const [baseURL, apiKey] = process.argv.slice(1);
        const client = new AutoGPTClient({ baseURL, apiKey });
        const task = await client.createTask({ input: "Summarise" });
        await client.startRun(task.taskId);
        const statuses = [];
        const signal = AbortSignal.timeout(120_000);
        for await (const u of client.watchTask(task.taskId, { signal })) statuses.push(u.status);
        const refused = await new AutoGPTClient({ baseURL }).listTasks().catch((e) => [e.code, e.status]);
        const forbidden = await client.listKeys().catch((e) => [e.code, e.status]);
        console.log(JSON.stringify({ taskId: task.taskId, statuses, refused, forbidden }));
    """
    ran = subprocess.run(
        ["node", "--input-type=module", "-e", script, server, key.api_key],
        cwd=JS, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    assert result["statuses"][-1] in ("completed", "failed")
    assert result["refused"] == ["UNAUTHORIZED", 401] and result["forbidden"] == ["FORBIDDEN", 403]
    assert operator.get_task(result["taskId"]).task_id == result["taskId"]
