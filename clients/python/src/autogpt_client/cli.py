"""`autogpt`: the API from a shell. Human output by default (tables, progress bars), `--json` for scripts.

What the API returns (a task's input, a step's output, a file's name, an error's message) is printed as it is: the
consoles below interpret no markup or emoji codes. Through a pipe, tables are tab-separated lines without a header,
so ids come out whole (`autogpt task list | cut -f1`). Errors are one line on stderr: `error: CODE (status): ...`.

Exit codes: 0 done; 1 the API refused the request (400, 405, 413); 2 wrong usage (or a local file that cannot be
read or written); 3 not found; 4 the task is busy (409); 5 a limit (429: rate, concurrent runs, budget); 6 the
server or the model failed (5xx); 7 no connection; 8 a followed run ended failed; 9 no key, or the key was refused
(401), or it may not do this (403: `keys` and `restart` need the operator's key).

Where the server wants a key, pass it with `--api-key` or the environment's AUTOGPT_API_KEY."""

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
from rich.table import Column, Table
from rich.text import Text
from typer.core import TyperGroup

from . import errors
from .client import DEFAULT_BASE_URL, AutoGPTClient


class _StepGroup(TyperGroup):
    """`autogpt step TASK_ID [INPUT]`, the documented form, is `autogpt step run TASK_ID [INPUT]`: a first argument
    that names no subcommand is a task id (task ids are UUIDs, never `run`, `list` or `show`)."""

    # `Any`: older typer passes click's Context, newer ones that of the click it vendors (typer._click).
    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(help="The AutoGPT agent API from the command line.", no_args_is_help=True, add_completion=False)
task_app = typer.Typer(help="Tasks: create (and run), list, show, delete.", no_args_is_help=True)
run_app = typer.Typer(help="A task's run: start (and follow), show, cancel.", no_args_is_help=True)
step_app = typer.Typer(
    cls=_StepGroup,
    help="A task's steps: run the next one (`autogpt step TASK_ID [INPUT]` is `step run`), list, show.",
    no_args_is_help=True,
)
artifact_app = typer.Typer(help="A task's files: upload, download, list, delete.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (operator only): create, list, revoke.", no_args_is_help=True)
app.add_typer(task_app, name="task")
app.add_typer(run_app, name="run")
app.add_typer(step_app, name="step")
app.add_typer(artifact_app, name="artifact")
app.add_typer(keys_app, name="keys")
# Text from the API is data, never markup: `[/x]` in a task's input must not raise, `[offline model]` must not vanish,
# `:smile:` must stay as written. Lines are never wrapped either: a wrapped id is not an id.
out = Console(markup=False, emoji=False, highlight=False, soft_wrap=True)
err = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)
_EXIT = {400: 1, 405: 1, 413: 1, 404: 3, 409: 4, 429: 5, 401: 9, 403: 9}
_NO_KEY = "this server needs an API key: pass --api-key KEY or set AUTOGPT_API_KEY"
_BAD_KEY = "the API key was refused (unknown or revoked): check --api-key or AUTOGPT_API_KEY"
_NOT_OPERATOR = "this needs the operator's key (ADMIN_API_KEY), not a client key: check --api-key or AUTOGPT_API_KEY"
# A WebSocket server that refuses a handshake often can only say 403, whatever the reason (ASGI servers, a gateway).
_CHANNEL_REFUSED = "the key was refused, or may not open this channel: check --api-key or AUTOGPT_API_KEY"


class _Options:
    client: AutoGPTClient
    json: bool = False
    has_key: bool = False


options = _Options()


@app.callback()
def _global(
    base_url: Annotated[
        str, typer.Option("--base-url", envvar="AUTOGPT_BASE_URL", help="The API's address")
    ] = DEFAULT_BASE_URL,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="AUTOGPT_API_KEY", help="The API key (sent as Authorization: Bearer)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, for scripts")] = False,
) -> None:
    options.client = AutoGPTClient(base_url=base_url, api_key=api_key)
    options.json = as_json
    options.has_key = bool(api_key)


def _error_line(exc: errors.AutoGPTError, handshake: bool = False) -> str:
    """`error: CODE (status): message`, then what the details name: the ids, and the field and why it was refused
    (the API's messages are generic: "Invalid request parameters")."""
    said = [str(value) for key, value in exc.details.items() if key.endswith("_id")]
    if reason := exc.details.get("reason"):
        field = exc.details.get("field")
        said.append(f"{field}: {reason}" if field else str(reason))
    if exc.status in (401, 403) and not options.has_key:
        said.append(_NO_KEY)
    elif exc.status in (401, 403) and handshake:
        said.append(_CHANNEL_REFUSED)
    elif exc.status == 401:
        said.append(_BAD_KEY)
    elif exc.status == 403:
        said.append(_NOT_OPERATOR)
    return " ".join(": ".join([f"error: {exc}", *said]).split())  # one line, whatever the message holds


def _fail(exc: errors.AutoGPTError, handshake: bool = False) -> NoReturn:
    """`handshake`: the error answered a WebSocket handshake (`logs`)."""
    if options.json:
        print(json.dumps({"error": {"code": exc.code, "message": exc.message, "details": exc.details}}))
    else:
        err.print(_error_line(exc, handshake))
    if isinstance(exc, errors.ConnectionFailed):
        raise typer.Exit(7)
    raise typer.Exit(_EXIT.get(exc.status, 6 if exc.status >= 500 else 1))


def _local_fail(message: str) -> NoReturn:
    """A local file that cannot be read or written: the user's to fix, as a usage error."""
    if options.json:
        print(json.dumps({"error": {"code": "LOCAL_FILE", "message": message, "details": {}}}))
    else:
        err.print(f"error: {message}")
    raise typer.Exit(2)


def _call(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except errors.AutoGPTError as exc:
        _fail(exc)
    except OSError as exc:  # the client's own file I/O (a download's target); the network's errors are API errors
        _local_fail(str(exc))


def _emit(value: Any, human: Callable[[Any], None]) -> None:
    if options.json:
        plain = [v.model_dump() for v in value] if isinstance(value, list) else value
        plain = plain.model_dump() if isinstance(plain, BaseModel) else plain
        print(json.dumps(plain, ensure_ascii=False, indent=2))
    else:
        human(value)


def _table(headers: list[str], rows: list[list[str]]) -> None:
    """A table on a terminal, folding long cells rather than cutting them; through a pipe, tab-separated lines
    without a header, one a row (a cell's tabs and line breaks become spaces)."""
    if not sys.stdout.isatty():
        for row in rows:
            print("\t".join(cell.translate({9: " ", 10: " ", 13: " "}) for cell in row))
        return
    table = Table(*(Column(h, overflow="fold") for h in headers))
    for row in rows:
        table.add_row(*row)
    out.print(table)


def _fields(value: BaseModel) -> None:
    """An object's fields, one a row."""
    dumped = value.model_dump().items()
    _table(["field", "value"], [[k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)] for k, v in dumped])


def _task_table(tasks: list[Any]) -> None:
    rows = [[t.task_id, t.status, t.created_at, t.input[:60], str(len(t.artifacts))] for t in tasks]
    _table(["task_id", "status", "created_at", "input", "files"], rows)


def _run_line(run: Any) -> str:
    return f"{run.task_id} run {run.status}" + (f" ({run.reason})" if run.reason else "")


def _page(pagination: Any) -> None:
    err.print(f"page {pagination.page} of {pagination.pages}")  # not a row: stderr, so a pipe gets rows only


def _transfer() -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=True,
    )


# -- tasks --------------------------------------------------------------------------------------------------------


@task_app.command("create")
def task_create(
    input: Annotated[str, typer.Argument(help="What the agent should do")],
    file: Annotated[list[str] | None, typer.Option("--file", "-f", help="A file for the task (repeatable)")] = None,
    run: Annotated[bool, typer.Option("--run", help="Start a run at once")] = False,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Start a run, show it live to its end")] = False,
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
    _start(task.task_id, max_steps, follow)


def _start(task_id: str, max_steps: int | None, follow: bool) -> None:
    started = _call(lambda: options.client.start_run(task_id, max_steps))
    if follow:
        _follow(task_id)
    else:
        _emit(started, lambda r: out.print(_run_line(r)))


def _follow(task_id: str) -> None:
    """The run's status live (over the WebSocket channel; by polling where that is not reachable) to its end."""
    client = options.client
    try:
        with Progress(TextColumn("{task.description}", markup=False), BarColumn(), console=err, transient=True) as bar:
            shown = bar.add_task("running", total=1.0)
            for message in client.watch_task(task_id):
                step = str(message.get("current_step") or "")
                bar.update(shown, completed=float(message.get("progress") or 0), description=step)
                if not options.json:
                    err.print(f"{message.get('timestamp')}  {message.get('status')!s:<9} {step}")
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
        _page(found.pagination)

    _emit(listed, human)


@task_app.command("show")
def task_show(task_id: str) -> None:
    """A task, with its files and its run."""
    _emit(_call(lambda: options.client.get_task(task_id)), lambda t: _task_table([t]))


@task_app.command("delete")
def task_delete(task_id: str) -> None:
    """Delete a task, its steps and its files (its run stops)."""
    _emit(_call(lambda: options.client.delete_task(task_id)), lambda d: out.print(d.message))


# -- runs ---------------------------------------------------------------------------------------------------------


@run_app.command("start")
def run_start(
    task_id: str,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="The run's step budget")] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Show the run live until it ends")] = False,
) -> None:
    """Start the task's run: the agent takes steps until it finishes or the budget is spent."""
    _start(task_id, max_steps, follow)


@run_app.command("show")
def run_show(task_id: str) -> None:
    """The task's run: status, steps taken, budget, and why it ended."""
    _emit(_call(lambda: options.client.get_run(task_id)), _fields)


@run_app.command("cancel")
def run_cancel(task_id: str) -> None:
    """Cancel the task's run (the step under way finishes)."""
    _emit(_call(lambda: options.client.cancel_task(task_id)), lambda r: out.print(_run_line(r)))


# -- steps, status, logs ------------------------------------------------------------------------------------------


def _step(s: Any) -> None:
    out.print(Text.assemble((s.name or "", "bold"), f"  {s.status}  last={s.is_last}  {s.step_id}"))
    if s.output:
        out.print(s.output)


@step_app.command("run")
def step_run(task_id: str, input: Annotated[str | None, typer.Argument(help="What to tell the agent")] = None) -> None:
    """Run the task's next step."""
    _emit(_call(lambda: options.client.execute_step(task_id, input)), _step)


@step_app.command("list")
def step_list(task_id: str, page: int = 1, size: int = 20) -> None:
    """The task's steps, oldest first."""
    listed = _call(lambda: options.client.list_steps(task_id, page=page, size=size))

    def human(found: Any) -> None:
        rows = [[s.step_id, s.name or "", s.status, str(s.is_last), s.created_at or ""] for s in found.steps]
        _table(["step_id", "name", "status", "last", "created_at"], rows)
        _page(found.pagination)

    _emit(listed, human)


@step_app.command("show")
def step_show(task_id: str, step_id: str) -> None:
    """A step, with its output."""
    _emit(_call(lambda: options.client.get_step(task_id, step_id)), _step)


@app.command("status")
def status() -> None:
    """The agent's status and usage."""
    _emit(_call(options.client.status), _fields)


@app.command("logs")
def logs(
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Keep streaming (the default), or stop after one record")
    ] = True,
    task_id: Annotated[str | None, typer.Option("--task", help="Only this task's records")] = None,
    level: Annotated[str | None, typer.Option(help="The lowest level shown")] = None,
) -> None:
    """Stream the agent's log records as they happen (Ctrl-C stops)."""
    try:
        for record in options.client.stream_logs(task_id=task_id, level=level):
            if options.json:
                print(json.dumps(record, ensure_ascii=False), flush=True)
            else:
                line = f"{record.get('timestamp')} {record.get('level')!s:<7} {record.get('task_id') or '-'}"
                out.print(f"{line} {record.get('message')}")
            if not follow:
                return
    except KeyboardInterrupt:
        return
    except errors.AutoGPTError as exc:  # the handshake refused (no key, or a key that may not listen)
        _fail(exc, handshake=True)
    except OSError as exc:
        _fail(errors.ConnectionFailed("CONNECTION_ERROR", str(exc), status=0))


# -- artifacts ----------------------------------------------------------------------------------------------------


def _upload(task_id: str, path: str, relative_path: str | None) -> Any:
    if not os.path.isfile(path):
        _local_fail(f"no such file: {path}")
    with _transfer() as bar:
        shown = bar.add_task(os.path.basename(path), total=os.path.getsize(path))
        return _call(
            lambda: options.client.upload_artifact(
                task_id, path, relative_path, progress=lambda done, total: bar.update(shown, completed=done)
            )
        )


def _artifact(task_id: str, artifact: str) -> Any:
    """The task's file by its artifact_id or by its path in the task."""
    artifacts = _call(lambda: options.client.get_artifacts(task_id))
    known = next((a for a in artifacts if artifact in (a.artifact_id, a.relative_path)), None)
    if known is None:
        _fail(errors.ArtifactNotFound("ARTIFACT_NOT_FOUND", f"the task has no file {artifact}", status=404))
    return known


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
    known = _artifact(task_id, artifact)
    target = output or known.file_name
    _call(lambda: options.client.download_artifact(task_id, known.artifact_id, save_to=target))
    _emit({"saved": target}, lambda v: out.print(f"saved {v['saved']}"))


@artifact_app.command("list")
def artifact_list(task_id: str) -> None:
    """A task's files."""

    def human(found: list[Any]) -> None:
        rows = [[a.artifact_id, a.relative_path, str(a.file_size), "yes" if a.agent_created else ""] for a in found]
        _table(["artifact_id", "relative_path", "size", "by agent"], rows)

    _emit(_call(lambda: options.client.get_artifacts(task_id)), human)


@artifact_app.command("delete")
def artifact_delete(
    task_id: str,
    artifact: Annotated[str, typer.Argument(help="The file's artifact_id, or its path in the task (report.md)")],
) -> None:
    """Delete a task's file."""
    known = _artifact(task_id, artifact)
    _emit(_call(lambda: options.client.delete_artifact(task_id, known.artifact_id)), lambda d: out.print(d.message))


# -- API keys -----------------------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Whose key it is (1 to 100 characters)")],
    budget_usd: Annotated[
        float | None, typer.Option("--budget-usd", help="What the key's tasks may spend on the model, in USD")
    ] = None,
) -> None:
    """Create a client key. Its secret is printed once (on stdout): store it now, it cannot be shown again."""
    created = _call(lambda: options.client.create_key(name, budget_usd))
    budget = "no budget" if created.budget_usd is None else f"budget {created.budget_usd:g} USD"
    err.print(f"created key {created.key_id} ({created.name}, {budget})")
    err.print("its secret follows; it will NOT be shown again: store it now")
    _emit(created, lambda c: out.print(c.api_key))


def _keys_table(keys: list[Any]) -> None:
    def cell(value: Any) -> str:
        return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    rows = [[k.key_id, k.name, k.created_at, cell(k.budget_usd), cell(k.revoked_at)] for k in keys]
    _table(["key_id", "name", "created_at", "budget_usd", "revoked_at"], rows)


@keys_app.command("list")
def keys_list() -> None:
    """Every key, newest first, revoked ones too (their revoked_at set). Secrets are never listed."""
    _emit(_call(options.client.list_keys), _keys_table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: requests with it are refused (401) from now on."""
    _emit(_call(lambda: options.client.revoke_key(key_id)), lambda d: out.print(f"{key_id} {d.message}"))


def main() -> None:
    # `--json` is a global option; scripts write it after the command too (`autogpt task list --json`).
    args = sys.argv[1:]
    if "--json" in args and args.index("--json") > 0:
        args = ["--json", *(a for a in args if a != "--json")]
    app(args=args, prog_name="autogpt")


if __name__ == "__main__":  # pragma: no cover
    main()
