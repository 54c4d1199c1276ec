"""The agent's memory through the real handlers and the real `openai` client against a scripted model API: a long
task's requests stop growing and keep the input, the latest result and an early fact (through a summary asked for
without tools); a step whose model writes a 600 KB file is stored, read back with JSON arguments, and the task goes
on."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from agent_core import artifacts, aws
from agent_core.config import get_settings
from agent_core.storage.steps import step_object_key
from tests.fake_model import FakeModelAPI, Reply, completion, tool_call

FACT = "FACT: the vault code is ZEBRA-77"


def _prompt(body: dict[str, Any]) -> int:
    return max(1, len(json.dumps(body["messages"], ensure_ascii=False)) // 4)


def long_task_model(steps: list[int]) -> Any:
    """Reads data/log-<n>.txt at step n; answers a request without tools (a compaction) with every FACT it saw."""

    def answer(body: dict[str, Any]) -> Reply:
        if "tools" not in body:
            facts = dict.fromkeys(re.findall(r"FACT: [^\\\n\"]+", json.dumps(body["messages"])))
            return completion({"content": "Summary.\n" + "\n".join(facts)}, prompt=_prompt(body))
        steps.append(len(steps) + 1)
        return completion(tool_call("read_file", {"path": f"data/log-{steps[-1]}.txt"}), prompt=_prompt(body))

    return answer


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch, model_api: FakeModelAPI) -> FakeModelAPI:
    monkeypatch.setenv("CONTEXT_BUDGET_TOKENS", "6000")
    get_settings.cache_clear()
    return model_api


def test_a_long_task_stays_within_its_budget_and_keeps_what_matters(api, small_budget: FakeModelAPI) -> None:
    model_api, steps = small_budget, list[int]()
    model_api.side_effect = long_task_model(steps)
    task_id = api("POST", "/tasks", json_body={"input": "Audit the logs, ticket INPUT-9"}).json()["task_id"]
    total = 40
    for n in range(1, total + 1):
        head = (FACT + "\n") if n == 1 else f"MARK-{n}\n"
        artifacts.write_agent_file(task_id, f"data/log-{n}.txt", (head + "y" * 7_900).encode(), "text/plain", None)

    answers = [api("POST", f"/tasks/{task_id}/steps").json() for _ in range(total)]

    assert all(not a["additional_output"].get("error") for a in answers)
    turns = [r for r in model_api.requests if "tools" in r]
    summaries = [r for r in model_api.requests if "tools" not in r]
    assert len(turns) == total and 1 <= len(summaries) <= total // 4
    sizes = [len(json.dumps(r["messages"])) for r in turns]
    assert max(sizes[30:]) <= 1.15 * max(sizes[15:25])  # it stopped growing
    for n in range(2, total):
        text = json.dumps(turns[n]["messages"])
        assert f"MARK-{n}" in text or n == 1, n  # the previous step's result
        assert "INPUT-9" in text
    assert "ZEBRA-77" in json.dumps(turns[-1]["messages"])  # from step 1, through the summary
    contexts = [a["additional_output"]["context"] for a in answers]
    assert all(c["estimated_tokens"] <= c["budget_tokens"] == 6000 for c in contexts)
    compacted = [a for a in answers if a["additional_output"]["context"]["tier"] == "summary"]
    assert len(compacted) == len(summaries)
    spent = compacted[0]["additional_output"]
    assert spent["usage"]["prompt_tokens"] > spent["context"]["sent_tokens"]  # the summary's tokens are counted
    assert spent["context"]["summary"]["usage"]["prompt_tokens"] > 0


def test_a_step_that_writes_600_kb_is_stored_whole_and_read_back(api, model_api: FakeModelAPI) -> None:
    content = "z" * 600_000
    model_api.side_effect = [
        completion(tool_call("write_file", {"path": "data/huge.txt", "content": content})),
        completion(tool_call("finish", {"summary": "done"}, "call_2")),
    ]
    task_id = api("POST", "/tasks", json_body={"input": "Write a big file"}).json()["task_id"]

    step = api("POST", f"/tasks/{task_id}/steps")
    assert step.status == 200 and not step.json()["additional_output"].get("error")
    read = api("GET", f"/tasks/{task_id}/steps/{step.json()['step_id']}").json()
    call = read["additional_output"]["tool_calls"][0]
    assert json.loads(call["arguments"])["path"] == "data/huge.txt"
    assert call["arguments_shortened"] is True and call["arguments_chars"] > 600_000
    files = api("GET", f"/tasks/{task_id}/artifacts").json()["artifacts"]
    assert [f["file_size"] for f in files if f["relative_path"] == "data/huge.txt"] == [600_000]
    kept = (
        aws.client("s3")
        .get_object(Bucket=get_settings().bucket_name, Key=step_object_key(task_id, read["step_id"]))["Body"]
        .read()
    )
    assert content in json.loads(kept)[0]["tool_calls"][0]["function"]["arguments"]  # the whole turn, kept

    last = api("POST", f"/tasks/{task_id}/steps")
    assert last.status == 200 and last.json()["is_last"] is True
    sent = model_api.requests[-1]["messages"]
    args = json.loads(next(m for m in sent if m.get("tool_calls"))["tool_calls"][0]["function"]["arguments"])
    assert args["path"] == "data/huge.txt" and len(args["content"]) < 100_000
    assert all(not k.startswith("_") for m in sent for k in m)


def test_a_run_that_compacts_mid_way_finishes(api, small_budget: FakeModelAPI) -> None:
    """A run on Step Functions whose steps read large files: it summarises part-way, within its budget, and ends
    completed with every step stored."""
    from tests.integration.test_runs import FINISH, Runs

    model_api, steps, reads = small_budget, list[int](), 30
    reader = long_task_model(steps)
    model_api.side_effect = lambda body: FINISH if "tools" in body and len(steps) >= reads else reader(body)
    runs = Runs(api)
    task_id = runs.task()
    for n in range(1, reads + 1):
        head = (FACT + "\n") if n == 1 else f"MARK-{n}\n"
        artifacts.write_agent_file(task_id, f"data/log-{n}.txt", (head + "y" * 7_900).encode(), "text/plain", None)

    assert runs.start(task_id, max_steps=reads + 5).status == 202
    ended = runs.wait_ended(task_id)
    runs.settle()

    assert ended["status"] == "completed", ended
    stored = runs.steps(task_id)
    assert len(stored) == reads + 1 and stored[-1]["is_last"]
    contexts = [s["additional_output"]["context"] for s in stored]
    assert all(c["estimated_tokens"] <= c["budget_tokens"] == 6000 for c in contexts)
    assert any(c["tier"] == "summary" for c in contexts)  # it compacted part-way
    assert "ZEBRA-77" in json.dumps([r for r in model_api.requests if "tools" in r][-1]["messages"])
