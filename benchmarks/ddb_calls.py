"""DynamoDB calls per request of the Task API: each endpoint is invoked through its Lambda handler (Mangum, an
API-Gateway-shaped event) on an in-process moto, and every call the handler makes is counted with botocore's
events on the adapter's own client. Also prints the median latency of a request and of one DynamoDB call (on
moto: the figures compare endpoints with each other, they do not predict AWS latency).

The stored tasks are written with the storage adapter's own create_task (the transaction a POST makes, without the
HTTP layer, so 10,000 take a minute, not hours), created at a steady `--per-minute` rate ending now, a quarter of
them running. With `--fast-seed` the items that transaction writes go straight into moto's table, and their counts
are built as scripts/reshard.py builds them: a million tasks take minutes (and a few GB of memory). The list is
read at its first, middle and last page, with and without the status filter.

Usage: python -m benchmarks.ddb_calls [--tasks 150] [--per-minute 10] [--repeat 20] [--fast-seed]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from devserver.template import ROOT, Template

API = "/ap/v1/agent"


@dataclass
class Recorder:
    """DynamoDB operations and their durations, from before-call/after-call events."""

    calls: list[str] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    items: int = 0
    index_items: int = 0  # of them, read by Queries (the tasks; the rest are counters)
    _started: float = 0.0

    def before(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)
        self._started = time.perf_counter()

    def after(self, parsed: dict[str, Any] | None = None, **_: Any) -> None:
        self.durations.append((time.perf_counter() - self._started) * 1000)
        parsed = parsed or {}
        batch = sum(len(items) for items in (parsed.get("Responses") or {}).values())
        self.items += int(parsed.get("ScannedCount", 1 if "Item" in parsed else batch))
        if "Items" in parsed:  # the counters' own Queries read count items, not tasks
            self.index_items += sum(not item["PK"]["S"].startswith("COUNTERS#") for item in parsed["Items"])
        else:  # Select=COUNT: tasks counted in the index
            self.index_items += int(parsed.get("ScannedCount", 0))

    def reset(self) -> None:
        self.calls, self.durations, self.items, self.index_items = [], [], 0, 0


@dataclass
class Row:
    endpoint: str
    calls: list[list[str]] = field(default_factory=list)
    items: list[int] = field(default_factory=list)
    index_items: list[int] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    call_ms: list[float] = field(default_factory=list)

    def line(self) -> str:
        counts = sorted({len(c) for c in self.calls})
        count = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        ops = _summarise(max(self.calls, key=len))
        per_call = f"{statistics.median(self.call_ms):.2f}" if self.call_ms else "-"
        items = f"{statistics.median(self.items):.0f}"
        index = f"{statistics.median(self.index_items):.0f}"
        latency = statistics.median(self.latency_ms)
        return f"{self.endpoint:<44} {count:>5}  {ops:<38} {items:>6} {index:>6} {latency:>10.2f} {per_call:>8}"


def _summarise(ops: list[str]) -> str:
    """GetItem, Query, Query -> GetItem + 2x Query (in order of first use)."""
    seen: dict[str, int] = {}
    for op in ops:
        seen[op] = seen.get(op, 0) + 1
    return " + ".join(f"{n}x {op}" if n > 1 else op for op, n in seen.items()) or "(none)"


class Invoker:
    """Calls the function that owns a route, the way API Gateway would."""

    def __init__(self, template: Template) -> None:
        from devserver import apigw
        from devserver.gateway import load_handler

        self.apigw, self.routes = apigw, template.routes()
        self.handlers = {r.function: load_handler(r) for r in self.routes}

    def __call__(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: bytes = b"") -> Any:
        full = API + path
        route, params = next(
            (r, m.groupdict()) for r in self.routes if (m := r.pattern.match(full)) and r.method in (method, "ANY")
        )
        headers = {"content-type": "application/json", "content-length": str(len(body))} if body else {}
        event = self.apigw.rest_event(
            method=method,
            path=full,
            resource=route.path,
            path_parameters=params,
            query=urlencode(query or {}),
            headers=headers,
            body=body,
        )
        response = self.apigw.parse_response(self.handlers[route.function](event, self.apigw.LambdaContext()))
        if response.status != 200:
            raise RuntimeError(f"{method} {path} {query or ''}: {response.status} {response.body[:200]!r}")
        return response.json()


def moto_environment(template: Template) -> None:
    sys.path.insert(0, str(ROOT / "layers" / "common"))
    os.environ.pop("AWS_ENDPOINT_URL", None)  # moto in process, never a real or local endpoint
    for key, value in {
        **template.environment(),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }.items():
        os.environ.setdefault(key, value)


@contextmanager
def on_moto(template: Template) -> Iterator[None]:
    """An in-process moto holding the template's resources, the functions' settings pointing at it."""
    from moto import mock_aws

    moto_environment(template)
    from agent_core import aws
    from agent_core.config import get_settings
    from agent_core.storage import table as table_module
    from devserver.moto_patches import patch_moto
    from devserver.resources import create_resources

    aws.reset()
    get_settings.cache_clear()
    table_module.get_table.cache_clear()
    patch_moto()  # transactions cost what they touch, as on DynamoDB (moto copies the whole table otherwise)
    with mock_aws():
        create_resources(template)
        yield


def run(tasks: int, repeat: int, per_minute: int = 10, *, fast_seed: bool = False) -> list[Row]:
    template = Template()
    with on_moto(template):
        from agent_core import aws
        from agent_core.storage import table as table_module

        call = Invoker(template)
        recorder = Recorder()
        client = aws.client("dynamodb")

        # Given `tasks` tasks, a quarter of them running
        seeded = list(records(tasks, per_minute))
        (seed_fast if fast_seed else seed)(table_module.get_table(), seeded)
        client.meta.events.register("before-call.dynamodb.*", recorder.before)
        client.meta.events.register("after-call.dynamodb.*", recorder.after)
        pivot = seeded[len(seeded) // 2].created_at
        last, running = max(1, -(-tasks // 10)), -(-len(seeded[::4]) // 10)
        after = {"created_after": pivot}
        after_last = max(1, -(-(tasks - len(seeded) // 2 - 1) // 10))
        created: list[dict[str, Any]] = []

        def create() -> None:
            created.append(call("POST", "/tasks", body=b'{"input": "benchmark", "additional_input": {"k": 1}}'))

        cases: list[tuple[str, Callable[[int], Any]]] = [
            ("POST /tasks", lambda i: create()),
            ("GET /tasks/{id}", lambda i: call("GET", f"/tasks/{seeded[i % tasks].task_id}")),
            ("GET /tasks (page 1)", lambda i: call("GET", "/tasks")),
            *_pages("", max(1, last // 2), last, call),
            ("GET /tasks?status=running", lambda i: call("GET", "/tasks", query={"status": "running"})),
            *_pages("status=running&", max(1, running // 2), running, call),
            ("GET /tasks?created_after=<median task>", lambda i: call("GET", "/tasks", query=after)),
            (
                f"GET /tasks?created_after=...&page={max(1, after_last // 2)}",
                lambda i: call("GET", "/tasks", query=after | {"page": max(1, after_last // 2)}),
            ),
            (
                f"GET /tasks?created_after=...&page={after_last}",
                lambda i: call("GET", "/tasks", query=after | {"page": after_last}),
            ),
            ("DELETE /tasks/{id}", lambda i: call("DELETE", f"/tasks/{created[i]['task_id']}")),
        ]
        rows = []
        for name, request in cases:
            row = Row(name)
            for i in range(repeat):
                recorder.reset()
                started = time.perf_counter()
                request(i)
                row.latency_ms.append((time.perf_counter() - started) * 1000)
                row.calls.append(recorder.calls)
                row.items.append(recorder.items)
                row.index_items.append(recorder.index_items)
                row.call_ms.extend(recorder.durations)
            rows.append(row)
        if "Scan" in {op for row in rows for ops in row.calls for op in ops}:
            raise RuntimeError("a request path used Scan")
    return rows


def records(tasks: int, per_minute: int) -> Iterator[Any]:
    """`tasks` tasks created `per_minute` a minute up to now, every fourth running."""
    from datetime import UTC, datetime, timedelta

    from agent_core.storage.records import TaskRecord
    from agent_core.timeutil import to_iso

    now, step = datetime.now(UTC), timedelta(minutes=1) / per_minute
    for i in range(tasks):
        created = to_iso(now - step * (tasks - i))
        status = "running" if i % 4 == 0 else "created"
        yield TaskRecord(str(uuid.uuid4()), "seed", {}, status, created, created)


def seed(table: Any, records: list[Any]) -> None:
    """The tasks, each written by the adapter's create_task (the transaction a POST makes)."""
    for record in records:
        table.create_task(record)


def seed_fast(table: Any, records: list[Any]) -> None:
    """The same items, those create_task writes put straight into moto's table and their counts built as
    scripts/reshard.py builds them: a million tasks in minutes instead of hours."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from agent_core.storage.tasks import task_item
    from scripts.reshard import count_items

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]]
    counted = {}
    for record in records:
        backend.put_item(table.name, task_item(record))
        counted[record.task_id] = {"created_at": {"S": record.created_at}, "status": {"S": record.status}}
    for item in count_items(counted):
        backend.put_item(table.name, item)


def _pages(query: str, middle: int, last: int, call: Callable[..., Any]) -> list[tuple[str, Callable[[int], Any]]]:
    """The middle and last pages (size 10) of a list."""
    params = dict(p.split("=") for p in query.strip("&").split("&") if p)
    return [
        (
            f"GET /tasks?{query}page={page} ({name})",
            lambda i, page=page: call("GET", "/tasks", query=params | {"page": page}),
        )
        for name, page in (("middle", middle), ("last", last))
    ]


def report(rows: list[Row], tasks: int, repeat: int, per_minute: int) -> str:
    columns = f"{'calls':>5}  {'operations':<38} {'items':>6} {'query':>6} {'request ms':>10} {'ms/call':>8}"
    header = f"{'endpoint':<44} {columns}"
    lines = [
        f"DynamoDB calls per request: Task API handlers on moto, {tasks} tasks stored ({per_minute} a minute), "
        f"{repeat} requests each",
        header,
        "-" * len(header),
        *(row.line() for row in rows),
        "calls: DynamoDB API calls of one request; items: items read (median; GetItem and BatchGetItem hits + Query",
        "ScannedCount); query: of those, read by Queries (tasks and other records, not counters);",
        "request ms: median through the handler (Mangum + FastAPI + moto); ms/call: median of one DynamoDB call on",
        "moto. No request path used Scan.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ddb_calls", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=150, help="tasks stored before measuring (default 150)")
    parser.add_argument("--per-minute", type=int, default=10, help="tasks created a minute (default 10)")
    parser.add_argument("--repeat", type=int, default=20, help="requests per endpoint (default 20)")
    parser.add_argument(
        "--fast-seed",
        action="store_true",
        help="put the tasks' items straight into moto's table (for a million tasks; a create's transaction otherwise)",
    )
    args = parser.parse_args(argv)
    rows = run(args.tasks, args.repeat, args.per_minute, fast_seed=args.fast_seed)
    table = report(rows, args.tasks, args.repeat, args.per_minute)
    print(table)
    return table


if __name__ == "__main__":
    main()
