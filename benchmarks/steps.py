"""The non-model overhead of one step: DynamoDB and S3 calls and milliseconds per `POST .../steps`, with the model
mocked by a local OpenAI-compatible server (the real `openai` client still makes the HTTP call, and its time is
measured and subtracted). Runs the steps handler through API-Gateway-shaped events on an in-process moto: the
figures compare tool paths with each other; AWS latencies are higher.

Usage: python -m benchmarks.steps [--repeat 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any

from benchmarks.local_model import send_completion, serve
from devserver.template import Template

SCENARIOS: dict[str, tuple[str, dict[str, Any]]] = {
    "text answer (no tool)": ("", {}),
    "list_files": ("list_files", {}),
    "read_file (CSV)": ("read_file", {"path": "data/sales.csv"}),
    "write_file": ("write_file", {"path": "notes/out.md", "content": "# notes\n" * 50}),
    "run_python": ("run_python", {"code": "print(sum(range(1000)))"}),
    "finish": ("finish", {"summary": "done"}),
}


class ScriptedModel(BaseHTTPRequestHandler):
    """Answers every chat completion with the tool call named in the task's input."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name = body["messages"][1]["content"]
        tool, args = SCENARIOS[name]
        message: dict[str, Any] = {"role": "assistant", "content": "ok"}
        if tool:
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": tool, "arguments": json.dumps(args)}}
                ],
            }
        send_completion(self, body["model"], message, 500, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    template = Template()
    server = serve(ScriptedModel, template)
    from moto import mock_aws

    with mock_aws():
        from devserver.resources import create_resources

        create_resources(template)
        rows = run(template, args.repeat)
    server.shutdown()
    print(f"One step's overhead besides the model call (median of {args.repeat}, in-process moto):\n")
    print(f"{'scenario':<24}{'DynamoDB calls':<46}{'S3 calls':<34}{'step ms':>9}{'model ms':>10}{'overhead':>10}")
    for name, (ddb, s3, total, model) in rows.items():
        print(f"{name:<24}{ddb:<46}{s3:<34}{total:>9.1f}{model:>10.1f}{total - model:>10.1f}")


def _ops(counter: Counter[str]) -> str:
    return f"{sum(counter.values())}: " + ", ".join(f"{op} x{n}" if n > 1 else op for op, n in sorted(counter.items()))


def run(template: Template, repeat: int) -> dict[str, tuple[str, str, float, float]]:
    import asyncio

    from agent_core import aws
    from agent_core.agent import llm
    from devserver import apigw
    from devserver.gateway import load_handler

    asyncio.set_event_loop(asyncio.new_event_loop())
    routes = {(r.method, r.path): r for r in template.routes()}
    tasks_handler = load_handler(routes[("POST", "/ap/v1/agent/tasks")])
    steps_route = routes[("POST", "/ap/v1/agent/tasks/{task_id}/steps")]
    steps_handler = load_handler(steps_route)
    calls: dict[str, Counter[str]] = {"dynamodb": Counter(), "s3": Counter()}
    for service in calls:
        aws.client(service).meta.events.register(
            f"before-call.{service}.*", lambda model, _s=service, **_: calls[_s].update([model.name])
        )
    model_ms: list[float] = []
    real_complete = llm.OpenAIChat.complete

    def timed(self: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return real_complete(self, **kwargs)
        finally:
            model_ms.append((time.perf_counter() - started) * 1000)

    llm.OpenAIChat.complete = timed  # type: ignore[method-assign]
    rows = {}
    for name in SCENARIOS:
        totals, models, ddb, s3 = [], [], Counter(), Counter()
        for _ in range(repeat):
            event = apigw.rest_event(
                method="POST",
                path="/ap/v1/agent/tasks",
                resource="/ap/v1/agent/tasks",
                headers={"content-type": "application/json"},
                body=json.dumps({"input": name}).encode(),
            )
            task_id = json.loads(tasks_handler(event, apigw.LambdaContext())["body"])["task_id"]
            _upload(task_id)
            for counter in calls.values():
                counter.clear()
            model_ms.clear()
            path = f"/ap/v1/agent/tasks/{task_id}/steps"
            event = apigw.rest_event(
                method="POST", path=path, resource=steps_route.path, path_parameters={"task_id": task_id}
            )
            started = time.perf_counter()
            result = steps_handler(event, apigw.LambdaContext())
            totals.append((time.perf_counter() - started) * 1000)
            assert result["statusCode"] == 200, result["body"]
            models.append(sum(model_ms))
            ddb, s3 = Counter(calls["dynamodb"]), Counter(calls["s3"])
        rows[name] = (_ops(ddb), _ops(s3), statistics.median(totals), statistics.median(models))
    llm.OpenAIChat.complete = real_complete  # type: ignore[method-assign]
    return rows


def _upload(task_id: str) -> None:
    from agent_core import artifacts

    artifacts.write_agent_file(task_id, "data/sales.csv", b"month,amount\nJan,10\nFeb,32\n", "text/csv", None)


if __name__ == "__main__":
    main()
