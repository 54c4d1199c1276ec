"""The sandbox function: runs code a model wrote, and nothing else. It has no permissions but its logs, no network
and no secrets; only the steps function may invoke it. Kept free of the web stack: it imports the runner only."""

from __future__ import annotations

from typing import Any

from agent_core.sandbox import runner


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return runner.handle(event, seconds_left=context.get_remaining_time_in_millis() / 1000)
