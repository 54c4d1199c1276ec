"""Timestamps: ISO 8601 UTC with Z, fixed width, so they sort as strings."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from agent_core.timeutil import now_iso, to_iso

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_to_iso_writes_utc_with_z_and_milliseconds() -> None:
    assert to_iso(datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)) == "2024-01-15T10:30:00.123Z"


def test_to_iso_pads_milliseconds_to_three_digits() -> None:
    assert to_iso(datetime(2024, 1, 15, 10, 30, 0, 5000, tzinfo=UTC)) == "2024-01-15T10:30:00.005Z"
    assert to_iso(datetime(2024, 1, 15, 10, 30, tzinfo=UTC)) == "2024-01-15T10:30:00.000Z"


def test_to_iso_converts_an_offset_to_utc() -> None:
    moment = datetime(2024, 1, 15, 18, 30, tzinfo=timezone(timedelta(hours=8)))
    assert to_iso(moment) == "2024-01-15T10:30:00.000Z"


def test_to_iso_converts_across_a_date_line() -> None:
    moment = datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert to_iso(moment) == "2023-12-31T19:30:00.000Z"


def test_to_iso_takes_a_naive_time_as_utc() -> None:
    assert to_iso(datetime(2024, 1, 15, 10, 30)) == "2024-01-15T10:30:00.000Z"


def test_to_iso_strings_sort_like_the_moments() -> None:
    base = datetime(2024, 1, 15, 9, 59, 59, 999000, tzinfo=UTC)
    moments = [base + timedelta(milliseconds=ms) for ms in (0, 1, 1000, 3_600_000, 86_400_000 * 400)]
    assert sorted(to_iso(m) for m in moments) == [to_iso(m) for m in moments]


def test_now_iso_is_now_in_utc() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    stamp = now_iso()
    assert ISO_Z.match(stamp)
    assert before <= datetime.fromisoformat(stamp) <= datetime.now(UTC)
