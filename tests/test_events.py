"""The in-process event dispatcher: handlers in the order subscribed, one call per event or per batch;
and the timed-job scheduler that runs the reactions' periodic counterparts."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from yiyang import events
from yiyang.events import AlertRaised
from yiyang.jobs import Job, Scheduler


def raised(alert_id: int) -> AlertRaised:
    return AlertRaised(alert_id, 1, "fall", "high", None, True)


def test_a_batch_reaches_each_handler_in_order_once_per_event_or_once_in_all() -> None:
    calls: list[tuple[str, Any]] = []
    events.subscribe(AlertRaised, lambda _s, e: calls.append(("one", e.alert_id)))
    events.subscribe_many(AlertRaised, lambda _s, batch: calls.append(("many", [e.alert_id for e in batch])))
    # when two alerts are published together, then one alone
    events.publish_all(None, [raised(1), raised(2)])  # type: ignore[arg-type]
    events.publish(None, raised(3))  # type: ignore[arg-type]
    # then the per-event handler saw each, the batch handler each batch, in subscription order
    assert calls == [("one", 1), ("one", 2), ("many", [1, 2]), ("one", 3), ("many", [3])]


def test_nothing_published_reaches_nobody() -> None:
    calls: list[Any] = []
    events.subscribe_many(AlertRaised, lambda _s, batch: calls.append(batch))
    events.publish_all(None, [])  # type: ignore[arg-type]
    assert calls == []


def test_a_job_that_failed_is_tried_again_within_minutes_not_a_whole_interval_later() -> None:
    start = dt.datetime(2026, 1, 5, 1, 0, tzinfo=dt.UTC)
    runs: list[dt.datetime] = []

    def care_day(_database: Any, now: dt.datetime) -> None:
        runs.append(now)
        if len(runs) == 1:
            raise RuntimeError("database is locked")

    scheduler = Scheduler(None, [Job("care.day", dt.timedelta(hours=6), care_day)])  # type: ignore[arg-type]
    # when the first run fails and the scheduler passes each minute, then 6 h after the retry and an hour on
    for minutes in (0, 1, 2, 60, 361, 420):
        scheduler.run_due(start + dt.timedelta(minutes=minutes))
    # then it ran again a minute later and from then on at its interval
    assert [int((run - start).total_seconds() // 60) for run in runs] == [0, 1, 361]
    assert scheduler.failures == {"care.day": 1}


def test_a_long_job_does_not_hold_up_the_alert_jobs() -> None:
    release = threading.Event()
    delivered: list[dt.datetime] = []

    def care_day(_database: Any, _now: dt.datetime) -> None:
        release.wait(5)  # a district's care day takes tens of seconds

    def delivery(_database: Any, now: dt.datetime) -> None:
        delivered.append(now)
        if len(delivered) == 3:
            release.set()

    scheduler = Scheduler(
        None,  # type: ignore[arg-type]
        [
            Job("care.day", dt.timedelta(hours=6), care_day),
            Job("alerts.delivery", dt.timedelta(milliseconds=10), delivery),
        ],
    )
    stop = threading.Event()
    runner = threading.Thread(target=scheduler.run, args=(stop, 0.01))
    runner.start()
    # when the care day is running, then notices still go out, and the care day ends with them
    finished = release.wait(5)
    stop.set()
    runner.join(5)
    assert finished and len(delivered) >= 3
    assert not runner.is_alive()
