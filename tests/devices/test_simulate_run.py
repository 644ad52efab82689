"""A simulation run end to end: homes chosen among registered residents, devices provisioned
through the registry, the stream published over the real Mosquitto into the real ingest
worker, PostgreSQL storing every reading once; and the in-process path on both databases."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from tests.devices.conftest import Scene, wait_for
from yiyang.db import CHINA_TZ as CHINA
from yiyang.db import Database, utcnow
from yiyang.devices import simulate, simulate_feed
from yiyang.devices.models import Device, DeviceBinding, DeviceEvent, Telemetry
from yiyang.geo.models import Area, AreaLevel, Household, LivingArrangement
from yiyang.residents.models import Condition, Feed, LinkMethod, Resident, SourceRecord


def residents(database: Database, count: int = 6) -> list[int]:
    """Synthetic elders: some living alone, some with hypertension or diabetes."""
    ids = []
    with database.unit_of_work() as session:
        community = Area(level=AreaLevel.community, code="110108001001", name="示例社区", path="110108001001")
        session.add(community)
        session.flush()
        for index in range(count):
            household = Household(
                address=f"示例路{index}号", address_key=f"示例路{index}号", community_id=community.id
            )
            session.add(household)
            session.flush()
            resident = Resident(
                name=f"测试{index}",
                name_pinyin=f"ce shi {index}",
                household_id=household.id,
                living_arrangement=LivingArrangement.alone if index % 2 else LivingArrangement.spouse_only,
                capability_level="severe" if index == 0 else None,
            )
            session.add(resident)
            session.flush()
            source = SourceRecord(
                feed=Feed.health,
                source_key=f"sim-test-{index}",
                resident_id=resident.id,
                observed_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                content_hash="0" * 32,
                payload={},
                link_method=LinkMethod.new,
            )
            session.add(source)
            session.flush()
            if index % 3 != 2:
                for code in ("I10", "E11.9") if index % 3 == 0 else ("I10",):
                    session.add(
                        Condition(
                            resident_id=resident.id,
                            code=code,
                            first_source_record_id=source.id,
                            last_source_record_id=source.id,
                            first_seen=dt.date(2025, 1, 1),
                            last_seen=dt.date(2025, 1, 1),
                        )
                    )
            ids.append(resident.id)
    return ids


def provisioned(database: Database, start: dt.datetime, end: dt.datetime, seed: int = 3) -> simulate.Scenario:
    with database.unit_of_work() as session:
        homes = simulate_feed.select_homes(session, 4, seed)
    scenario = simulate.build_scenario(homes, start, end, seed, rates=simulate.InjectionRates().scaled(30))
    with database.unit_of_work() as session:
        made = simulate_feed.provision(
            session, homes, scenario.devices, start - dt.timedelta(days=1), utcnow()
        )
    assert made.registered == len(scenario.devices) and made.bound == len(scenario.devices)
    return scenario


def expected_rows(scenario: simulate.Scenario) -> tuple[int, int]:
    messages = list(simulate.stream(scenario))
    return (
        sum(m.channel == "telemetry" for m in messages),
        sum(m.channel == "event" for m in messages),
    )


def counts(database: Database) -> tuple[int, int]:
    with database.unit_of_work() as session:
        return (
            session.scalar(select(func.count()).select_from(Telemetry)) or 0,
            session.scalar(select(func.count()).select_from(DeviceEvent)) or 0,
        )


def test_homes_come_from_the_registry_and_devices_are_bound_to_elder_or_household(
    sqlite_db: Database,
) -> None:
    ids = residents(sqlite_db)
    start = dt.datetime(2026, 11, 20, 16, tzinfo=dt.UTC)
    scenario = provisioned(sqlite_db, start, start + dt.timedelta(hours=1))
    assert {home.resident_id for home in scenario.homes} <= set(ids)
    by_key = {home.key: home for home in scenario.homes}
    with sqlite_db.unit_of_work() as session:
        for device, binding in session.execute(
            select(Device, DeviceBinding).join(DeviceBinding, DeviceBinding.device_id == Device.id)
        ):
            home = by_key[int(device.uid.split("-")[1])]
            if device.kind in simulate.HOUSEHOLD_KINDS:
                assert binding.household_id == home.household_id
            else:
                assert binding.resident_id == home.resident_id
        # a second provisioning finds everything in place
        homes = list(scenario.homes)
        again = simulate_feed.provision(session, homes, scenario.devices, start, utcnow())
    assert again.registered == 0 and again.bound == 0 and again.existing == len(scenario.devices)


def test_in_process_feed_stores_every_message_once(db: Database) -> None:
    residents(db)
    start = dt.datetime(2026, 11, 20, 16, tzinfo=dt.UTC)
    scenario = provisioned(db, start, start + dt.timedelta(hours=3))
    telemetry, events = expected_rows(scenario)
    sink = simulate_feed.PipelineSink(db, batch_size=200)
    stats = simulate_feed.run(scenario, sink)
    assert sink.outcome.quarantined == {} and stats.messages == sink.outcome.received
    assert counts(db) == (telemetry, events)
    # replayed: nothing new
    again = simulate_feed.PipelineSink(db, batch_size=200)
    simulate_feed.run(scenario, again)
    assert again.outcome.stored == 0 and counts(db) == (telemetry, events)


@pytest.mark.mqtt
@pytest.mark.postgres
def test_a_run_over_mosquitto_into_the_ingest_worker_stores_every_reading_once(
    pg_db: Database, scene: Scene, start_worker
) -> None:
    # given provisioned homes and a running ingest worker
    residents(pg_db)
    # Six hours of a day, 14:00-20:00 Beijing time, the last such that has passed (within the
    # worker's seven days): a night's six hours hold too few events to count on.
    now = utcnow().astimezone(CHINA)
    end = now.replace(hour=20, minute=0, second=0, microsecond=0)
    if end > now - dt.timedelta(minutes=1):
        end -= dt.timedelta(days=1)
    end = end.astimezone(dt.UTC)
    scenario = provisioned(pg_db, end - dt.timedelta(hours=6), end)
    telemetry, events = expected_rows(scenario)
    assert telemetry > 100 and events > 5
    worker = start_worker(pg_db, scene.settings())
    # when the simulator publishes the window over MQTT (QoS 1, bounded in flight)
    sink = simulate_feed.MqttSink(scene.broker.host, scene.broker.port, scene.root, max_inflight=50)
    stats = simulate_feed.run(scenario, sink, not_ahead_of=lambda: utcnow().timestamp())
    # then every telemetry and event message is stored, once
    assert wait_for(lambda: counts(pg_db) == (telemetry, events), timeout=30), counts(pg_db)
    # and publishing the same window again stores nothing new
    again = simulate_feed.MqttSink(scene.broker.host, scene.broker.port, scene.root, max_inflight=50)
    simulate_feed.run(scenario, again)
    assert wait_for(lambda: worker.worker.stats.received >= 2 * stats.messages, timeout=30)
    result = worker.close()
    assert counts(pg_db) == (telemetry, events)
    assert result.duplicates == telemetry + events and not result.quarantined


def test_simulate_command_feeds_the_pipeline_and_writes_the_ground_truth(
    sqlite_db: Database, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from yiyang.cli import app
    from yiyang.config import get_settings

    residents(sqlite_db)
    monkeypatch.setenv("YIYANG_DATABASE_URL", str(sqlite_db.engine.url))
    monkeypatch.setenv("YIYANG_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        arguments = ["simulate", "--homes", "3", "--hours", "4", "--via", "inprocess", "--inject", "40"]
        arguments += ["--start", "2026-11-21T06:00+08:00", "--truth", str(tmp_path / "truth.jsonl")]
        result = CliRunner().invoke(app, arguments)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["stored"] == summary["telemetry"] + summary["events"] > 0
    assert summary["quarantined"] == {}
    truth = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    assert len(truth) == summary["injected"] > 0
    assert counts(sqlite_db) == (summary["telemetry"], summary["events"])
