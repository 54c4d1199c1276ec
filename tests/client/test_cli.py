"""The `autogpt` command line against the dev server. Its output is captured as through a pipe (one test gives it a
terminal): the API's text comes out as it is, ids whole, errors as one line on stderr."""

from __future__ import annotations

import contextlib
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
