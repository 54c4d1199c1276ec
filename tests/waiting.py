"""Waiting in tests: for a condition, polled until a deadline, never for a length of time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], *, timeout_s: float = 60, what: str = "the condition") -> T:
    """`check()`'s first true value, polled every 20 ms; AssertionError naming `what` when `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.02)
