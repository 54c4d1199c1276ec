"""Steps through the real handler and the real `openai` client, against a scripted OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any

import pytest

from agent_core import aws
from agent_core.config import get_settings
from agent_core.storage.records import StepRecord
from agent_core.storage.table import get_table
from agent_core.timeutil import now_iso
from tests.fake_model import FakeModelAPI, Reply, completion, failure, tool_call

PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def new_task(api, **additional: Any) -> str:
    return api("POST", "/tasks", json_body={"input": "Write a note", "additional_input": additional}).json()["task_id"]


def sent(fake: FakeModelAPI, index: int = -1) -> dict[str, Any]:
    return fake.requests[index]


def test_scripted_conversation_runs_tools_through_finish(api, model_api) -> None:
    model_api.side_effect = [
        completion(tool_call("write_file", {"path": "notes/hello.txt", "content": "hello"})),
        completion(tool_call("finish", {"summary": "wrote notes/hello.txt"}, "call_2")),
    ]
    task_id = new_task(api)

    first = api("POST", f"/tasks/{task_id}/steps", body=b"").json()
    second = api("POST", f"/tasks/{task_id}/steps", json_body={"input": "go on"}).json()

    assert first["status"] == "completed" and first["is_last"] is False and first["name"] == "write_file"
    assert first["artifacts"][0]["relative_path"] == "notes/hello.txt" and first["artifacts"][0]["agent_created"]
    assert "→ write_file: Wrote notes/hello.txt" in first["output"]
    assert first["additional_output"]["usage"] == {
        "prompt_tokens": 1000,
        "completion_tokens": 100,
        "total_tokens": 1100,
    }
    # gpt-4o-mini: $0.15 / $0.60 per million tokens
    assert first["additional_output"]["cost_usd"] == pytest.approx((1000 * 0.15 + 100 * 0.60) / 1e6)
    assert second["is_last"] is True and "wrote notes/hello.txt" in second["output"]
    assert api("GET", f"/tasks/{task_id}").json()["status"] == "completed"
    offered = {t["function"]["name"] for t in sent(model_api, 0)["tools"]}
    assert {"list_files", "read_file", "write_file", "run_python", "fetch_url", "finish"} <= offered
    history = sent(model_api, 1)["messages"]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "tool", "user"]
    assert history[2]["tool_calls"][0]["function"]["name"] == "write_file"
    assert history[3]["tool_call_id"] == "call_1" and history[4]["content"] == "go on"


def test_malformed_tool_arguments_are_reported_not_fatal(api, model_api) -> None:
    model_api.side_effect = [completion(tool_call("write_file", "{not json")), completion({"content": "sorry"})]
    task_id = new_task(api)

    step = api("POST", f"/tasks/{task_id}/steps").json()
    api("POST", f"/tasks/{task_id}/steps")

    assert step["status"] == "completed"
    assert "not valid JSON" in step["additional_output"]["tool_calls"][0]["error"]
    assert "failed" in step["output"]
    tool_message = sent(model_api, 1)["messages"][3]
    assert tool_message["role"] == "tool" and "not valid JSON" in tool_message["content"]


def test_transient_errors_are_retried_then_succeed(api, model_api) -> None:
    model_api.side_effect = [failure(429), failure(500), completion({"content": "done thinking"})]
    task_id = new_task(api)

    response = api("POST", f"/tasks/{task_id}/steps")

    assert response.status == 200 and response.json()["output"] == "done thinking"
    assert model_api.call_count == 3


def test_timeout_is_retried_then_succeeds(api, model_api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_TIMEOUT_S", "0.5")
    get_settings.cache_clear()
    slow = completion({"content": "late"})
    slow.delay_s = 1.5
    model_api.side_effect = [slow, completion({"content": "ok"})]
    response = api("POST", f"/tasks/{new_task(api)}/steps")
    assert response.status == 200 and model_api.call_count == 2


def test_exhausted_retries_answer_502_and_keep_the_step(api, model_api) -> None:
    model_api.side_effect = [failure(500)] * 3 + [completion({"content": "back"})]
    task_id = new_task(api)

    response = api("POST", f"/tasks/{task_id}/steps", json_body={"input": "keep me"})

    error = response.json()["error"]
    assert response.status == 502 and error["code"] == "OPENAI_API_ERROR"
    assert error["details"]["upstream_status"] == 500 and error["details"]["request_id"] == "req-500"
    stored = api("GET", f"/tasks/{task_id}/steps").json()["steps"]
    assert len(stored) == 1 and stored[0]["input"] == "keep me" and stored[0]["status"] == "completed"
    assert stored[0]["additional_output"]["error"]["code"] == "OPENAI_API_ERROR"
    # the task stays usable
    assert api("POST", f"/tasks/{task_id}/steps").json()["output"] == "back"


def test_spent_budget_refuses_new_steps(api, model_api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BUDGET_USD", "0.0001")
    get_settings.cache_clear()
    model_api.side_effect = [completion({"content": "expensive"}, prompt=1_000_000)]
    task_id = new_task(api)
    assert api("POST", f"/tasks/{task_id}/steps").status == 200

    refused = api("POST", f"/tasks/{task_id}/steps")

    error = refused.json()["error"]
    assert refused.status == 429 and error["code"] == "INSUFFICIENT_RESOURCES"
    assert error["details"]["budget_usd"] == 0.0001 and error["details"]["spent_usd"] == pytest.approx(
        0.15 + 100 * 0.60 / 1e6
    )
    assert model_api.call_count == 1


def test_task_picks_an_allowed_model_and_is_refused_others(api, model_api) -> None:
    model_api.side_effect = [completion({"content": "hi"}, model="gpt-3.5-turbo")]
    chosen = new_task(api, model="gpt-3.5-turbo")
    assert api("POST", f"/tasks/{chosen}/steps").status == 200
    assert sent(model_api)["model"] == "gpt-3.5-turbo"

    at_create = api("POST", "/tasks", json_body={"input": "x", "additional_input": {"model": "not-a-model"}})
    at_step = api("POST", f"/tasks/{chosen}/steps", json_body={"additional_input": {"model": "not-a-model"}})
    for refused in (at_create, at_step):
        assert refused.status == 400 and refused.json()["error"]["details"]["field"] == "additional_input.model"
    assert model_api.call_count == 1


@pytest.mark.parametrize(("model", "sees_images"), [("gpt-4o", True), ("gpt-3.5-turbo", False)])
def test_task_images_reach_vision_models_only(api, model_api, model: str, sees_images: bool) -> None:
    model_api.side_effect = [completion({"content": "I see"}, model=model)]
    task_id = new_task(api, model=model, images=["https://example.com/chart.png"])
    upload = api(
        "POST",
        f"/tasks/{task_id}/artifacts",
        body=_multipart("pixel.png", PNG_1x1),
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert upload.status == 200

    api("POST", f"/tasks/{task_id}/steps")

    content = sent(model_api)["messages"][1]["content"]
    if sees_images:
        urls = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
        assert urls[0].startswith("data:image/png;base64,") and urls[1] == "https://example.com/chart.png"
    else:
        assert isinstance(content, str) and "cannot see images" in content


def test_concurrent_steps_on_one_task_run_exactly_once(api, model_api) -> None:
    release = threading.Event()

    def slow_model(request: dict[str, Any]) -> Reply:
        release.wait(5)
        return completion({"content": "the one"})

    model_api.side_effect = slow_model
    task_id = new_task(api)
    statuses: list[int] = []

    def post() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())  # each thread is an invocation, as a Lambda instance is
        statuses.append(api("POST", f"/tasks/{task_id}/steps").status)

    threads = [threading.Thread(target=post) for _ in range(10)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(statuses) < 9 and time.monotonic() < deadline:  # nine are refused while the first waits on the model
        time.sleep(0.01)
    release.set()
    for t in threads:
        t.join(30)

    assert sorted(statuses) == [200] + [409] * 9
    assert model_api.call_count == 1
    assert api("GET", f"/tasks/{task_id}/steps").json()["pagination"]["total"] == 1


BOUNDARY = "testboundary"


def _multipart(name: str, data: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def test_deployed_key_comes_from_ssm_parameter(api, model_api, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no key in the environment, only the name of a SecureString parameter that holds it
    aws.client("ssm").put_parameter(Name="/agent-api/openai-api-key", Value="sk-from-ssm", Type="SecureString")
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY_PARAMETER", "/agent-api/openai-api-key")
    get_settings.cache_clear()
    model_api.side_effect = [completion({"content": "hello"})]

    response = api("POST", f"/tasks/{new_task(api)}/steps")

    assert response.status == 200 and model_api.keys == ["sk-from-ssm"]


def test_step_left_running_by_a_dead_invocation_is_closed_by_the_next(api, model_api) -> None:
    # Given a step whose invocation died: running, under a lease that has expired
    task_id = new_task(api)
    state, _ = get_table().load_task_with_steps(task_id)
    dead = StepRecord(
        task_id=task_id,
        step_id=str(uuid.uuid4()),
        seq=1,
        name="step",
        status="running",
        input="lost?",
        additional_input={},
        created_at=now_iso(),
        modified_at=now_iso(),
    )
    get_table().start_step(state, dead, lease_id="dead", lease_until=int(time.time()) - 1, now=int(time.time()))
    model_api.side_effect = [completion({"content": "resumed"})]

    # When the next step is posted
    response = api("POST", f"/tasks/{task_id}/steps")

    # Then it runs, and the dead step is closed with the reason, its input kept
    assert response.status == 200 and response.json()["output"] == "resumed"
    closed = api("GET", f"/tasks/{task_id}/steps/{dead.step_id}").json()
    assert closed["status"] == "completed" and closed["input"] == "lost?"
    assert closed["additional_output"]["error"]["type"] == "Interrupted"


def test_task_deleted_while_its_step_runs_answers_404(api, model_api) -> None:
    release = threading.Event()
    model_api.side_effect = lambda body: (release.wait(5), completion({"content": "too late"}))[1]
    task_id = new_task(api)
    result: list[Any] = []

    def post() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        result.append(api("POST", f"/tasks/{task_id}/steps"))

    worker = threading.Thread(target=post)
    worker.start()
    deadline = time.monotonic() + 20
    while not model_api.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert model_api.requests, "the step never reached the model"
    assert api("DELETE", f"/tasks/{task_id}").status == 200
    release.set()
    worker.join(30)

    assert result[0].status == 404 and result[0].json()["error"]["code"] == "TASK_NOT_FOUND"
    state, steps = get_table().load_task_with_steps(task_id)
    assert state is None and steps == []  # nothing was written back under the deleted task


def test_step_publishes_its_usage_as_embedded_metrics(api, model_api, monkeypatch, capsys) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    model_api.side_effect = [completion(tool_call("finish", {"summary": "done"}))]
    api("POST", f"/tasks/{new_task(api)}/steps")

    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]

    assert len(records) == 1
    record = records[0]
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "AgentProtocol/local"  # per stack: the local one
    assert record["model"] == "gpt-4o-mini" and record["Steps"] == [1.0] and record["StepErrors"] == [0.0]
    assert record["StepTokens"] == [1100.0] and record["ToolCalls"] == [1.0]


def test_image_read_mid_run_reaches_the_model_next_turn_only(api, model_api) -> None:
    # Given a vision task with an image file, whose model reads it, then answers twice more
    model_api.side_effect = [
        completion(tool_call("read_file", {"path": "pixel.png"})),
        completion({"content": "a single pixel"}),
        completion({"content": "still here"}),
    ]
    task_id = new_task(api, model="gpt-4o")
    api(
        "POST",
        f"/tasks/{task_id}/artifacts",
        body=_multipart("pixel.png", PNG_1x1),
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )

    for _ in range(3):
        assert api("POST", f"/tasks/{task_id}/steps").status == 200

    # Then the turn right after the read carries the image as an image part
    after_read = sent(model_api, 1)["messages"][-1]
    assert after_read["role"] == "user" and after_read["content"][0]["text"].startswith("The image(s) your tool")
    assert after_read["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    # and later turns only a note (each request carries the latest images, not every image ever read)
    later = [m for m in sent(model_api, 2)["messages"] if m["role"] == "user" and "tool calls returned" in str(m)]
    assert later == [{"role": "user", "content": "The image(s) your tool calls returned: [1 image(s) were shown here]"}]


def test_text_that_cannot_be_encoded_is_kept_escaped_and_the_task_stays_usable(api, model_api) -> None:
    # JSON may carry a lone surrogate (\ud800); neither DynamoDB nor a UTF-8 response can hold one as it is.
    model_api.side_effect = [completion({"content": "half a pair: \ud800"}), completion({"content": "next"})]
    task_id = new_task(api)

    first = api("POST", f"/tasks/{task_id}/steps")
    second = api("POST", f"/tasks/{task_id}/steps")

    assert first.status == 200 and first.json()["output"] == "half a pair: \\ud800"
    assert api("GET", f"/tasks/{task_id}/steps/{first.json()['step_id']}").json()["output"] == "half a pair: \\ud800"
    assert second.status == 200 and second.json()["output"] == "next"
