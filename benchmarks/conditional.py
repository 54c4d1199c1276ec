"""What conditional GETs save a polling client: the Python client polls a task and its step list while the task's
run goes on the dev server (a local model that takes --model-latency-s a turn, as a real one does), sending each
answer's ETag back; counts the answers that were 304, the bytes not sent, and the DynamoDB reads not made (a step
list's 304 is answered from the task item alone: its Query of the page's steps is not made).

Usage: python -m benchmarks.conditional [--poll-s 1] [--steps 5] [--model-latency-s 3]
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from http.server import ThreadingHTTPServer

import httpx

from autogpt_client import AutoGPTClient
from benchmarks import runs
from benchmarks.live import dev_server


class Model(runs.Model):
    """benchmarks/runs' model (write_file every turn, finish at turn `steps`), thinking `latency_s` a turn."""

    latency_s = 3.0

    def do_POST(self) -> None:
        time.sleep(self.latency_s)
        super().do_POST()


def _poll(client: AutoGPTClient, task_id: str, poll_s: float, seen: Counter[str]) -> None:
    steps_read_before = 0  # the page of steps the last 200 carried: what a 304 spared the Query
    while True:
        task = client.get_task(task_id)
        steps = client.list_steps(task_id)
        if seen["last_steps_status"] == 304:
            seen["step_items_not_read"] += steps_read_before
        steps_read_before = len(steps.steps)
        if task.status in ("completed", "failed"):
            return
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> Counter[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poll-s", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--model-latency-s", type=float, default=3.0)
    args = parser.parse_args(argv)
    Model.steps, Model.latency_s = args.steps, args.model_latency_s
    model = ThreadingHTTPServer(("127.0.0.1", 0), Model)
    threading.Thread(target=model.serve_forever, daemon=True).start()
    model_url = f"http://127.0.0.1:{model.server_address[1]}/v1"
    seen: Counter[str] = Counter()

    def count(response: httpx.Response) -> None:
        if response.request.method != "GET":
            return
        kind = "steps" if response.request.url.path.endswith("/steps") else "task"
        seen[f"{kind}_{response.status_code}"] += 1
        seen[f"{kind}_bytes"] += len(response.content) if response.status_code == 200 else 0
        if kind == "steps":
            seen["last_steps_status"] = response.status_code

    server = dev_server(OPENAI_API_KEY="sk-local", OPENAI_BASE_URL=model_url)
    with server as base, AutoGPTClient(base_url=base.removesuffix("/ap/v1/agent")) as client:
        client.http.event_hooks["response"].append(lambda r: (r.read(), count(r)))
        task = client.create_task(input="Summarise the files", additional_input={"auto_run": True})
        _poll(client, task.task_id, args.poll_s, seen)
    model.shutdown()

    print(
        f"A client polling a task and its steps every {args.poll_s}s through a run of {args.steps} steps\n"
        f"(dev server, a model that takes {args.model_latency_s}s a turn):\n"
    )
    print(f"{'read':<12}{'GETs':>6}{'304':>6}{'share':>8}{'body bytes sent':>17}")
    for kind in ("task", "steps"):
        total = seen[f"{kind}_200"] + seen[f"{kind}_304"]
        share = seen[f"{kind}_304"] / total if total else 0.0
        print(f"{kind:<12}{total:>6}{seen[f'{kind}_304']:>6}{share:>8.0%}{seen[f'{kind}_bytes']:>17}")
    print(
        f"\nDynamoDB: each 304 of the task is still one GetItem (its version is read); each 304 of the step list\n"
        f"spared one Query: {seen['steps_304']} Query calls and {seen['step_items_not_read']} step items not read."
    )
    return seen


if __name__ == "__main__":
    main()
