"""Client keys in the single table, one partition (a stack has tens of clients, not millions):

  key  PK=KEYS  SK=KEY#<key_id>  name, created_at, secret_sha256, budget_usd, revoked_at

Only the secret's SHA-256 is kept: the secret is shown once, when the key is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Conflict
from .dynamo import Table, from_item, to_item

_PARTITION = "KEYS"


def _key(key_id: str) -> dict[str, Any]:
    return {"PK": {"S": _PARTITION}, "SK": {"S": f"KEY#{key_id}"}}


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    name: str
    created_at: str
    secret_sha256: str
    budget_usd: float | None = None
    revoked_at: str | None = None


def _record(item: dict[str, Any]) -> KeyRecord:
    plain = from_item(item)
    budget = plain.get("budget_usd")
    return KeyRecord(
        key_id=str(plain["key_id"]),
        name=str(plain["name"]),
        created_at=str(plain["created_at"]),
        secret_sha256=str(plain["secret_sha256"]),
        budget_usd=None if budget is None else float(budget),
        revoked_at=plain.get("revoked_at"),
    )


class KeyItems(Table):
    def put_key(self, record: KeyRecord) -> None:
        plain = {k: v for k, v in vars(record).items() if v is not None and k != "budget_usd"}
        item = {**_key(record.key_id), **to_item(plain)}
        if record.budget_usd is not None:  # as a number: boto3's serialiser takes no floats
            item["budget_usd"] = {"N": str(record.budget_usd)}
        self.client.put_item(TableName=self.name, Item=item, ConditionExpression="attribute_not_exists(PK)")

    def get_key(self, key_id: str) -> KeyRecord | None:
        item = self.client.get_item(TableName=self.name, Key=_key(key_id), ConsistentRead=True).get("Item")
        return _record(item) if item else None

    def list_keys(self) -> list[KeyRecord]:
        request = {
            "TableName": self.name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _PARTITION}},
            "ConsistentRead": True,
        }
        return [_record(item) for page in self.pages(request) for item in page["Items"]]

    def revoke_key(self, key_id: str, revoked_at: str) -> KeyRecord:
        """Marks the key revoked (kept, so its tasks still name a known client); Conflict when there is no such key.
        A second revocation keeps the first time."""
        try:
            answer = self.client.update_item(
                TableName=self.name,
                Key=_key(key_id),
                UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :t)",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues={":t": {"S": revoked_at}},
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            raise Conflict(key_id) from exc
        return _record(answer["Attributes"])
