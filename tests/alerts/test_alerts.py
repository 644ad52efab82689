"""From readings to alerts, escalation and deliveries, on SQLite and PostgreSQL, on a fake clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from tests.alerts.conftest import T0, Scene
from yiyang.access.actor import Actor
from yiyang.alerts import service
from yiyang.alerts.book import effective_rules
from yiyang.alerts.engine import AlertRules, delivery_job, escalation_job, sweep_job
from yiyang.alerts.models import (
    Alert,
    AlertDeadline,
    AlertDelivery,
    AlertRuleOverride,
    AlertState,
    InboxItem,
    OverrideScope,
)
from yiyang.db import Database
from yiyang.devices import service as devices
from yiyang.devices.models import Device
from yiyang.events import AlertRaised, AlertResolved, subscribe
from yiyang.jobs import Job, Scheduler

NURSE = Actor(user_id=None, username="system:test")


def send(
    db: Database, rules: AlertRules, device_id: int, items: list[dict[str, Any]], now: dt.datetime
) -> None:
    with db.unit_of_work() as session:
        device = session.get(Device, device_id)
        devices.ingest_uploaded(session, device, items, now, rules=rules)


def event(seq: int, at: dt.datetime, kind: str) -> dict[str, Any]:
    return {"seq": seq, "time": at.isoformat(), "event": kind}


def reading(seq: int, at: dt.datetime, **values: float) -> dict[str, Any]:
    return {
        "seq": seq,
        "time": at.isoformat(),
        "readings": {k.replace("_", "-"): v for k, v in values.items()},
    }


def alerts(db: Database) -> list[Alert]:
    with db.unit_of_work() as session:
        rows = list(session.scalars(select(Alert).order_by(Alert.id)))
        session.expunge_all()
        return rows


def test_a_fall_raises_one_alert_and_a_repeat_is_counted_not_raised(db: Database, scene: Scene) -> None:
    # given the elder's radar; when it reports a fall twice
    raised: list[AlertRaised] = []
    subscribe(AlertRaised, lambda _s, e: raised.append(e))
    rules = AlertRules(clock=lambda: T0)
    send(db, rules, scene.radar_id, [event(1, T0, "fall")], T0)
    send(db, rules, scene.radar_id, [event(2, T0 + dt.timedelta(seconds=20), "fall")], T0)
    # then one open alert, one repeat, one AlertRaised
    (alert,) = alerts(db)
    assert (alert.kind, alert.state, alert.repeats, alert.resident_id) == (
        "fall",
        AlertState.open,
        1,
        scene.resident_id,
    )
    assert [e.kind for e in raised] == ["fall"]
    # and the first step reached the grid worker and the daughter (inbox and SMS), nobody else yet
    with db.unit_of_work() as session:
        inbox = {item.user_id for item in session.scalars(select(InboxItem))}
        deliveries = {(d.user_id, d.channel, d.status) for d in service.deliveries_of(session, alert.id)}
    assert inbox == {scene.grid_worker, scene.daughter}
    assert (scene.daughter, "sms", "pending") in deliveries and scene.doctor not in {d[0] for d in deliveries}


def test_thresholds_raise_per_kind_and_normal_readings_raise_nothing(db: Database, scene: Scene) -> None:
    rules = AlertRules(clock=lambda: T0)
    send(db, rules, scene.wearable_id, [reading(1, T0, **{"8867_4": 72, "59408_5": 97})], T0)
    assert alerts(db) == []
    send(db, rules, scene.wearable_id, [reading(2, T0, **{"8480_6": 185, "8462_4": 95, "59408_5": 90})], T0)
    assert sorted(a.kind for a in alerts(db)) == ["bp_urgent", "spo2_low"]


def test_escalation_reaches_the_doctors_after_5_minutes_and_stops_once_acknowledged(
    db: Database, scene: Scene
) -> None:
    rules = AlertRules(clock=lambda: T0)
    send(db, rules, scene.radar_id, [event(1, T0, "fall")], T0)
    (alert,) = alerts(db)
    # at 4 minutes nothing moves; at 5 the family-doctor team is told and the alert is escalated
    assert escalation_job(db, T0 + dt.timedelta(minutes=4))["steps"] == 0
    assert escalation_job(db, T0 + dt.timedelta(minutes=5))["steps"] == 1
    with db.unit_of_work() as session:
        current = session.get(Alert, alert.id)
        assert current.state == AlertState.escalated and current.steps_done == 2
        assert {
            i.user_id for i in session.scalars(select(InboxItem).where(InboxItem.user_id == scene.doctor))
        } == {scene.doctor}
        # when the doctor acknowledges
        service.acknowledge(
            session, alert.id, Actor(user_id=scene.doctor, username="doctor1"), T0 + dt.timedelta(minutes=6)
        )
    # then the station is never called, even long after its step was due
    assert escalation_job(db, T0 + dt.timedelta(minutes=30))["steps"] == 0
    with db.unit_of_work() as session:
        assert not list(session.scalars(select(InboxItem).where(InboxItem.user_id == scene.station_staff)))
        history = [(t.from_state, t.to_state, t.by_name) for t in service.transitions_of(session, alert.id)]
    assert history == [
        (None, "open", "system:alert-rules"),
        ("open", "escalated", "system:alert-escalation"),
        ("escalated", "acknowledged", "doctor1"),
    ]


def test_resolve_closes_with_an_outcome_publishes_and_frees_the_kind(db: Database, scene: Scene) -> None:
    resolved: list[AlertResolved] = []
    subscribe(AlertResolved, lambda _s, e: resolved.append(e))
    rules = AlertRules(clock=lambda: T0)
    send(db, rules, scene.radar_id, [event(1, T0, "sos")], T0)
    (alert,) = alerts(db)
    with db.unit_of_work() as session:
        service.resolve(session, alert.id, "visit_done", NURSE, T0 + dt.timedelta(minutes=40))
    assert [(e.alert_id, e.outcome) for e in resolved] == [(alert.id, "visit_done")]
    # a new SOS afterwards is a new alert
    send(db, rules, scene.radar_id, [event(2, T0 + dt.timedelta(hours=1), "sos")], T0 + dt.timedelta(hours=1))
    assert [(a.state, a.outcome) for a in alerts(db)] == [
        (AlertState.resolved, "visit_done"),
        (AlertState.open, None),
    ]


def test_out_of_bed_at_night_longer_than_30_minutes_is_raised_by_the_sweep(
    db: Database, scene: Scene
) -> None:
    night = dt.datetime(2026, 11, 24, 18, 0, tzinfo=dt.UTC)  # 02:00 in Beijing
    rules = AlertRules(clock=lambda: night)
    # back in bed after 20 minutes: nothing
    back = night + dt.timedelta(minutes=20)
    send(db, rules, scene.radar_id, [event(1, night, "out_of_bed"), event(2, back, "in_bed")], back)
    assert sweep_job(db, night + dt.timedelta(hours=1))["raised"] == 0
    # out of bed again and not back: the sweep raises it once the 30 minutes have passed
    later = night + dt.timedelta(hours=1)
    send(db, rules, scene.radar_id, [event(3, later, "out_of_bed")], later)
    assert sweep_job(db, later + dt.timedelta(minutes=29))["raised"] == 0
    assert sweep_job(db, later + dt.timedelta(minutes=30))["raised"] == 1
    assert [a.kind for a in alerts(db)] == ["out_of_bed_long"]


def test_no_activity_for_12_hours_raises_within_a_sweep_and_activity_moves_the_clock(
    db: Database, scene: Scene
) -> None:
    rules = AlertRules(clock=lambda: T0, slack=dt.timedelta(minutes=10))
    send(db, rules, scene.radar_id, [event(1, T0, "motion")], T0)
    # more motion 5 minutes later is inside the slack: not written, yet the sweep must not raise early
    send(
        db,
        rules,
        scene.radar_id,
        [event(2, T0 + dt.timedelta(minutes=5), "motion")],
        T0 + dt.timedelta(minutes=5),
    )
    report = sweep_job(db, T0 + dt.timedelta(hours=12, minutes=1))
    assert report == {"due": 1, "raised": 0, "repeats": 0, "rescheduled": 1}
    assert sweep_job(db, T0 + dt.timedelta(hours=12, minutes=5))["raised"] == 1
    (alert,) = alerts(db)
    assert alert.kind == "no_activity" and alert.raised_at == T0 + dt.timedelta(hours=12, minutes=5)
    with db.unit_of_work() as session:
        assert session.scalar(select(AlertDeadline).where(AlertDeadline.rule == "no_activity")) is None


def test_a_resident_override_changes_her_threshold_only(db: Database, scene: Scene) -> None:
    with db.unit_of_work() as session:
        session.add(
            AlertRuleOverride(
                scope=OverrideScope.resident, resident_id=scene.resident_id, rule="bp_urgent",
                params={"when": [["8480-6", ">=", 170]]}, changed_at=T0,
            )
        )  # fmt: skip
        assert effective_rules(session, scene.resident_id).rule("bp_urgent").when[0].value == 170
    rules = AlertRules(clock=lambda: T0)
    send(db, rules, scene.wearable_id, [reading(1, T0, **{"8480_6": 172})], T0)
    assert [a.kind for a in alerts(db)] == ["bp_urgent"]


def test_failed_sms_is_retried_with_back_off_and_recorded(db: Database, scene: Scene) -> None:
    scene.gateway.fail_next = 1
    rules = AlertRules(clock=lambda: T0)
    send(db, rules, scene.radar_id, [event(1, T0, "fall")], T0)
    # the grid worker's and the daughter's SMS: the first send fails, the second goes
    assert delivery_job(db, T0) == {"sent": 1, "failed": 1, "gave_up": 0}
    assert delivery_job(db, T0 + dt.timedelta(seconds=30)) == {"sent": 0, "failed": 0, "gave_up": 0}
    assert delivery_job(db, T0 + dt.timedelta(minutes=1)) == {"sent": 1, "failed": 0, "gave_up": 0}
    assert sorted(n.user_id for n in scene.gateway.sent) == [scene.grid_worker, scene.daughter]
    with db.unit_of_work() as session:
        sms = list(session.scalars(select(AlertDelivery).where(AlertDelivery.channel == "sms")))
        assert sorted((d.status, d.attempts) for d in sms) == [("sent", 1), ("sent", 2)]


def test_the_scheduler_runs_each_job_at_its_interval(db: Database) -> None:
    calls: list[dt.datetime] = []
    scheduler = Scheduler(db, [Job("tick", dt.timedelta(seconds=30), lambda _d, now: calls.append(now))])
    for seconds in (0, 10, 29, 30, 45, 61):
        scheduler.run_due(T0 + dt.timedelta(seconds=seconds))
    assert [(c - T0).seconds for c in calls] == [0, 30, 61]


def test_a_configured_webhook_hears_of_every_escalation_step(db: Database, scene: Scene) -> None:
    from yiyang.alerts.channels import Notifier, RecordingGateway
    from yiyang.alerts.engine import use_notifier

    hook = RecordingGateway()
    use_notifier(Notifier({"sms": scene.gateway, "voice": scene.gateway, "webhook": hook}))
    rules = AlertRules(clock=lambda: T0)
    send(db, rules, scene.radar_id, [event(1, T0, "gas")], T0)
    delivery_job(db, T0)
    escalation_job(db, T0 + dt.timedelta(minutes=10))
    delivery_job(db, T0 + dt.timedelta(minutes=10))
    assert [(n.kind, n.step, n.channel) for n in hook.sent] == [("gas", 0, "webhook"), ("gas", 1, "webhook")]


@pytest.mark.postgres
def test_an_alert_being_acknowledged_is_not_escalated_behind_its_back(pg_db: Database, gateway: Any) -> None:
    from tests.alerts.conftest import build_scene

    scene = build_scene(pg_db, gateway)
    send(pg_db, AlertRules(clock=lambda: T0), scene.radar_id, [event(1, T0, "fall")], T0)
    (alert,) = alerts(pg_db)
    # given a doctor acknowledging (row locked, not committed yet)
    with pg_db.unit_of_work() as session:
        service.acknowledge(
            session, alert.id, Actor(user_id=scene.doctor, username="doctor1"), T0 + dt.timedelta(minutes=5)
        )
        # when the escalation job runs meanwhile, then it leaves that alert alone
        assert escalation_job(pg_db, T0 + dt.timedelta(minutes=5))["steps"] == 0
    (after,) = alerts(pg_db)
    assert after.state == AlertState.acknowledged and after.steps_done == 1


def test_a_rolled_back_batch_writes_its_clocks_again_when_redelivered(db: Database, scene: Scene) -> None:
    rules = AlertRules(clock=lambda: T0)
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        device = session.get(Device, scene.radar_id)
        devices.ingest_uploaded(session, device, [event(1, T0, "motion")], T0, rules=rules)
        raise RuntimeError("the database went away before commit")
    send(db, rules, scene.radar_id, [event(1, T0, "motion")], T0)
    with db.unit_of_work() as session:
        clocks = {(d.rule, d.due_at) for d in session.scalars(select(AlertDeadline))}
    assert ("no_activity", T0 + dt.timedelta(hours=12)) in clocks


def test_a_fall_stamped_a_little_ahead_of_our_clock_reaches_its_first_step_at_once(
    db: Database, scene: Scene
) -> None:
    # given a radar whose clock runs 2 minutes fast (the ingest takes up to 10)
    rules = AlertRules(clock=lambda: T0)
    # when it reports a fall
    send(db, rules, scene.radar_id, [event(1, T0 + dt.timedelta(minutes=2), "fall")], T0)
    # then the grid worker and the daughter are told now, not when the device's clock says so,
    # and the chain counts from when we recorded it
    (alert,) = alerts(db)
    assert (alert.raised_at, alert.steps_done) == (T0, 1)
    assert alert.next_escalation_at == T0 + dt.timedelta(minutes=5)
    with db.unit_of_work() as session:
        assert {item.user_id for item in session.scalars(select(InboxItem))} == {
            scene.grid_worker,
            scene.daughter,
        }


def test_a_backlog_in_one_batch_keeps_when_the_alert_was_first_and_last_seen(
    db: Database, scene: Scene
) -> None:
    # given a wearable delivering three urgent BP readings at once, out of order
    now = T0 + dt.timedelta(minutes=3)
    batch = [reading(i, T0 + dt.timedelta(minutes=i), **{"8480_6": 185}) for i in (2, 0, 1)]
    send(db, AlertRules(clock=lambda: now), scene.wearable_id, batch, now)
    # then one alert, raised at the first, last seen at the latest, the other two counted
    (alert,) = alerts(db)
    assert (alert.raised_at, alert.last_seen_at, alert.repeats) == (T0, T0 + dt.timedelta(minutes=2), 2)
    # and a later batch moves last seen to its own latest reading
    later = T0 + dt.timedelta(minutes=5)
    batch = [reading(i, T0 + dt.timedelta(minutes=i), **{"8480_6": 185}) for i in (4, 3)]
    send(db, AlertRules(clock=lambda: later), scene.wearable_id, batch, later)
    (alert,) = alerts(db)
    assert (alert.last_seen_at, alert.repeats) == (T0 + dt.timedelta(minutes=4), 4)


def test_a_retired_device_raises_no_silence_alert(db: Database, scene: Scene) -> None:
    # given the wearable reported, then was retired an hour later
    send(db, AlertRules(clock=lambda: T0), scene.wearable_id, [reading(1, T0, **{"8867_4": 72})], T0)
    with db.unit_of_work() as session:
        devices.retire_device(session, scene.wearable_id, T0 + dt.timedelta(hours=1))
    # when its silence clock runs out, then nothing is raised and the clock is gone
    sweep_job(db, T0 + dt.timedelta(hours=27))
    assert alerts(db) == []
    with db.unit_of_work() as session:
        assert session.scalar(select(AlertDeadline).where(AlertDeadline.rule == "device_silent")) is None


def test_activity_a_moved_radar_reports_elsewhere_does_not_keep_her_clock_from_running_out(
    db: Database, scene: Scene
) -> None:
    from yiyang.devices.models import DeviceBinding
    from yiyang.geo.models import LivingArrangement
    from yiyang.residents.models import Resident

    # given her radar saw her at T0, and an hour later was moved to another elder's home
    send(db, AlertRules(clock=lambda: T0), scene.radar_id, [event(1, T0, "motion")], T0)
    moved = T0 + dt.timedelta(hours=1)
    with db.unit_of_work() as session:
        other = Resident(name="李桂兰", name_pinyin="li gui lan", living_arrangement=LivingArrangement.alone)
        session.add(other)
        session.flush()
        binding = session.scalar(select(DeviceBinding).where(DeviceBinding.device_id == scene.radar_id))
        devices.end_binding(session, scene.radar_id, binding.id, moved)
        devices.bind_device(session, scene.radar_id, resident_id=other.id, valid_from=moved)
    # when it reports the other elder moving about
    later = T0 + dt.timedelta(hours=11)
    send(db, AlertRules(clock=lambda: later), scene.radar_id, [event(2, later, "motion")], later)
    # then her 12 hours without activity still raise her alert (she keeps her wearable)
    sweep_job(db, T0 + dt.timedelta(hours=12, minutes=1))
    assert [(a.kind, a.resident_id) for a in alerts(db)] == [("no_activity", scene.resident_id)]


def test_an_elder_who_no_longer_lives_alone_raises_no_living_alone_alert(db: Database, scene: Scene) -> None:
    from yiyang.geo.models import LivingArrangement
    from yiyang.residents.models import Resident

    # given her clock started while she lived alone, and her son has moved in since
    send(db, AlertRules(clock=lambda: T0), scene.radar_id, [event(1, T0, "motion")], T0)
    with db.unit_of_work() as session:
        session.get(Resident, scene.resident_id).living_arrangement = LivingArrangement.with_family
    # when the clock runs out, then no "living alone without activity" alert
    assert sweep_job(db, T0 + dt.timedelta(hours=13))["raised"] == 0
    assert alerts(db) == []


def test_a_gateway_that_answers_garbage_is_retried_and_given_up_not_the_job_broken(
    db: Database, scene: Scene
) -> None:
    from tests.alerts.test_channels import NotHttp
    from yiyang.alerts.channels import HttpGateway, Notifier
    from yiyang.alerts.engine import use_notifier

    # given an SMS bridge that answers something that is not HTTP
    garbage = NotHttp()
    try:
        use_notifier(Notifier({"sms": HttpGateway(garbage.url, timeout=2)}, max_attempts=2))
        send(db, AlertRules(clock=lambda: T0), scene.radar_id, [event(1, T0, "fall")], T0)
        # when the delivery job runs, then both SMS fail, are retried once, and are given up
        assert delivery_job(db, T0) == {"sent": 0, "failed": 2, "gave_up": 0}
        assert delivery_job(db, T0 + dt.timedelta(minutes=1)) == {"sent": 0, "failed": 0, "gave_up": 2}
        assert delivery_job(db, T0 + dt.timedelta(hours=1)) == {"sent": 0, "failed": 0, "gave_up": 0}
    finally:
        garbage.listener.close()
    with db.unit_of_work() as session:
        sms = list(session.scalars(select(AlertDelivery).where(AlertDelivery.channel == "sms")))
    assert [(d.status, d.attempts, d.last_error) for d in sms] == [
        ("gave_up", 2, "bad reply (BadStatusLine)")
    ] * 2


@pytest.mark.postgres
def test_two_delivery_jobs_at_once_send_each_sms_once(pg_db: Database, gateway: Any) -> None:
    from tests.alerts.conftest import build_scene
    from yiyang.alerts.engine import current_notifier

    # given a fall whose first step has two SMS to send
    scene = build_scene(pg_db, gateway)
    send(pg_db, AlertRules(clock=lambda: T0), scene.radar_id, [event(1, T0, "fall")], T0)
    # when two workers' delivery jobs run at the same moment
    with pg_db.unit_of_work() as first:
        service.send_deliveries(first, T0, current_notifier())
        with pg_db.unit_of_work() as second:
            assert service.send_deliveries(second, T0, current_notifier()).sent == 0
    # then each SMS went out once
    assert sorted(n.user_id for n in gateway.sent) == [scene.grid_worker, scene.daughter]
