"""RunStep, the task of the agent-run state machine (statemachines/agent_run.asl.json): the run's next steps, as
many as this invocation has time for (agent_core.runs.run_step). Errors are raised for the state machine to see by
their class name (its Retry and Catch)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from agent_core import runs
from agent_core.idempotency import remember_invocation

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    remember_invocation(context)  # an in-progress step's idempotency record ends with this invocation
    return runs.run_step(event, context.get_remaining_time_in_millis)
