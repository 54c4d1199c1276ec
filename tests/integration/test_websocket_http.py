"""The WebSocket channels over the dev server, as a client uses them (the `websockets` client, the spec's paths),
with runs of the offline model."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import pytest
import websockets

pytestmark = pytest.mark.http
Message = dict[str, Any]
T = TypeVar("T")


def ws_url(live_server: str) -> str:
    return live_server.replace("http://", "ws://")


async def collect(
    url: str,
    until: Callable[[Message], bool],
    limit_s: float = 60,
    ready: asyncio.Semaphore | None = None,
    opened: asyncio.Event | None = None,
) -> list[Message]:
    """The messages of one connection until `until` says so; `ready` is released at its first message, `opened`
    set once the handshake is done (the server has subscribed the connection by then)."""
    messages: list[Message] = []
    async with websockets.connect(url, open_timeout=30) as socket:
        if opened is not None:
            opened.set()
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(socket.recv(), timeout=deadline - time.monotonic())
            except TimeoutError:
                break
            messages.append(json.loads(raw))
            if ready is not None and len(messages) == 1:
                ready.release()
            if until(messages[-1]):
                break
    return messages


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs the client's side on a loop of its own (asyncio.run would leave this thread without a current loop,
    which the handlers that later tests call in it need)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def without_catch_up(seen: list[Any], usual: tuple[Any, ...]) -> list[Any]:
    """`seen` as `usual` has it where the only difference is push.welcome's catch-up: right after the first message,
    the status again (with the step count as its current step), beside the change it caught up with or instead of it
    (when the change was pushed just before the connection was marked ready)."""
    if len(seen) < 2 or len(usual) < 2 or seen[1][0] != usual[1][0]:
        return seen
    if len(seen) == len(usual) + 1 and tuple(seen[2:]) == usual[1:]:
        return seen[:1] + seen[2:]
    if len(seen) == len(usual) and tuple(seen[2:]) == usual[2:]:
        return [seen[0], usual[1], *seen[2:]]
    return seen


def ended(message: Message) -> bool:
    return message.get("status") in ("completed", "failed")


def test_watchers_see_a_run_from_its_current_status_to_completed(live_server: str, http: httpx.Client) -> None:
    task_id = http.post("/tasks", json={"input": "Summarise"}).json()["task_id"]
    url = f"{ws_url(live_server)}/tasks/{task_id}/ws"

    async def scenario() -> tuple[list[list[Message]], list[Message]]:
        welcomed = asyncio.Semaphore(0)
        watchers = [asyncio.create_task(collect(url, ended, ready=welcomed)) for _ in range(50)]
        log_url = f"{ws_url(live_server)}/logs/ws?task_id={task_id}"
        logs_open = asyncio.Event()
        logs = asyncio.create_task(collect(log_url, lambda m: "run completed" in m["message"], 40, opened=logs_open))
        for _ in watchers:  # every watcher has its first message (the log stream has none: it is open)
            await asyncio.wait_for(welcomed.acquire(), timeout=60)
        await asyncio.wait_for(logs_open.wait(), timeout=60)
        assert http.post(f"/tasks/{task_id}/run").status_code == 202
        return list(await asyncio.gather(*watchers)), await logs

    seen, logs = run(scenario())

    first = seen[0]
    assert first[0]["status"] == "created" and first[0]["progress"] == 0.0
    assert first[-1]["status"] == "completed" and first[-1]["progress"] == 1.0
    assert "running" in [m["status"] for m in first]
    progress = [m["progress"] for m in first]
    assert progress == sorted(progress)
    steps = [m["current_step"] for m in first]
    assert steps.index("step 1") < steps.index("list_files") < steps.index("finish")
    # Every one of the 50 watchers got every message, in the same order. (The last may be the last step's or the
    # run's end: both say completed, pushed from two functions at once.) A watcher still being marked ready when the
    # run started may also get the welcome's catch-up: the status again, right after its first message.
    brief = [[(m["status"], m["current_step"]) for m in w] for w in seen]
    usual = Counter(tuple(b[:-1]) for b in brief).most_common(1)[0][0]
    odd = [b for b in brief if tuple(without_catch_up(b[:-1], usual)) != usual or b[-1][0] != "completed"]
    assert not odd, "\n".join(map(str, [usual, *odd[:2]]))
    # The log stream, filtered to this task, carried the run's records
    assert {m["task_id"] for m in logs} == {task_id}
    said = [m["message"] for m in logs]
    assert said[0].startswith("run started") and "step 1 started" in said and any("finished: finish" in s for s in said)
    assert {m["component"] for m in logs} >= {"runner", "agent", "tool"}


def test_an_unknown_task_and_an_unknown_path_are_refused(live_server: str) -> None:
    for path in (f"/tasks/{uuid.uuid4()}/ws", "/tasks/not-an-id/ws", "/elsewhere/ws"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            run(collect(ws_url(live_server) + path, lambda m: True, 2))
        assert refused.value.response.status_code == 403


def test_a_client_that_leaves_is_forgotten(live_server: str, http: httpx.Client) -> None:
    task_id = http.post("/tasks", json={"input": "Summarise"}).json()["task_id"]
    url = f"{ws_url(live_server)}/tasks/{task_id}/ws"

    async def scenario() -> list[Message]:
        async with websockets.connect(url) as leaving:
            await leaving.recv()  # its first message; then it goes
        welcomed = asyncio.Semaphore(0)
        stays = asyncio.create_task(collect(url, ended, ready=welcomed))
        await asyncio.wait_for(welcomed.acquire(), timeout=60)
        http.post(f"/tasks/{task_id}/steps")
        for _ in range(3):
            http.post(f"/tasks/{task_id}/steps")
        return await stays

    messages = run(scenario())

    assert messages[-1]["status"] == "completed"
    # The server's management endpoint no longer knows the connection that left: nothing was sent to it
    assert http.post(live_server.split("/ap/")[0] + "/@connections/unknown", content=b"{}").status_code == 410
