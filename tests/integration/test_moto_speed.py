"""moto's DynamoDB answers written out without the shape walk (devserver/moto_speed.py): every attribute type
comes back as it was stored, through GetItem, Query and an update's ReturnValues."""

from __future__ import annotations

from typing import Any

import boto3

ITEM: dict[str, Any] = {
    "PK": {"S": "task"},
    "number": {"N": "1.50"},
    "empty": {"S": ""},
    "binary": {"B": b"\x00\xffhi"},
    "strings": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2"]},
    "binaries": {"BS": [b"\x01", b"\x02"]},
    "flag": {"BOOL": False},
    "nothing": {"NULL": True},
    "nested": {"M": {"list": {"L": [{"S": "z"}, {"N": "3"}, {"B": b"q"}, {"M": {}}, {"L": []}]}, "ok": {"BOOL": True}}},
    "empty_list": {"L": []},
}


def test_items_of_every_attribute_type_read_back_as_stored(aws_mock: None) -> None:
    # Given a table holding an item with every kind of attribute value (moto patched as the dev server patches it)
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName="speed", KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    ddb.put_item(TableName="speed", Item=ITEM)
    # When it is read by key, by query, and returned by an update
    got = ddb.get_item(TableName="speed", Key={"PK": {"S": "task"}})["Item"]
    queried = ddb.query(
        TableName="speed", KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": "task"}}
    )["Items"]
    updated = ddb.update_item(
        TableName="speed", Key={"PK": {"S": "task"}}, UpdateExpression="SET added = :n",
        ExpressionAttributeValues={":n": {"N": "2"}}, ReturnValues="ALL_NEW",
    )["Attributes"]  # fmt: skip
    # Then each is the stored item, binary values included
    assert got == ITEM
    assert queried == [ITEM]
    assert updated == {**ITEM, "added": {"N": "2"}}
