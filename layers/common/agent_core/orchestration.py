"""Step Functions, the one place that starts and stops agent runs (statemachines/agent_run.asl.json). An execution
is named by its run's id, so its ARN follows from the run and nothing else needs storing."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from . import aws
from .config import get_settings

logger = Logger(child=True)


def execution_arn(run_id: str) -> str:
    machine = get_settings().state_machine_arn
    return machine.replace(":stateMachine:", ":execution:", 1) + ":" + run_id


def start(run_id: str, state: dict[str, Any]) -> None:
    """Starts the run's execution with its first state (idempotent: the same name and input start nothing new)."""
    aws.client("stepfunctions").start_execution(
        stateMachineArn=get_settings().state_machine_arn, name=run_id, input=json.dumps(state)
    )


def stop(run_id: str, *, cause: str) -> bool:
    """Stops the run's execution; one that has ended already, or never started, is left as it is. False when Step
    Functions refused the stop (after botocore's retries): callers have ended the run already, and the execution
    ends at its next step, which finds that its run no longer holds the task."""
    client = aws.client("stepfunctions")
    try:
        client.stop_execution(executionArn=execution_arn(run_id), cause=cause)
    except client.exceptions.ExecutionDoesNotExist:
        pass
    except (ClientError, BotoCoreError):
        logger.exception("the run's execution could not be stopped", extra={"run_id": run_id})
        return False
    return True


def status(run_id: str) -> str | None:
    """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED; None when there is no such execution."""
    client = aws.client("stepfunctions")
    try:
        return str(client.describe_execution(executionArn=execution_arn(run_id))["status"])
    except client.exceptions.ExecutionDoesNotExist:
        return None


def describe(run_id: str) -> dict[str, Any] | None:
    """The run's execution as Step Functions describes it (name, status, input, output, error, cause: the fields of
    its "Execution Status Change" event's detail); None when there is no such execution."""
    client = aws.client("stepfunctions")
    try:
        execution = client.describe_execution(executionArn=execution_arn(run_id))
    except client.exceptions.ExecutionDoesNotExist:
        return None
    return {k: execution[k] for k in ("name", "status", "input", "output", "error", "cause") if k in execution}
