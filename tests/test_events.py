"""The in-process event dispatcher: handlers in the order subscribed, one call per event or per batch."""

from __future__ import annotations

from typing import Any

from yiyang import events
from yiyang.events import AlertRaised


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
