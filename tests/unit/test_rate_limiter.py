"""The dev server's per-client sliding window (the template's requests-per-minute limit)."""

from __future__ import annotations

import pytest

from devserver import gateway
from devserver.gateway import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(gateway.time, "monotonic", fake)
    return fake


def test_rate_limiter_allows_the_limit_then_refuses(clock: Clock) -> None:
    limiter = RateLimiter(3)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]


def test_rate_limiter_window_slides_after_a_minute(clock: Clock) -> None:
    limiter = RateLimiter(2)
    limiter.allow("a")
    clock.now += 30
    limiter.allow("a")
    assert not limiter.allow("a")
    clock.now += 30  # the first request is now a minute old
    assert limiter.allow("a")
    assert not limiter.allow("a")


def test_rate_limiter_counts_each_client_apart(clock: Clock) -> None:
    limiter = RateLimiter(1)
    assert limiter.allow("a") and limiter.allow("b")
    assert not limiter.allow("a")


def test_rate_limiter_refused_requests_do_not_extend_the_wait(clock: Clock) -> None:
    limiter = RateLimiter(1)
    limiter.allow("a")
    for _ in range(5):
        clock.now += 10
        assert not limiter.allow("a")
    clock.now += 10
    assert limiter.allow("a")


@pytest.mark.parametrize("limit", [0, -1])
def test_rate_limiter_off_allows_everything(clock: Clock, limit: int) -> None:
    limiter = RateLimiter(limit)
    assert all(limiter.allow("a") for _ in range(1000))
