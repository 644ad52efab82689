"""The pure sliding-window throttle rule."""

from __future__ import annotations

import datetime as dt

from yiyang.access.throttle import retry_after

T0 = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(minutes=10)


def at(seconds: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_below_the_limit_an_attempt_may_be_made() -> None:
    assert retry_after([at(0), at(10)], at(20), limit=3, window=WINDOW) is None


def test_at_the_limit_wait_until_the_oldest_leaves_the_window() -> None:
    assert retry_after([at(0), at(10), at(20)], at(30), limit=3, window=WINDOW) == 600 - 30


def test_over_the_limit_wait_until_enough_have_left() -> None:
    # five failures, limit three: three must leave, the third oldest at t=20 leaves at t=620
    failures = [at(40), at(0), at(30), at(20), at(10)]
    assert retry_after(failures, at(50), limit=3, window=WINDOW) == 620 - 50


def test_failures_outside_the_window_do_not_count() -> None:
    assert retry_after([at(0), at(10), at(20)], at(610), limit=3, window=WINDOW) is None
    assert retry_after([at(0), at(10), at(20)], at(600), limit=3, window=WINDOW) is None
