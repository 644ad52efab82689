"""A recent fall alert is a tier fact: the resident's tier changes and the reason names it."""

from __future__ import annotations

import datetime as dt

from tests.alerts.conftest import Scene
from tests.alerts.test_alerts import event, send
from yiyang.alerts.engine import AlertRules
from yiyang.db import Database, utcnow
from yiyang.tiers import service as tiers
from yiyang.tiers.rules import Tier


def test_a_fall_alert_turns_a_green_elder_yellow_and_says_why(
    db: Database, scene: Scene, reactions: None
) -> None:
    # given an elder decided green (no conditions, no assessments)
    now = utcnow().replace(microsecond=0)
    with db.unit_of_work() as session:
        tiers.retier_residents(session, [scene.resident_id], now=now)
        assert tiers.tier_of(session, scene.resident_id).tier is Tier.green
    # when her radar reports a fall
    send(
        db,
        AlertRules(clock=lambda: now),
        scene.radar_id,
        [event(1, now - dt.timedelta(minutes=1), "fall")],
        now,
    )
    # then she is yellow, and the reason is the fall alert
    with db.unit_of_work() as session:
        view = tiers.tier_of(session, scene.resident_id)
    assert view.tier is Tier.yellow
    (reason,) = view.decisive
    assert reason.rule.code == "alert.recent" and reason.fact.value == "fall"
    assert "跌倒" in reason.zh and "fall" in reason.en


def test_a_low_oxygen_alert_is_not_a_tier_fact(db: Database, scene: Scene, reactions: None) -> None:
    now = utcnow().replace(microsecond=0)
    with db.unit_of_work() as session:
        tiers.retier_residents(session, [scene.resident_id], now=now)
    send(
        db,
        AlertRules(clock=lambda: now),
        scene.wearable_id,
        [{"seq": 1, "time": now.isoformat(), "readings": {"59408-5": 88}}],
        now,
    )
    with db.unit_of_work() as session:
        assert tiers.tier_of(session, scene.resident_id).tier is Tier.green
        assert tiers.recent_alert_facts(session, scene.resident_id) == []
