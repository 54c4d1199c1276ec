"""The tools offered to the model, one per advertised capability."""

from __future__ import annotations

from .tools.base import Tool
from .tools.files import ListFiles, ReadFile, WriteFile
from .tools.finish import Finish


def all_tools() -> list[Tool]:
    from .tools.python_exec import RunPython
    from .tools.web import FetchUrl

    return [ListFiles(), ReadFile(), WriteFile(), RunPython(), FetchUrl(), Finish()]


def capabilities() -> list[str]:
    """What the agent can do, as GET /status names it: the capabilities of the tools it is offered."""
    return sorted({c for tool in all_tools() for c in tool.capabilities})
