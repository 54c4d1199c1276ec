"""Timestamps: ISO 8601 UTC with `Z`, fixed width (milliseconds), so they also sort as strings in DynamoDB keys."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    return to_iso(datetime.now(UTC))


def to_iso(moment: datetime) -> str:
    if moment.tzinfo is None:  # a naive time is taken as UTC, the API's only zone
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
