"""Warm requests: what a request costs a function once its container is warm, next to a bare FastAPI + Mangum +
boto3 handler that makes the very same AWS calls (recorded from the function, replayed with the same parameters).

For each API function, its first GET route of a task (a task that exists), and for the tasks function a POST that
creates a task. Each target runs in a fresh interpreter against a moto server (benchmarks.cold_start's), answers the
request once (the cold path, not counted), then `--count` more times. Where valgrind is installed, the instructions
of a warm request are counted under cachegrind: the process run with `--count` warm requests minus the same process
with none, divided by `--count` (the same figure, to a few in a million, on every run). Times (median of the warm
requests, perf_counter) are printed too, but drift on a shared machine.

Usage: python -m benchmarks.warm [--count 20] [--no-instructions]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from benchmarks.cold_start import Target, _base_env, function_targets, instructions_executed, local_aws
from devserver import apigw
from devserver.template import Template

# In the fresh interpreter: the handler answers the event once, then `count` times more; prints each warm request's
# time. With WARM_RECORD set, it prints the AWS calls of the last request instead (operation and parameters).
PROBE = """
import importlib, json, os, sys, time
paths, module, attr = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
event, count = json.loads(sys.argv[4]), int(sys.argv[5])
sys.path[:0] = paths
recorded = []
if os.environ.get("WARM_RECORD"):
    import botocore.client
    original = botocore.client.BaseClient._make_api_call
    def recording(self, operation, params):
        recorded.append([self.meta.service_model.service_name, operation, params])
        return original(self, operation, params)
    botocore.client.BaseClient._make_api_call = recording
handler = getattr(importlib.import_module(module), attr)
class Context:  # what Lambda passes, as far as Mangum and Powertools read it
    function_name, memory_limit_in_mb, aws_request_id = "warm", 512, "warm-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:warm"
    def get_remaining_time_in_millis(self):
        return 29000
statuses, times = [handler(event, Context())["statusCode"]], []
for _ in range(count):
    recorded.clear()
    started = time.perf_counter()
    statuses.append(handler(event, Context())["statusCode"])
    times.append((time.perf_counter() - started) * 1000)
print(json.dumps({"statuses": statuses, "times_ms": times, "calls": recorded}, default=str))
"""

# The baseline: one route per request measured, making the calls the function made (recorded), with one client per
# service made at the first request, as the functions do. A POST's task id is replaced by a new one each time, so
# its conditional put succeeds as the function's does.
BARE_APP = '''"""The baseline: FastAPI, Mangum and boto3, replaying the function's AWS calls."""
import json
import uuid

import boto3
from fastapi import FastAPI, Request
from mangum import Mangum

CALLS = json.loads(open(__file__.replace(".py", ".json")).read())
app = FastAPI()
clients = {}


def replay(calls, task_id=None):
    for service, operation, params in calls:
        client = clients.get(service) or clients.setdefault(service, boto3.client(service))
        if task_id:
            params = json.loads(json.dumps(params).replace(CALLS["task_id"], task_id))
        client._make_api_call(operation, params)


@app.get("/ap/v1/agent/tasks/{task_id}")
def read(task_id: str) -> dict[str, str]:
    replay(CALLS["calls"])
    return {"task_id": task_id}


@app.post("/ap/v1/agent/tasks")
async def create(request: Request) -> dict[str, str]:
    await request.json()
    task_id = str(uuid.uuid4())
    replay(CALLS["calls"], task_id)
    return {"task_id": task_id}


handler = Mangum(app, lifespan="off")
'''


@dataclass
class Case:
    """One request of one function, and its bare twin."""

    function: Target
    method: str
    event: dict[str, Any]
    bare: Target | None = None
    bare_event: dict[str, Any] = field(default_factory=dict)
    times_ms: dict[str, float] = field(default_factory=dict)  # by target name: median warm request
    instructions: dict[str, float] = field(default_factory=dict)  # by target name: per warm request


def _probe(
    target: Target, event: dict[str, Any], count: int, *, record: bool = False, wrapper: tuple[str, ...] = ()
) -> tuple[dict[str, Any], str]:
    module, attr = target.handler.rsplit(".", 1)
    env = {**target.env, **target.aws, **({"WARM_RECORD": "1"} if record else {})}
    if wrapper:
        env["PYTHONMALLOC"] = "malloc"  # what valgrind needs to follow Python's allocations
    done = subprocess.run(
        [*wrapper, sys.executable, "-c", PROBE, json.dumps(target.paths), module, attr, json.dumps(event), str(count)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{target.name}: the probe failed\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if any(status >= 500 for status in result["statuses"]):
        raise RuntimeError(f"{target.name}: a request failed {result['statuses']}\n{done.stderr[-3000:]}")
    return result, done.stderr


def _seed_task(target: Target) -> str:
    """A task the GETs read: made by the tasks function itself, through its POST route."""
    _probe(target, _post(), 0)
    items = boto3.client("dynamodb").scan(TableName=Template().physical_name("AgentTable"))["Items"]
    return next(i["PK"]["S"].removeprefix("TASK#") for i in items if i["SK"]["S"] == "TASK")


def _post() -> dict[str, Any]:
    body = json.dumps({"input": "Write a poem", "additional_input": {}}).encode()
    headers = {"content-type": "application/json", "accept": "application/json", "host": "api.example.com"}
    resource = "/ap/v1/agent/tasks"
    return apigw.rest_event(method="POST", path=resource, resource=resource, headers=headers, body=body)


def _get(resource: str, task_id: str) -> dict[str, Any]:
    path = resource.replace("{task_id}", task_id)
    headers = {"accept": "application/json", "host": "api.example.com"}
    return apigw.rest_event(
        method="GET", path=path, resource=resource, path_parameters={"task_id": task_id}, headers=headers
    )


def cases(directory: Path, targets: list[Target]) -> list[Case]:
    template = Template()
    by_name = {t.name: t for t in targets}
    tasks = by_name["TasksFunction"]
    task_id = _seed_task(tasks)
    out = [Case(tasks, "POST /tasks", _post())]
    for target in targets:
        route = next(
            (
                r
                for r in template.routes()
                if r.function == target.name and r.method == "GET" and set(r.pattern.groupindex) == {"task_id"}
            ),
            None,
        )
        if route is not None:
            # (a 404 is an answer too: the agent's GET .../run of a task that never ran)
            out.append(Case(target, f"GET {route.path.removeprefix('/ap/v1/agent')}", _get(route.path, task_id)))
    for n, case in enumerate(out):
        recorded, _ = _probe(case.function, case.event, 1, record=True)
        made = recorded["calls"]
        created = next((json.dumps(c) for c in made if c[1] == "TransactWriteItems"), "")
        new_id = next((w for w in created.replace('"', " ").replace("#", " ").split() if _is_uuid(w)), "")
        app = directory / f"bare{n}.py"
        app.write_text(BARE_APP)
        app.with_suffix(".json").write_text(json.dumps({"calls": made, "task_id": new_id}))
        case.bare_event = (
            case.event if case.method.startswith("POST") else _get("/ap/v1/agent/tasks/{task_id}", task_id)
        )
        case.bare = Target(
            name=f"bare ({len(made)} calls)",
            handler=f"bare{n}.handler",
            paths=[str(directory)],
            env={**_base_env()},
            label="replay",
            request=case.bare_event,
            aws=case.function.aws,
        )
    return out


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def measure(case: Case, count: int, instructions: bool) -> None:
    assert case.bare is not None
    for target, event in ((case.bare, case.bare_event), (case.function, case.event)):
        result, _ = _probe(target, event, count)
        case.times_ms[target.name] = statistics.median(result["times_ms"])
        if instructions:
            grind = ("valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null")
            none = instructions_executed(_probe(target, event, 0, wrapper=grind)[1])
            many = instructions_executed(_probe(target, event, count, wrapper=grind)[1])
            case.instructions[target.name] = (many - none) / count


def report(found: list[Case], count: int) -> str:
    lines = [
        f"Warm requests: median of {count} after the first (ms), and instructions per warm request (cachegrind: "
        f"{count} requests minus none, over {count}), next to a bare FastAPI + Mangum + boto3 handler making the "
        "same AWS calls",
        f"{'request':<34} {'function':<18} {'ms':>7} {'bare ms':>8} {'instructions':>13} {'bare':>11} {'ratio':>7}",
    ]
    for case in found:
        assert case.bare is not None
        f, b = case.function.name, case.bare.name
        mine, bare = case.instructions.get(f), case.instructions.get(b)
        counted = f"{mine / 1e6:>11.2f} M {bare / 1e6:>9.2f} M {mine / bare:>6.2f}x" if mine and bare else ""
        lines.append(f"{case.method:<34} {f:<18} {case.times_ms[f]:>7.2f} {case.times_ms[b]:>8.2f} {counted}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.warm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20, help="warm requests per run (default 20)")
    parser.add_argument("--no-instructions", dest="instructions", action="store_false", help="skip valgrind")
    args = parser.parse_args(argv)
    counting = args.instructions and shutil.which("valgrind") is not None
    with tempfile.TemporaryDirectory(prefix="warm-") as tmp, local_aws() as variables:
        targets = [t for t in function_targets() if t.request]
        for target in targets:
            target.aws = variables
        found = cases(Path(tmp), targets)
        for case in found:
            measure(case, args.count, counting)
        table = report(found, args.count)
    if args.instructions and not counting:
        table += "\n(instructions not counted: valgrind is not installed)"
    print(table)
    return table


if __name__ == "__main__":
    main()
