"""`Idempotency-Key` makes POST /tasks and POST /steps safe to retry: one execution, the first answer replayed."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from agent_core.storage.table import get_table
from tests.fake_model import Reply, completion
from tests.integration.test_steps_openai import new_task

GO = {"input": "go"}
BODY = {"input": "Analyse the sales file", "additional_input": {"priority": "high"}}


def test_retried_create_with_the_same_key_makes_one_task(api) -> None:
    first = api("POST", "/tasks", json_body=BODY, headers={"Idempotency-Key": "k-1"})
    retry = api("POST", "/tasks", json_body=BODY, headers={"Idempotency-Key": "k-1"})
    other = api("POST", "/tasks", json_body=BODY, headers={"Idempotency-Key": "k-2"})

    assert first.status == retry.status == other.status == 200
    assert retry.json() == first.json()
    assert other.json()["task_id"] != first.json()["task_id"]
    assert get_table().counters()["tasks_total"] == 2
    assert api("GET", "/tasks").json()["pagination"]["total"] == 2


def test_key_reused_with_another_body_is_refused(api) -> None:
    api("POST", "/tasks", json_body=BODY, headers={"Idempotency-Key": "k-1"})

    reused = api("POST", "/tasks", json_body={**BODY, "input": "something else"}, headers={"Idempotency-Key": "k-1"})

    assert reused.status == 400
    assert reused.json()["error"]["details"] == {
        "reason": "this Idempotency-Key was used with a different request",
        "field": "Idempotency-Key",
        "in": "header",
    }
    assert get_table().counters()["tasks_total"] == 1


def test_failed_request_is_not_remembered(api) -> None:
    refused = api(
        "POST", "/tasks", json_body={**BODY, "additional_input": {"model": "nope"}}, headers={"Idempotency-Key": "k-1"}
    )
    fixed = api("POST", "/tasks", json_body=BODY, headers={"Idempotency-Key": "k-1"})

    assert refused.status == 400 and fixed.status == 200


def test_retried_step_with_the_same_key_runs_the_model_once(api, model_api) -> None:
    model_api.side_effect = [completion({"content": "only once"}), completion({"content": "twice?"})]
    task_id = new_task(api)

    first = api("POST", f"/tasks/{task_id}/steps", json_body={"input": "go"}, headers={"Idempotency-Key": "s-1"})
    retry = api("POST", f"/tasks/{task_id}/steps", json_body={"input": "go"}, headers={"Idempotency-Key": "s-1"})

    assert first.status == retry.status == 200
    assert retry.json()["step_id"] == first.json()["step_id"] and retry.json()["output"] == "only once"
    assert model_api.call_count == 1
    assert api("GET", f"/tasks/{task_id}/steps").json()["pagination"]["total"] == 1


def test_idempotency_key_over_255_characters_is_refused(api) -> None:
    response = api("POST", "/tasks", json_body=BODY, headers={"Idempotency-Key": "k" * 256})
    assert response.status == 400 and response.json()["error"]["details"]["field"] == "Idempotency-Key"


def test_a_retry_while_the_first_is_still_running_is_told_so(api, model_api) -> None:
    asked, release = threading.Event(), threading.Event()

    def held_model(request: dict[str, Any]) -> Reply:
        asked.set()
        release.wait(30)
        return completion({"content": "the first"})

    model_api.side_effect = held_model
    task_id = new_task(api)
    first: list[Any] = []

    def post_first() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())  # an invocation of its own, as on Lambda
        first.append(
            api("POST", f"/tasks/{task_id}/steps", json_body={"input": "go"}, headers={"Idempotency-Key": "s"})
        )

    thread = threading.Thread(target=post_first)
    thread.start()
    assert asked.wait(30), "the first request never reached the model"
    retry = api("POST", f"/tasks/{task_id}/steps", json_body=GO, headers={"Idempotency-Key": "s"})
    release.set()
    thread.join(30)

    assert retry.status == 409 and retry.json()["error"]["code"] == "TASK_ALREADY_RUNNING"
    assert retry.json()["error"]["details"]["idempotency_key"] == "s"  # the key's first use, not the step's lease
    assert first[0].status == 200 and model_api.call_count == 1
