"""Step Functions' status-change events, which moto does not send: a watcher compares the executions of the
template's state machines with what it saw last and puts an "Execution Status Change" event on the default bus for
each change, shaped as Step Functions sends it, so the template's rules (and the functions behind them) see runs
start and end as in AWS."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from typing import Any

import boto3

from .template import Template

log = logging.getLogger("devserver.executions")
DETAIL_TYPE = "Step Functions Execution Status Change"


def _millis(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value else None


class ExecutionEvents:
    def __init__(self, template: Template) -> None:
        self.machines = [template.arn(name) for name in template.of_type("AWS::Serverless::StateMachine")]
        self.seen: dict[str, str] = {}
        self._stop = threading.Event()
        self._clients: tuple[Any, Any] | None = None

    def poll(self) -> int:
        """Puts an event for every execution whose status changed since the last poll; returns how many."""
        if self._clients is None:
            self._clients = boto3.client("stepfunctions"), boto3.client("events")
        sfn, events = self._clients
        entries = []
        for machine in self.machines:
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
                for summary in page["executions"]:
                    arn, status = summary["executionArn"], summary["status"]
                    if self.seen.get(arn) == status:
                        continue
                    self.seen[arn] = status
                    entries.append(self._entry(sfn.describe_execution(executionArn=arn)))
        for start in range(0, len(entries), 10):  # PutEvents takes ten at a time
            events.put_events(Entries=entries[start : start + 10])
        return len(entries)

    @staticmethod
    def _entry(execution: dict[str, Any]) -> dict[str, Any]:
        detail = {
            "executionArn": execution["executionArn"],
            "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"],
            "status": execution["status"],
            "startDate": _millis(execution.get("startDate")),
            "stopDate": _millis(execution.get("stopDate")),
            "input": execution.get("input"),
            "output": execution.get("output"),
            "error": execution.get("error"),
            "cause": execution.get("cause"),
        }
        return {
            "Source": "aws.states",
            "DetailType": DETAIL_TYPE,
            "Resources": [execution["executionArn"]],
            "Detail": json.dumps(detail),
        }

    def start(self, interval_s: float = 0.5) -> ExecutionEvents:
        threading.Thread(target=self._watch, args=(interval_s,), name="execution-events", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.poll()
            except Exception:  # moto going away at shutdown, or a transient error: keep watching
                log.exception("watching executions failed")
