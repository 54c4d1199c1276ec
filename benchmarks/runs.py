"""What one agent step of a run costs: state transitions, Lambda invocations, DynamoDB and S3 calls, the run's
overhead in milliseconds, and the AWS bill at list prices. Runs the real state machine definition on moto's
interpreter (in-process), the real runner and run_events functions, with the model mocked by a local
OpenAI-compatible server (write_file turns, then finish).

Usage: python -m benchmarks.runs [--steps 10] [--model-latency-s 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any

from benchmarks.local_model import send_completion, serve
from devserver.template import Template

# us-east-1 list prices (USD): Step Functions Standard per transition, Lambda per request, DynamoDB on-demand per
# write and read request unit, S3 Standard per PUT and per GET; Lambda per GB-second by the template's architecture.
GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
PRICES = {
    "transition": 0.025 / 1000,
    "invocation": 0.20 / 1_000_000,
    "wru": 0.625 / 1_000_000,
    "rru": 0.125 / 1_000_000,
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
}


class Model(BaseHTTPRequestHandler):
    """write_file for every turn but the last, which finishes; the turn is the conversation's assistant count."""

    steps = 10

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
        if turn < self.steps - 1:
            call = {"name": "write_file", "arguments": json.dumps({"path": f"notes/{turn}.md", "content": "x" * 500})}
        else:
            call = {"name": "finish", "arguments": json.dumps({"summary": "done"})}
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "type": "function", "function": call}],
        }
        send_completion(self, body["model"], message, 800, 60)


def _units(operation: str, params: dict[str, Any]) -> tuple[float, float]:
    """(write units, read units) of one DynamoDB call, counting items as under 1 KB written and 4 KB read (a
    transaction doubles its writes); steps with long outputs cost more."""
    if operation == "TransactWriteItems":
        return 2.0 * len(params["TransactItems"]), 0.0
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return 1.0, 0.0
    if operation == "BatchWriteItem":
        return float(sum(len(v) for v in params["RequestItems"].values())), 0.0
    return 0.0, 1.0


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--model-latency-s", type=float, default=3.0, help="a model turn, for the bill (not slept)")
    args = parser.parse_args(argv)
    Model.steps = args.steps
    template = Template()
    server = serve(Model, template)
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        from devserver.lambdas import route_invokes
        from devserver.resources import create_resources

        create_resources(template)
        route_invokes(template)
        figures = measure(template, args.steps)
    server.shutdown()
    report(figures, args.steps, args.model_latency_s, template)
    return figures


def measure(template: Template, steps: int) -> dict[str, float]:
    from agent_core import aws, orchestration
    from devserver import apigw
    from devserver.events import EventRouter
    from devserver.executions import ExecutionEvents
    from devserver.gateway import load_handler

    asyncio.set_event_loop(asyncio.new_event_loop())
    routes = {(r.method, r.path): r for r in template.routes()}
    create = load_handler(routes[("POST", "/ap/v1/agent/tasks")])
    start_route = routes[("POST", "/ap/v1/agent/tasks/{task_id}/run")]
    start = load_handler(start_route)
    router, watcher = EventRouter(template).create(), ExecutionEvents(template)
    calls: Counter[str] = Counter()
    units = {"wru": 0.0, "rru": 0.0}

    def count(model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        calls[f"{service}:{model.name}"] += 1
        if service == "dynamodb":
            wru, rru = _units(model.name, params)
            units["wru"] += wru
            units["rru"] += rru

    for service in ("dynamodb", "s3"):
        aws.client(service).meta.events.register(f"before-parameter-build.{service}.*", count)
    body = json.dumps({"input": "Write the notes"}).encode()
    headers = {"content-type": "application/json"}
    event = apigw.rest_event(
        method="POST", path="/ap/v1/agent/tasks", resource="/ap/v1/agent/tasks", headers=headers, body=body
    )
    task_id = json.loads(create(event, apigw.LambdaContext())["body"])["task_id"]
    calls.clear()
    units.update(wru=0.0, rru=0.0)
    path = f"/ap/v1/agent/tasks/{task_id}/run"
    event = apigw.rest_event(method="POST", path=path, resource=start_route.path, path_parameters={"task_id": task_id})
    began = time.perf_counter()
    run_id = json.loads(start(event, apigw.LambdaContext())["body"])["run_id"]
    sfn, arn = aws.client("stepfunctions"), orchestration.execution_arn(run_id)
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        time.sleep(0.005)
    elapsed_ms = (time.perf_counter() - began) * 1000
    watcher.poll()
    router.drain()  # the run's end: the run_events function
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    scheduled = [e["timestamp"] for e in history if e["type"] == "LambdaFunctionScheduled"]
    returned = [e["timestamp"] for e in history if e["type"] == "LambdaFunctionSucceeded"]
    in_runner = [(b - a).total_seconds() * 1000 for a, b in zip(scheduled, returned, strict=False)]
    return {
        "runner_ms": sum(in_runner),
        "first_step_ms": in_runner[0],
        "warm_step_ms": statistics.median(in_runner[1:] or in_runner),
        "status_ok": float(sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"),
        "transitions": sum(1 for e in history if e["type"].endswith("StateEntered")),
        "invocations": sum(1 for e in history if e["type"] == "LambdaFunctionScheduled") + 1,  # + run_events
        "ddb_calls": sum(n for k, n in calls.items() if k.startswith("dynamodb:")),
        "s3_puts": sum(n for k, n in calls.items() if k in ("s3:PutObject",)),
        "s3_gets": sum(n for k, n in calls.items() if k in ("s3:GetObject", "s3:HeadObject")),
        "wru": units["wru"],
        "rru": units["rru"],
        "run_ms": elapsed_ms,
        "calls": json.dumps(dict(sorted(calls.items()))),  # type: ignore[dict-item]
    }


def report(f: dict[str, Any], steps: int, model_s: float, template: Template) -> None:
    runner = template.of_type("AWS::Serverless::Function")["RunnerFunction"]
    runner_mb = int(runner["MemorySize"])
    arch = (runner.get("Architectures") or template.global_function("Architectures") or ["x86_64"])[0]
    per = {
        k: float(v) / steps for k, v in f.items() if k not in ("calls", "status_ok", "first_step_ms", "warm_step_ms")
    }
    lambda_s = model_s + f["warm_step_ms"] / 1000  # a warm runner: the cold start is once per container
    cost = {
        "state transitions": per["transitions"] * PRICES["transition"],
        f"Lambda ({runner_mb} MB {arch} x {lambda_s:.2f} s)": runner_mb / 1024 * lambda_s * GB_SECOND[arch]
        + per["invocations"] * PRICES["invocation"],
        "DynamoDB": per["wru"] * PRICES["wru"] + per["rru"] * PRICES["rru"],
        "S3": per["s3_puts"] * PRICES["s3_put"] + per["s3_gets"] * PRICES["s3_get"],
    }
    print(f"A run of {steps} steps (write_file x{steps - 1}, finish), in-process moto, model answering at once:\n")
    print(f"{'per agent step':<32}{'':>12}")
    print(f"{'state transitions':<32}{per['transitions']:>12.2f}   (RunStep + Continue; one Succeed per run)")
    print(f"{'Lambda invocations':<32}{per['invocations']:>12.2f}   (the runner; run_events once per run)")
    print(f"{'DynamoDB calls':<32}{per['ddb_calls']:>12.2f}   ({per['wru']:.1f} WRU, {per['rru']:.1f} RRU)")
    print(f"{'S3 PUT / GET':<32}{per['s3_puts']:>8.2f} / {per['s3_gets']:.2f}")
    print(f"{'overhead ms (moto, no model)':<32}{per['run_ms']:>12.1f}   ({per['runner_ms']:.1f} in the runner's "
          f"invocation, the rest moto's interpreter)")  # fmt: skip
    print(f"{'  the runner, first step (cold)':<32}{f['first_step_ms']:>12.1f}")
    print(f"{'  the runner, later steps':<32}{f['warm_step_ms']:>12.1f}   (median)")
    print(f"\nAWS cost of one step at list prices (us-east-1), the model taking {model_s:g} s:")
    for name, usd in cost.items():
        print(f"  {name:<36}${usd:.8f}")
    total = sum(cost.values())
    print(f"  {'total':<36}${total:.8f}   (${total * 1000:.4f} per 1,000 steps; model tokens not included)")
    share = next(v for k, v in cost.items() if k.startswith("Lambda")) / total
    print(f"\nLambda GB-seconds, mostly spent waiting on the model, are {share:.0%} of it: the runner gets")
    print(f"{runner_mb} MB (the API's steps function 1024), run_python's code is billed in the sandbox function only")
    print("while it runs,")
    print("and each step is its own invocation, so no Lambda waits between steps. Transitions cost more: a Standard")
    print("workflow is what a run of up to an hour needs (Express stops at 5 minutes).")
    print(f"calls: {f['calls']}")


if __name__ == "__main__":
    main()
