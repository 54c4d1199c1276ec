"""The dev server's and the tests' moto keeps DynamoDB's transaction semantics with item-level backups
(devserver/moto_patches.py): a cancelled transaction leaves every item it touched as it was, including the ones it
created or deleted before the failing operation; a transaction that succeeds applies all of its operations."""

from __future__ import annotations

import pytest

from agent_core import aws
from agent_core.config import get_settings


def _key(pk: str) -> dict[str, dict[str, str]]:
    return {"PK": {"S": pk}, "SK": {"S": "X"}}


@pytest.fixture
def ddb(aws_mock: None):  # type: ignore[no-untyped-def]
    client = aws.client("dynamodb")
    name = get_settings().table_name
    client.put_item(TableName=name, Item={**_key("kept"), "n": {"N": "1"}})
    client.put_item(TableName=name, Item={**_key("doomed"), "n": {"N": "1"}})
    return client, name


def _item(client, name: str, pk: str):  # type: ignore[no-untyped-def]
    return client.get_item(TableName=name, Key=_key(pk), ConsistentRead=True).get("Item")


def test_a_cancelled_transaction_leaves_every_item_as_it_was(ddb) -> None:  # type: ignore[no-untyped-def]
    client, name = ddb
    with pytest.raises(client.exceptions.TransactionCanceledException) as cancelled:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": name, "Item": {**_key("new"), "n": {"N": "1"}}}},
                {"Update": {"TableName": name, "Key": _key("kept"), "UpdateExpression": "ADD n :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                {"Delete": {"TableName": name, "Key": _key("doomed")}},
                {"ConditionCheck": {"TableName": name, "Key": _key("absent"),
                                    "ConditionExpression": "attribute_exists(PK)"}},
            ]
        )  # fmt: skip
    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert _item(client, name, "new") is None
    assert _item(client, name, "kept")["n"] == {"N": "1"}
    assert _item(client, name, "doomed")["n"] == {"N": "1"}


def test_a_transaction_that_succeeds_applies_every_operation(ddb) -> None:  # type: ignore[no-untyped-def]
    client, name = ddb
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": name, "Item": {**_key("new"), "n": {"N": "1"}}}},
            {"Update": {"TableName": name, "Key": _key("kept"), "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Delete": {"TableName": name, "Key": _key("doomed"), "ConditionExpression": "attribute_exists(PK)"}},
        ]
    )  # fmt: skip
    assert _item(client, name, "new")["n"] == {"N": "1"}
    assert _item(client, name, "kept")["n"] == {"N": "2"}
    assert _item(client, name, "doomed") is None


def test_a_transaction_does_not_copy_the_table(ddb, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Its cost is the items it touches: no deep copy of a table, however large, is made."""
    from moto.dynamodb.models.table import Table

    import devserver.moto_patches as patched

    copied: list[type] = []
    real = patched.copy.deepcopy
    monkeypatch.setattr(
        patched.copy, "deepcopy", lambda value, memo=None: copied.append(type(value)) or real(value, memo)
    )
    client, name = ddb
    client.transact_write_items(TransactItems=[{"Put": {"TableName": name, "Item": {**_key("new"), "n": {"N": "1"}}}}])
    assert copied and Table not in copied
