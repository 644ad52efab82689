"""A device placed with a record that the registry merges into another follows the person, and
comes back with an unmerge (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest

from yiyang.db import Database
from yiyang.devices.models import Device, DeviceBinding, DeviceKind
from yiyang.residents.models import Resident
from yiyang.residents.service import merge_residents, unmerge

pytestmark = pytest.mark.usefixtures("reactions")
PLACED = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def test_her_wearable_follows_her_to_the_surviving_record(db: Database) -> None:
    with db.unit_of_work() as session:
        survivor = Resident(name="王秀英", name_pinyin="wang xiu ying", sex="F")
        duplicate = Resident(name="王秀英", name_pinyin="wang xiu ying", sex="F")
        watch = Device(uid="WB-0001", kind=DeviceKind.wearable, secret_hash="0" * 64)
        session.add_all([survivor, duplicate, watch])
        session.flush()
        binding = DeviceBinding(device_id=watch.id, resident_id=duplicate.id, valid_from=PLACED)
        session.add(binding)
        session.flush()
        ids = (survivor.id, duplicate.id, binding.id)
    survivor_id, duplicate_id, binding_id = ids
    with db.unit_of_work() as session:
        merge_id = merge_residents(session, survivor_id, duplicate_id, by="keeper", reason="同一人").id
    with db.unit_of_work() as session:
        assert session.get(DeviceBinding, binding_id).resident_id == survivor_id  # type: ignore[union-attr]
    with db.unit_of_work() as session:
        unmerge(session, merge_id, by="keeper")
    with db.unit_of_work() as session:
        assert session.get(DeviceBinding, binding_id).resident_id == duplicate_id  # type: ignore[union-attr]
