"""Ends runs: EventBridge delivers each Step Functions "Execution Status Change" of the agent-run state machine,
and a run that succeeded, failed, timed out or was aborted gives back its task and its slot (idempotently)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from agent_core import runs

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> None:
    runs.on_execution_status(event.get("detail") or {})
