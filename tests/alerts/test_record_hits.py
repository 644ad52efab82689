"""Raising alerts in bulk (``record_hits``, the ingest path) does what one ``record_hit`` per hit
does: one open alert per resident and kind, repeats counted, the chain's due steps run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from tests.alerts.conftest import T0, Scene
from yiyang.access.actor import Actor
from yiyang.alerts import service
from yiyang.alerts.book import effective_rules
from yiyang.alerts.models import Alert, AlertDelivery, AlertState, InboxItem
from yiyang.db import Database
from yiyang.events import AlertRaised, subscribe

NURSE = Actor(user_id=None, username="system:test")


def fall_hit(db: Database, scene: Scene, at: dt.datetime, count: int = 1) -> service.HitToRecord:
    with db.unit_of_work() as session:
        rules = effective_rules(session, scene.resident_id)
    rule = rules.rule("fall")
    assert rule is not None
    return service.HitToRecord(scene.resident_id, rule, rules, at, scene.radar_id, {"event": "fall"}, count)


def outcome_of(db: Database, alert_id: int) -> dict[str, Any]:
    """What raising left behind, without ids and times that differ between two raisings."""
    with db.unit_of_work() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        inbox = session.scalars(select(InboxItem).where(InboxItem.alert_id == alert_id)).all()
        deliveries = session.scalars(select(AlertDelivery).where(AlertDelivery.alert_id == alert_id)).all()
        return {
            "alert": (
                alert.kind, alert.state, alert.steps_done, alert.next_escalation_at, alert.repeats,
                alert.raised_at, alert.last_seen_at, alert.device_id, alert.detail, alert.chain,
            ),
            "transitions": [
                (t.from_state, t.to_state, t.step, t.by_name) for t in service.transitions_of(session, alert_id)
            ],
            "inbox": sorted((i.user_id, i.severity, i.title_zh.split("告警")[0]) for i in inbox),
            "deliveries": sorted(
                (d.step, d.channel, d.user_id or 0, d.target or "", d.status, d.attempts) for d in deliveries
            ),
        }  # fmt: skip


def test_a_bulk_raise_leaves_what_a_single_raise_leaves_with_steps_already_due(
    db: Database, scene: Scene
) -> None:
    # given a fall seen 6 minutes ago: the chain's first two steps are due at once
    at = T0 - dt.timedelta(minutes=6)
    raised: list[AlertRaised] = []
    subscribe(AlertRaised, lambda _s, e: raised.append(e))
    # when it is raised in bulk, and (once that alert is resolved) again one by one
    with db.unit_of_work() as session:
        ((bulk, new),) = service.record_hits(session, [fall_hit(db, scene, at)], T0)
    assert new
    bulk_outcome = outcome_of(db, bulk.id)
    with db.unit_of_work() as session:
        service.resolve(session, bulk.id, "false_alarm", NURSE, T0)
    hit = fall_hit(db, scene, at)
    with db.unit_of_work() as session:
        single, single_new = service.record_hit(
            session, hit.resident_id, hit.rule, hit.rules, at, T0, device_id=hit.device_id, detail=hit.detail
        )
        single_id = single.id
    assert single_new
    # then both left the same alert, transitions, inbox items and deliveries
    assert bulk_outcome == outcome_of(db, single_id)
    assert bulk_outcome["alert"][1:3] == (AlertState.escalated, 2)
    assert bulk_outcome["transitions"] == [
        (None, "open", None, "system:alert-rules"),
        ("open", "escalated", 1, "system:alert-escalation"),
    ]
    assert {user for user, *_ in bulk_outcome["inbox"]} == {scene.grid_worker, scene.daughter, scene.doctor}
    assert [(e.alert_id, e.kind) for e in raised] == [(bulk.id, "fall"), (single_id, "fall")]


def test_the_same_kind_twice_in_one_batch_raises_once_and_counts_the_second(
    db: Database, scene: Scene
) -> None:
    # given two falls of the same resident in one batch, the second a minute later
    hits = [fall_hit(db, scene, T0), fall_hit(db, scene, T0 + dt.timedelta(minutes=1), count=2)]
    # when they are recorded (the batch arriving with the second)
    with db.unit_of_work() as session:
        results = service.record_hits(session, hits, T0 + dt.timedelta(minutes=1))
    # then the first raised the alert, the second counted its two hits on it
    assert [new for _, new in results] == [True, False]
    assert results[0][0].id == results[1][0].id
    outcome = outcome_of(db, results[0][0].id)
    assert outcome["alert"][4:7] == (2, T0, T0 + dt.timedelta(minutes=1))
    assert outcome["transitions"] == [(None, "open", None, "system:alert-rules")]
    # and a later batch counts on the open alert, keeping the latest time seen
    with db.unit_of_work() as session:
        ((again, new),) = service.record_hits(
            session, [fall_hit(db, scene, T0 - dt.timedelta(minutes=5))], T0
        )
    assert (again.id, new) == (results[0][0].id, False)
    assert outcome_of(db, again.id)["alert"][4:7] == (3, T0, T0 + dt.timedelta(minutes=1))


def test_an_alert_another_worker_raised_after_the_look_up_is_counted_not_raised_twice(
    db: Database, scene: Scene, monkeypatch: Any
) -> None:
    # given another worker raises the fall between this batch's look-up and its insert
    raised: list[AlertRaised] = []
    subscribe(AlertRaised, lambda _s, e: raised.append(e))
    with db.unit_of_work() as session:
        ((theirs, _),) = service.record_hits(session, [fall_hit(db, scene, T0)], T0)
    looked_up = service._open_alerts
    calls: list[int] = []

    def stale_first_look(session: Any, keys: set[str]) -> dict[str, service.AlertRef]:
        calls.append(1)
        return {} if len(calls) == 1 else looked_up(session, keys)

    monkeypatch.setattr(service, "_open_alerts", stale_first_look)
    # when this batch records its own fall
    with db.unit_of_work() as session:
        ((ours, new),) = service.record_hits(
            session, [fall_hit(db, scene, T0 + dt.timedelta(seconds=30))], T0
        )
    # then it is a repeat on their alert: no second alert, transition or AlertRaised
    assert (ours.id, new) == (theirs.id, False)
    with db.unit_of_work() as session:
        assert len(session.scalars(select(Alert)).all()) == 1
    outcome = outcome_of(db, theirs.id)
    assert outcome["alert"][4] == 1 and len(outcome["transitions"]) == 1
    assert [e.alert_id for e in raised] == [theirs.id]
