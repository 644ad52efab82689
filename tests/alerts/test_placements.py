"""Whose reading it is: the placement in force at the reading's own time, changes to placements
seen promptly (in this process and in others), and stored overrides that no longer compile."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.alerts.conftest import T0, Scene
from tests.alerts.test_alerts import alerts, event, reading, send
from yiyang import cache_version
from yiyang.alerts.book import RuleBook, effective_rules
from yiyang.alerts.engine import AlertRules, sweep_job
from yiyang.alerts.models import AlertRuleOverride, OverrideScope
from yiyang.db import Database
from yiyang.devices import service as devices
from yiyang.devices.models import DeviceBinding, DeviceKind
from yiyang.geo.models import LivingArrangement
from yiyang.residents.models import Resident

URGENT = {"8480_6": 185}  # SBP >= 180: bp_urgent


class Ticks:
    """A monotonic clock the test moves by hand (the book's version check runs by it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def other_elder(db: Database) -> int:
    with db.unit_of_work() as session:
        other = Resident(name="李桂兰", name_pinyin="li gui lan", living_arrangement=LivingArrangement.alone)
        session.add(other)
        session.flush()
        return other.id


def move(db: Database, device_id: int, to_resident: int | None, at: dt.datetime) -> None:
    """End the device's placement at ``at`` and, when given, place it with another elder from then."""
    with db.unit_of_work() as session:
        binding = session.scalar(
            select(DeviceBinding).where(
                DeviceBinding.device_id == device_id, DeviceBinding.valid_to.is_(None)
            )
        )
        devices.end_binding(session, device_id, binding.id, at)
        if to_resident is not None:
            devices.bind_device(session, device_id, resident_id=to_resident, valid_from=at)


def raised(db: Database) -> list[tuple[str, int, dt.datetime]]:
    return sorted((a.kind, a.resident_id, a.raised_at) for a in alerts(db))


# ---- a reading belongs to whoever had the device when it was measured ----------------------


def test_a_backlog_sent_after_the_wearable_moved_goes_to_whoever_wore_it_at_each_reading(
    db: Database, scene: Scene
) -> None:
    # given her wearable was handed to another elder at 11:00
    other = other_elder(db)
    moved = T0 + dt.timedelta(hours=1)
    move(db, scene.wearable_id, other, moved)
    # when it delivers, at noon, an urgent reading from 10:30 (hers) and one from 11:30 (his)
    noon = T0 + dt.timedelta(hours=2)
    before, after = moved - dt.timedelta(minutes=30), moved + dt.timedelta(minutes=30)
    batch = [reading(1, before, **URGENT), reading(2, after, **URGENT)]
    send(db, AlertRules(clock=lambda: noon), scene.wearable_id, batch, noon)
    # then each elder gets the alert of the reading taken while they wore it, nobody the other's
    assert raised(db) == [("bp_urgent", scene.resident_id, before), ("bp_urgent", other, after)]


def test_a_reading_from_before_any_placement_reaches_nobody(db: Database, scene: Scene) -> None:
    # given the wearable was placed with her a day before T0; when it sends a reading stamped
    # two days before T0 (a factory test, before it was handed out)
    early = T0 - dt.timedelta(days=2)
    send(db, AlertRules(clock=lambda: T0), scene.wearable_id, [reading(1, early, **URGENT)], T0)
    # then nobody is alerted
    assert alerts(db) == []


# ---- changes to placements are seen promptly --------------------------------------------------


def test_a_placement_ended_here_is_seen_by_the_next_batch(db: Database, scene: Scene) -> None:
    # given the ingest knows her wearable (its rules hold the placement in memory)
    ticks = Ticks()
    rules = AlertRules(book=RuleBook(clock=ticks), clock=lambda: T0)
    send(db, rules, scene.wearable_id, [reading(1, T0, **{"8867_4": 72})], T0)
    # when the wearable is taken back from her in this process, and still reports afterwards
    taken = T0 + dt.timedelta(minutes=10)
    move(db, scene.wearable_id, None, taken)
    later = taken + dt.timedelta(minutes=1)
    send(db, rules, scene.wearable_id, [reading(2, later, **URGENT)], later)
    # then the reading is nobody's: no alert for her
    assert alerts(db) == []


def test_a_placement_ended_by_another_process_is_seen_within_the_version_check(
    db: Database, scene: Scene
) -> None:
    # given the ingest knows her wearable
    ticks = Ticks()
    rules = AlertRules(book=RuleBook(clock=ticks), clock=lambda: T0)
    send(db, rules, scene.wearable_id, [reading(1, T0, **{"8867_4": 72})], T0)
    # when another process (the web app) ends the placement: its ORM is not ours to hear, only
    # the counter its placement service bumps with the change
    taken = T0 + dt.timedelta(minutes=10)
    with Session(db.engine) as elsewhere:
        elsewhere.execute(
            text("UPDATE device_binding SET valid_to = :at WHERE device_id = :device"),
            {"at": taken.replace(tzinfo=None), "device": scene.wearable_id},
        )
        cache_version.bump(elsewhere, cache_version.PLACEMENTS)
        elsewhere.commit()
    # and the next batch comes after the version check's interval, well inside the old 5 minutes
    ticks.now += 6
    later = taken + dt.timedelta(minutes=1)
    send(db, rules, scene.wearable_id, [reading(2, later, **URGENT)], later)
    # then the reading is nobody's
    assert alerts(db) == []


def test_a_placement_moved_to_a_merged_survivor_elsewhere_is_seen_within_the_version_check(
    db: Database, scene: Scene
) -> None:
    # given the ingest knows her wearable
    ticks = Ticks()
    rules = AlertRules(book=RuleBook(clock=ticks), clock=lambda: T0)
    send(db, rules, scene.wearable_id, [reading(1, T0, **{"8867_4": 72})], T0)
    # when another process moves the placement to another record (a registry merge carries it)
    other = other_elder(db)
    with Session(db.engine) as elsewhere:
        elsewhere.execute(
            text("UPDATE device_binding SET resident_id = :other WHERE device_id = :device"),
            {"other": other, "device": scene.wearable_id},
        )
        cache_version.bump(elsewhere, cache_version.PLACEMENTS)
        elsewhere.commit()
    ticks.now += 6
    later = T0 + dt.timedelta(minutes=1)
    send(db, rules, scene.wearable_id, [reading(2, later, **URGENT)], later)
    # then the alert reaches the record the placement now names
    assert [(a.kind, a.resident_id) for a in alerts(db)] == [("bp_urgent", other)]


# ---- stored overrides that no longer compile ---------------------------------------------------


def store_override(db: Database, resident_id: int, rule: str, params: Any) -> int:
    """An override row written as an older version allowed, or by hand: not checked."""
    with db.unit_of_work() as session:
        row = AlertRuleOverride(
            scope=OverrideScope.resident, resident_id=resident_id, rule=rule, params=params, changed_at=T0
        )
        session.add(row)
        session.flush()
        return row.id


def test_an_override_that_no_longer_compiles_is_left_out_and_the_ingest_goes_on(
    db: Database, scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    # given her doctor's valid override (BP alert from 170) and two stored rows that no longer
    # compile (a flag kept as text, a field no version allows), and another elder with no override
    store_override(db, scene.resident_id, "bp_urgent", {"when": [["8480-6", ">=", 170]]})
    flag = store_override(db, scene.resident_id, "spo2_low", {"enabled": "no"})
    field = store_override(db, scene.resident_id, "fall", {"event": "sos"})
    other = other_elder(db)
    with db.unit_of_work() as session:
        radar, _ = devices.register_device(session, "RADAR-2", DeviceKind.radar)
        devices.bind_device(session, radar.id, resident_id=other, valid_from=T0 - dt.timedelta(days=1))
    rules = AlertRules(clock=lambda: T0)
    caplog.set_level(logging.WARNING, logger="yiyang.alerts")
    # when readings come for both
    send(db, rules, scene.wearable_id, [reading(1, T0, **{"8480_6": 172, "59408_5": 90})], T0)
    send(db, rules, radar.id, [event(1, T0, "fall")], T0)
    # then her rules are the district's with her valid override only, and the other elder's fall
    # is raised as well
    assert raised(db) == [
        ("bp_urgent", scene.resident_id, T0),
        ("fall", other, T0),
        ("spo2_low", scene.resident_id, T0),
    ]
    # and each bad override is logged once, by id and rule, with nothing about the elder
    later = T0 + dt.timedelta(minutes=1)
    send(db, rules, scene.wearable_id, [reading(2, later, **{"8480_6": 172})], later)
    with db.unit_of_work() as session:
        assert effective_rules(session, scene.resident_id, rules.book).rule("bp_urgent").when[0].value == 170
    messages = [r.getMessage() for r in caplog.records if "override" in r.getMessage()]
    assert len(messages) == 2, messages
    assert any(f"#{flag}" in m and "spo2_low" in m for m in messages)
    assert any(f"#{field}" in m and "fall" in m for m in messages)
    assert not any("王秀英" in m or f"resident {scene.resident_id}" in m for m in messages)


def test_the_sweep_goes_on_past_a_resident_with_an_override_that_no_longer_compiles(
    db: Database, scene: Scene
) -> None:
    # given her no-activity clock is running, and a stored override of hers no longer compiles
    send(db, AlertRules(clock=lambda: T0), scene.radar_id, [event(1, T0, "motion")], T0)
    store_override(db, scene.resident_id, "no_activity", {"hours": "twelve"})
    # when the clock runs out, then the sweep raises her alert with the district's 12 hours
    assert sweep_job(db, T0 + dt.timedelta(hours=12, minutes=1))["raised"] == 1
    assert [a.kind for a in alerts(db)] == ["no_activity"]


def test_an_override_whose_params_are_not_an_object_is_left_out(db: Database, scene: Scene) -> None:
    # given a row whose params were written by hand as a list
    store_override(db, scene.resident_id, "bp_urgent", ["when", 170])
    # when an urgent reading comes, then the district's rule raises it
    send(db, AlertRules(clock=lambda: T0), scene.wearable_id, [reading(1, T0, **URGENT)], T0)
    assert [a.kind for a in alerts(db)] == ["bp_urgent"]


# ---- a device's silence clock follows the device to its new holder ------------------------------


def test_a_wearable_handed_on_and_silent_soon_after_raises_its_silence_for_the_new_wearer(
    db: Database, scene: Scene
) -> None:
    # given her wearable reported at T0 (its silence clock runs for her), and a minute later was
    # handed to another elder, for whom it reported once more and then went dead
    rules = AlertRules(clock=lambda: T0)
    send(db, rules, scene.wearable_id, [reading(1, T0, **{"8867_4": 72})], T0)
    other = other_elder(db)
    moved = T0 + dt.timedelta(minutes=1)
    move(db, scene.wearable_id, other, moved)
    last = moved + dt.timedelta(minutes=1)
    send(db, rules, scene.wearable_id, [reading(2, last, **{"8867_4": 70})], last)
    # when 26 hours pass without a word from it
    sweep_job(db, last + dt.timedelta(hours=26, minutes=1))
    # then the new wearer's people hear that it is silent
    assert [(a.kind, a.resident_id) for a in alerts(db)] == [("device_silent", other)]
