"""Servers the benchmarks speak HTTP to, each in a process of its own: the dev server as `make dev` starts it, on a
free port, or any other command (benchmarks/http's reference server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from devserver.resources import free_port
from devserver.template import ROOT


@contextmanager
def running(name: str, command: list[str], env: dict[str, str], ready: Callable[[], bool]) -> Iterator[None]:
    """Starts `command`, waits until `ready()`, and stops its whole process group afterwards; its output is shown
    only when it fails to start."""
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 90
            while not ready():
                if proc.poll() is not None or time.monotonic() > deadline:
                    output.seek(0)
                    raise RuntimeError(f"{name} did not start:\n{output.read().decode(errors='replace')[-3000:]}")
                time.sleep(0.2)
            yield
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)


def server_environment(**environment: str) -> dict[str, str]:
    """This process's environment without AWS or OpenAI settings, no rate limit, quiet logs, and `environment`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENAI_"))}
    return {**env, "RATE_LIMIT_PER_MINUTE": "0", "POWERTOOLS_LOG_LEVEL": "WARNING", **environment}


@contextmanager
def dev_server(**environment: str) -> Iterator[str]:
    """Yields the API's base URL (`http://127.0.0.1:<port>/ap/v1/agent`) once it answers; stops it after.
    `environment` adds to the server's (e.g. OPENAI_BASE_URL for a local model)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/ap/v1/agent"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/tasks", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    command = [sys.executable, "-m", "devserver", "--port", str(port)]
    with running("dev server", command, server_environment(**environment), ready):
        yield base
