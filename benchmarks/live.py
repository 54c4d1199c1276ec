"""The dev server as `make dev` starts it, on a free port, for the benchmarks that speak HTTP to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from devserver.resources import free_port
from devserver.template import ROOT


@contextmanager
def dev_server(**environment: str) -> Iterator[str]:
    """Yields the API's base URL (`http://127.0.0.1:<port>/ap/v1/agent`) once it answers; stops it after.
    `environment` adds to the server's (e.g. OPENAI_BASE_URL for a local model)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENAI_"))}
    env.update(RATE_LIMIT_PER_MINUTE="0", POWERTOOLS_LOG_LEVEL="WARNING", **environment)
    server = subprocess.Popen(
        [sys.executable, "-m", "devserver", "--port", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/ap/v1/agent"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/tasks", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
