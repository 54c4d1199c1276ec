"""The sandbox function's work for one request: a fresh run directory, the files staged, the child run under the
chosen isolation, output/ collected within bounds, and the directory removed. Never raises for what the code did:
whatever goes wrong is said in the result."""

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
from .cleanup import remove_tree
from .isolation import Isolation, RunDir, choose
from .process import Captured, run_child
from .protocol import SandboxLimits, SandboxRequest, SandboxResult, Stream, files_budget
from .workspace import OUTPUT_DIR, collect, stage

log = logging.getLogger(__name__)

# Reading output/ gets this long after the child ends; the invocation keeps this much more for the rest.
COLLECT_S = 3.0
MARGIN_S = 1.0


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
    limits = request.limits.within(SandboxLimits.from_settings(settings))
    if seconds_left is not None:  # the invocation's own deadline comes first
        timeout = max(1.0, min(limits.timeout_s, seconds_left - COLLECT_S - MARGIN_S))
        limits = limits.model_copy(update={"timeout_s": timeout})
    isolation.start_invocation()
    try:
        run = RunDir(Path(tempfile.mkdtemp(prefix="run_python-")))
        # Held from before the code runs: where the code can reach the run directory's path (the function
        # boundary), it may replace it with a symlink; this descriptor still names the real one.
        root = os.open(run.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            return _run_in(run, root, request, limits, isolation)
        finally:
            os.close(root)
    finally:
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
        try:
            remove_tree(run.root)
        except Exception:  # the next invocation's clean start (on AWS) or the OS's temp cleaning takes the rest
            log.exception("could not remove %s", run.root)


def _stream(captured: Captured) -> Stream:
    return Stream(text=captured.data.decode("utf-8", "replace"), kept=len(captured.data), total=captured.total)
