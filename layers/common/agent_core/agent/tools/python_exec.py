"""run_python: code execution and data analysis on the task's files, in the sandbox (sandbox.py, workspace.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import mimetypes
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from ...errors import AgentError
from .base import ToolContext, ToolResult, truncate
from .sandbox import Captured, SandboxLimits, SandboxRun, run_script
from .workspace import MAX_OUTPUT_FILES, OUTPUT_DIR, Staged, collect_outputs, stage_inputs

# Shares of the model's view of one result: the program's stdout first, then stderr (tracebacks are short).
STDOUT_CHARS = 5_000
STDERR_CHARS = 2_000
MAX_LISTED = 10  # skipped files named in the output; the rest are counted
_MEMORY_SIGNS = (b"MemoryError", b"Cannot allocate memory", b"out of memory")

_DESCRIPTION = (
    "Run a Python {python} program for calculations and data analysis. Standard library only: numpy, pandas and "
    "other packages are NOT installed, so use csv, json, statistics, math, collections, datetime, re and friends. "
    "The working directory holds copies of the task's files at their relative paths (e.g. open('data/sales.csv')). "
    "Files written under {output}/ are saved as task artifacts (at most {files} files of {file_mb} MB each); "
    "everything else is discarded after the run. Print what you need to see: stdout and stderr come back "
    "(long output is cut). No input, no state between calls, no network, no subprocesses. "
    "Limits: {timeout:g} s, {memory} MB of memory. "
    "For web pages use fetch_url."
)


PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {
            "type": "string",
            "description": "The whole Python program. Print results; write files to keep under output/.",
        }
    },
    "required": ["code"],
    "additionalProperties": False,
}


class RunPython:
    name = "run_python"

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits.from_settings()
        self.parameters = PARAMETERS
        self.description = _DESCRIPTION.format(
            python=f"{sys.version_info.major}.{sys.version_info.minor}",
            output=OUTPUT_DIR,
            files=MAX_OUTPUT_FILES,
            file_mb=f"{self.limits.max_file_bytes / 2**20:g}",
            timeout=self.limits.timeout_s,
            memory=self.limits.memory_mb,
        )

    def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        code = args.get("code")
        if not isinstance(code, str) or not code.strip():
            return ToolResult("run_python needs `code`: the Python program to run, as a string.", error=True)
        # Cleanup restores permissions the code took away before deleting; what still resists must not fail the step.
        with tempfile.TemporaryDirectory(prefix="run_python-", ignore_cleanup_errors=True) as tmp:
            root = Path(tmp)
            workdir, scratch, script = root / "work", root / "tmp", root / "main.py"
            workdir.mkdir()
            scratch.mkdir()
            script.write_text(code, encoding="utf-8")
            staged = stage_inputs(ctx.files, workdir, self.limits.max_file_bytes)
            with contextlib.suppress(FileExistsError):  # a task file named "output": nothing will be saved
                (workdir / OUTPUT_DIR).mkdir()
            left = ctx.seconds_left()
            limits = self.limits
            if left is not None and left < limits.timeout_s:  # the step's deadline comes first
                limits = dataclasses.replace(limits, timeout_s=max(1.0, left))
            run = run_script(script, workdir, scratch, limits)
            saved, skipped = _save_outputs(ctx, workdir, staged, self.limits.max_file_bytes)
        failed = run.timed_out or run.returncode != 0
        return ToolResult(_report(run, limits, staged, saved, skipped), artifacts=saved, error=failed)


def _save_outputs(
    ctx: ToolContext, workdir: Path, staged: Staged, max_file_bytes: int
) -> tuple[list[dict[str, Any]], list[str]]:
    saved: list[dict[str, Any]] = []
    skipped: list[str] = []
    for out in collect_outputs(workdir, staged, max_file_bytes):
        if out.data is None:
            skipped.append(f"{out.path} ({out.skipped})")
            continue
        content_type = mimetypes.guess_type(out.path)[0] or "application/octet-stream"
        try:
            saved.append(ctx.files.write(out.path, out.data, content_type))
        except (ValueError, AgentError) as exc:  # the artifact store refused the path
            skipped.append(f"{out.path} ({exc})")
    return saved, skipped


def _report(
    run: SandboxRun, limits: SandboxLimits, staged: Staged, saved: list[dict[str, Any]], skipped: list[str]
) -> str:
    # Most important first: the loop shows only the head of this to the user.
    lines = [f"Exit: {_status(run, limits)} after {run.elapsed_s:.1f} s."]
    if saved:
        names = (f"{a['relative_path']} ({a.get('file_size')} bytes)" for a in saved)
        lines.append("Saved as artifacts: " + ", ".join(names))
    else:
        lines.append(f"No files saved (write files under {OUTPUT_DIR}/ to keep them).")
    if skipped:
        lines.append("Not saved: " + _listing(skipped))
    if staged.skipped:
        lines.append("Task files not copied into the working directory: " + _listing(staged.skipped))
    lines.append("stdout:\n" + (_text(run.stdout, STDOUT_CHARS) or "(empty)"))
    if run.stderr.total:
        lines.append("stderr:\n" + _text(run.stderr, STDERR_CHARS))
    return truncate("\n".join(lines))


def _status(run: SandboxRun, limits: SandboxLimits) -> str:
    if run.timed_out:
        status = f"killed at the {limits.timeout_s:g} s time limit"
    elif run.returncode == -signal.SIGXCPU:
        status = f"killed at the {limits.cpu_s} s CPU time limit"
    elif run.returncode < 0:
        status = f"killed by signal {_signal_name(-run.returncode)}"
    else:
        status = f"exit code {run.returncode}"
    if any(sign in run.stderr.data for sign in _MEMORY_SIGNS):
        status += f" (out of memory: the limit is {limits.memory_mb} MB)"
    return status


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _text(captured: Captured, limit: int) -> str:
    text = truncate(captured.data.decode("utf-8", errors="replace"), limit)
    if captured.cut:
        text += f"\n... [the program wrote {captured.total} bytes here; only the first {len(captured.data)} were kept]"
    return text


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")
