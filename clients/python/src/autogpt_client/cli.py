"""`autogpt`: the API from a shell. Human output by default (tables, progress bars), `--json` for scripts.

Exit codes: 0 done; 1 the API refused the request (400, 405, 413); 2 wrong usage; 3 not found; 4 the task is busy
(409); 5 a limit (429: rate, concurrent runs, budget); 6 the server or the model failed (5xx); 7 no connection;
8 a followed run ended failed."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from . import errors
from .client import DEFAULT_BASE_URL, AutoGPTClient

app = typer.Typer(help="The AutoGPT agent API from the command line.", no_args_is_help=True, add_completion=False)
task_app = typer.Typer(help="Tasks: create (and run), list, show, delete.", no_args_is_help=True)
artifact_app = typer.Typer(help="A task's files: upload, download, list, delete.", no_args_is_help=True)
app.add_typer(task_app, name="task")
app.add_typer(artifact_app, name="artifact")
out, err = Console(), Console(stderr=True)
_EXIT = {400: 1, 405: 1, 413: 1, 404: 3, 409: 4, 429: 5}


class _Options:
    client: AutoGPTClient
    json: bool = False


options = _Options()


@app.callback()
def _global(
    base_url: Annotated[
        str, typer.Option("--base-url", envvar="AUTOGPT_BASE_URL", help="The API's address")
    ] = DEFAULT_BASE_URL,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="AUTOGPT_API_KEY", help="x-api-key")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, for scripts")] = False,
) -> None:
    options.client = AutoGPTClient(base_url=base_url, api_key=api_key)
    options.json = as_json


def _fail(exc: errors.AutoGPTError) -> NoReturn:
    if options.json:
        print(json.dumps({"error": {"code": exc.code, "message": exc.message, "details": exc.details}}))
    else:
        err.print(f"[red]{exc.code}[/red] {exc.message}" + (f" ({exc.details})" if exc.details else ""))
    if isinstance(exc, errors.ConnectionFailed):
        raise typer.Exit(7)
    raise typer.Exit(_EXIT.get(exc.status, 6 if exc.status >= 500 else 1))


def _call(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except errors.AutoGPTError as exc:
        _fail(exc)


def _emit(value: Any, human: Callable[[Any], None]) -> None:
    if options.json:
        plain = [v.model_dump() for v in value] if isinstance(value, list) else value
        plain = plain.model_dump() if isinstance(plain, BaseModel) else plain
        print(json.dumps(plain, ensure_ascii=False, indent=2))
    else:
        human(value)


def _task_table(tasks: list[Any]) -> None:
    table = Table("task_id", "status", "created_at", "input", "files")
    for t in tasks:
        table.add_row(t.task_id, t.status, t.created_at, t.input[:60], str(len(t.artifacts)))
    out.print(table)


def _transfer(description: str) -> Progress:
    return Progress(
        TextColumn(description), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err, transient=True
    )


# -- tasks --------------------------------------------------------------------------------------------------------


@task_app.command("create")
def task_create(
    input: Annotated[str, typer.Argument(help="What the agent should do")],
    file: Annotated[list[str] | None, typer.Option("--file", "-f", help="A file for the task (repeatable)")] = None,
    run: Annotated[bool, typer.Option("--run", help="Start a run at once")] = False,
    follow: Annotated[bool, typer.Option("--follow", help="Show the run live until it ends")] = False,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="The run's step budget")] = None,
) -> None:
    """Create a task, with its files; optionally run it and follow it to its end."""
    client = options.client
    task = _call(lambda: client.create_task(input))
    for path in file or []:
        _upload(task.task_id, path, None)
    if not (run or follow):
        _emit(_call(lambda: client.get_task(task.task_id)), lambda t: _task_table([t]))
        return
    _call(lambda: client.start_run(task.task_id, max_steps))
    if follow:
        _follow(task.task_id)
    else:
        _emit(_call(lambda: client.get_run(task.task_id)), lambda r: out.print(f"{r.task_id} run {r.status}"))


def _follow(task_id: str) -> None:
    """The run's status live (over the WebSocket channel; by polling where that is not reachable) to its end."""
    client = options.client
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), console=err, transient=True) as bar:
            shown = bar.add_task("running", total=1.0)
            for message in client.watch_task(task_id):
                step = str(message.get("current_step") or "")
                bar.update(shown, completed=float(message.get("progress") or 0), description=step)
                if not options.json:
                    err.print(f"{message.get('timestamp')}  {message.get('status'):<9} {step}")
    except Exception:  # no WebSocket to this server: the polling below follows the run
        pass
    run = _call(lambda: client.get_run(task_id))
    while run.status == "running":
        time.sleep(1)
        run = _call(lambda: client.get_run(task_id))
    task = _call(lambda: client.get_task(task_id))
    reason = f" ({run.reason})" if run.reason else ""
    _emit(task, lambda t: out.print(f"task {t.task_id} {t.status}{reason}"))
    if task.status != "completed":
        raise typer.Exit(8)


@task_app.command("list")
def task_list(
    status: Annotated[str | None, typer.Option(help="created, running, completed or failed")] = None,
    page: int = 1,
    size: int = 10,
) -> None:
    """List tasks, newest first."""
    listed = _call(lambda: options.client.list_tasks(page=page, size=size, status=status))

    def human(found: Any) -> None:
        _task_table(found.tasks)
        out.print(f"page {found.pagination.page} of {found.pagination.pages}")

    _emit(listed, human)


@task_app.command("show")
def task_show(task_id: str) -> None:
    """A task, with its files and its run."""
    _emit(_call(lambda: options.client.get_task(task_id)), lambda t: _task_table([t]))


@task_app.command("delete")
def task_delete(task_id: str) -> None:
    """Delete a task, its steps and its files (its run stops)."""
    _emit(_call(lambda: options.client.delete_task(task_id)), lambda d: out.print(d.message))


# -- steps, status, logs ------------------------------------------------------------------------------------------


@app.command("step")
def step(task_id: str, input: Annotated[str | None, typer.Argument(help="What to tell the agent")] = None) -> None:
    """Run the task's next step."""
    done = _call(lambda: options.client.execute_step(task_id, input))
    _emit(done, lambda s: out.print(f"[bold]{s.name}[/bold] last={s.is_last}\n{s.output or ''}"))


@app.command("status")
def status() -> None:
    """The agent's status and usage."""

    def human(s: Any) -> None:
        table = Table("field", "value")
        for key, value in s.model_dump().items():
            table.add_row(key, json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value)
        out.print(table)

    _emit(_call(options.client.status), human)


@app.command("logs")
def logs(
    follow: Annotated[bool, typer.Option("--follow", help="Keep streaming (the default)")] = True,
    task_id: Annotated[str | None, typer.Option("--task", help="Only this task's records")] = None,
    level: Annotated[str | None, typer.Option(help="The lowest level shown")] = None,
) -> None:
    """Stream the agent's log records (Ctrl-C stops)."""
    try:
        for record in options.client.stream_logs(task_id=task_id, level=level):
            if options.json:
                print(json.dumps(record, ensure_ascii=False), flush=True)
            else:
                out.print(f"{record['timestamp']} {record['level']:<7} {record['task_id'][:8]} {record['message']}")
            if not follow:
                return
    except KeyboardInterrupt:
        return
    except OSError as exc:
        _fail(errors.ConnectionFailed("CONNECTION_ERROR", str(exc), status=0))


# -- artifacts ----------------------------------------------------------------------------------------------------


def _upload(task_id: str, path: str, relative_path: str | None) -> Any:
    if not os.path.isfile(path):
        err.print(f"no such file: {path}")
        raise typer.Exit(2)
    with _transfer(os.path.basename(path)) as bar:
        shown = bar.add_task("upload", total=os.path.getsize(path))
        return _call(
            lambda: options.client.upload_artifact(
                task_id, path, relative_path, progress=lambda done, total: bar.update(shown, completed=done)
            )
        )


@artifact_app.command("upload")
def artifact_upload(
    task_id: str,
    path: str,
    relative_path: Annotated[str | None, typer.Option("--path", help="Where in the task (default: its name)")] = None,
) -> None:
    """Upload a file to a task (large files go straight to S3)."""
    _emit(_upload(task_id, path, relative_path), lambda a: out.print(f"{a.artifact_id} {a.relative_path}"))


@artifact_app.command("download")
def artifact_download(
    task_id: str,
    artifact: Annotated[str, typer.Argument(help="The file's artifact_id, or its path in the task (report.md)")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="File to write (default: its name)")] = None,
) -> None:
    """Download a task's file."""
    artifacts = _call(lambda: options.client.get_artifacts(task_id))
    known = next((a for a in artifacts if artifact in (a.artifact_id, a.relative_path)), None)
    if known is None:
        _fail(errors.ArtifactNotFound("ARTIFACT_NOT_FOUND", f"the task has no file {artifact}", status=404))
    target = output or known.file_name
    _call(lambda: options.client.download_artifact(task_id, known.artifact_id, save_to=target))
    _emit({"saved": target}, lambda v: out.print(f"saved {v['saved']}"))


@artifact_app.command("list")
def artifact_list(task_id: str) -> None:
    """A task's files."""

    def human(found: list[Any]) -> None:
        table = Table("artifact_id", "relative_path", "size", "by agent")
        for a in found:
            table.add_row(a.artifact_id, a.relative_path, str(a.file_size), "yes" if a.agent_created else "")
        out.print(table)

    _emit(_call(lambda: options.client.get_artifacts(task_id)), human)


@artifact_app.command("delete")
def artifact_delete(task_id: str, artifact_id: str) -> None:
    """Delete a task's file."""
    _emit(_call(lambda: options.client.delete_artifact(task_id, artifact_id)), lambda d: out.print(d.message))


def main() -> None:
    # `--json` is a global option; scripts write it after the command too (`autogpt task list --json`).
    args = sys.argv[1:]
    if "--json" in args and args.index("--json") > 0:
        args = ["--json", *(a for a in args if a != "--json")]
    app(args=args, prog_name="autogpt")


if __name__ == "__main__":  # pragma: no cover
    main()
