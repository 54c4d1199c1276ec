"""File operations on the task's artifacts: list_files, read_file, write_file."""

from __future__ import annotations

import base64
import mimetypes
from typing import Any, ClassVar

from ...errors import AgentError
from .base import ToolContext, ToolResult, truncate

IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
# Images go to the model inline as data URLs up to this size (OpenAI accepts 20 MB; requests stay small this way).
MAX_INLINE_IMAGE_BYTES = 4 * 1024 * 1024
MAX_WRITE_BYTES = 1024 * 1024


def image_part(data: bytes, content_type: str) -> dict[str, Any]:
    url = f"data:{content_type};base64,{base64.b64encode(data).decode()}"
    return {"type": "image_url", "image_url": {"url": url}}


def guess_type(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


class ListFiles:
    name = "list_files"
    capabilities = ("file_operations",)
    description = "List the task's files (uploaded by the user or written by you) with their sizes."
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}, "additionalProperties": False}

    def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        files = ctx.files.list()
        if not files:
            return ToolResult("The task has no files.")
        lines = [
            f"{f['relative_path']} ({f.get('file_size') or 0} bytes{', yours' if f.get('agent_created') else ''})"
            for f in files
        ]
        return ToolResult(truncate(f"{len(files)} file(s):\n" + "\n".join(lines)))


class ReadFile:
    name = "read_file"
    capabilities = ("file_operations",)
    description = (
        "Read one of the task's files by its relative path. Text comes back as text (long files are cut); "
        "images (PNG, JPEG, GIF, WebP) are shown to you when your model can see images."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "The file's relative path, e.g. data/sales.csv"}},
        "required": ["path"],
        "additionalProperties": False,
    }

    def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        path = str(args.get("path") or "")
        try:
            data = ctx.files.read(path)
        except FileNotFoundError:
            return ToolResult(f"No file {path!r} in this task. Call list_files to see what exists.", error=True)
        content_type = guess_type(path)
        if content_type in IMAGE_TYPES:
            if len(data) > MAX_INLINE_IMAGE_BYTES:
                return ToolResult(f"{path} is an image of {len(data)} bytes, too large to show inline.")
            return ToolResult(f"{path} is a {content_type} image of {len(data)} bytes.", images=[{"path": path}])
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return ToolResult(f"{path} is binary ({content_type}, {len(data)} bytes); use run_python to inspect it.")
        return ToolResult(truncate(text))


class WriteFile:
    name = "write_file"
    capabilities = ("file_operations",)
    description = "Create or replace a text file among the task's files (it becomes an artifact the user can download)."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Relative path, e.g. reports/summary.md"},
            "content": {"type": "string", "description": "The whole text of the file"},
        },
        "required": ["path", "content"],
        "additionalProperties": False,
    }

    def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        path, content = str(args.get("path") or ""), args.get("content")
        if not isinstance(content, str):
            return ToolResult("write_file needs `content` as a string.", error=True)
        data = content.encode()
        if len(data) > MAX_WRITE_BYTES:
            return ToolResult(
                f"The content is {len(data)} bytes; write_file takes at most {MAX_WRITE_BYTES}.", error=True
            )
        try:
            artifact = ctx.files.write(path, data, guess_type(path))
        except (ValueError, AgentError) as exc:  # the path failed validation (outside the task, bad characters)
            reason = exc.details.get("reason", exc) if isinstance(exc, AgentError) else exc
            return ToolResult(f"Cannot write {path!r}: {reason}", error=True)
        return ToolResult(f"Wrote {artifact['relative_path']} ({len(data)} bytes).", artifacts=[artifact])
