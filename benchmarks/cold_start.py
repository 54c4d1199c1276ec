"""Cold start: how long each function takes, in a fresh interpreter, to import its handler module and (for the
API's functions) to answer its first request, next to a bare FastAPI + Mangum + boto3 handler measured in the same
run: one route that makes one boto3 client and reads one item (what our code and dependencies add on top of the
framework and the SDK every function needs).

Functions, handlers, layers and environment variables are read from template.yaml, so new functions are picked up
without touching this file. Each sample is a new `python` process with the function's code directory and its
layers on sys.path (as Lambda's /var/task and /opt/python) and the template's environment; the targets are
interleaved run by run so drift hits them alike. One warm-up run per target is not counted (it writes .pyc files,
which a deployed package also ships or caches after the first init). The first request is an API Gateway proxy
event for the function's first GET route of a task (a task that does not exist: the route reads the table and
answers 404); its AWS calls go to a moto server that this process starts with the template's table and bucket.

Times on a shared or virtual machine drift by 30% from run to run, more than the differences measured here. So
where valgrind is installed (`apt-get install valgrind`), each API function and the baseline also answer one
first request under cachegrind, which counts the instructions the process executes: the same count, to a few in a
million, on every run, and a ratio that neither load nor frequency scaling moves.

Usage: python -m benchmarks.cold_start [--runs 7] [--no-breakdown] [--no-instructions]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devserver import apigw
from devserver.template import ROOT, Template

# Runs in the fresh interpreter: imports the module, reads the handler attribute, answers the first request if
# there is one; reports the times, the answer's status and the module count.
PROBE = """
import importlib, json, sys, time
paths, module, attr, event = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
sys.path[:0] = paths
started, cpu_started = time.perf_counter(), time.process_time()
handler = getattr(importlib.import_module(module), attr)
imported = time.perf_counter()
assert callable(handler)
status = None
if event:
    class Context:  # what Lambda passes, as far as Mangum and Powertools read it
        function_name, memory_limit_in_mb, aws_request_id = "cold-start", 512, "cold-start-1"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold-start"
        def get_remaining_time_in_millis(self):
            return 29000
    status = handler(event, Context())["statusCode"]
answered, cpu = time.perf_counter(), time.process_time() - cpu_started
print(json.dumps({"import_ms": (imported - started) * 1000, "request_ms": (answered - imported) * 1000,
                  "cpu_ms": cpu * 1000, "status": status, "modules": len(sys.modules)}))
"""

HELLO_APP = '''"""The baseline: FastAPI, Mangum and boto3 with one route that makes one client and reads one item."""
import os

import boto3
from fastapi import FastAPI
from mangum import Mangum

app = FastAPI()


@app.get("/ap/v1/agent/tasks/{task_id}")
def read(task_id: str) -> dict[str, bool]:
    key = {"PK": {"S": f"TASK#{task_id}"}, "SK": {"S": "TASK"}}
    found = boto3.client("dynamodb").get_item(TableName=os.environ["TABLE_NAME"], Key=key)
    return {"found": "Item" in found}


handler = Mangum(app, lifespan="off")
'''
# The task every first request asks for: none has this id.
MISSING_TASK = "00000000-0000-4000-8000-000000000000"


@dataclass
class Target:
    name: str
    handler: str  # module.attribute
    paths: list[str]
    env: dict[str, str]
    label: str
    request: dict[str, Any] | None = None  # the first request's proxy event, for the API's functions
    aws: dict[str, str] = field(default_factory=dict)  # where its AWS calls go (set by `measure`)
    import_ms: list[float] = field(default_factory=list)
    request_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # the process's CPU time over both (a busy machine's noise out)
    process_ms: list[float] = field(default_factory=list)
    modules: int = 0
    instructions: int | None = None  # executed over the process's whole life, under cachegrind (`count_instructions`)

    def _probe(
        self, *flags: str, request: bool = False, wrapper: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        module, attr = self.handler.rsplit(".", 1)
        event = self.request if request and self.aws else None
        done = subprocess.run(
            [*wrapper, sys.executable, *flags, "-c", PROBE, json.dumps(self.paths), module, attr, json.dumps(event)],
            env={**self.env, **self.aws, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: import failed\n{done.stderr}")
        return done

    def run(self) -> None:
        started = time.perf_counter()
        done = self._probe(request=True)
        wall = (time.perf_counter() - started) * 1000
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if result["status"] is not None and result["status"] >= 500:
            raise RuntimeError(f"{self.name}: the first request failed ({result['status']})\n{done.stderr}")
        self.import_ms.append(result["import_ms"])
        if result["status"] is not None:
            self.request_ms.append(result["request_ms"])
        self.cpu_ms.append(result["cpu_ms"])
        self.process_ms.append(wall)
        self.modules = result["modules"]

    def count_instructions(self) -> None:
        """One run of import and first request under cachegrind (instructions only, no cache simulation)."""
        done = self._probe(
            request=True,
            wrapper=("valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"),
            env={"PYTHONMALLOC": "malloc"},  # what valgrind needs to follow Python's allocations
        )
        self.instructions = instructions_executed(done.stderr)

    def packages(self) -> Counter[str]:
        """Import self time (ms) by top-level package, from one run under `python -X importtime`. A standard
        library module counts for the package that imported it (multiprocessing for s3transfer, say)."""
        lines = [x for x in self._probe("-X", "importtime").stderr.splitlines() if x.startswith("import time:")]
        module = self.handler.rsplit(".", 1)[0]
        spent: Counter[str] = Counter()
        stack: list[str] = []  # top-level names from the root import down to the current one
        for line in reversed(lines):  # the output is post-order: reversed, a parent comes before its children
            own, _, name = line.removeprefix("import time:").split("|")
            if not own.strip().isdigit():
                continue  # the header
            depth = (len(name) - len(name.lstrip()) - 1) // 2
            stack = [*stack[:depth], name.strip().split(".")[0]]
            owner = next((n for n in reversed(stack) if n not in sys.stdlib_module_names and n != module), "stdlib")
            spent[owner] += int(own) / 1000
        return spent


def instructions_executed(cachegrind_output: str) -> int:
    """The `I refs` total of cachegrind's summary (on stderr)."""
    found = re.search(r"I\s+refs:\s+([\d,]+)", cachegrind_output)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{cachegrind_output[-2000:]}")
    return int(found.group(1).replace(",", ""))


def _base_env() -> dict[str, str]:
    """A Lambda-like environment: no credentials, no endpoint overrides, only what the interpreter needs."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1", PYTHONHASHSEED="0")
    return env


def _variables(template: Template, props: dict[str, Any]) -> dict[str, str]:
    globals_ = ((template.doc.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    merged = {**(globals_.get("Variables") or {}), **((props.get("Environment") or {}).get("Variables") or {})}
    resolved = {k: template.resolve(v) for k, v in merged.items()}
    return {k: str(v) for k, v in resolved.items() if v is not None}


def _layer_paths(template: Template, props: dict[str, Any]) -> list[str]:
    layers = props.get("Layers") or ((template.doc.get("Globals") or {}).get("Function") or {}).get("Layers") or []
    paths = []
    for layer in layers:
        name = layer.get("Ref") if isinstance(layer, dict) else None
        content = ((template.resources.get(name or "") or {}).get("Properties") or {}).get("ContentUri")
        if isinstance(content, str):
            paths.append(str(ROOT / content))
    return paths


def function_targets(template: Template | None = None) -> list[Target]:
    """One target per function of the template that has Python code (CodeUri + Handler)."""
    template = template or Template()
    targets = []
    for name, props in template.of_type("AWS::Serverless::Function").items():
        if not isinstance(props.get("CodeUri"), str) or not props.get("Handler"):
            continue
        code = ROOT / props["CodeUri"]
        targets.append(
            Target(
                name=name,
                handler=props["Handler"],
                paths=[str(code), *_layer_paths(template, props)],
                env={**_base_env(), **_variables(template, props)},
                label=f"{props['CodeUri'].rstrip('/')}/{props['Handler']}",
                request=first_request(template, name),
            )
        )
    return targets


def first_request(template: Template, function: str) -> dict[str, Any] | None:
    """The event of the function's first GET route of one task (None for a function the API does not route to)."""
    for route in template.routes():
        if route.function == function and route.method == "GET" and route.path.endswith("/tasks/{task_id}"):
            return _get(route.path, route.path.replace("{task_id}", MISSING_TASK))
    for route in template.routes():
        if route.function == function and route.method == "GET" and set(route.pattern.groupindex) == {"task_id"}:
            return _get(route.path, route.path.replace("{task_id}", MISSING_TASK))
    return None


def _get(resource: str, path: str) -> dict[str, Any]:
    params = {"task_id": MISSING_TASK} if "{task_id}" in resource else None
    headers = {"accept": "application/json", "host": "api.example.com"}
    return apigw.rest_event(method="GET", path=path, resource=resource, path_parameters=params, headers=headers)


def baseline_target(directory: Path) -> Target:
    (directory / "hello.py").write_text(HELLO_APP)
    return Target(
        name="bare FastAPI+Mangum",
        handler="hello.handler",
        paths=[str(directory)],
        env={**_base_env(), "TABLE_NAME": Template().physical_name("AgentTable")},
        label="hello.handler (1 route, 1 client)",
        request=_get("/ap/v1/agent/tasks/{task_id}", f"/ap/v1/agent/tasks/{MISSING_TASK}"),
    )


@contextmanager
def local_aws() -> Iterator[dict[str, str]]:
    """A moto server in this process holding the template's table and bucket; yields the variables that send a
    function's AWS calls there (the functions' own processes reach it over HTTP, as they reach AWS)."""
    from moto.server import ThreadedMotoServer

    from devserver.resources import LOCAL_CREDENTIALS, create_resources, free_port

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    variables = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    variables.update(LOCAL_CREDENTIALS)
    saved = dict(os.environ)
    os.environ.update(variables)
    try:
        create_resources(Template())  # and moto's request routers built, before any sample is taken
        yield variables
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()


def measure(targets: list[Target], runs: int, instructions: bool = False) -> None:
    with local_aws() as variables:
        for target in targets:
            target.aws = variables
        for target in targets:  # warm-up: bytecode caches, file system caches, moto's first call of each kind
            target.run()
            target.import_ms.clear()
            target.request_ms.clear()
            target.cpu_ms.clear()
            target.process_ms.clear()
        for _ in range(runs):
            for target in targets:
                target.run()
        if instructions:  # one run each: the count does not vary
            for target in targets:
                if target.request:
                    target.count_instructions()


def report(targets: list[Target], runs: int) -> str:
    baseline = targets[0]
    base_total = statistics.median(_totals(baseline))
    base_cpu = statistics.median(baseline.cpu_ms)
    name_w = max(len("function"), *(len(t.name) for t in targets))
    label_w = max(len("handler"), *(len(t.label) for t in targets))
    header = (
        f"{'function':<{name_w}} {'handler':<{label_w}} {'import ms':>10} {'1st req ms':>11} {'total ms':>9} "
        f"{'vs bare':>8} {'cpu ms':>7} {'vs bare':>8} {'process ms':>11} {'modules':>8}"
    )
    lines = [
        f"Cold start: handler import and first request in a fresh interpreter, median of {runs} runs "
        f"(Python {sys.version.split()[0]}, {sys.platform})",
        header,
        "-" * len(header),
    ]
    for target in targets:
        totals = _totals(target)
        answered = bool(target.request_ms)
        first = f"{statistics.median(target.request_ms):.1f}" if answered else "-"
        compared = answered and target is not baseline
        ratio = f"{statistics.median(totals) / base_total:.2f}x" if compared else "-"
        cpu = statistics.median(target.cpu_ms)
        cpu_ratio = f"{cpu / base_cpu:.2f}x" if compared else "-"
        lines.append(
            f"{target.name:<{name_w}} {target.label:<{label_w}} {statistics.median(target.import_ms):>10.1f} "
            f"{first:>11} {statistics.median(totals):>9.1f} {ratio:>8} {cpu:>7.1f} {cpu_ratio:>8} "
            f"{statistics.median(target.process_ms):>11.1f} {target.modules:>8}"
        )
    if baseline.instructions:
        lines += ["", "Instructions executed, interpreter start to exit, import and first request (cachegrind):"]
        for target in targets:
            if target.instructions:
                ratio = "" if target is baseline else f"  {target.instructions / baseline.instructions:.3f}x vs bare"
                lines.append(f"  {target.name:<{name_w}} {target.instructions / 1e6:>9,.1f} M{ratio}")
        lines.append("")
    lines.append(
        "import ms: `import <module>` + reading the handler; 1st req ms: the first request through the handler "
        "(API functions: GET of a task, one table read); total: both, per run; vs bare: total over the bare "
        "handler's; cpu ms: the process's CPU time over both (what a busy machine does not inflate), and its ratio; "
        "process ms: interpreter start to exit."
    )
    return "\n".join(lines)


def _totals(target: Target) -> list[float]:
    if not target.request_ms:
        return target.import_ms
    return [a + b for a, b in zip(target.import_ms, target.request_ms, strict=True)]


def breakdown(targets: list[Target], runs: int = 3, top: int = 6) -> str:
    """Where each target's import time goes: self time by top-level package, median of a few runs."""
    name_w = max(len(t.name) for t in targets)
    lines = [
        f"Where it goes (python -X importtime, median of {runs} runs): ms by top-level package, with the standard "
        f"library modules it imports; top {top}"
    ]
    for target in targets:
        samples = [target.packages() for _ in range(runs)]
        spent = Counter({name: statistics.median(s.get(name, 0.0) for s in samples) for name in set().union(*samples)})
        parts = ", ".join(f"{name} {ms:.0f}" for name, ms in spent.most_common(top))
        lines.append(f"  {target.name:<{name_w}} {parts}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_start", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="samples per target (default 7)")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false", help="skip the per-package table")
    parser.add_argument(
        "--no-instructions", dest="instructions", action="store_false", help="skip the count under valgrind"
    )
    args = parser.parse_args(argv)
    counting = args.instructions and shutil.which("valgrind") is not None
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        targets = [baseline_target(Path(tmp)), *function_targets()]
        measure(targets, args.runs, instructions=counting)
        table = report(targets, args.runs)
        if args.instructions and not counting:
            table += "\n(instructions not counted: valgrind is not installed)"
        if args.breakdown:
            table += "\n\n" + breakdown(targets)
    print(table)
    return table


if __name__ == "__main__":
    main()
