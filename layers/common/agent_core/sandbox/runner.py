"""The sandbox function's work for one request: a fresh run directory, the files staged, the child run under the
chosen isolation, output/ collected within bounds, and the directory moved aside to be removed after the answer.
Never raises for what the code did: whatever goes wrong is said in the result.

What the step waits for cleanup is bounded: the run's tree is moved aside (one rename) before the answer and removed
after it, in a background thread where the process goes on after answering (the dev server, tests); on Lambda, whose
environment is frozen once it has answered, the end of the invocation removes what it can within END_CLEANUP_S and
the start of the next within START_CLEANUP_S, leaving the rest for the one after."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..config import get_settings
from . import cleanup
from .isolation import Isolation, RunDir, choose
from .process import Captured, run_child
from .protocol import (
    LAMBDA_PAYLOAD_BYTES,
    SandboxLimits,
    SandboxRequest,
    SandboxResult,
    Stream,
    capped_line,
    files_budget,
    json_size,
)
from .workspace import OUTPUT_DIR, collect, stage

log = logging.getLogger(__name__)

# Reading output/ gets this long after the child ends; the invocation keeps this much more for the rest.
COLLECT_S = 3.0
MARGIN_S = 1.0
# Tree removal on Lambda before the answer, and at the start of the next invocation before its code runs.
END_CLEANUP_S = 0.1
START_CLEANUP_S = 0.5


def handle(event: Any, *, seconds_left: float | None = None) -> dict[str, Any]:
    try:
        request = SandboxRequest.model_validate(event)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors()[:5])
        return SandboxResult(error=f"the sandbox refused the request (invalid: {fields})").model_dump(mode="json")
    return run(request, seconds_left=seconds_left).model_dump(mode="json")


def run(
    request: SandboxRequest, *, isolation: Isolation | None = None, seconds_left: float | None = None
) -> SandboxResult:
    settings = get_settings()
    isolation = isolation or choose(settings.sandbox_isolation)
    why = isolation.unavailable()
    if why is not None:
        return SandboxResult(error=why)
    deadline = None if seconds_left is None else time.monotonic() + seconds_left
    limits = request.limits.within(SandboxLimits.from_settings(settings))
    with cleanup.removal_budget(START_CLEANUP_S):
        isolation.start_invocation()
    if deadline is not None:  # the invocation's own deadline comes first, less what its start and end may take
        left = deadline - time.monotonic() - COLLECT_S - MARGIN_S - END_CLEANUP_S - 2 * cleanup.SWEEP_S
        limits = limits.model_copy(update={"timeout_s": max(1.0, min(limits.timeout_s, left))})
    try:
        run = RunDir(Path(tempfile.mkdtemp(prefix="run_python-")))
        # Held from before the code runs: where the code can reach the run directory's path (the function
        # boundary), it may replace it with a symlink; this descriptor still names the real one.
        root = os.open(run.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            return fit(_run_in(run, root, request, limits, isolation))
        finally:
            os.close(root)
    finally:
        with cleanup.removal_budget(END_CLEANUP_S):
            isolation.end_invocation()


def _run_in(
    run: RunDir, root: int, request: SandboxRequest, limits: SandboxLimits, isolation: Isolation
) -> SandboxResult:
    try:
        run.work.mkdir()
        run.script.write_bytes(request.code.encode("utf-8", "replace"))
        staged = stage(request.files, run.work, limits.max_file_bytes)
        with contextlib.suppress(FileExistsError):  # a task file named "output": nothing will be saved
            (run.work / OUTPUT_DIR).mkdir()
        command = isolation.command(run, limits)
        with command.held:
            child = run_child(
                command.argv, cwd=command.cwd, env=command.env, timeout_s=limits.timeout_s, keep=limits.max_output_bytes
            )
        isolation.after_child()
        result = SandboxResult(
            exit_code=isolation.exit_code(child.returncode),
            timed_out=child.timed_out,
            elapsed_s=round(child.elapsed_s, 3),
            stdout=_stream(child.stdout),
            stderr=_stream(child.stderr),
            skipped_inputs=staged.skipped,
        )
        try:
            collected = collect(
                root,
                staged,
                max_file_bytes=limits.max_file_bytes,
                budget_bytes=files_budget(result.stdout.text, result.stderr.text, json.dumps(staged.skipped)),
                deadline=time.monotonic() + COLLECT_S,
            )
        except Exception as exc:  # whatever the code left there, the run's result still gets back
            log.exception("collecting output/ failed")
            result.error = f"reading {OUTPUT_DIR}/ failed ({type(exc).__name__}); nothing was saved"
            return result
        result.outputs = collected.files
        # Why the walk stopped comes first: the tool's report lists only the first few skipped files.
        stopped = [f"the rest of {OUTPUT_DIR}/ ({collected.stopped})"] if collected.stopped else []
        more = [f"{collected.unlisted} more files"] if collected.unlisted else []
        result.skipped_outputs = stopped + collected.skipped + more
        return result
    finally:
        _put_aside(run.root, in_background=isolation.name != "lambda")


def _put_aside(root: Path, *, in_background: bool) -> None:
    """The run's tree out of the way before the answer, removed after it; never raises. On Lambda nothing runs after
    the answer: the invocation's end empties /tmp (the graveyard with it) within its budget, the next start the rest."""
    try:
        graveyard = cleanup.bury(root)
        if graveyard is None:  # could not be moved: removed here, within the budget of the end of the invocation
            with cleanup.removal_budget(END_CLEANUP_S):
                cleanup.remove_tree(root)
        elif in_background:
            cleanup.remove_later(graveyard)
    except Exception:  # the next invocation's clean start (on AWS) or the OS's temp cleaning takes the rest
        log.exception("could not remove %s", root)


def _stream(captured: Captured) -> Stream:
    return Stream(text=captured.data.decode("utf-8", "replace"), kept=len(captured.data), total=captured.total)


def fit(result: SandboxResult, limit: int = LAMBDA_PAYLOAD_BYTES) -> SandboxResult:
    """The result within `limit` bytes of JSON (Lambda's 6 MB response limit: over it the invoke fails and the whole
    result is lost). The budgets should have kept it there already; if they did not, output files go first, the
    largest first, each named in skipped_outputs, then the ends of stderr and stdout (their `kept` says so), then
    the lists of skipped files."""
    size = json_size(result.model_dump(mode="json"))
    if size <= limit:
        return result
    log.warning("the result is %d bytes of JSON, over %d: cutting it to fit", size, limit)
    for file in sorted(result.outputs, key=lambda f: f.encoded_size, reverse=True):
        if size <= limit:
            break
        result.outputs.remove(file)
        result.skipped_outputs.insert(0, capped_line(f"{file.path} (did not fit in the result's 6 MB)"))
        size = json_size(result.model_dump(mode="json"))
    for stream in (result.stderr, result.stdout):
        if size <= limit:
            break
        _shorten(stream, json_size(stream.text) - (size - limit) - 64)
        size = json_size(result.model_dump(mode="json"))
    for lines in (result.skipped_inputs, result.skipped_outputs):
        if size <= limit:
            break
        if len(lines) > 10:
            lines[9:] = [f"{len(lines) - 9} more not listed"]
        size = json_size(result.model_dump(mode="json"))
    if size > limit:  # not reachable with the lines capped; said rather than sent over the limit
        return SandboxResult(error="the sandbox's result did not fit in Lambda's 6 MB response", exit_code=None)
    return result


def _shorten(stream: Stream, json_bytes: int) -> None:
    """Keeps the longest start of the stream's text whose JSON fits `json_bytes`."""
    text = stream.text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if json_size(text[:middle]) <= json_bytes:
            low = middle
        else:
            high = middle - 1
    stream.text = text[:low]
    if len(text.encode("utf-8", "replace")) == stream.kept:
        stream.kept = len(stream.text.encode("utf-8", "replace"))
    else:  # bytes that were not UTF-8 became U+FFFD: the share of the characters kept, of the bytes
        stream.kept = stream.kept * low // max(1, len(text))
