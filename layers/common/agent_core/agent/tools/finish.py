"""finish: the model ends the task."""

from __future__ import annotations

from typing import Any, ClassVar

from .base import ToolContext, ToolResult


class Finish:
    name = "finish"
    capabilities = ()
    description = "End the task when it is done (or cannot be done), with a short summary for the user."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"summary": {"type": "string", "description": "What was done and where the results are"}},
        "required": ["summary"],
        "additionalProperties": False,
    }

    def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        return ToolResult(str(args.get("summary") or "Task finished."), is_last=True)
