"""How long a status change takes to reach a WebSocket subscriber on the dev server: from the moment the function
builds the `status_update` (its `timestamp`) to its arrival at the client, for 1 and 50 subscribers of one task,
over the steps of the offline model. Starts the dev server as `make dev` does, on a free port.

Usage: python -m benchmarks.push [--steps 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import datetime

import httpx
import websockets

from benchmarks.live import dev_server


def _arrival_delays_ms(base: str, subscribers: int, steps: int) -> list[float]:
    client = httpx.Client(base_url=base, timeout=60)
    task_id = client.post("/tasks", json={"input": "Summarise"}).json()["task_id"]
    url = base.replace("http://", "ws://") + f"/tasks/{task_id}/ws"
    delays: list[float] = []

    async def subscriber(ready: asyncio.Semaphore, changes: int) -> None:
        """Until it has `changes` messages (two a step: started, finished), or a minute has passed. A subscriber
        still being marked ready when the first step starts may also get the welcome's catch-up, a copy of the
        status then: it is counted as a message."""
        async with websockets.connect(url, open_timeout=60) as socket:
            await socket.recv()  # the current status, sent when it connected: not a change
            ready.release()
            deadline, received = time.monotonic() + 60, 0
            while received < changes and time.monotonic() < deadline:
                try:
                    raw = await asyncio.wait_for(socket.recv(), timeout=deadline - time.monotonic())
                except TimeoutError:
                    break
                sent = datetime.fromisoformat(json.loads(raw)["timestamp"].replace("Z", "+00:00")).timestamp()
                delays.append((time.time() - sent) * 1000)
                received += 1

    async def scenario() -> None:
        ready = asyncio.Semaphore(0)
        tasks = [asyncio.create_task(subscriber(ready, 2 * steps)) for _ in range(subscribers)]
        for _ in tasks:
            await asyncio.wait_for(ready.acquire(), timeout=120)
        loop = asyncio.get_running_loop()
        for _ in range(steps):  # two status changes each: started, finished
            await loop.run_in_executor(None, lambda: client.post(f"/tasks/{task_id}/steps"))
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    return delays


def main(argv: list[str] | None = None) -> dict[int, tuple[float, float, int]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 50])
    args = parser.parse_args(argv)
    with dev_server() as base:
        rows = {}
        for n in args.subscribers:
            delays = sorted(_arrival_delays_ms(base, n, args.steps))
            rows[n] = (statistics.median(delays), delays[int(0.95 * (len(delays) - 1))], len(delays))
    print(
        f"From a status change to its arrival at a subscriber (dev server, {args.steps} steps of the offline model):\n"
    )
    print(f"{'subscribers':>12}{'median ms':>12}{'p95 ms':>10}{'messages':>10}")
    for n, (median, p95, count) in rows.items():
        print(f"{n:>12}{median:>12.1f}{p95:>10.1f}{count:>10}")
    return rows


if __name__ == "__main__":
    main()
