"""The cache version counters: bumped with each change other processes cache, in the change's own
transaction, and read (one small statement) by the ingest's directory and the alert rule book."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, update
from sqlalchemy.orm import Session

from tests.alerts.conftest import T0, Scene
from tests.alerts.test_alerts import alerts, reading, send
from tests.alerts.test_placements import Ticks, other_elder
from tests.conftest import schema_drift
from yiyang import cache_version
from yiyang.access import service as access
from yiyang.alerts.book import RuleBook
from yiyang.alerts.engine import AlertRules
from yiyang.alerts.models import AlertRuleOverride, OverrideScope
from yiyang.alerts.overrides import add_override, remove_override
from yiyang.db import Database
from yiyang.devices import service as devices
from yiyang.devices.models import DeviceBinding, DeviceKind
from yiyang.residents.service import merge_residents, unmerge
from yiyang.tiers import service as tiers
from yiyang.tiers.rules import Tier

BP_170 = {"when": [["8480-6", ">=", 170]]}


def versions(db: Database) -> dict[str, int]:
    with db.unit_of_work() as session:
        return cache_version.read(session)


def moved(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {topic for topic in after.keys() | before.keys() if after.get(topic, 0) != before.get(topic, 0)}


def test_the_table_matches_its_model(db: Database) -> None:
    assert schema_drift(db, ("cache_version",)) == []


def test_a_bump_counts_once_its_transaction_commits_and_not_when_it_rolls_back(db: Database) -> None:
    # given no counter yet (the first bump makes the row)
    assert versions(db) == {}
    with db.unit_of_work() as session:
        cache_version.bump(session, cache_version.TIERS)
        cache_version.bump(session, cache_version.TIERS)  # once per transaction
        cache_version.bump(session, cache_version.PLACEMENTS)
    assert versions(db) == {"tiers": 1, "placements": 1}
    # when a transaction that bumped fails, then nothing is counted
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        cache_version.bump(session, cache_version.TIERS)
        raise RuntimeError("the change failed")
    # and the next one counts on from the stored value
    with db.unit_of_work() as session:
        cache_version.bump(session, cache_version.TIERS)
    assert versions(db) == {"tiers": 2, "placements": 1}


def test_device_and_placement_changes_bump_their_topics(db: Database, scene: Scene) -> None:
    other = other_elder(db)
    before = versions(db)
    with db.unit_of_work() as session:
        device, _ = devices.register_device(session, "WB-7", DeviceKind.wearable)
    assert moved(before, after := versions(db)) == {"devices"}
    with db.unit_of_work() as session:
        binding = devices.bind_device(session, device.id, resident_id=other, valid_from=T0)
    assert moved(after, before := versions(db)) == {"placements"}
    with db.unit_of_work() as session:
        devices.end_binding(session, device.id, binding.id, T0 + dt.timedelta(hours=1))
    assert moved(before, after := versions(db)) == {"placements"}
    with db.unit_of_work() as session:
        devices.retire_device(session, scene.wearable_id, T0 + dt.timedelta(hours=2))
    assert moved(after, versions(db)) == {"devices", "placements"}


def test_a_merge_that_carries_a_placement_bumps_it_and_so_does_its_unmerge(
    db: Database, scene: Scene, reactions: None
) -> None:
    survivor = other_elder(db)
    before = versions(db)
    with db.unit_of_work() as session:
        merge_id = merge_residents(session, survivor, scene.resident_id, by="keeper", reason="同一人").id
    assert "placements" in moved(before, after := versions(db))
    with db.unit_of_work() as session:
        unmerge(session, merge_id, by="keeper")
    assert "placements" in moved(after, versions(db))


def test_an_override_added_or_removed_bumps_overrides(db: Database, scene: Scene) -> None:
    before = versions(db)
    with db.unit_of_work() as session:
        doctor = access.load_actor(session, scene.doctor, T0)
        override = add_override(session, doctor, OverrideScope.resident, "bp_urgent", BP_170, tier=None,
                                resident_id=scene.resident_id, by=scene.doctor, now=T0)  # fmt: skip
    assert moved(before, after := versions(db)) == {"overrides"}
    with db.unit_of_work() as session:
        doctor = access.load_actor(session, scene.doctor, T0)
        remove_override(session, doctor, override.id, T0)
    assert moved(after, versions(db)) == {"overrides"}


def test_a_tier_decided_or_changed_bumps_tiers_and_one_unchanged_does_not(db: Database, scene: Scene) -> None:
    before = versions(db)
    with db.unit_of_work() as session:
        tiers.retier_residents(session, [scene.resident_id], now=T0)
    assert moved(before, after := versions(db)) == {"tiers"}
    with db.unit_of_work() as session:
        tiers.retier_residents(session, [scene.resident_id], now=T0)
    assert moved(after, versions(db)) == set()


def test_a_tier_change_is_seen_by_the_ingest_within_the_version_check(db: Database, scene: Scene) -> None:
    # given green elders' blood pressure alerts from 170 (a tier override), and the ingest knows
    # her wearable while she has no tier yet (the district's 180 holds for her)
    with db.unit_of_work() as session:
        session.add(
            AlertRuleOverride(scope=OverrideScope.tier, tier=Tier.green.value, rule="bp_urgent",
                              params=BP_170, changed_at=T0)
        )  # fmt: skip
    ticks = Ticks()
    rules = AlertRules(book=RuleBook(clock=ticks), clock=lambda: T0)
    send(db, rules, scene.wearable_id, [reading(1, T0, **{"8480_6": 172})], T0)
    assert alerts(db) == []
    # when her tier is decided green (the nightly sweep, another process), and the next batch
    # comes after the check's interval, well inside the cache's 5 minutes
    with db.unit_of_work() as session:
        tiers.retier_residents(session, [scene.resident_id], now=T0)
    ticks.now += 6
    later = T0 + dt.timedelta(minutes=1)
    send(db, rules, scene.wearable_id, [reading(2, later, **{"8480_6": 172})], later)
    # then her reading is judged by her tier's rules
    assert [(a.kind, a.resident_id) for a in alerts(db)] == [("bp_urgent", scene.resident_id)]


def test_the_version_check_is_one_read_of_the_counters(db: Database, scene: Scene) -> None:
    # given a rule book that knows her wearable
    ticks = Ticks()
    rules = AlertRules(book=RuleBook(clock=ticks), clock=lambda: T0)
    send(db, rules, scene.wearable_id, [reading(1, T0, **{"8867_4": 72})], T0)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    # when the next batch comes after the check's interval
    ticks.now += 6
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with Session(db.engine) as session:
            rules.book.placements(session, [scene.wearable_id])
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    # then it reads the counters, and nothing of the placements (unchanged, still cached)
    assert len(statements) == 1 and "FROM cache_version" in statements[0], statements
    assert "device_binding" not in statements[0]


def test_a_placement_written_around_the_services_waits_for_the_cache_to_expire(
    db: Database, scene: Scene
) -> None:
    # given the ingest knows her wearable
    ticks = Ticks()
    rules = AlertRules(book=RuleBook(clock=ticks), clock=lambda: T0)
    send(db, rules, scene.wearable_id, [reading(1, T0, **{"8867_4": 72})], T0)
    # when a placement is ended by hand in the database (no service, no counter bumped)
    with db.engine.begin() as connection:
        connection.execute(
            update(DeviceBinding.__table__)
            .where(DeviceBinding.__table__.c.device_id == scene.wearable_id)
            .values(valid_to=T0.replace(tzinfo=None) + dt.timedelta(minutes=10))
        )
    # then the ingest notices it once the cached placement expires (documented in docs/alerts.md)
    ticks.now += 301
    later = T0 + dt.timedelta(minutes=11)
    send(db, rules, scene.wearable_id, [reading(2, later, **{"8480_6": 185})], later)
    assert alerts(db) == []
