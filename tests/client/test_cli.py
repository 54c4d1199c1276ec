"""The `autogpt` command line against the dev server. Its output is captured as through a pipe (one test gives it a
terminal): the API's text comes out as it is, ids whole, errors as one line on stderr."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from autogpt_client import AutoGPTClient
from autogpt_client.cli import app
from tests.client.scripted import Answer, ScriptedAPI, ScriptedSocket, envelope

pytestmark = pytest.mark.http
ROOT = Path(__file__).resolve().parents[2]
UNKNOWN = "00000000-0000-4000-8000-000000000000"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
Cli = Callable[..., Result]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def client(live_server: str) -> AutoGPTClient:
    return AutoGPTClient(base_url=live_server)


@pytest.fixture
def cli(live_server: str) -> Cli:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["--base-url", live_server, *args])

    return invoke


def rows(result: Result) -> list[list[str]]:
    return [line.split("\t") for line in result.stdout.splitlines()]


def test_the_apis_text_is_printed_as_it_is(cli: Cli, client: AutoGPTClient, tmp_path: Path) -> None:
    text = "Sum [/x] and [bold]not bold[/bold] :thumbs_up:"
    task = client.create_task(text)
    (tmp_path / "[x] sales.csv").write_text("m,a\nJan,1\n")

    listed = cli("task", "list", "--size", "100")
    shown = cli("task", "show", task.task_id)
    stepped = cli("step", task.task_id, "go [/y]")  # the documented form: `autogpt step TASK ["input"]`
    uploaded = cli("artifact", "upload", task.task_id, str(tmp_path / "[x] sales.csv"), "--path", "[/x]")
    files = cli("artifact", "list", task.task_id)

    assert listed.exit_code == 0 and [task.task_id, "created"] == rows(listed)[0][:2], listed.output
    assert rows(listed)[0][3] == text
    assert shown.exit_code == 0 and rows(shown)[0][3] == text, shown.output
    assert stepped.exit_code == 0 and "[offline model]" in stepped.stdout, stepped.output
    assert uploaded.exit_code == 0 and uploaded.stdout.endswith(" [/x]/[x] sales.csv\n"), uploaded.output
    assert files.exit_code == 0 and [r[1] for r in rows(files)] == ["[/x]/[x] sales.csv"], files.output


def test_the_apis_text_is_printed_as_it_is_on_a_terminal_too(live_server: str, client: AutoGPTClient) -> None:
    text = "Sum [/x] and [bold]not bold[/bold] :thumbs_up:"
    task = client.create_task(text)
    terminal, its_end = pty.openpty()
    command = [sys.executable, "-m", "autogpt_client.cli", "--base-url", live_server, "task", "show", task.task_id]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "clients/python/src"), "COLUMNS": "200"}
    shown = subprocess.Popen(command, env=env, stdout=its_end, stderr=its_end)
    os.close(its_end)  # the process has its own
    printed, deadline = b"", time.monotonic() + 60
    # Read while it writes (a traceback would fill the terminal's buffer and block it), until it has gone: EIO
    with open(terminal, "rb", buffering=0) as screen, contextlib.suppress(OSError):
        while select.select([screen], [], [], max(0.0, deadline - time.monotonic()))[0]:
            if not (chunk := screen.read(65536)):
                break
            printed += chunk
    shown.kill()  # only if the deadline passed
    shown.wait(timeout=10)

    shown_text = ANSI.sub("", printed.decode())
    assert shown.returncode == 0 and "┃ task_id" in shown_text, shown_text
    assert task.task_id in shown_text and f"│ {text} │" in shown_text, shown_text


def test_ids_come_out_whole_through_a_pipe(cli: Cli, client: AutoGPTClient, tmp_path: Path) -> None:
    task = client.create_task("Summarise")
    step = client.execute_step(task.task_id)
    (tmp_path / "sales.csv").write_text("m,a\nJan,1\n")
    artifact = client.upload_artifact(task.task_id, str(tmp_path / "sales.csv"))

    listed = cli("task", "list", "--size", "100")
    steps = cli("step", "list", task.task_id)
    files = cli("artifact", "list", task.task_id)

    # Tab-separated rows, no header: the page count is not a row, it goes to stderr
    assert listed.exit_code == 0 and rows(listed)[0][:2] == [task.task_id, "running"], listed.output
    assert listed.stderr.startswith("page 1 of ")
    assert steps.exit_code == 0 and rows(steps) == [[step.step_id, "list_files", "completed", "False", step.created_at]]
    assert files.exit_code == 0 and rows(files) == [[artifact.artifact_id, "sales.csv", "10", ""]], files.output


def test_runs_and_steps(cli: Cli, client: AutoGPTClient) -> None:
    task = client.create_task("Summarise")
    other = client.create_task("Summarise")

    followed = cli("run", "start", task.task_id, "--max-steps", "10", "--follow")
    run = cli("run", "show", task.task_id)
    steps = cli("step", "list", task.task_id, "--size", "2", "--page", "2")
    first = client.list_steps(task.task_id).steps[0]
    shown = cli("step", "show", task.task_id, first.step_id)
    no_run = cli("run", "cancel", task.task_id)
    stepped = cli("step", "run", other.task_id, "go")
    started = cli("task", "create", "Summarise", "--run", "--no-follow")
    started_id = started.stdout.split()[0]
    cancelled = cli("run", "cancel", started_id)

    assert followed.exit_code == 0 and followed.stdout == f"task {task.task_id} completed\n", followed.output
    fields = dict(rows(run))
    assert run.exit_code == 0 and (fields["status"], fields["max_steps"], fields["steps"]) == ("completed", "10", "4")
    assert steps.exit_code == 0 and [r[1] for r in rows(steps)] == ["write_file", "finish"], steps.output
    assert steps.stderr == "page 2 of 2\n"
    assert shown.exit_code == 0 and shown.stdout.startswith(f"list_files  completed  last=False  {first.step_id}\n")
    assert "[offline model] Listing the task's files." in shown.stdout
    reason = (
        f"error: INVALID_REQUEST (400): Invalid request parameters: {task.task_id}: the task has no run in progress"
    )
    assert (no_run.exit_code, no_run.stderr) == (1, reason + "\n")
    assert stepped.exit_code == 0 and "[offline model]" in stepped.stdout, stepped.output
    assert started.exit_code == 0 and started.stdout == f"{started_id} run running\n", started.output
    # The run may end on its own (in about a second) before the cancel arrives: then there is nothing to cancel
    assert (cancelled.exit_code, cancelled.stdout) == (0, f"{started_id} run failed (cancelled)\n") or (
        cancelled.exit_code == 1 and cancelled.stderr.endswith("the task has no run in progress\n")
    ), cancelled.output


def test_a_file_is_deleted_by_its_path_as_by_its_id(cli: Cli, client: AutoGPTClient, tmp_path: Path) -> None:
    task = client.create_task("Summarise")
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("m,a\nJan,1\n")
    by_path = client.upload_artifact(task.task_id, str(tmp_path / "a.csv"), relative_path="data")
    by_id = client.upload_artifact(task.task_id, str(tmp_path / "b.csv"))

    deleted = [cli("artifact", "delete", task.task_id, target) for target in ("data/a.csv", by_id.artifact_id)]
    again = cli("artifact", "delete", task.task_id, "data/a.csv")

    assert [d.exit_code for d in deleted] == [0, 0], [d.output for d in deleted]
    assert client.get_artifacts(task.task_id) == [] and by_path.relative_path == "data/a.csv"
    assert (again.exit_code, again.stderr) == (3, "error: ARTIFACT_NOT_FOUND (404): the task has no file data/a.csv\n")


def test_errors_are_one_line_with_their_code(cli: Cli, client: AutoGPTClient, tmp_path: Path) -> None:
    task = client.create_task("Summarise")
    (tmp_path / "sales.csv").write_text("m,a\nJan,1\n")
    client.upload_artifact(task.task_id, str(tmp_path / "sales.csv"))

    missing = cli("task", "show", UNKNOWN)
    refused = cli("task", "list", "--size", "1000")
    no_file = cli("artifact", "download", task.task_id, "[/x].md")
    unwritable = cli("artifact", "download", task.task_id, "sales.csv", "-o", str(tmp_path / "no" / "sales.csv"))
    unreachable = CliRunner().invoke(app, ["--base-url", "http://127.0.0.1:9", "task", "list"])

    not_found = f"error: TASK_NOT_FOUND (404): The specified task does not exist: {UNKNOWN}\n"
    assert (missing.exit_code, missing.stdout, missing.stderr) == (3, "", not_found)
    too_big = (
        "error: INVALID_REQUEST (400): Invalid request parameters: size: Input should be less than or equal to 100"
    )
    assert (refused.exit_code, refused.stderr) == (1, too_big + "\n")
    assert (no_file.exit_code, no_file.stderr) == (3, "error: ARTIFACT_NOT_FOUND (404): the task has no file [/x].md\n")
    assert unwritable.exit_code == 2 and isinstance(unwritable.exception, SystemExit), unwritable.output
    assert unwritable.stderr.startswith("error: [Errno 2] No such file or directory: ")
    assert unreachable.exit_code == 7 and unreachable.stderr.startswith("error: CONNECTION_ERROR: ")
    for result in (missing, refused, no_file, unwritable, unreachable):
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_logs_stop_after_one_record_without_follow(live_server: str, client: AutoGPTClient) -> None:
    # A process of its own: it waits for a record, which the steps below make once it is subscribed.
    command = [sys.executable, "-m", "autogpt_client.cli", "--base-url", live_server, "logs", "--no-follow"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "clients/python/src")}
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as logs:
        try:
            deadline = time.monotonic() + 60
            while logs.poll() is None and time.monotonic() < deadline:
                client.execute_step(client.create_task("Summarise").task_id)
            stdout, stderr = logs.communicate(timeout=10)
        finally:
            logs.kill()

    # One record, its task's id whole (a step of an earlier test may still be logging: any task's record will do)
    assert logs.returncode == 0, stderr
    assert len(stdout.splitlines()) == 1 and UUID.fullmatch(stdout.split()[2]), stdout


# -- API keys (issue 21), against a scripted API: no dev server --------------------------------------------------

KEY = {
    "key_id": "0123456789abcdef",
    "name": "ci",
    "created_at": "2025-01-01T00:00:00Z",
    "budget_usd": None,
    "revoked_at": None,
}
REVOKED = {**KEY, "key_id": "fedcba9876543210", "budget_usd": 2.5, "revoked_at": "2025-01-02T00:00:00Z"}


def keys_api(method: str, path: str) -> Answer:
    if (method, path) == ("POST", "/keys"):
        return 201, {**KEY, "budget_usd": 5.0, "api_key": "agk_the-secret"}
    if (method, path) == ("GET", "/keys"):
        return 200, {"keys": [REVOKED, KEY]}
    if method == "DELETE" and path == "/keys/0123456789abcdef":
        return 200, {"success": True, "message": "key revoked"}
    return 404, envelope("KEY_NOT_FOUND", "The specified key does not exist", key_id=path.rsplit("/", 1)[-1])


def test_keys_create_list_and_revoke() -> None:
    runner = CliRunner()
    with ScriptedAPI(keys_api) as api:
        base = ["--base-url", api.base_url, "--api-key", "the-operator"]
        created = runner.invoke(app, [*base, "keys", "create", "ci", "--budget-usd", "5"])
        created_json = runner.invoke(app, [*base, "--json", "keys", "create", "ci"])
        listed = runner.invoke(app, [*base, "keys", "list"])
        listed_json = runner.invoke(app, [*base, "--json", "keys", "list"])
        revoked = runner.invoke(app, [*base, "keys", "revoke", "0123456789abcdef"])
        unknown = runner.invoke(app, [*base, "keys", "revoke", "0000000000000000"])
        from_env = runner.invoke(app, ["--base-url", api.base_url, "keys", "list"], env={"AUTOGPT_API_KEY": "env-key"})

    # The secret alone on stdout (KEY=$(autogpt keys create ci)); what it is, and that it is shown once, on stderr
    assert (created.exit_code, created.stdout) == (0, "agk_the-secret\n"), created.output
    assert created.stderr.startswith("created key 0123456789abcdef (ci, budget 5 USD)\n")
    assert "will NOT be shown again" in created.stderr
    assert created_json.exit_code == 0 and json.loads(created_json.stdout)["api_key"] == "agk_the-secret"
    assert "will NOT be shown again" in created_json.stderr
    assert listed.exit_code == 0 and rows(listed) == [
        ["fedcba9876543210", "ci", "2025-01-01T00:00:00Z", "2.5", "2025-01-02T00:00:00Z"],
        ["0123456789abcdef", "ci", "2025-01-01T00:00:00Z", "", ""],
    ]
    assert listed_json.exit_code == 0 and json.loads(listed_json.stdout) == [REVOKED, KEY]
    assert (revoked.exit_code, revoked.stdout) == (0, "0123456789abcdef key revoked\n")
    assert unknown.exit_code == 3
    assert unknown.stderr == "error: KEY_NOT_FOUND (404): The specified key does not exist: 0000000000000000\n"
    assert from_env.exit_code == 0, from_env.output
    sent = [(a.method, a.path, a.body) for a in api.asked[:2]]
    assert sent == [
        ("POST", "/ap/v1/agent/keys", {"name": "ci", "budget_usd": 5.0}),
        ("POST", "/ap/v1/agent/keys", {"name": "ci"}),
    ]
    assert [a.headers.get("authorization") for a in api.asked] == ["Bearer the-operator"] * 6 + ["Bearer env-key"]
    assert not any("x-api-key" in a.headers for a in api.asked)


def test_a_refused_key_says_what_to_do() -> None:
    answers: list[Answer] = [
        (401, envelope("UNAUTHORIZED", "Missing API key")),
        (401, envelope("UNAUTHORIZED", "Invalid API key")),
        (403, envelope("FORBIDDEN", "Operator key required")),
        (401, envelope("UNAUTHORIZED", "Missing API key")),
    ]
    runner = CliRunner()
    with ScriptedAPI(lambda method, path: answers.pop(0)) as api:
        base = ["--base-url", api.base_url]
        no_key = runner.invoke(app, [*base, "task", "list"])
        bad_key = runner.invoke(app, [*base, "--api-key", "revoked", "task", "list"])
        client_key = runner.invoke(app, [*base, "--api-key", "a-client", "keys", "list"])
        as_json = runner.invoke(app, [*base, "--json", "keys", "create", "ci"])

    assert (no_key.exit_code, no_key.stdout) == (9, "")
    assert no_key.stderr == (
        "error: UNAUTHORIZED (401): Missing API key: this server needs an API key: pass --api-key KEY or set "
        "AUTOGPT_API_KEY\n"
    )
    assert bad_key.exit_code == 9 and bad_key.stderr == (
        "error: UNAUTHORIZED (401): Invalid API key: the API key was refused (unknown or revoked): check --api-key "
        "or AUTOGPT_API_KEY\n"
    )
    assert client_key.exit_code == 9 and client_key.stderr.startswith("error: FORBIDDEN (403): Operator key required: ")
    assert "needs the operator's key" in client_key.stderr
    assert as_json.exit_code == 9 and json.loads(as_json.stdout)["error"]["code"] == "UNAUTHORIZED"
    for result in (no_key, bad_key, client_key):
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert "authorization" not in api.asked[0].headers and api.asked[1].headers["authorization"] == "Bearer revoked"


def test_logs_refused_at_the_handshake_say_what_to_do() -> None:
    runner = CliRunner()
    with ScriptedSocket([], refuse=(401, envelope("UNAUTHORIZED", "Missing API key"))) as socket:
        no_key = runner.invoke(app, ["--base-url", socket.base_url, "logs", "--no-follow"])
    with ScriptedSocket([], refuse=(403, {})) as socket:  # what an ASGI server says to any handshake it refuses
        no_key_403 = runner.invoke(app, ["--base-url", socket.base_url, "logs", "--no-follow"])
        keyed = runner.invoke(app, ["--base-url", socket.base_url, "--api-key", "a-client", "logs", "--no-follow"])

    assert no_key.exit_code == 9, no_key.output
    assert no_key.stderr.startswith("error: UNAUTHORIZED (401): Missing API key: this server needs an API key: ")
    assert no_key_403.exit_code == 9 and no_key_403.stderr.startswith("error: FORBIDDEN (403): HTTP 403: this server ")
    assert keyed.exit_code == 9 and keyed.stderr == (
        "error: FORBIDDEN (403): HTTP 403: the key was refused, or may not open this channel: check --api-key or "
        "AUTOGPT_API_KEY\n"
    )
    assert [headers.get("authorization") for _, headers in socket.handshakes] == [None, "Bearer a-client"]
    for result in (no_key, no_key_403, keyed):
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
