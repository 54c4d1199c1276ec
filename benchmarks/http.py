"""The dev server against the Agent Protocol SDK's own reference server (`agent-protocol` from PyPI, tasks in
memory), side by side in one run: latency of GET and POST of a task (median and p95, one client, keep-alive), and
throughput with concurrent clients.

The reference server runs in a venv of its own (.venv-reference, made once and kept: it needs pydantic 1), as the
official client does for tests/compat; the dev server runs as `python -m devserver` with the rate limit off. Both
listen on free ports of 127.0.0.1 and get the same requests from this process, in alternating rounds so that drift
on the machine hits both alike.

Usage: python -m benchmarks.http [--requests 300] [--clients 8] [--seconds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.live import running, server_environment
from devserver.resources import free_port
from devserver.template import ROOT

API = "/ap/v1/agent"
REFERENCE_VENV = ROOT / ".venv-reference"
# agent-protocol 1.0.2 and what pip resolved for it, pinned so that every run measures the same server.
REFERENCE_REQUIREMENTS = """\
agent-protocol==1.0.2
aiofiles==23.2.1
anyio==4.16.0
click==8.5.1
fastapi==0.100.1
h11==0.16.0
h2==4.4.1
hypercorn==0.14.4
pydantic==1.10.27
python-multipart==0.0.6
starlette==0.27.0
typing_extensions==4.16.0
"""

# The SDK's server as `Agent.start` serves it (its app and router, hypercorn), on the port we chose. Its listening
# socket is made here, as a TCP socket that says so: hypercorn's own (protocol 0) keeps asyncio from turning Nagle's
# algorithm off, and every kept-alive response then waits ~40 ms for the client's delayed ACK before its body leaves.
REFERENCE_SERVER = """
import asyncio, socket, sys
from agent_protocol import Agent, router
from agent_protocol.server import app
from hypercorn.asyncio import serve
from hypercorn.config import Config

async def on_task(task):
    pass

async def on_step(step):
    return step

Agent.setup_agent(on_task, on_step)
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.set_inheritable(True)
config = Config()
config.bind = [f"fd://{listener.detach()}"]
app.include_router(router)
asyncio.run(serve(app, config))
"""


def reference_python() -> Path:
    """The reference server's venv, made once and remade when the pins change."""
    python = REFERENCE_VENV / "bin" / "python"
    stamp = REFERENCE_VENV / ".installed"
    if not (stamp.exists() and stamp.read_text() == REFERENCE_REQUIREMENTS):
        print(f"making {REFERENCE_VENV.name} (once) ...", file=sys.stderr, flush=True)
        venv.create(REFERENCE_VENV, with_pip=True, clear=True)
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as pins:
            pins.write(REFERENCE_REQUIREMENTS)
            pins.flush()
            subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", pins.name], check=True)
        stamp.write_text(REFERENCE_REQUIREMENTS)
    return python


@contextmanager
def serving(name: str, command: list[str], port: int, env: dict[str, str]) -> Iterator[Server]:
    server = Server(name, port)
    with running(name, command, env, server.ready):
        yield server


@dataclass
class Server:
    name: str
    port: int
    task_id: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)
    throughput: dict[str, float] = field(default_factory=dict)

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def ready(self) -> bool:
        try:
            conn = self.connect()
            conn.request("GET", f"{API}/tasks")
            return conn.getresponse().status == 200
        except OSError:
            return False

    def call(self, conn: http.client.HTTPConnection, op: str) -> bytes:
        """One request on a kept-alive connection; the body, after checking the status."""
        if op == "GET":
            conn.request("GET", f"{API}/tasks/{self.task_id}")
        else:
            headers = {"Content-Type": "application/json"}
            conn.request("POST", f"{API}/tasks", body=b'{"input": "write hello.txt"}', headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{self.name}: {op} answered {response.status}: {body[:300]!r}")
        return body


def latency(servers: list[Server], op: str, requests: int, rounds: int = 6, warmup: int = 50) -> None:
    """Sequential requests on one connection per server; the servers take turns, `rounds` times."""
    conns = [server.connect() for server in servers]
    for server, conn in zip(servers, conns, strict=True):
        for _ in range(warmup):
            server.call(conn, op)
        server.samples[op] = []
    per_round = max(1, requests // rounds)
    for _ in range(rounds):
        for server, conn in zip(servers, conns, strict=True):
            for _ in range(per_round):
                started = time.perf_counter()
                server.call(conn, op)
                server.samples[op].append((time.perf_counter() - started) * 1000)
    for conn in conns:
        conn.close()


def load(server: Server, op: str, clients: int, seconds: float) -> None:
    """`clients` threads, each on its own connection, sending back to back for `seconds`: requests per second."""
    done = [0] * clients
    start = threading.Barrier(clients + 1)
    stop = threading.Event()

    def client(i: int) -> None:
        conn = server.connect()
        server.call(conn, op)
        start.wait()
        while not stop.is_set():
            server.call(conn, op)
            done[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    server.throughput[op] = sum(done) / (time.perf_counter() - began)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def report(reference: Server, dev: Server, *, requests: int, clients: int) -> str:
    header = f"{'':<34} {reference.name:>18} {dev.name:>18} {'ratio':>7}"
    lines = [
        f"HTTP: one client, {requests} requests per operation after warm-up (ms); then {clients} concurrent clients",
        header,
        "-" * len(header),
    ]
    rows: list[tuple[str, Callable[[Server], float], bool]] = []
    for op in ("GET", "POST"):
        rows.append((f"{op} task, median ms", lambda s, op=op: statistics.median(s.samples[op]), False))
        rows.append((f"{op} task, p95 ms", lambda s, op=op: p95(s.samples[op]), False))
    for op in ("GET", "POST"):
        rows.append((f"{op} task, requests/s ({clients} clients)", lambda s, op=op: s.throughput[op], True))
    for label, value, higher_is_better in rows:
        ref, ours = value(reference), value(dev)
        ratio = ref / ours if higher_is_better else ours / ref
        lines.append(f"{label:<34} {ref:>18.2f} {ours:>18.2f} {ratio:>6.2f}x")
    lines.append(f"ratio: how many times slower the {dev.name} is (time over time; throughput inverted).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="timed requests per operation and server")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for the throughput rows")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each throughput run")
    args = parser.parse_args(argv)

    env = server_environment()
    ref_port, dev_port = free_port(), free_port()
    reference_cmd = [str(reference_python()), "-c", REFERENCE_SERVER, str(ref_port)]
    dev_cmd = [sys.executable, "-m", "devserver", "--port", str(dev_port)]
    with (
        tempfile.TemporaryDirectory(prefix="reference-") as workspace,
        serving("reference (SDK)", reference_cmd, ref_port, {**env, "AGENT_WORKSPACE": workspace}) as reference,
        serving("dev server", dev_cmd, dev_port, env) as dev,
    ):
        servers = [reference, dev]
        for server in servers:  # the task every GET reads
            server.task_id = json.loads(server.call(server.connect(), "POST"))["task_id"]
        for op in ("GET", "POST"):
            latency(servers, op, args.requests)
        for op in ("GET", "POST"):
            for server in servers:
                load(server, op, args.clients, args.seconds)
    table = report(reference, dev, requests=args.requests, clients=args.clients)
    print(table)
    return table


if __name__ == "__main__":
    main()
