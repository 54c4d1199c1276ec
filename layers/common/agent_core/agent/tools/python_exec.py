"""run_python: code execution and data analysis on the task's files, in the sandbox function (agent_core.sandbox).

This side packs the task's files into the request within Lambda's payload, and saves what comes back under output/
as the task's artifacts; the code itself never runs in this process.
"""

from __future__ import annotations

import mimetypes
import signal
import sys
from typing import Any

from ...errors import AgentError
from ...sandbox import client
from ...sandbox.protocol import (
    FILES_LIMIT_TEXT,
    MAX_CODE_CHARS,
    MAX_FILES,
    MAX_OUTPUT_FILES,
    SandboxFile,
    SandboxLimits,
    SandboxRequest,
    SandboxResult,
    files_budget,
)
from ...sandbox.workspace import OUTPUT_DIR, safe_relative
from .base import TaskFiles, ToolContext, ToolResult, truncate

# Shares of the model's view of one result: the program's stdout first, then stderr (tracebacks are short).
STDOUT_CHARS = 5_000
STDERR_CHARS = 2_000
MAX_LISTED = 10  # skipped files named in the output; the rest are counted
_OVER_PAYLOAD = f"over what one run can carry ({FILES_LIMIT_TEXT}); use read_file for it"
_MEMORY_SIGNS = ("MemoryError", "Cannot allocate memory", "out of memory")

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
    # CSV, JSON and statistics with the standard library: the data analysis GET /status advertises.
    capabilities = ("code_execution", "data_analysis")

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
        if len(code) > MAX_CODE_CHARS:
            return ToolResult(
                f"run_python's `code` is too long: keep a program under {MAX_CODE_CHARS} characters.", error=True
            )
        limits = self.limits
        left = ctx.seconds_left()
        if left is not None and left < limits.timeout_s:  # the step's deadline comes first
            limits = limits.model_copy(update={"timeout_s": max(1.0, left)})
        files, not_copied = pack_inputs(ctx.files, code, limits.max_file_bytes)
        try:
            result = client.run(SandboxRequest(code=code, files=files, limits=limits))
        except client.SandboxUnavailable as exc:
            message = f"run_python could not run the code: {exc}."
            return ToolResult(message, error=True, failure=message)
        if result.error and result.exit_code is None:  # the code never ran (no isolation available, say)
            return ToolResult(result.error, error=True, failure=result.error)
        saved, not_saved = _save_outputs(ctx, result.outputs)
        report = _report(result, limits, not_copied + result.skipped_inputs, saved, result.skipped_outputs + not_saved)
        failed = result.timed_out or result.exit_code != 0 or result.error is not None
        return ToolResult(report, artifacts=saved, error=failed, failure=result.error)


def pack_inputs(files: TaskFiles, code: str, max_file_bytes: int) -> tuple[list[SandboxFile], list[str]]:
    """The task's files as the request carries them, smallest first, while they fit; the others named with why."""
    packed: list[SandboxFile] = []
    skipped: list[str] = []
    budget = files_budget(code)
    listed = sorted(files.list(), key=lambda a: (int(a.get("file_size") or 0), str(a.get("relative_path"))))
    for artifact in listed:
        name = str(artifact.get("relative_path") or "")
        size = int(artifact.get("file_size") or 0)
        reason = None
        if safe_relative(name) is None:
            reason = "unsafe path"
        elif size > max_file_bytes:
            reason = f"{size} bytes, over the {max_file_bytes}-byte limit"
        elif len(packed) >= MAX_FILES:
            reason = f"over the {MAX_FILES}-file limit"
        elif size * 4 // 3 + 64 > budget:
            reason = _OVER_PAYLOAD
        if reason is None:
            try:
                file = SandboxFile.of(name, files.read(name))
            except (OSError, AgentError) as exc:  # deleted meanwhile
                reason = str(exc) or type(exc).__name__
            else:
                if file.encoded_size <= budget:  # the record's size may have been stale
                    packed.append(file)
                    budget -= file.encoded_size
                    continue
                reason = _OVER_PAYLOAD
        skipped.append(f"{name} ({reason})")
    return packed, skipped


def _save_outputs(ctx: ToolContext, outputs: list[SandboxFile]) -> tuple[list[dict[str, Any]], list[str]]:
    saved: list[dict[str, Any]] = []
    skipped: list[str] = []
    for out in outputs:
        content_type = mimetypes.guess_type(out.path)[0] or "application/octet-stream"
        try:
            if safe_relative(out.path) is None or not out.path.startswith(OUTPUT_DIR + "/"):
                raise ValueError("not a path under output/")
            saved.append(ctx.files.write(out.path, out.data, content_type))
        except (ValueError, AgentError) as exc:  # the artifact store refused the path
            skipped.append(f"{out.path} ({exc})")
    return saved, skipped


def _report(
    result: SandboxResult, limits: SandboxLimits, not_copied: list[str], saved: list[dict[str, Any]], skipped: list[str]
) -> str:
    # Most important first: the loop shows only the head of this to the user.
    lines = [f"Exit: {_status(result, limits)} after {result.elapsed_s:.1f} s."]
    if saved:
        names = (f"{a['relative_path']} ({a.get('file_size')} bytes)" for a in saved)
        lines.append("Saved as artifacts: " + ", ".join(names))
    else:
        lines.append(f"No files saved (write files under {OUTPUT_DIR}/ to keep them).")
    if skipped:
        lines.append("Not saved: " + _listing(skipped))
    if result.error:
        lines.append(f"Sandbox: {result.error}")
    if not_copied:
        lines.append("Task files not copied into the working directory: " + _listing(not_copied))
    lines.append("stdout:\n" + (_text(result.stdout, STDOUT_CHARS) or "(empty)"))
    if result.stderr.total:
        lines.append("stderr:\n" + _text(result.stderr, STDERR_CHARS))
    return truncate("\n".join(lines))


def _status(result: SandboxResult, limits: SandboxLimits) -> str:
    code = result.exit_code if result.exit_code is not None else -1
    if result.timed_out:
        status = f"killed at the {limits.timeout_s:g} s time limit"
    elif code == -signal.SIGXCPU:
        status = f"killed at the {limits.cpu_s} s CPU time limit"
    elif code < 0:
        status = f"killed by signal {_signal_name(-code)}"
    else:
        status = f"exit code {code}"
    if any(sign in result.stderr.text for sign in _MEMORY_SIGNS):
        status += f" (out of memory: the limit is {limits.memory_mb} MB)"
    return status


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _text(stream: Any, limit: int) -> str:
    text = truncate(stream.text, limit)
    if stream.cut:
        text += f"\n... [the program wrote {stream.total} bytes here; only the first {stream.kept} were kept]"
    return text


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")
