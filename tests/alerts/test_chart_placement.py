"""The alert page's chart and events show a device's readings only while it was placed with the
resident: a BP meter moved from another home does not show the other elder's blood pressure."""

from __future__ import annotations

import datetime as dt

from yiyang.db import Database, is_postgres
from yiyang.devices.models import Device, DeviceBinding, DeviceEvent, DeviceKind, Telemetry
from yiyang.devices.storage import ensure_partitions
from yiyang.residents.models import Resident
from yiyang.web.alert_pages import _devices_of, _events_around, readings_svg

AT = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)  # the alert


def test_a_moved_meter_shows_only_what_it_measured_with_her(db: Database) -> None:
    with db.unit_of_work() as session:
        if is_postgres(session):  # telemetry is partitioned by day there
            ensure_partitions(session, AT.date() - dt.timedelta(days=1), 3)
        before = Resident(name="李桂兰", name_pinyin="li gui lan", sex="F")
        her = Resident(name="王秀英", name_pinyin="wang xiu ying", sex="F")
        meter = Device(uid="BP-0001", kind=DeviceKind.bp_meter, secret_hash="0" * 64)
        session.add_all([before, her, meter])
        session.flush()
        moved = AT - dt.timedelta(hours=1)
        session.add_all([
            DeviceBinding(device_id=meter.id, resident_id=before.id, valid_from=AT - dt.timedelta(days=30),
                          valid_to=moved),
            DeviceBinding(device_id=meter.id, resident_id=her.id, valid_from=moved),
            Telemetry(measured_at=AT - dt.timedelta(minutes=90), device_id=meter.id, seq=1, systolic=166.0,
                      diastolic=101.0),
            Telemetry(measured_at=AT - dt.timedelta(minutes=30), device_id=meter.id, seq=2, systolic=128.0,
                      diastolic=82.0),
            DeviceEvent(measured_at=AT - dt.timedelta(minutes=95), device_id=meter.id, seq=3, kind="sos",
                        received_at=AT - dt.timedelta(minutes=95)),
        ])  # fmt: skip
        her_id = her.id
    with db.unit_of_work() as session:
        placements = _devices_of(session, her_id, AT)
        chart = readings_svg(session, placements, AT)
        events = _events_around(session, placements, AT)
    assert [device for device, _, _ in placements] == [meter.id]
    assert "128–128" in chart and "166" not in chart  # her reading, not the elder's before her
    assert events == []  # the SOS pressed in the other home
