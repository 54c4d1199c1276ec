"""moto's DynamoDB answers written out without the shape walk (devserver/moto_speed.py): every attribute type
comes back as it was stored, through GetItem, Query and an update's ReturnValues; update and condition expressions
evaluate as before with the lookups moto made anew for each node made once, and each update expression parsed
once."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

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


@pytest.fixture
def speed_table(aws_mock: None) -> None:
    boto3.client("dynamodb").create_table(
        TableName="speed", KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip


def test_items_of_every_attribute_type_read_back_as_stored(speed_table: None) -> None:
    # Given a table holding an item with every kind of attribute value (moto patched as the dev server patches it)
    ddb = boto3.client("dynamodb")
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


def test_update_expressions_use_each_requests_own_names_and_values(speed_table: None) -> None:
    # Given a table (moto's expression passes now keep their tables of node types)
    ddb = boto3.client("dynamodb")
    # When updates with the same expression text but other names and values follow each other
    for key, name, value in (("a", "x", "1"), ("a", "y", "2"), ("b", "x", "3"), ("a", "x", "4")):
        ddb.update_item(
            TableName="speed", Key={"PK": {"S": key}},
            UpdateExpression="ADD #n :v SET #l = list_append(if_not_exists(#l, :empty), :one) REMOVE gone",
            ConditionExpression="attribute_not_exists(#n) OR #n < :big",
            ExpressionAttributeNames={"#n": name, "#l": "log"},
            ExpressionAttributeValues={":v": {"N": value}, ":empty": {"L": []}, ":one": {"L": [{"N": value}]},
                                       ":big": {"N": "100"}},
        )  # fmt: skip
    # Then each applied its own: sums per attribute, appends in order
    a = ddb.get_item(TableName="speed", Key={"PK": {"S": "a"}})["Item"]
    b = ddb.get_item(TableName="speed", Key={"PK": {"S": "b"}})["Item"]
    assert a == {"PK": {"S": "a"}, "x": {"N": "5"}, "y": {"N": "2"}, "log": {"L": [{"N": "1"}, {"N": "2"}, {"N": "4"}]}}
    assert b == {"PK": {"S": "b"}, "x": {"N": "3"}, "log": {"L": [{"N": "3"}]}}
    # And a failed condition and a bad expression are still refused as DynamoDB refuses them
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.update_item(
            TableName="speed", Key={"PK": {"S": "a"}}, UpdateExpression="SET x = :v", ConditionExpression="x > :v",
            ExpressionAttributeValues={":v": {"N": "9"}},
        )  # fmt: skip
    with pytest.raises(ClientError, match="ValidationException"):
        ddb.update_item(
            TableName="speed", Key={"PK": {"S": "a"}}, UpdateExpression="SET PK = :v",
            ExpressionAttributeValues={":v": {"S": "other"}},
        )  # fmt: skip
    for _ in range(2):  # a syntax error is not remembered as a parse: it is refused each time
        with pytest.raises(ClientError, match="Invalid UpdateExpression"):
            ddb.update_item(
                TableName="speed", Key={"PK": {"S": "a"}}, UpdateExpression="SET x = = :v",
                ExpressionAttributeValues={":v": {"N": "1"}},
            )  # fmt: skip


def test_a_table_query_reads_its_partition_in_order_with_paging(aws_mock: None) -> None:
    # Given a table with a sort key and an index, items in two partitions (the table's Query lists one partition)
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName="parts",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK", "G")],
        GlobalSecondaryIndexes=[{"IndexName": "ByG", "KeySchema": [{"AttributeName": "G", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    for pk, sks in (("b", "zyx"), ("a", "dcab"), ("c", "")):
        for sk in sks:
            ddb.put_item(TableName="parts", Item={"PK": {"S": pk}, "SK": {"S": sk}, "G": {"S": "all"}})

    def query(pk: str, **extra: Any) -> list[str]:
        request = {"TableName": "parts", "KeyConditionExpression": "PK = :pk", **extra}
        request["ExpressionAttributeValues"] = {":pk": {"S": pk}, **request.get("ExpressionAttributeValues", {})}
        found, start = [], None
        for _ in range(10):  # bounded: four items are two pages
            page = ddb.query(**request, Limit=3, **({"ExclusiveStartKey": start} if start else {}))
            found += [item["SK"]["S"] for item in page["Items"]]
            if not (start := page.get("LastEvaluatedKey")):
                return found
        raise AssertionError("the pages never ended")

    # Then each reads its own partition, in sort key order either way, across pages, with key conditions
    assert query("a") == ["a", "b", "c", "d"]
    assert query("a", ScanIndexForward=False) == ["d", "c", "b", "a"]
    assert query("b", KeyConditionExpression="PK = :pk AND SK > :x", ExpressionAttributeValues={":x": {"S": "x"}}) == [
        "y", "z"]  # fmt: skip
    assert query("missing") == [] and query("c") == []
    # And an index Query still sees every partition
    index = ddb.query(TableName="parts", IndexName="ByG", KeyConditionExpression="G = :g",
                      ExpressionAttributeValues={":g": {"S": "all"}})["Items"]  # fmt: skip
    assert sorted(item["PK"]["S"] + item["SK"]["S"] for item in index) == ["aa", "ab", "ac", "ad", "bx", "by", "bz"]
    # And no empty partition was made by asking
    assert ddb.scan(TableName="parts")["Count"] == 7
