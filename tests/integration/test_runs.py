"""Multi-step runs through the real handlers: the API starts executions of the real state machine definition on
moto's Step Functions interpreter, which invokes the real runner function; the executions' status changes reach
the real run_events function through EventBridge rules made from the template (devserver.executions and
devserver.events, as on the dev server). The model is the scripted OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from agent_core import aws, orchestration, runs
from agent_core.config import get_settings
from agent_core.storage.records import RunRecord
from agent_core.storage.table import get_table
from agent_core.timeutil import now_iso
from devserver.events import EventRouter
from devserver.executions import ExecutionEvents
from devserver.resources import state_machine_definition
from tests.conftest import TEMPLATE
from tests.fake_model import Reply, completion, failure, tool_call
from tests.waiting import wait_until

MACHINE = "AgentRunStateMachine"


def write(n: int) -> Reply:
    return completion(tool_call("write_file", {"path": f"notes/{n}.txt", "content": f"note {n}"}, f"call_{n}"))


FINISH = completion(tool_call("finish", {"summary": "done"}, "call_finish"))


def script(writes: int, *, delay_s: float = 0.0) -> Callable[[dict[str, Any]], Reply]:
    """Per conversation: `writes` write_file turns, then finish (as many runs at once as there are tasks)."""

    def reply(request: dict[str, Any]) -> Reply:
        turn = sum(1 for m in request["messages"] if m["role"] == "assistant")
        answer = write(turn) if turn < writes else FINISH
        answer.delay_s = delay_s
        return answer

    return reply


class Held:
    """A model whose answers wait until the test releases them: the test knows a step is talking to the model,
    and decides when that step may finish."""

    def __init__(self, answer: Callable[[dict[str, Any]], Reply]) -> None:
        self.answer, self.asked, self.released = answer, threading.Event(), threading.Event()

    def __call__(self, request: dict[str, Any]) -> Reply:
        self.asked.set()
        self.released.wait(30)  # bounded: a test that forgets to release fails on its own assertions, not here
        return self.answer(request)

    def wait_asked(self) -> None:
        assert self.asked.wait(30), "no step asked the model"


class Runs:
    """Starts runs over the API and delivers the executions' status changes, as the dev server's watcher does."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.router = EventRouter(TEMPLATE).create()
        self.events = ExecutionEvents(TEMPLATE)
        self.configure()

    def configure(self, *, limit_s: int = 3600) -> None:
        """The template's definition with short retry intervals (and, for the timeout test, a short ceiling)."""
        props = TEMPLATE.of_type("AWS::Serverless::StateMachine")[MACHINE]
        definition = state_machine_definition(TEMPLATE, props)
        definition = definition.replace('"IntervalSeconds": 2', '"IntervalSeconds": 1')
        definition = definition.replace('"TimeoutSeconds": 3600', f'"TimeoutSeconds": {limit_s}')
        aws.client("stepfunctions").update_state_machine(
            stateMachineArn=get_settings().state_machine_arn, definition=definition
        )

    def task(self, **additional: Any) -> str:
        body = {"input": "Write notes", "additional_input": additional}
        return str(self.api("POST", "/tasks", json_body=body).json()["task_id"])

    def start(self, task_id: str, **body: Any) -> Any:
        return self.api("POST", f"/tasks/{task_id}/run", json_body=body or None)

    def deliver(self) -> None:
        self.events.poll()
        self.router.drain()

    def run(self, task_id: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/tasks/{task_id}/run").json())

    def wait_ended(self, task_id: str, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.deliver()
            run = self.run(task_id)
            if run["status"] != "running":
                return run
            time.sleep(0.05)
        raise AssertionError(f"the run of {task_id} did not end: {self.run(task_id)}")

    def settle(self) -> None:
        """Until every execution has ended and every status change has been handled."""
        sfn, deadline = aws.client("stepfunctions"), time.monotonic() + 60
        while sfn.list_executions(stateMachineArn=get_settings().state_machine_arn, statusFilter="RUNNING")[
            "executions"
        ]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        self.deliver()

    def active(self) -> int:
        return int(get_table().counters().get("runs_active", 0))

    def execution(self, run_id: str) -> dict[str, Any]:
        return dict(aws.client("stepfunctions").describe_execution(executionArn=orchestration.execution_arn(run_id)))

    def steps(self, task_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/tasks/{task_id}/steps", query={"size": 100}).json()["steps"])


@pytest.fixture
def runs_api(api: Any, model_api: Any) -> Iterator[Runs]:
    helper = Runs(api)
    yield helper
    helper.settle()
    assert helper.active() == 0, "a slot was not given back"


def test_a_run_takes_steps_until_the_agent_finishes(runs_api: Runs, model_api: Any) -> None:
    model_api.side_effect = script(2)
    task_id = runs_api.task()

    started = runs_api.start(task_id)
    running = runs_api.api("GET", f"/tasks/{task_id}").json()["status"]
    run = runs_api.wait_ended(task_id)

    assert started.status == 202
    assert started.json()["status"] == "running" and started.json()["task_id"] == task_id
    assert running == "running"
    assert run == {**run, "status": "completed", "steps": 3, "max_steps": 20, "reason": None}
    assert run["ended_at"] >= run["started_at"]
    steps = runs_api.steps(task_id)
    assert [s["name"] for s in steps] == ["write_file", "write_file", "finish"]
    assert [s["is_last"] for s in steps] == [False, False, True]
    assert runs_api.api("GET", f"/tasks/{task_id}").json()["status"] == "completed"
    assert runs_api.active() == 0
    # What the steps cost the state machine (Standard workflows bill transitions): the runner's invocation (900 s)
    # took the three steps, so one RunStep, the Choice after it, and the Succeed state at the end.
    history = aws.client("stepfunctions").get_execution_history(
        executionArn=orchestration.execution_arn(started.json()["run_id"]), maxResults=1000
    )["events"]
    entered = [e["type"] for e in history if e["type"].endswith("StateEntered")]
    assert entered == ["TaskStateEntered", "ChoiceStateEntered", "SucceedStateEntered"]


def test_auto_run_starts_the_run_when_the_task_is_created(runs_api: Runs, model_api: Any) -> None:
    model_api.side_effect = script(0)

    created = runs_api.api("POST", "/tasks", json_body={"input": "go", "additional_input": {"auto_run": True}})
    run = runs_api.wait_ended(created.json()["task_id"])

    assert created.status == 200 and created.json()["status"] == "running"
    assert run["status"] == "completed" and run["steps"] == 1


def test_the_step_budget_ends_a_run_that_does_not_finish(runs_api: Runs, model_api: Any) -> None:
    model_api.side_effect = script(1000)
    task_id = runs_api.task(max_steps=3)

    runs_api.start(task_id)
    run = runs_api.wait_ended(task_id)

    assert run["status"] == "failed" and run["steps"] == 3 and run["max_steps"] == 3
    assert "step budget (3 steps)" in run["reason"]
    assert len(runs_api.steps(task_id)) == 3
    assert runs_api.api("GET", f"/tasks/{task_id}").json()["status"] == "failed"
    # The request's budget wins over the task's; the ceiling is enforced
    model_api.side_effect = script(1000)
    again = runs_api.start(task_id, max_steps=2)
    assert again.status == 202 and runs_api.wait_ended(task_id)["steps"] == 2
    assert runs_api.start(task_id, max_steps=101).json()["error"]["details"]["ceiling"] == 100


def test_a_transient_model_failure_is_retried_by_the_state_machine(runs_api: Runs, model_api: Any) -> None:
    # The openai client tries three times (OPENAI_MAX_RETRIES=2 here), then the step fails; the state machine
    # runs it again (Retry on OpenAIAPIError), and the model answers.
    replies = [failure(503)] * 3 + [FINISH]
    model_api.side_effect = lambda request: replies.pop(0)
    task_id = runs_api.task()

    runs_api.start(task_id)
    run = runs_api.wait_ended(task_id)

    assert run["status"] == "completed"
    steps = runs_api.steps(task_id)
    assert [s["name"] for s in steps] == ["model_error", "finish"]  # the failed attempt is on record, once
    assert steps[0]["additional_output"]["error"]["code"] == "OPENAI_API_ERROR"


def test_a_permanent_failure_fails_the_task_with_its_reason(runs_api: Runs, model_api: Any, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_BUDGET_USD", "0")  # spent before the first step: InsufficientResources, not retried
    get_settings.cache_clear()
    task_id = runs_api.task()

    runs_api.start(task_id)
    run = runs_api.wait_ended(task_id)

    assert run["status"] == "failed" and run["reason"].startswith("InsufficientResources: the OpenAI budget is spent")
    assert runs_api.api("GET", f"/tasks/{task_id}").json()["status"] == "failed"
    assert model_api.call_count == 0


def test_a_run_past_its_time_limit_fails_with_the_reason(runs_api: Runs, model_api: Any, monkeypatch) -> None:
    monkeypatch.setenv("RUN_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    model_api.side_effect = script(1000, delay_s=0.4)
    task_id = runs_api.task()

    runs_api.start(task_id)
    run = runs_api.wait_ended(task_id)

    assert run["status"] == "failed" and run["reason"] == "the run exceeded its time limit (1 s)"
    assert run["steps"] < run["max_steps"]  # stopped by the limit, not the budget
    # No step began after the deadline (whole seconds after the start, so at most 2 s after started_at).
    limit = datetime.fromisoformat(run["started_at"]) + timedelta(seconds=2)
    assert all(datetime.fromisoformat(s["created_at"]) < limit for s in runs_api.steps(task_id))


def test_the_state_machines_own_timeout_fails_the_task(runs_api: Runs, model_api: Any) -> None:
    runs_api.configure(limit_s=1)
    model_api.side_effect = script(1000, delay_s=0.3)
    task_id = runs_api.task()

    runs_api.start(task_id)
    run = runs_api.wait_ended(task_id)

    assert run["status"] == "failed" and "time limit" in run["reason"]
    assert runs_api.execution(run["run_id"])["status"] == "TIMED_OUT"


def test_cancel_stops_the_run_and_keeps_the_step_under_way(runs_api: Runs, model_api: Any) -> None:
    model_api.side_effect = held = Held(script(1000))
    task_id = runs_api.task()
    run_id = runs_api.start(task_id).json()["run_id"]
    held.wait_asked()  # the first step is talking to the model

    cancelled = runs_api.api("POST", f"/tasks/{task_id}/cancel")
    held.released.set()
    runs_api.settle()
    steps = wait_until(lambda: [s for s in runs_api.steps(task_id) if s["status"] == "completed"], what="the step")

    assert cancelled.status == 200
    assert cancelled.json() == {**cancelled.json(), "status": "failed", "reason": "cancelled", "run_id": run_id}
    assert runs_api.execution(run_id)["status"] == "ABORTED"
    assert runs_api.api("GET", f"/tasks/{task_id}").json()["status"] == "failed"
    assert len(steps) == 1  # the step under way was kept, and no other began
    assert runs_api.active() == 0
    # The task is free again: a manual step, then another run
    model_api.side_effect = script(0)
    assert runs_api.api("POST", f"/tasks/{task_id}/steps").status == 200
    again = runs_api.api("POST", f"/tasks/{task_id}/cancel")
    assert again.status == 400 and again.json()["error"]["code"] == "INVALID_REQUEST"


def test_deleting_a_task_stops_its_run_and_frees_its_slot(runs_api: Runs, model_api: Any) -> None:
    model_api.side_effect = held = Held(script(1000))
    task_id = runs_api.task()
    run_id = runs_api.start(task_id).json()["run_id"]
    held.wait_asked()

    deleted = runs_api.api("DELETE", f"/tasks/{task_id}")
    held.released.set()
    runs_api.settle()

    assert deleted.status == 200
    # ABORTED on AWS; moto's interpreter reports the error of the step under way (its task gone) after the stop.
    assert runs_api.execution(run_id)["status"] in ("ABORTED", "FAILED")
    assert runs_api.api("GET", f"/tasks/{task_id}").status == 404
    assert runs_api.active() == 0


def test_a_task_with_a_run_refuses_another_run_and_manual_steps(runs_api: Runs, model_api: Any) -> None:
    model_api.side_effect = script(1000, delay_s=0.3)
    task_id = runs_api.task()
    runs_api.start(task_id)

    second = runs_api.start(task_id)
    manual = runs_api.api("POST", f"/tasks/{task_id}/steps", json_body={"input": "me too"})

    for answer in (second, manual):
        assert answer.status == 409 and answer.json()["error"]["code"] == "TASK_ALREADY_RUNNING"
    assert manual.json()["error"]["details"]["run_id"] == runs_api.run(task_id)["run_id"]
    runs_api.api("POST", f"/tasks/{task_id}/cancel")


def test_six_starts_at_once_run_five_and_refuse_one(runs_api: Runs, model_api: Any) -> None:
    model_api.side_effect = script(1000, delay_s=0.3)
    tasks = [runs_api.task() for _ in range(6)]

    with ThreadPoolExecutor(6, initializer=lambda: asyncio.set_event_loop(asyncio.new_event_loop())) as pool:
        answers = list(pool.map(runs_api.start, tasks))

    codes = sorted(a.status for a in answers)
    refused = next(a for a in answers if a.status == 429)
    status = runs_api.api("GET", "/status").json()
    assert codes == [202] * 5 + [429]
    assert refused.json()["error"]["code"] == "INSUFFICIENT_RESOURCES"
    assert refused.json()["error"]["details"]["limit"] == 5
    assert status["active_tasks"] == 5 and runs_api.active() == 5
    refused_task = tasks[answers.index(refused)]
    assert runs_api.api("GET", f"/tasks/{refused_task}").json()["status"] == "created"  # nothing changed
    for task_id, answer in zip(tasks, answers, strict=True):
        if answer.status == 202:
            runs_api.api("POST", f"/tasks/{task_id}/cancel")
    assert runs_api.active() == 0
    assert runs_api.start(refused_task).status == 202  # a slot is free again
    runs_api.api("POST", f"/tasks/{refused_task}/cancel")


def test_auto_run_refused_keeps_the_task_and_says_so(runs_api: Runs, model_api: Any, monkeypatch) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_RUNS", "1")
    get_settings.cache_clear()
    model_api.side_effect = script(1000, delay_s=0.3)
    runs_api.start(runs_api.task())

    refused = runs_api.api("POST", "/tasks", json_body={"input": "later", "additional_input": {"auto_run": True}})

    details = refused.json()["error"]["details"]
    assert refused.status == 429 and "task was created" in details["suggestion"]
    assert runs_api.api("GET", f"/tasks/{details['task_id']}").json()["status"] == "created"


def test_restart_resumes_interrupted_runs_from_their_last_completed_step(runs_api: Runs, model_api: Any) -> None:
    model_api.side_effect = script(4, delay_s=0.3)
    tasks = [runs_api.task(), runs_api.task()]
    first_runs = [runs_api.start(t).json()["run_id"] for t in tasks]
    for task_id in tasks:  # a step or more each before the restart
        wait_until(lambda task_id=task_id: runs_api.steps(task_id), what="a first step")
    before = runs_api.api("GET", "/status").json()["uptime"]

    restarted = runs_api.api("POST", "/restart", headers={"Accept-Language": "zh"})
    ended = [runs_api.wait_ended(t) for t in tasks]

    body = restarted.json()
    assert restarted.status == 200 and body["success"] is True and body["estimated_downtime"].endswith("s")
    assert "智能体已重启" in body["message"] and sorted(body["resumed_tasks"]) == sorted(tasks)
    # Stopped; or failed just before, when a step it began after the hand-over was told its run is no longer current
    assert {runs_api.execution(r)["status"] for r in first_runs} <= {"ABORTED", "FAILED"}
    for task_id, run in zip(tasks, ended, strict=True):
        assert run["status"] == "completed" and run["run_id"] not in first_runs
        steps = runs_api.steps(task_id)
        assert [s["name"] for s in steps] == ["write_file"] * 4 + ["finish"]  # no step lost, none twice
        assert len({s["step_id"] for s in steps}) == 5
    status = runs_api.api("GET", "/status").json()
    assert status["status"] == "running" and status["uptime"] > before
    assert status["active_tasks"] == 0


def _held_by_a_run(runs_api: Runs, run_id: str, max_steps: int) -> dict[str, Any]:
    """A new task held by a run with no execution (the runner is called by the test); returns RunStep's first input."""
    task_id = runs_api.task()
    state = get_table().get_task_state(task_id)
    assert state is not None
    record = RunRecord(run_id, task_id, "running", max_steps=max_steps, base=0, started_at=now_iso(), deadline=2**31)
    runs.store().acquire(state, record, limit=5, now=int(time.time()))
    return {
        "task_id": task_id,
        "run_id": run_id,
        "max_steps": max_steps,
        "deadline": 2**31,
        "done": 0,
        "is_last": False,
    }


def _end(task_id: str) -> None:
    state = get_table().get_task_state(task_id)
    assert state is not None and state.run is not None
    runs.end_run(state, state.run, status="failed", reason="test")


def test_a_retried_run_step_stores_its_step_once(runs_api: Runs, model_api: Any) -> None:
    """What Step Functions does after a lost response: the same RunStep input again. One step, one answer."""
    model_api.side_effect = script(1000)
    run = _held_by_a_run(runs_api, "r-1", max_steps=5)
    task_id = run["task_id"]
    invoke = aws.client("lambda").invoke

    answers = [json.loads(invoke(FunctionName="RunnerFunction", Payload=json.dumps(run))["Payload"].read())]
    answers.append(json.loads(invoke(FunctionName="RunnerFunction", Payload=json.dumps(run))["Payload"].read()))

    # The invocation (900 s) had room for the run's whole budget; its retry answers the same from the stored steps
    assert answers[0] == answers[1] == {**run, "done": 5, "is_last": False}
    assert len(runs_api.steps(task_id)) == 5 and model_api.call_count == 5
    # A run that no longer holds the task is told so by name (the state machine does not retry that)
    stale = invoke(FunctionName="RunnerFunction", Payload=json.dumps({**run, "run_id": "r-0"}))
    assert json.loads(stale["Payload"].read())["errorType"] == "RunNotCurrent"
    _end(task_id)


def test_an_invocation_takes_the_next_step_only_with_room_for_a_whole_one(runs_api: Runs, model_api: Any) -> None:
    # Given a run holding its task, and an invocation whose clock says 300 s left, then 250 s, then 150 s
    model_api.side_effect = script(1000)
    run = _held_by_a_run(runs_api, "r-2", max_steps=10)
    task_id = run["task_id"]
    clock = iter([300_000, 250_000, 150_000])
    room_ms = (get_settings().run_step_lease_s + 10) * 1000
    assert 150_000 < room_ms < 250_000

    # When the runner's code runs with that clock
    after = runs.run_step(run, lambda: next(clock))

    # Then after each step it looked at the clock: 300 s left, another step; 250 s, a third; 150 s, it stopped
    assert after == {**run, "done": 3, "is_last": False}
    assert len(runs_api.steps(task_id)) == 3 and model_api.call_count == 3
    # And without a clock (or with no room), one step an invocation, as before
    assert runs.run_step(after) == {**run, "done": 4, "is_last": False}
    assert runs.run_step({**after, "done": 4}, lambda: 0) == {**run, "done": 5, "is_last": False}
    _end(task_id)


def test_every_end_gives_the_slot_back_once_whatever_arrives_twice(runs_api: Runs, model_api: Any) -> None:
    model_api.side_effect = script(0)
    task_id = runs_api.task()
    run_id = runs_api.start(task_id).json()["run_id"]
    runs_api.wait_ended(task_id)
    ended = runs_api.execution(run_id)
    detail = {k: ended.get(k) for k in ("name", "status", "input", "output")}

    for _ in range(3):  # EventBridge delivers at least once
        runs.on_execution_status(detail)
    runs.store().release(run_id)

    assert runs_api.active() == 0
    assert runs_api.run(task_id)["status"] == "completed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"additional_input": {"auto_run": "yes"}}, "additional_input.auto_run"),
        ({"additional_input": {"max_steps": 0}}, "additional_input.max_steps"),
        ({"additional_input": {"max_steps": 1.5}}, "additional_input.max_steps"),
        ({"additional_input": {"max_steps": True}}, "additional_input.max_steps"),
    ],
)
def test_run_options_are_checked_when_the_task_is_created(api: Any, body: dict[str, Any], field: str) -> None:
    answer = api("POST", "/tasks", json_body={"input": "x", **body})

    assert answer.status == 400 and answer.json()["error"]["details"]["field"] == field
    assert api("GET", "/tasks").json()["pagination"]["total"] == 0


def test_run_routes_answer_clear_errors(api: Any) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    task_id = api("POST", "/tasks", json_body={"input": "x"}).json()["task_id"]

    assert api("POST", f"/tasks/{unknown}/run").json()["error"]["code"] == "TASK_NOT_FOUND"
    assert api("POST", f"/tasks/{unknown}/cancel").status == 404
    never_run = api("GET", f"/tasks/{task_id}/run")
    assert never_run.status == 404 and never_run.json()["error"]["code"] == "RUN_NOT_FOUND"
    assert never_run.json()["error"]["details"]["suggestion"].startswith("POST")
    assert api("POST", f"/tasks/{task_id}/run", json_body={"max_steps": "many"}).status == 400
    assert api("POST", f"/tasks/{task_id}/run", json_body={"steps": 3}).status == 400  # unknown field
    assert api("PUT", f"/tasks/{task_id}/run").status == 405
    assert api("DELETE", "/status").header("allow") == "GET, HEAD, OPTIONS"


def test_ends_arriving_together_give_the_slot_back_once(runs_api: Runs, model_api: Any) -> None:
    """A cancel, the execution's end event delivered twice and a restart, all at once on the same runs."""
    model_api.side_effect = script(1000, delay_s=0.2)
    tasks = [runs_api.task() for _ in range(3)]
    run_ids = [runs_api.start(t).json()["run_id"] for t in tasks]
    seen: list[int] = []

    def end(i: int) -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        task_id, run_id = tasks[i % 3], run_ids[i % 3]
        if i < 3:
            runs_api.api("POST", f"/tasks/{task_id}/cancel")
        elif i < 9:
            runs.on_execution_status({"name": run_id, "status": "ABORTED", "input": json.dumps({"task_id": task_id})})
        else:
            runs.store().release(run_id)
        seen.append(runs_api.active())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(end, range(12)))
    runs_api.settle()

    assert min(seen) >= 0 and runs_api.active() == 0
    assert {runs_api.run(t)["status"] for t in tasks} == {"failed"}


def test_a_cancel_right_after_the_start_stops_the_execution(runs_api: Runs, model_api: Any, monkeypatch) -> None:
    """Step Functions accepts a stop at once; moto's interpreter had a gap (the execution RUNNING, its worker not
    yet started) where a stop raised, and another (its environment made, its first state not begun) where a stop
    was lost and the execution ran on. The first gap is held open here until the stop arrives, the second until
    the stop is done: the execution ends ABORTED with no state run."""
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    stopping, stopped = threading.Event(), threading.Event()
    parse, stop = ExecutionWorker._get_evaluation_entrypoint, Execution.stop
    environment = ExecutionWorker._get_evaluation_environment

    def parse_once_stopping(worker: Any) -> Any:
        assert stopping.wait(30), "no stop came"
        return parse(worker)

    def environment_until_stopped(worker: Any) -> Any:
        made = environment(worker)  # the stop, waiting for it, goes on now
        assert stopped.wait(30), "the stop did not end"
        return made

    def stop_and_let_it_parse(execution: Any, **kwargs: Any) -> None:
        stopping.set()
        stop(execution, **kwargs)
        stopped.set()

    monkeypatch.setattr(ExecutionWorker, "_get_evaluation_entrypoint", parse_once_stopping)
    monkeypatch.setattr(ExecutionWorker, "_get_evaluation_environment", environment_until_stopped)
    monkeypatch.setattr(Execution, "stop", stop_and_let_it_parse)
    model_api.side_effect = script(1000)
    task_id = runs_api.task()
    run_id = runs_api.start(task_id).json()["run_id"]

    cancelled = runs_api.api("POST", f"/tasks/{task_id}/cancel")
    runs_api.settle()

    assert cancelled.status == 200 and cancelled.json()["reason"] == "cancelled"
    assert runs_api.execution(run_id)["status"] == "ABORTED"
    assert runs_api.steps(task_id) == [] and model_api.call_count == 0
    assert runs_api.active() == 0


def test_a_cancel_ends_the_run_when_step_functions_refuses_the_stop(runs_api: Runs, model_api: Any) -> None:
    """Whatever StopExecution answers, the cancel answers 200, the run ends cancelled and its slot is free; the
    execution the stop did not reach ends at its next step."""
    model_api.side_effect = held = Held(script(1000))
    task_id = runs_api.task()
    run_id = runs_api.start(task_id).json()["run_id"]
    held.wait_asked()
    refuse = RefuseStop()
    aws.client("stepfunctions").meta.events.register("before-call.sfn.StopExecution", refuse)

    cancelled = runs_api.api("POST", f"/tasks/{task_id}/cancel")
    active = runs_api.active()
    held.released.set()
    runs_api.settle()

    assert refuse.calls >= 1  # the stop was asked for, and refused
    assert cancelled.status == 200 and cancelled.json()["status"] == "failed"
    assert cancelled.json()["reason"] == "cancelled" and active == 0
    assert runs_api.execution(run_id)["status"] == "FAILED"  # its next step found the run no longer current
    run = runs_api.run(task_id)
    assert (run["status"], run["reason"]) == ("failed", "cancelled")
    assert len(runs_api.steps(task_id)) == 1  # the step under way was kept, and no other began
    assert runs_api.api("GET", f"/tasks/{task_id}").json()["status"] == "failed"


class RefuseStop:
    """A botocore before-call handler: Step Functions answers StopExecution with a 500."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        from botocore.awsrequest import AWSResponse

        self.calls += 1
        error = {"Error": {"Code": "InternalFailure", "Message": "refused by the test"}}
        return AWSResponse("https://states.test", 500, {}, None), {**error, "ResponseMetadata": {"HTTPStatusCode": 500}}


def test_watchers_are_told_when_a_run_ends(runs_api: Runs, model_api: Any) -> None:
    from tests.integration.test_push import received, ws

    model_api.side_effect = script(1)
    done, cancelled = runs_api.task(), runs_api.task()
    assert ws("$connect", "watch-done", query={"task_id": done}) == 200
    assert ws("$connect", "watch-cancelled", query={"task_id": cancelled}) == 200

    runs_api.start(done)
    runs_api.wait_ended(done)
    model_api.side_effect = held = Held(script(1000))
    runs_api.start(cancelled)
    held.wait_asked()
    runs_api.api("POST", f"/tasks/{cancelled}/cancel")
    held.released.set()
    runs_api.settle()

    ends = {
        cid: [(m["status"], m["current_step"]) for m in received(cid) if (m["current_step"] or "").startswith("run ")]
        for cid in ("watch-done", "watch-cancelled")
    }
    assert ends["watch-done"] == [("running", "run started"), ("completed", "run completed")]
    assert ends["watch-cancelled"] == [("running", "run started"), ("failed", "run failed: cancelled")]


def test_a_restart_keeps_the_runs_step_budget(runs_api: Runs, model_api: Any) -> None:
    second_asked, restarted = threading.Event(), threading.Event()
    never_done = script(1000)

    def model(request: dict[str, Any]) -> Reply:
        if model_api.call_count == 2:  # the run's second step: held until the restart has happened
            second_asked.set()
            restarted.wait(30)
        return never_done(request)

    model_api.side_effect = model
    task_id = runs_api.task()
    first = runs_api.start(task_id, max_steps=3).json()["run_id"]
    assert second_asked.wait(30), "the run's second step never asked the model"

    resumed = runs_api.api("POST", "/restart").json()["resumed_tasks"]
    restarted.set()
    run = runs_api.wait_ended(task_id)

    assert resumed == [task_id] and run["run_id"] != first
    assert run["status"] == "failed" and run["reason"].startswith("the run's step budget (3 steps)")
    assert len(runs_api.steps(task_id)) == 3  # the budget counts the steps taken before the restart too
