"""The benchmarks run (cheaply): they are not tests of speed, but they must keep working as the template grows."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks import cold_start, ddb_calls
from devserver.template import ROOT, Template


def test_cold_start_measures_every_function_of_the_template() -> None:
    # Given the template's functions with Python code
    expected = {n for n, p in Template().of_type("AWS::Serverless::Function").items() if p.get("Handler")}
    targets = {t.name: t for t in cold_start.function_targets()}
    assert set(targets) == expected and "TasksFunction" in targets
    # Then each runs with its code and the layer on the path, and the template's environment
    tasks = targets["TasksFunction"]
    assert tasks.paths == [str(ROOT / "functions/tasks"), str(ROOT / "layers/common")]
    assert tasks.env["TABLE_NAME"] == "AgentTable" and "AWS_ENDPOINT_URL" not in tasks.env
    # And one sample in a fresh interpreter works
    tasks.run()
    assert tasks.import_ms[0] > 0 and tasks.modules > 100


def test_ddb_calls_prints_a_row_per_endpoint(capsys) -> None:
    table = ddb_calls.main(["--tasks", "12", "--repeat", "2"])
    assert table in capsys.readouterr().out
    lines = table.splitlines()[3:15]
    rows = {line[:44].strip(): line[44:].split() for line in lines}
    assert rows["POST /tasks"][:2] == ["1", "TransactWriteItems"]
    assert rows["GET /tasks (page 1)"][:4] == ["2", "BatchGetItem", "+", "Query"]  # the totals, then the index
    assert rows["GET /tasks?created_after=<median task>"][:2] == ["1", "Query"]  # the 5 newer fit the page
    assert len(lines) == 12 and lines[-1].startswith("DELETE /tasks/{id}")


def test_ddb_calls_fast_seed_stores_what_creating_the_tasks_stores() -> None:
    # Given the same 60 tasks (over a few minutes, some running), written by create_task and by the fast path
    from agent_core import aws
    from agent_core.storage.table import get_table

    made = list(ddb_calls.records(60, 20))
    stored = []
    for seed in (ddb_calls.seed, ddb_calls.seed_fast):
        with ddb_calls.on_moto(Template()):
            seed(get_table(), made)
            stored.append(sorted(aws.client("dynamodb").scan(TableName=get_table().name)["Items"], key=str))
    # Then the table holds the same items either way: the tasks, their index keys, and every count
    assert stored[0] == stored[1] and len(stored[0]) > 60


def test_sandbox_benchmark_compares_the_isolated_run_with_the_bare_child() -> None:
    # In a process of its own: the bare child's backend makes its parent non-dumpable.
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.sandbox", "--repeat", "2"], cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip

    rows = done.stdout.strip().splitlines()[2:]
    assert [line.split()[0] for line in rows] == ["none", "bubblewrap", "run_python"]


def test_runs_benchmark_prints_the_cost_of_a_step() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.runs", "--steps", "3"], cwd=ROOT, capture_output=True, text=True,
        timeout=180, check=True,
    )  # fmt: skip
    lines = {line.split("  ")[0]: line for line in done.stdout.splitlines()}
    # the three steps in one invocation: RunStep, Continue and the Succeed state
    assert lines["state transitions"].split()[2] == "1.00"
    assert "per 1,000 steps" in done.stdout


def test_push_benchmark_measures_the_way_of_a_status_change() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.push", "--steps", "2", "--subscribers", "1", "3"], cwd=ROOT,
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[-2:]}
    assert rows["1"][3] == "4" and rows["3"][3] == "12"  # two changes a step, to every subscriber, and no more


def test_http_benchmark_measures_both_servers_side_by_side(live_server: str) -> None:
    # Given two servers to compare (here the dev server twice: the reference server's venv is too slow to build here)
    from benchmarks import http

    port = int(live_server.split(":")[2].split("/")[0])
    servers = [http.Server("reference (SDK)", port), http.Server("dev server", port)]
    for server in servers:
        server.task_id = json.loads(server.call(server.connect(), "POST"))["task_id"]
    # When each operation is timed on one connection and under concurrent clients
    for op in ("GET", "POST"):
        http.latency(servers, op, requests=4, rounds=2, warmup=1)
        for server in servers:
            http.load(server, op, clients=2, seconds=0.2)
    table = http.report(*servers, requests=4, clients=2)
    # Then every row has both servers' figures and a ratio
    rows = table.splitlines()[3:-1]
    assert [row[:34].strip() for row in rows] == [
        "GET task, median ms", "GET task, p95 ms", "POST task, median ms", "POST task, p95 ms",
        "GET task, requests/s (2 clients)", "POST task, requests/s (2 clients)",
    ]  # fmt: skip
    assert all(len(servers[0].samples[op]) == 4 and servers[0].throughput[op] > 0 for op in ("GET", "POST"))
    assert all(row.rstrip().endswith("x") for row in rows)


def test_cold_start_reads_the_instruction_count_from_cachegrind() -> None:
    # Given cachegrind's summary as valgrind prints it on stderr (no cache simulation)
    output = "==12== Cachegrind, a high-precision tracing profiler\n==12== \n==12== I refs:        2,463,288,658\n"
    # Then the count is read; output without one is an error, not a zero
    assert cold_start.instructions_executed(output) == 2_463_288_658
    with pytest.raises(RuntimeError, match="no instruction count"):
        cold_start.instructions_executed("valgrind: command not found")


def test_counter_writes_sizes_the_items_as_dynamodb_does() -> None:
    from benchmarks import counter_writes

    # Item sizes by DynamoDB's rules: name bytes, string bytes, a number's 1 + 1 per two significant digits
    assert counter_writes.item_bytes({"ab": {"S": "xyz"}, "n": {"N": "12345"}, "z": {"N": "0"}}) == 5 + 5 + 3
    assert counter_writes.transactional_wcu(1024) == 2 and counter_writes.transactional_wcu(1025) == 4
    # And a run measures the three kinds of count item: one a day and one a minute, none growing with them
    small, more = counter_writes.measure(minutes=2, days=1), counter_writes.measure(minutes=6, days=3)
    assert (small["days"], small["minutes"], more["days"], more["minutes"]) == (2, 2, 4, 6)
    for kind in ("shard", "day", "minute"):
        assert 0 < small[kind] <= more[kind] < 200, kind  # bytes: a handful of numbers, one write unit's worth
    assert "tasks/s per item" in counter_writes.report(more, 6, 3)


def test_warm_benchmark_replays_each_requests_aws_calls_in_the_bare_handler() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.warm", "--count", "2", "--no-instructions"], cwd=ROOT,
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    rows = {line[:34].strip(): line[34:].split() for line in done.stdout.splitlines()[2:] if line.strip()}
    assert rows["POST /tasks"][0] == "TasksFunction" and rows["GET /tasks/{task_id}"][0] == "TasksFunction"
    assert {r[0] for r in rows.values()} >= {"TasksFunction", "StepsFunction", "ArtifactsFunction"}
    assert all(float(r[1]) > 0 and float(r[2]) > 0 for r in rows.values())  # the function's time, the bare one's
