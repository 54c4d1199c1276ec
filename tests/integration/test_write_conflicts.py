"""Transactions that meet another transaction on the same item (DynamoDB's TransactionConflict, the counters item
mostly) are tried again: a create is not a 500, a finished step is not lost. A failed condition is still a conflict.

DynamoDB's answer is scripted on the real client through botocore's own events (as its Stubber does) for the first
attempts; moto answers the rest."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from agent_core import aws


def conflicts(times: int, reason: str = "TransactionConflict") -> list[int]:
    """Answers the next `times` TransactWriteItems calls with a cancellation; returns the list of calls seen."""
    seen: list[int] = []

    def answer(**_: Any) -> Any:
        seen.append(1)
        if len(seen) > times:
            return None  # moto answers
        reasons = [{"Code": "None"}, {"Code": reason}]
        parsed = {
            "Error": {"Code": "TransactionCanceledException", "Message": f"Transaction cancelled [{reason}]"},
            "CancellationReasons": reasons,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse("https://dynamodb", 400, {}, None), parsed

    aws.client("dynamodb").meta.events.register("before-call.dynamodb.TransactWriteItems", answer)
    return seen


def test_a_create_that_meets_another_transaction_is_tried_again(api) -> None:
    seen = conflicts(2)

    response = api("POST", "/tasks", json_body={"input": "x"})

    assert response.status == 200 and len(seen) == 3
    assert api("GET", f"/tasks/{response.json()['task_id']}").status == 200


def test_a_finished_step_is_not_lost_to_a_conflict(api, model_api) -> None:
    from tests.fake_model import completion

    model_api.side_effect = [completion({"content": "kept"})]
    task_id = api("POST", "/tasks", json_body={"input": "x"}).json()["task_id"]
    seen = conflicts(3)  # the step's start is one transaction, its finish another

    response = api("POST", f"/tasks/{task_id}/steps")

    assert response.status == 200 and response.json()["output"] == "kept"
    assert [s["output"] for s in api("GET", f"/tasks/{task_id}/steps").json()["steps"]] == ["kept"]
    assert len(seen) >= 4


def test_conflicts_that_do_not_clear_answer_a_clear_error_and_store_nothing(api) -> None:
    conflicts(10)
    before = api("GET", "/tasks").json()["pagination"]["total"]

    response = api("POST", "/tasks", json_body={"input": "x"})

    assert response.status == 429 and response.json()["error"]["code"] == "INSUFFICIENT_RESOURCES"
    assert api("GET", "/tasks").json()["pagination"]["total"] == before


@pytest.mark.parametrize("reason", ["ConditionalCheckFailed"])
def test_a_failed_condition_is_not_tried_again(api, reason: str) -> None:
    task_id = api("POST", "/tasks", json_body={"input": "x"}).json()["task_id"]
    seen = conflicts(1, reason)

    response = api("POST", f"/tasks/{task_id}/steps")

    assert response.status == 409 and len(seen) == 1
