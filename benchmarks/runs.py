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
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any

import boto3

from benchmarks.local_model import send_completion, serve
from devserver.template import Template

# us-east-1 list prices (USD): Step Functions Standard per transition, Lambda per request, DynamoDB on-demand per
# write and read request unit, S3 Standard per PUT and per GET; Lambda per GB-second by the template's architecture.
GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
FULL_CPU_MB = 1769  # Lambda's memory setting at which a function gets one full vCPU
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


# The table's indexes (template.yaml) by the attributes that put an item in them: every write that adds, changes or
# removes an item's entry costs a write unit there too (2 when it moves the entry: a delete and a put).
INDEXES = {"ByRef (LSI)": ("REF",), "ByCreated": ("GSI1PK", "GSI1SK"), "ByStatus": ("GSI2PK", "GSI2SK")}


def _written_keys(operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The keys of the items a DynamoDB write call writes."""
    if operation == "PutItem":
        return [{k: params["Item"][k] for k in ("PK", "SK")}]
    if operation in ("UpdateItem", "DeleteItem"):
        return [params["Key"]]
    if operation == "TransactWriteItems":
        out = []
        for item in params["TransactItems"]:
            (kind, body), *_ = item.items()
            if kind != "ConditionCheck":
                out.append({k: body["Item"][k] for k in ("PK", "SK")} if kind == "Put" else body["Key"])
        return out
    if operation == "BatchWriteItem":
        requests = [r for rs in params["RequestItems"].values() for r in rs]
        return [r["PutRequest"]["Item"] if "PutRequest" in r else r["DeleteRequest"]["Key"] for r in requests]
    return []


def _index_units(before: dict[str, Any], after: dict[str, Any]) -> float:
    units = 0.0
    for attributes in INDEXES.values():
        old = tuple(before.get(a) for a in attributes)
        new = tuple(after.get(a) for a in attributes)
        had, has = all(old), all(new)
        if had and has:
            units += 1.0 if old == new else 2.0  # an update in place, or a move
        elif had or has:
            units += 1.0
    return units


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
    units = {"wru": 0.0, "rru": 0.0, "index_wru": 0.0}
    # Items read around each write with a client of its own (not counted): what the write did to the indexes.
    reader = boto3.client("dynamodb", region_name=aws.client("dynamodb").meta.region_name)
    table = template.physical_name("AgentTable")
    before: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}  # by operation: keys, their items

    def image(key: dict[str, Any]) -> dict[str, Any]:
        return reader.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item") or {}

    def count(model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        calls[f"{service}:{model.name}"] += 1
        if service == "dynamodb":
            wru, rru = _units(model.name, params)
            units["wru"] += wru
            units["rru"] += rru
            keys = _written_keys(model.name, params)
            before[model.name] = (keys, [image(k) for k in keys])

    def count_indexes(model: Any, **_: Any) -> None:
        keys, old = before.pop(model.name, ([], []))
        units["index_wru"] += sum(_index_units(b, image(k)) for b, k in zip(old, keys, strict=True))

    for service in ("dynamodb", "s3"):
        aws.client(service).meta.events.register(f"before-parameter-build.{service}.*", count)
    aws.client("dynamodb").meta.events.register("after-call.dynamodb.*", count_indexes)
    body = json.dumps({"input": "Write the notes"}).encode()
    headers = {"content-type": "application/json"}
    event = apigw.rest_event(
        method="POST", path="/ap/v1/agent/tasks", resource="/ap/v1/agent/tasks", headers=headers, body=body
    )
    task_id = json.loads(create(event, apigw.LambdaContext())["body"])["task_id"]
    calls.clear()
    units.update(wru=0.0, rru=0.0, index_wru=0.0)
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
        "first_invocation_ms": in_runner[0],
        "status_ok": float(sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"),
        "transitions": sum(1 for e in history if e["type"].endswith("StateEntered")),
        "invocations": sum(1 for e in history if e["type"] == "LambdaFunctionScheduled") + 1,  # + run_events
        "ddb_calls": sum(n for k, n in calls.items() if k.startswith("dynamodb:")),
        "s3_puts": sum(n for k, n in calls.items() if k in ("s3:PutObject",)),
        "s3_gets": sum(n for k, n in calls.items() if k in ("s3:GetObject", "s3:HeadObject")),
        "wru": units["wru"],
        "index_wru": units["index_wru"],
        "rru": units["rru"],
        "run_ms": elapsed_ms,
        "calls": json.dumps(dict(sorted(calls.items()))),  # type: ignore[dict-item]
    }


def report(f: dict[str, Any], steps: int, model_s: float, template: Template) -> None:
    runner = template.of_type("AWS::Serverless::Function")["RunnerFunction"]
    runner_mb = int(runner["MemorySize"])
    arch = (runner.get("Architectures") or template.global_function("Architectures") or ["x86_64"])[0]
    per = {k: float(v) / steps for k, v in f.items() if k not in ("calls", "status_ok", "first_invocation_ms")}
    # The runner's own time a step (moto's calls included: an upper bound), at its memory's share of a vCPU.
    lambda_s = model_s + per["runner_ms"] / 1000 * max(1.0, FULL_CPU_MB / runner_mb)
    cost = {
        "state transitions": per["transitions"] * PRICES["transition"],
        f"Lambda ({runner_mb} MB {arch} x {lambda_s:.2f} s)": runner_mb / 1024 * lambda_s * GB_SECOND[arch]
        + per["invocations"] * PRICES["invocation"],
        "DynamoDB (table, indexes)": (per["wru"] + per["index_wru"]) * PRICES["wru"] + per["rru"] * PRICES["rru"],
        "S3": per["s3_puts"] * PRICES["s3_put"] + per["s3_gets"] * PRICES["s3_get"],
    }
    print(f"A run of {steps} steps (write_file x{steps - 1}, finish), in-process moto, model answering at once:\n")
    print(f"{'per agent step':<32}{'':>12}")
    print(f"{'state transitions':<32}{per['transitions']:>12.2f}   (RunStep + Continue an invocation; Succeed)")
    print(f"{'Lambda invocations':<32}{per['invocations']:>12.2f}   (the runner: steps while it has time; run_events)")
    print(f"{'DynamoDB calls':<32}{per['ddb_calls']:>12.2f}   ({per['wru']:.1f} WRU on the table, "
          f"{per['index_wru']:.1f} on its indexes, {per['rru']:.1f} RRU)")  # fmt: skip
    print(f"{'S3 PUT / GET':<32}{per['s3_puts']:>8.2f} / {per['s3_gets']:.2f}")
    print(f"{'overhead ms (moto, no model)':<32}{per['run_ms']:>12.1f}   ({per['runner_ms']:.1f} in the runner's "
          f"invocations, the rest moto's interpreter)")  # fmt: skip
    print(f"{'  the first invocation':<32}{f['first_invocation_ms']:>12.1f}   (cold)")
    print(f"\nAWS cost of one step at list prices (us-east-1), the model taking {model_s:g} s:")
    for name, usd in cost.items():
        print(f"  {name:<36}${usd:.8f}")
    total = sum(cost.values())
    print(f"  {'total':<36}${total:.8f}   (${total * 1000:.4f} per 1,000 steps; model tokens not included)")
    share = next(v for k, v in cost.items() if k.startswith("Lambda")) / total
    print(f"\nLambda GB-seconds, mostly spent waiting on the model, are {share:.0%} of it: the runner gets")
    print(f"{runner_mb} MB (the API's steps function 1024), run_python's code is billed in the sandbox function only")
    print("while it runs,")
    print("and an invocation takes the run's steps one after another while it has time for a whole step, so a")
    print("step costs no state transition of its own: a Standard workflow (what a run of up to an hour needs; Express")
    print("stops at 5 minutes) bills each.")
    print(f"\nThe runner's memory (power-tuned on paper: Lambda gives a full vCPU at {FULL_CPU_MB} MB, a share below;")
    print(f"the runner's own {per['runner_ms']:.0f} ms a step, measured here on one core with moto in-process, is an")
    print("upper bound):")
    others = total - cost[next(k for k in cost if k.startswith("Lambda"))]
    for mb in (256, 384, 512, 1024):
        seconds = model_s + per["runner_ms"] / 1000 * max(1.0, FULL_CPU_MB / mb)
        usd = mb / 1024 * seconds * GB_SECOND[arch] + per["invocations"] * PRICES["invocation"]
        mark = "  <- template.yaml" if mb == runner_mb else ""
        print(f"  {mb:>5} MB  {seconds:6.2f} s a step  ${usd:.8f} Lambda  ${usd + others:.8f} a step{mark}")
    print(f"calls: {f['calls']}")


if __name__ == "__main__":
    main()
