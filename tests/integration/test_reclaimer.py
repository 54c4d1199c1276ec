"""The scheduled reclaimer (functions/reclaimer) through its real handler: a run whose end event was lost gives its
slot back through end_run, a run still going and a run just starting keep theirs, and a slot whose execution never
started is given back once it is older than the grace period. Executions run on moto's Step Functions; the status
events are not delivered (that is the loss the reclaimer makes up for)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent_core import aws, orchestration, runs
from agent_core.config import get_settings
from agent_core.storage.records import RunRecord
from agent_core.storage.table import get_table
from agent_core.timeutil import now_iso
from devserver.apigw import LambdaContext
from devserver.gateway import load_handler
from devserver.template import Route
from tests.conftest import TEMPLATE
from tests.fake_model import completion, tool_call
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
FINISH = completion(tool_call("finish", {"summary": "done"}, "call_finish"))


def reclaim(event: dict[str, Any] | None = None) -> list[str]:
    props = TEMPLATE.of_type("AWS::Serverless::Function")["ReclaimerFunction"]
    handler = load_handler(Route("ReclaimerFunction", "EVENT", "Reclaim", ROOT / props["CodeUri"], props["Handler"]))
    answer = handler(event or {"source": "aws.events", "detail-type": "Scheduled Event"}, LambdaContext())
    return list(answer["reclaimed"])


def active() -> int:
    return int(get_table().counters().get("runs_active", 0))


def status_of(run_id: str) -> str:
    return str(orchestration.describe(run_id)["status"])  # type: ignore[index]


def test_a_run_whose_end_was_lost_gives_its_slot_back_through_end_run(api: Any, model_api: Any) -> None:
    model_api.side_effect = [FINISH]
    task_id = api("POST", "/tasks", json_body={"input": "Write notes"}).json()["task_id"]
    run_id = api("POST", f"/tasks/{task_id}/run").json()["run_id"]
    wait_until(lambda: status_of(run_id) == "SUCCEEDED", what="the execution's end")
    # The execution ended, its status event never reached run_events: the task still looks running, its slot held
    assert api("GET", f"/tasks/{task_id}/run").json()["status"] == "running" and active() == 1

    assert reclaim() == [run_id]

    run = api("GET", f"/tasks/{task_id}/run").json()
    assert run["status"] == "completed" and active() == 0  # the same outcome as the event would have given
    assert api("GET", f"/tasks/{task_id}").json()["status"] == "completed"
    assert reclaim() == [] and active() == 0  # nothing left, and nothing given back twice


def test_a_stopped_run_whose_end_was_lost_fails_with_the_executions_reason(api: Any) -> None:
    task_id = api("POST", "/tasks", json_body={"input": "Write notes"}).json()["task_id"]
    sfn = aws.client("stepfunctions")
    machine = get_settings().state_machine_arn
    # An execution that waits (a definition with a long Wait), stopped behind the API's back
    sfn.update_state_machine(
        stateMachineArn=machine,
        definition=json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}}),
    )
    run_id = api("POST", f"/tasks/{task_id}/run").json()["run_id"]
    assert reclaim() == [] and active() == 1  # running: left alone
    sfn.stop_execution(executionArn=orchestration.execution_arn(run_id), cause="stopped in the console")
    wait_until(lambda: status_of(run_id) == "ABORTED", what="the stop")

    assert reclaim() == [run_id]

    run = api("GET", f"/tasks/{task_id}/run").json()
    assert run["status"] == "failed" and active() == 0


def test_a_slot_without_an_execution_is_given_back_after_the_grace_period(api: Any) -> None:
    task_id = api("POST", "/tasks", json_body={"input": "Write notes"}).json()["task_id"]
    state = get_table().get_task_state(task_id)
    assert state is not None
    # A run that took its slot and the task, and whose execution never started (StartExecution failed, the caller died)
    run = RunRecord("never-started", task_id, "running", max_steps=5, base=0, started_at=now_iso())
    runs.store().acquire(state, run, limit=5, now=0)
    assert active() == 1

    assert reclaim() == []  # young: perhaps starting right now
    later = datetime.now(UTC) + timedelta(seconds=601)
    assert runs.reclaim_slots(grace_s=600, now=later) == ["never-started"]

    assert active() == 0
    run_now = api("GET", f"/tasks/{task_id}/run").json()
    assert run_now["status"] == "failed" and "never started" in run_now["reason"]


def test_the_template_runs_it_every_few_minutes_with_its_failures_kept() -> None:
    props = TEMPLATE.of_type("AWS::Serverless::Function")["ReclaimerFunction"]
    schedule = props["Events"]["Reclaim"]
    assert schedule["Type"] == "Schedule" and schedule["Properties"]["Schedule"] == "rate(5 minutes)"
    assert props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["AsyncFailureQueue", "Arn"]
    }
    assert props["Environment"]["Variables"]["RECLAIM_GRACE_S"] == "600"
