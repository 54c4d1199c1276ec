"""Artifact throughput through the dev server: upload (multipart through the API when the file fits its payload
limit, a presigned S3 POST otherwise, and the presigned path for every size) and download (the 307 followed to
the presigned GET), in MB/s, plus the Lambda-side time of a download request: the function only signs a URL, so
that time must not grow with the file. S3 is moto on localhost: the figures compare paths and sizes with each
other, they do not predict AWS.

Usage: python -m benchmarks.artifacts [--sizes 1,50] [--repeat 3]     (sizes in MB, 1 MB = 1,000,000 bytes)
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MB = 1_000_000


@dataclass
class Row:
    size: int
    path: str
    upload_s: list[float] = field(default_factory=list)
    download_s: list[float] = field(default_factory=list)
    lambda_ms: list[float] = field(default_factory=list)

    def line(self) -> str:
        up = self.size / MB / statistics.median(self.upload_s)
        down = self.size / MB / statistics.median(self.download_s)
        ms = statistics.median(self.lambda_ms)
        return f"{self.size / MB:>6g} MB  {self.path:<16} {up:>12.1f} {down:>14.1f} {ms:>20.1f}"


class Timed:
    """Wraps a Lambda handler and keeps the duration of each download invocation (GET .../artifacts/{id})."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> None:
        self.handler, self.download_ms = handler, []  # type: list[float]

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        result = self.handler(event, context)
        if event.get("httpMethod") == "GET" and event.get("resource", "").endswith("/{artifact_id}"):
            self.download_ms.append((time.perf_counter() - started) * 1000)
        return result


def serve() -> tuple[str, Timed, Any]:
    """The dev server in this process (moto, the template's resources and rules, the gateway) on a free port."""
    import uvicorn

    from devserver.__main__ import build
    from devserver.resources import free_port

    gateway, _ = build(rate_limit_per_minute=0)
    timed = Timed(gateway.handlers["ArtifactsFunction"])
    gateway.handlers["ArtifactsFunction"] = timed
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(gateway, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/ap/v1/agent", timed, server


def upload_multipart(http: Any, task_id: str, name: str, data: bytes) -> str:
    response = http.post(f"/tasks/{task_id}/artifacts", files={"file": (name, data)})
    response.raise_for_status()
    return str(response.json()["artifact_id"])


def upload_presigned(http: Any, task_id: str, name: str, data: bytes) -> str:
    import httpx

    ticket = http.post(f"/tasks/{task_id}/artifacts/uploads", json={"file_name": name, "file_size": len(data)})
    ticket.raise_for_status()
    post, artifact_id = ticket.json()["upload"], ticket.json()["artifact_id"]
    httpx.post(post["url"], data=post["fields"], files={"file": (name, data)}, timeout=300).raise_for_status()
    # the dev server finalizes on the S3 event; `complete` makes the figure independent of the event's latency
    http.post(f"/tasks/{task_id}/artifacts/uploads/{artifact_id}/complete").raise_for_status()
    return str(artifact_id)


def download(http: Any, task_id: str, artifact_id: str, size: int) -> float:
    started = time.perf_counter()
    with http.stream("GET", f"/tasks/{task_id}/artifacts/{artifact_id}", follow_redirects=True) as response:
        received = sum(len(chunk) for chunk in response.iter_bytes(1 << 20))
    elapsed = time.perf_counter() - started
    assert response.status_code == 200 and received == size, (response.status_code, received)
    return elapsed


def measure(http: Any, timed: Timed, size: int, path: str, repeat: int) -> Row:
    row = Row(size=size, path=path)
    send = upload_multipart if path == "API multipart" else upload_presigned
    data = os.urandom(size)
    task_id = http.post("/tasks", json={"input": f"benchmark {size} bytes"}).json()["task_id"]
    for i in range(repeat):
        started = time.perf_counter()
        artifact_id = send(http, task_id, f"file{i}.bin", data)
        row.upload_s.append(time.perf_counter() - started)
        timed.download_ms.clear()
        row.download_s.append(download(http, task_id, artifact_id, size))
        row.lambda_ms.extend(timed.download_ms)
    http.delete(f"/tasks/{task_id}")
    return row


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.artifacts", description=__doc__)
    parser.add_argument("--sizes", default="1,50", help="file sizes in MB, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    import httpx

    base, timed, server = serve()
    from agent_core.config import get_settings

    api_limit = get_settings().max_upload_body_bytes
    rows = []
    with httpx.Client(base_url=base, timeout=300) as http:
        for size in (int(float(s) * MB) for s in args.sizes.split(",")):
            paths = (["API multipart"] if size < api_limit - 4096 else []) + ["presigned POST"]
            rows.extend(measure(http, timed, size, path, args.repeat) for path in paths)
    server.should_exit = True
    header = f"{'size':>9}  {'upload path':<16} {'upload MB/s':>12} {'download MB/s':>14} {'Lambda ms/download':>20}"
    table = "\n".join(
        [
            f"Artifacts through the dev server (median of {args.repeat}; moto S3 on localhost, not AWS)",
            header,
            "-" * len(header),
            *(row.line() for row in rows),
        ]
    )
    print(table)
    return table


if __name__ == "__main__":
    main()
